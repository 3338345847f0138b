"""The pre-training package is pure torch + timm: importing it loads no OpenMMLab package."""

from __future__ import annotations

import subprocess
import sys

from pretrain_helpers import REPO

SCRIPT = """
import sys
import mae_transfer.pretrain, mae_transfer.pretrain.visualize, mae_transfer.pretrain.cli, mae_transfer.pretrain.optim
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("mmcv", "mmengine", "mmdet", "mmseg"))
print(loaded)
"""


def test_importing_the_pretrain_package_loads_no_openmmlab_module() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
