"""The pure core imports and runs with every OpenMMLab package blocked.

`mae_transfer.models`, `.checkpoints`, `.optim` and the pre-training model never import
mmcv/mmengine/mmdet/mmseg/mmpretrain (docs/architecture.md, "Layers"). A fresh interpreter
installs an import hook that refuses those packages, imports every module of the core, then
builds a ViT, saves and loads a checkpoint through `load_pretrained`, builds layer-decay
param groups and runs a LARS step, so a lazy mm* import inside a function fails too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys, tempfile, os

    BLOCKED = ("mmcv", "mmengine", "mmdet", "mmseg", "mmpretrain")

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked OpenMMLab import: {name}")
            return None

    sys.meta_path.insert(0, Refuse())
    CORE = ("mae_transfer.models", "mae_transfer.checkpoints", "mae_transfer.optim", "mae_transfer.pretrain",
            "mae_transfer.data", "mae_transfer.leaderboard", "mae_transfer.probes")  # the last three: mm-free too
    imported = []
    for package_name in CORE:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            importlib.import_module(info.name)
            imported.append(info.name)

    import torch
    from mae_transfer.checkpoints import load_pretrained
    from mae_transfer.models import build_vit
    from mae_transfer.optim.lars import LARS
    from mae_transfer.optim.layer_decay import LayerDecaySpec, param_groups
    from mae_transfer.pretrain.model import build_mae

    torch.manual_seed(0)
    source = build_vit("vit_tiny_patch16", depth=2, img_size=32)
    path = os.path.join(tempfile.mkdtemp(), "ckpt.pth")
    torch.save({"model": source.state_dict()}, path)
    target = build_vit("vit_tiny_patch16", depth=2, img_size=64)  # pos_embed resized on load
    report = load_pretrained(target, path)
    assert report.resized, report
    out = target.forward_features(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1 + 16, 192), out.shape
    groups = param_groups(target, LayerDecaySpec(decay_rate=0.75), base_lr=1e-3, weight_decay=0.05)
    assert len(groups) > 2
    LARS(target.parameters(), lr=0.1).step()
    mae = build_mae("vit_tiny_patch16", depth=2, img_size=32, decoder={"depth": 1})
    loss = mae(torch.randn(2, 3, 32, 32)).loss
    assert torch.isfinite(loss)
    leaked = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("imported", len(imported), "modules")
""")


def test_core_runs_with_openmmlab_blocked() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    count = int(done.stdout.split()[1])
    assert count >= 20  # every module of the four packages, not an empty walk


def test_the_hook_does_block() -> None:
    """The same hook refuses mmengine itself (the test above cannot pass vacuously)."""
    probe = SCRIPT.split("CORE =")[0] + "import mmengine\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "blocked OpenMMLab import: mmengine" in done.stderr
