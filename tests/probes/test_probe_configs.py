"""Every frozen-probe config loads, names what it runs, and its model and settings build on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from mae_transfer.probes import ProbeSettings

REPO = Path(__file__).resolve().parents[2]
PROBE_CONFIGS = sorted(path for folder in ("imagenet", "inat", "places")
                       for path in (REPO / "configs" / folder).glob("*_probes-*.py"))
SMOKE_CONFIGS = [REPO / "configs" / "smoke" / "digits_probes.py"]
ARCHS = {"vit-base-p16": "vit_base_patch16", "vit-large-p16": "vit_large_patch16", "vit-huge-p14": "vit_huge_patch14"}


def test_every_classification_dataset_and_arch_has_a_probe_config():
    names = {path.stem for path in PROBE_CONFIGS}
    for dataset in ("in1k", "inat2017", "inat2018", "inat2019", "places205", "places365"):
        for arch in ARCHS:
            assert f"{arch}_probes-amp_{dataset}-224" in names
    assert len(PROBE_CONFIGS) == 18


@pytest.mark.parametrize("path", [*PROBE_CONFIGS, *SMOKE_CONFIGS], ids=lambda p: p.stem)
def test_probe_config_builds(path: Path) -> None:
    import mae_transfer.integrations.probes  # noqa: F401  (registers the runner and the model)
    from mmengine.registry import MODELS

    cfg = Config.fromfile(str(path))
    assert cfg.runner_type == "MAETransferProbeRunner"
    for protocol in ("knn", "linear-sweep", "attentive"):
        probe = {key: value for key, value in cfg.probe.items() if key != "cache_root"}
        settings = ProbeSettings.from_config({**probe, "protocol": protocol})
        assert settings.holdout.fraction == 0.1 and settings.refit
    if path in PROBE_CONFIGS:
        arch = ARCHS[path.stem.split("_")[0]]
        assert cfg.model.backbone.arch == arch and cfg.model.backbone.img_size == 224
        assert cfg.probe.amp is True  # "amp" in the name
        sweep = ProbeSettings.from_config({**probe, "protocol": "linear-sweep"}).linear_sweep
        assert len(sweep.learning_rates) * len(sweep.sources) * len(sweep.blocks) == 78
        assert cfg.train_dataloader.batch_size == 128 and cfg.train_dataloader.dataset.pipeline[1].type == \
            "MAETransferLinearProbeTransform"
        assert cfg.val_dataloader.dataset.pipeline[1].input_size == 224
    import torch

    with torch.device("meta"):  # ViT-H has 632M parameters: shapes only
        model = MODELS.build(cfg.model)
    assert not any(p.requires_grad for p in model.parameters())
    assert model.backbone.num_prefix_tokens == 1


def test_the_classifier_refuses_a_probe_protocol() -> None:
    from mae_transfer.classification.model import MAEClassifier

    with pytest.raises(ValueError, match=r"model\.protocol: 'linear-sweep' is a frozen-feature probe; it runs on a "
                                         r"probe config"):
        MAEClassifier(backbone=dict(arch="vit_tiny_patch16", depth=1, img_size=32), num_classes=2,
                      protocol="linear-sweep")
