"""Every shipped config is loaded and its model built by one of the family tests.

Each task family's test module builds its configs on CPU (detection, segmentation,
classification, ImageNet, pre-training). This test reads the lists those builds are
parametrised over and checks that together they cover ``configs/**/*.py`` (``_base_`` pieces
excepted), so a config added to a new folder, or missed by a family's glob, fails here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

# (family test module, the lists its build test is parametrised over)
BUILD_TESTS = {
    "detection/test_coco_configs.py": ("COCO_CONFIGS", "SMOKE_CONFIG", "MULTILEVEL_SMOKE_CONFIG"),
    "segmentation/test_configs.py": ("ADE20K_CONFIGS", "SMOKE_CONFIG"),
    "classification/test_classification_configs.py": ("PAPER_CONFIGS", "SMOKE_CONFIGS"),
    "imagenet/test_imagenet_configs.py": ("CONFIGS",),
    "pretrain/test_pretrain_configs.py": ("RECIPES", "SMOKE_PRETRAIN"),
    "probes/test_probe_configs.py": ("PROBE_CONFIGS", "SMOKE_CONFIGS"),
    "segmentation/test_linear_probe.py": ("CONFIGS",),
}


def _load(relative: str) -> ModuleType:
    path = TESTS / relative
    sys.path.insert(0, str(path.parent))  # the module's own helpers (detection_helpers, ...)
    try:
        spec = importlib.util.spec_from_file_location(f"coverage_of_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _built_configs() -> dict[Path, str]:
    built: dict[Path, str] = {}
    for relative, names in BUILD_TESTS.items():
        module = _load(relative)
        for name in names:
            value = getattr(module, name)
            for path in value if isinstance(value, (list, tuple)) else [value]:
                built[Path(path).resolve()] = relative
    return built


def test_every_shipped_config_is_built_by_a_family_test() -> None:
    shipped = {path.resolve() for path in (REPO / "configs").rglob("*.py") if "_base_" not in path.parts}
    built = _built_configs()
    missing = sorted(str(path.relative_to(REPO.resolve())) for path in shipped - built.keys())
    assert not missing, f"configs no family test builds: {missing}"
    assert len(shipped) >= 60  # the glob itself found the tree (B/L/H x every task)
    assert set(built) <= shipped, f"family tests name configs that do not exist: {sorted(set(built) - shipped)}"
