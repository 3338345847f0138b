"""mmdet's own entry points run our config with nothing but its ``custom_imports``.

mmdet's tools/train.py is not part of the mmdet wheel; it does Config.fromfile -> merge
--cfg-options -> set work_dir -> Runner.from_cfg(cfg).train(). The child process below does
exactly that, then mmdet.apis.init_detector / inference_detector on the checkpoint, and never
imports mae_transfer itself: the config's custom_imports must register everything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from detection_helpers import SMOKE_CONFIG, data_root_options, run

SCRIPT = r"""
import json, sys
from mmengine.config import Config
from mmengine.runner import Runner

config, work_dir, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
assert "mae_transfer" not in sys.modules
cfg = Config.fromfile(config)
assert "mae_transfer.integrations.mmdet" in sys.modules, "custom_imports did not run"
cfg.merge_from_dict(options)
cfg.work_dir = work_dir
runner = Runner.from_cfg(cfg)
runner.train()

from mmdet.apis import inference_detector, init_detector
model = init_detector(config, f"{work_dir}/iter_2.pth", device="cpu", cfg_options=options)
image = sys.argv[4]
result = inference_detector(model, image)
print("RESULT", json.dumps({
    "backbone": type(model.backbone).__name__,
    "neck": type(model.neck).__name__,
    "detections": int(result.pred_instances.bboxes.shape[0]),
    "has_masks": "masks" in result.pred_instances,
}))
"""


def test_runner_from_cfg_and_mmdet_apis(synthetic_coco: Path, tmp_path: Path) -> None:
    options = {
        **data_root_options(synthetic_coco),
        "train_cfg.max_iters": 2,
        "train_cfg.val_interval": 2,
        "default_hooks.checkpoint.interval": 2,
        "val_dataloader.dataset.indices": 4,
    }
    image = next((synthetic_coco / "val2017").glob("*.jpg"))
    result = run(
        [sys.executable, "-c", SCRIPT, str(SMOKE_CONFIG), str(tmp_path), json.dumps(options), str(image)],
        timeout=300,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    payload = json.loads(line[len("RESULT "):])
    assert payload["backbone"] == "MAETransferViT"
    assert payload["neck"] == "MAETransferSimpleFeaturePyramid"
    assert payload["has_masks"]
    assert (tmp_path / "iter_2.pth").is_file()
