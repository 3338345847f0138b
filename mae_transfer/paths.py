"""Where the package's shipped files are: configs, reference tables, and the checkout (if any).

Configs and reference YAML ship inside the package (``mae_transfer/configs``,
``mae_transfer/references``), so a non-editable install runs ``mae-transfer plan/run`` from any
directory. In a checkout the top-level ``configs`` and ``benchmarks/references`` are symlinks to
them, so ``configs/smoke/inat_finetune.py`` names the same file either way.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
CONFIGS_ROOT = PACKAGE_ROOT / "configs"
REFERENCES_ROOT = PACKAGE_ROOT / "references"


def config_file(relative: str | Path) -> Path:
    """A shipped config named as ``configs/<folder>/<name>.py`` (or relative to ``configs/``).

    An absolute path is returned as it is.
    """
    path = Path(relative)
    if path.is_absolute():
        return path
    parts = path.parts
    if parts and parts[0] == "configs":
        parts = parts[1:]
    return CONFIGS_ROOT.joinpath(*parts).resolve() if parts else CONFIGS_ROOT


def config_name(path: str | Path) -> str:
    """``configs/<relative path>`` for a shipped config, else the path itself (stable across installs)."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(CONFIGS_ROOT):
        return str(Path("configs") / resolved.relative_to(CONFIGS_ROOT))
    return str(path)


def import_root() -> Path:
    """The directory whose ``mae_transfer`` is this package (a child process's PYTHONPATH entry)."""
    return PACKAGE_ROOT.parent


def checkout_root() -> Path | None:
    """The git checkout this package runs from (an editable install), or None when installed."""
    root = PACKAGE_ROOT.parent
    return root if (root / ".git").exists() and (root / "pyproject.toml").is_file() else None
