"""Cells of one `run` parse their configs from several threads (max_parallel > 1): every parse must succeed.

mmengine 0.10.7's Config.fromfile resolves `mmdet::`/`mmseg::` bases through pkg_resources, which fails
under concurrent use ("Expected str, Requirement, or Distribution"); the matrix parses through read_config.
"""

from __future__ import annotations

import threading

import pytest

from matrix_helpers import REPO


def test_configs_parse_from_concurrent_threads() -> None:
    pytest.importorskip("mmengine")
    from mae_transfer.matrix.plan.config_files import read_config

    configs = [REPO / "configs" / "smoke" / name for name in ("coco_maskrcnn.py", "ade20k_upernet.py")] * 2
    errors: list[str] = []
    parsed: list[str] = []

    def parse(path) -> None:
        try:
            parsed.append(read_config(path, import_custom_modules=False).model.backbone.type)
        except Exception as error:  # noqa: BLE001 - every failure is what the test reports
            errors.append(f"{path.name}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=parse, args=(path,)) for path in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(parsed) == ["MAETransferSegViT", "MAETransferSegViT", "MAETransferViT", "MAETransferViT"]
