"""docs/recipes.md against the configs: every value a table on the page lists is the config's.

Every table on the page has a ``key`` column (a config key path, list indices as numbers) and one
column per config, named on the ``Configs:`` line above the table (a path under configs/, or a glob
that every matching config must satisfy). A cell's numbers must be the config value's numbers, in
order; a text value must be written as it is; ``-`` says the key is absent from that config. The
label and ``source`` columns are not compared (sources carry their arithmetic there). Every leaf
config of the recipe folders must be named by some ``Configs:`` line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "recipes.md"
CONFIGS = ROOT / "mae_transfer" / "configs"
RECIPE_FOLDERS = ("coco", "ade20k", "inat", "places", "imagenet", "pretrain")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
_CONFIG = re.compile(r"([^`;]+?)\s+`([^`]+)`")
ABSENT = "-"


@dataclass
class PageTable:
    """One Markdown table of the page: its config columns, and its rows as {column: cell}."""

    line: int
    configs: dict[str, str]
    header: list[str]
    rows: list[dict[str, str]]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_page(text: str) -> list[PageTable]:
    """Every table of the page with the ``Configs:`` line that precedes it (since the last table)."""
    tables, configs, lines = [], {}, text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("Configs:"):
            configs = {name.strip(" ,"): path for name, path in _CONFIG.findall(line[len("Configs:"):])}
        elif line.startswith("|"):
            start = index
            while index < len(lines) and lines[index].startswith("|"):
                index += 1
            header, body = _cells(lines[start]), [_cells(row) for row in lines[start + 2:index]]
            tables.append(PageTable(start + 1, configs, header, [dict(zip(header, row)) for row in body]))
            configs = {}
            continue
        index += 1
    return tables


@lru_cache(maxsize=None)
def load_config(relative: str) -> dict[str, Any]:
    """A config as mmengine reads it (bases merged, no custom imports), as plain data."""
    from mmengine.config import Config

    return Config.fromfile(str(CONFIGS / relative), import_custom_modules=False).to_dict()


@pytest.fixture(scope="module", autouse=True)
def _metafiles_read_once():
    """mmengine reads all of mmdet's / mmseg's metafiles (hundreds of YAML files) for every ``mmdet::`` /
    ``mmseg::`` base it resolves; index them once per package instead (the same lookup: about 2 s per
    package instead of 2 s per base)."""
    from mmengine.config import utils
    from mmengine.fileio import load

    index: dict[str, dict[str, Any]] = {}

    def metainfo(package_path: str, cfg_path: str) -> dict:
        if package_path not in index:
            found: dict[str, Any] = {}
            for meta in load(f"{package_path}/.mim/model-index.yml")["Import"]:
                for model in load(f"{package_path}/.mim/{meta}")["Models"]:
                    if "Config" in model:
                        found.setdefault(model["Config"].partition("/")[-1], model)
            index[package_path] = found
        if cfg_path not in index[package_path]:
            raise ValueError(f"{cfg_path} has no metafile entry")  # a base config: mmengine falls back to its path
        return index[package_path][cfg_path]

    with pytest.MonkeyPatch.context() as patch:
        if hasattr(utils, "_get_cfg_metainfo"):
            patch.setattr(utils, "_get_cfg_metainfo", metainfo)
        yield


def config_files(pattern: str) -> list[str]:
    found = sorted(path.relative_to(CONFIGS).as_posix() for path in CONFIGS.glob(pattern))
    assert found, f"docs/recipes.md: Configs: `{pattern}` matches no config"
    return found


def lookup(config: dict[str, Any], key: str) -> Any:
    """The value at a dotted key path (list indices as numbers); KeyError when absent."""
    value: Any = config
    for part in key.split("."):
        if isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(key)
    return value


def numbers_of(value: Any) -> list[float]:
    """The numbers of a config value in order (inside lists, tuples and mappings; booleans are not numbers)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    items = value.values() if isinstance(value, dict) else value
    return [number for item in items for number in numbers_of(item)]


def check_cell(cell: str, config: dict[str, Any], key: str) -> str | None:
    """Why ``cell`` does not say the config's value at ``key`` (None when it does)."""
    text = cell.replace("`", "").replace("**", "").strip()
    try:
        value = lookup(config, key)
    except KeyError:
        return None if text == ABSENT else f"{key!r} is not in the config, the page says {text!r}"
    if text == ABSENT:
        return f"the page says {key!r} is absent; the config has {value!r}"
    if isinstance(value, (str, bool)) or value is None:
        return None if text == str(value) else f"{key!r}: config {value!r}, page {text!r}"
    written = [float(number) for number in _NUMBER.findall(text)]
    expected = numbers_of(value)
    same = len(written) == len(expected) and all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                                                 for a, b in zip(written, expected))
    return None if same else f"{key!r}: config {value!r}, page {text!r}"


def table_problems(table: PageTable) -> list[str]:
    """Every disagreement between one table and its configs (and every column no config backs)."""
    where = f"docs/recipes.md:{table.line}"
    if "key" not in table.header:
        return [f"{where}: the table has no 'key' column, so its values cannot be checked"]
    columns = [h for h in table.header if h not in (table.header[0], "key", "source")]
    unnamed = [c for c in columns if c not in table.configs]
    if unnamed or not columns:
        return [f"{where}: columns {unnamed or columns} are not named on a 'Configs:' line above the table"]
    problems = []
    for row in table.rows:
        for column in columns:
            for relative in config_files(table.configs[column]):
                problem = check_cell(row[column], load_config(relative), row["key"].strip("`"))
                if problem:
                    problems.append(f"{where}: {row[table.header[0]]} [{column}: {relative}]: {problem}")
    return problems


def test_every_table_value_is_the_configs() -> None:
    tables = parse_page(PAGE.read_text())
    assert len(tables) >= 10
    problems = [problem for table in tables for problem in table_problems(table)]
    assert not problems, "\n".join(problems)


def test_every_recipe_config_is_on_the_page() -> None:
    named = {relative for table in parse_page(PAGE.read_text()) for pattern in table.configs.values()
             for relative in config_files(pattern)}
    leaves = {path.relative_to(CONFIGS).as_posix() for folder in RECIPE_FOLDERS
              for path in (CONFIGS / folder).glob("*.py")}
    assert leaves - named == set()


@pytest.mark.parametrize(("cell", "value", "problem"), [
    ("(0.9, 0.95)", (0.9, 0.95), False),
    ("(0.9, 0.999)", (0.9, 0.95), True),  # a changed number
    ("2.4e-3", 0.0024, False),
    ("[100, 200, 400]", [100, 200, 400, 800], True),  # a missing one
    ("`AmpOptimWrapper`", "AmpOptimWrapper", False),
    ("OptimWrapper", "AmpOptimWrapper", True),
    ("-", 3, True),  # said absent, present
])
def test_a_cell_that_disagrees_with_its_config_is_found(cell: str, value: Any, problem: bool) -> None:
    assert (check_cell(cell, {"a": {"b": value}}, "a.b") is not None) is problem
