"""Override keys and values checked against the config they are merged into, before any cell runs.

mmengine merges an override whatever it names: a key the config does not have becomes a new key
that nothing reads (``lr``, ``max_epochs``, ``optim_wraper.optimizer.lr``); a top-level variable of
the config file (``num_classes = 4``) was already substituted where the config uses it when the
file was parsed, so overriding it changes nothing; a value of another type (``depth: four``) fails
only when the trainer builds it. The planner refuses each (`matrix_override_problems`), naming the
key and the nearest key the config has; ``doctor`` and the cell runner check every key a cell sets
(`unknown_override_keys`).
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any

# Top-level keys something reads from a parsed config: mmengine 0.10.7's Runner.from_cfg (model ...
# experiment_name) and Runner itself (model_wrapper_cfg, sync_bn, find_unused_parameters, compile),
# Config.fromfile (custom_imports), the OpenMMLab test-time augmentation (tta_model, tta_pipeline),
# their train scripts (runner_type) and FlexibleRunner (strategy). Any other top-level name is a
# variable of the config file.
READ_TOP_LEVEL_KEYS = frozenset({
    "model", "work_dir", "train_dataloader", "val_dataloader", "test_dataloader", "train_cfg", "val_cfg", "test_cfg",
    "auto_scale_lr", "optim_wrapper", "param_scheduler", "val_evaluator", "test_evaluator", "default_hooks",
    "custom_hooks", "data_preprocessor", "load_from", "resume", "launcher", "env_cfg", "log_processor", "log_level",
    "visualizer", "default_scope", "randomness", "experiment_name", "model_wrapper_cfg", "sync_bn",
    "find_unused_parameters", "compile", "custom_imports", "tta_model", "tta_pipeline", "runner_type", "strategy",
    "probe",  # a frozen-feature probe's settings: mae_transfer.integrations.probes reads cfg.probe
})
KEY_PATTERN = re.compile(r"\A[A-Za-z_]\w*(\.(?:[A-Za-z_]\w*|\d+))*\Z")


def unknown_override_keys(config: Path, keys: list[str]) -> list[str] | None:
    """Why each override key would be ignored by ``config`` (None when mmengine is unavailable)."""
    try:
        import mmengine.config  # noqa: F401  (parsing needs mmengine)
    except ImportError:
        return None
    from mae_transfer.matrix.plan.config_files import read_config

    cfg = read_config(config).to_dict()
    return [problem for key in keys if (problem := override_key_problem(cfg, key)) is not None]


def override_key_problem(cfg: dict, key: str) -> str | None:
    """Why ``key`` names nothing in the config mapping ``cfg`` (None when it does), as ``override KEY: why``."""
    problem = key_problem(cfg, key)
    return None if problem is None else f"override {key}: {problem}"


def key_problem(cfg: dict, key: str) -> str | None:
    """Why the dotted ``key`` would not set anything the config mapping ``cfg`` uses (None: it would).

    Every part but the last must exist (a list takes an index); the last may be new (a keyword
    argument the config leaves at its default) unless it is one edit from an existing key
    (``train_cfg.max_epoch``). At the top level, only the keys something reads
    (`READ_TOP_LEVEL_KEYS`) can be set.
    """
    if not KEY_PATTERN.match(key):
        return f"{key!r} is not a config key path; expected dotted names and list indices (optim_wrapper.optimizer.lr)"
    parts = key.split(".")
    top = parts[0]
    if top not in READ_TOP_LEVEL_KEYS:
        if top in cfg:
            return (f"{top!r} is a variable of the config file, substituted where the config uses it when the file "
                    f"was parsed, so overriding it changes nothing; set the key that uses it{_nearest(cfg, parts)}")
        close = difflib.get_close_matches(top, [k for k in cfg if k in READ_TOP_LEVEL_KEYS], n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else _nearest(cfg, parts)
        return f"{top!r} does not exist in the top level and nothing reads it, so the override would be ignored{hint}"
    node: Any = cfg
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the top level"
        if node is None and depth > 0:
            return None  # a key the config leaves unset (load_from = None): the override sets it
        if isinstance(node, (list, tuple)):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            return f"{where} is a list of {len(node)}; {part!r} is not an index in it"
        if not isinstance(node, dict):
            return f"{where} is {type(node).__name__}, not a mapping; {part!r} cannot be set in it"
        if part in node:
            node = node[part]
            continue
        if depth == 0:
            return None  # read with a default when the config leaves it out (randomness, env_cfg, ...)
        close = difflib.get_close_matches(part, [str(k) for k in node], n=1, cutoff=0.75)
        if depth == len(parts) - 1 and not close:
            return None  # a keyword argument the config leaves at its default (model.backbone.embed_dim)
        hint = f"; did you mean {'.'.join([*parts[:depth], close[0]])}?" if close else _nearest(cfg, parts)
        return f"{part!r} does not exist in {where}, so the override would be ignored{hint}"
    return None


def value_problem(cfg: dict, key: str, value: Any) -> str | None:
    """Why ``value`` cannot replace the value at the existing ``key`` of ``cfg`` (None: it can)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    current: Any = cfg
    for part in key.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, (list, tuple)) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None  # a new key: nothing to compare with
    if current is None or value is None:
        return None
    kinds = {"a boolean": lambda v: isinstance(v, bool),
             "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
             "a string": lambda v: isinstance(v, str),
             "a list": lambda v: isinstance(v, (list, tuple)),
             "a mapping": lambda v: isinstance(v, dict)}
    expected = next((name for name, test in kinds.items() if test(current)), None)
    if expected is None or kinds[expected](value):
        return None
    return f"expected {expected} like the config's {_preview(current)}, got {_preview(value)}"


def matrix_override_problems(cfg: dict, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted key, why) of each override of a matrix (nested mappings flattened) that ``cfg`` refuses."""
    problems = []
    for key, value in flatten(overrides).items():
        problem = key_problem(cfg, key) or value_problem(cfg, key, value)
        if problem is not None:
            problems.append((key, problem))
    return problems


def flatten(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{model: {backbone: {depth: 12}}}`` -> ``{model.backbone.depth: 12}`` (how mmengine merges it)."""
    flat: dict[str, Any] = {}
    for name, value in overrides.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def shadowed(planned: dict[str, str], overrides: dict[str, Any]) -> tuple[str, str, str] | None:
    """The first override that sets a key the planner sets: (override key, planned key, what sets it)."""
    for key in flatten(overrides):
        for owned, owner in planned.items():
            if key == owned or owned.startswith(key + ".") or key.startswith(owned + "."):
                return key, owned, owner
    return None


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_paths(node: Any, prefix: str, depth: int = 0) -> list[str]:
    if depth > 12:
        return []
    if isinstance(node, dict) and node:
        return [path for k, v in node.items() for path in _leaf_paths(v, f"{prefix}.{k}", depth + 1)]
    if isinstance(node, (list, tuple)) and node:
        return [path for i, v in enumerate(node) for path in _leaf_paths(v, f"{prefix}.{i}", depth + 1)]
    return [prefix]


def _nearest(cfg: dict, parts: list[str]) -> str:
    """``; did you mean KEY?`` with the key path of the config's read sections nearest to ``parts``."""
    paths = [path for top, value in cfg.items() if top in READ_TOP_LEVEL_KEYS for path in _leaf_paths(value, top)]
    shortest = {"key": lambda path: (path.count("."), len(path), path)}
    for name in (parts[-1], *difflib.get_close_matches(parts[-1], sorted({p.rsplit(".", 1)[-1] for p in paths}),
                                                       n=1, cutoff=0.75)):
        same = [path for path in paths if path.rsplit(".", 1)[-1] == name and path != ".".join(parts)]
        if same:
            return f"; did you mean {min(same, **shortest)}?"
    close = difflib.get_close_matches(".".join(parts), paths, n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else "; no key of the config is close to it"


def missing_keys(config: Path, keys: list[str]) -> list[str] | None:
    """The dotted keys absent from the parsed config (None when mmengine is unavailable)."""
    try:
        import mmengine.config  # noqa: F401  (parsing needs mmengine)
    except ImportError:
        return None
    from mae_transfer.matrix.plan.config_files import read_config

    cfg = read_config(config).to_dict()
    missing = []
    for key in keys:
        node = cfg
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    return missing
