"""MAETransferLayerDecayOptimWrapperConstructor through mmengine's own builders, schedulers and Runner."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from layer_decay_models import DEPTH, TinyClassifier
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mae_transfer.integrations.optim_constructor import AUDIT_FILENAME

RATE = 0.5
BASE_LR = 1e-3

OPTIM_WRAPPER = dict(
    type="OptimWrapper",
    constructor="MAETransferLayerDecayOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=BASE_LR, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=RATE, num_layers=None, no_decay_names=["head.weight"]),
)


def wrapper_cfg(**paramwise) -> dict:
    cfg = copy.deepcopy(OPTIM_WRAPPER)
    cfg["paramwise_cfg"].update(paramwise)
    return cfg


def base_ratios(optim_wrapper: OptimWrapper) -> list[float]:
    """Each optimizer group's lr / lr_scale, then the wrapper's own base-lr record.

    mmengine's OptimWrapper appends a pseudo group (``base_param_settings``, seeded with the
    optimizer's default lr) to ``param_groups`` so schedulers move a base lr it logs as
    ``base_lr``; it must track the same base as the real groups.
    """
    ratios = [group["lr"] / group["lr_scale"] for group in optim_wrapper.optimizer.param_groups]
    return ratios + [optim_wrapper.base_param_settings["lr"]]


def test_build_optim_wrapper_gives_layer_decay_groups(classifier: TinyClassifier) -> None:
    optim_wrapper = build_optim_wrapper(classifier, wrapper_cfg())
    assert isinstance(optim_wrapper.optimizer, torch.optim.AdamW)
    groups = optim_wrapper.optimizer.param_groups
    assert len(groups) == 2 * (DEPTH + 2)  # decay and no-decay groups at each layer id
    by_name = {name: group for group in groups for name in group["param_names"]}
    assert by_name["backbone.pos_embed"]["lr"] == pytest.approx(BASE_LR * RATE ** (DEPTH + 1))
    first_block = by_name["backbone.blocks.0.attn.qkv.weight"]
    assert first_block["lr"] == pytest.approx(BASE_LR * RATE**DEPTH)
    assert by_name["head.weight"]["lr"] == BASE_LR
    assert by_name["head.weight"]["weight_decay"] == 0.0
    assert by_name["neck.0.weight"]["weight_decay"] == 0.05
    assert by_name["backbone.blocks.0.attn.qkv.bias"]["weight_decay"] == 0.0
    assert optim_wrapper.get_lr()["lr"][0] == BASE_LR


def test_schedulers_keep_each_group_ratio(classifier: TinyClassifier) -> None:
    optim_wrapper = build_optim_wrapper(classifier, wrapper_cfg())
    schedulers = [
        LinearLR(optim_wrapper, start_factor=0.1, by_epoch=False, begin=0, end=3),
        CosineAnnealingLR(
            optim_wrapper, T_max=5, eta_min_ratio=0.01, by_epoch=False, begin=3, end=8
        ),
    ]
    seen = []
    for _ in range(8):
        ratios = base_ratios(optim_wrapper)
        assert ratios == pytest.approx([ratios[0]] * len(ratios), rel=1e-9)
        seen.append(ratios[0])
        optim_wrapper.step()
        for scheduler in schedulers:
            scheduler.step()
    assert seen[0] == pytest.approx(0.1 * BASE_LR)
    assert max(seen) == pytest.approx(BASE_LR)
    assert seen[-1] < seen[3]


def test_state_dict_round_trips_through_weights_only_load(
    classifier: TinyClassifier, tmp_path
) -> None:
    optim_wrapper = build_optim_wrapper(classifier, wrapper_cfg())
    optim_wrapper.update_params(classifier(torch.randn(2, 3, 32, 32)).sum())
    torch.save(optim_wrapper.state_dict(), tmp_path / "optim.pth")
    state = torch.load(tmp_path / "optim.pth", weights_only=True)

    fresh = build_optim_wrapper(classifier, wrapper_cfg())
    fresh.load_state_dict(state)
    for loaded, original in zip(fresh.optimizer.param_groups, optim_wrapper.optimizer.param_groups):
        assert loaded["param_names"] == original["param_names"]
        assert (loaded["lr"], loaded["lr_scale"]) == (original["lr"], original["lr_scale"])
    embeddings = fresh.optimizer.param_groups[-1]
    pos_embed = embeddings["params"][embeddings["param_names"].index("backbone.pos_embed")]
    loaded_avg = fresh.optimizer.state[pos_embed]["exp_avg"]
    assert loaded_avg.abs().sum() > 0
    assert torch.equal(loaded_avg, optim_wrapper.optimizer.state[pos_embed]["exp_avg"])


def test_unwraps_module_attribute(classifier: TinyClassifier) -> None:
    class Wrapped(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    optim_wrapper = build_optim_wrapper(Wrapped(classifier), wrapper_cfg())
    groups = optim_wrapper.optimizer.param_groups
    names = {name for group in groups for name in group["param_names"]}
    assert "backbone.pos_embed" in names


@pytest.mark.parametrize(
    ("paramwise", "message"),
    [
        (
            {"decay_mult": 0.0},
            r"unknown key\(s\) 'decay_mult'.*expected only \['layer_decay_rate'.*_delete_=True",
        ),
        ({"layer_decay_rat": 0.65}, r"'layer_decay_rat' \(did you mean 'layer_decay_rate'\?\)"),
        ({"layer_decay_rate": 1.5}, r"paramwise_cfg: LayerDecaySpec\.decay_rate"),
        ({"num_layers": 2}, r"num_layers: expected at least depth \+ 1 = 5"),
        ({"no_decay_names": ["hed.weight"]}, r"'hed\.weight'.*match no trainable parameter"),
    ],
)
def test_bad_paramwise_cfg(classifier: TinyClassifier, paramwise: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_optim_wrapper(classifier, wrapper_cfg(**paramwise))


def test_missing_keys_are_named(classifier: TinyClassifier) -> None:
    cfg = wrapper_cfg()
    del cfg["paramwise_cfg"]["layer_decay_rate"]
    with pytest.raises(ValueError, match="missing 'layer_decay_rate'"):
        build_optim_wrapper(classifier, cfg)
    cfg = wrapper_cfg()
    del cfg["optimizer"]["weight_decay"]
    with pytest.raises(ValueError, match=r"optim_wrapper\.optimizer: missing 'weight_decay'"):
        build_optim_wrapper(classifier, cfg)
    cfg = wrapper_cfg()
    del cfg["optimizer"]["type"]
    with pytest.raises(ValueError, match=r"optim_wrapper\.optimizer: missing 'type'"):
        build_optim_wrapper(classifier, cfg)
    with pytest.raises(ValueError, match="no mae_transfer.models.MAEViT inside Linear"):
        build_optim_wrapper(nn.Linear(2, 2), wrapper_cfg(no_decay_names=[]))


class RandomImages(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(3, 32, 32, generator=generator), labels=index % 5)


class TinyRunnerModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.classifier = TinyClassifier()

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, mode: str = "loss") -> dict:
        return dict(loss=nn.functional.cross_entropy(self.classifier(inputs), labels))


class RecordLr(Hook):
    def __init__(self) -> None:
        self.ratios: list[list[float]] = []
        self.logged: list[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.ratios.append(base_ratios(runner.optim_wrapper))
        self.logged.append(runner.message_hub.get_scalar("train/lr").current())


@pytest.mark.slow
def test_runner_logs_audit_and_keeps_ratios(tmp_path) -> None:
    recorder = RecordLr()
    runner = Runner(
        model=TinyRunnerModel(),
        work_dir=str(tmp_path),
        experiment_name="layer_decay_runner",
        train_dataloader=dict(
            dataset=RandomImages(),
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type="default_collate"),
        ),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=wrapper_cfg(no_decay_names=[]),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=3),
            dict(type="CosineAnnealingLR", eta_min_ratio=0.01, by_epoch=False, begin=3, end=6),
        ],
        default_hooks=dict(checkpoint=None, logger=dict(type="LoggerHook", interval=1)),
        custom_hooks=[recorder],
        log_processor=dict(by_epoch=False),
        log_level=logging.INFO,
    )
    runner.train()

    assert len(recorder.ratios) == 6
    for ratios in recorder.ratios:
        assert ratios == pytest.approx([ratios[0]] * len(ratios), rel=1e-9)
    bases = [ratios[0] for ratios in recorder.ratios]
    assert len(set(bases)) > 3
    # RuntimeInfoHook logs param_groups[0]'s lr: the head's group at scale 1, i.e. the base lr.
    assert recorder.logged == pytest.approx(bases)
    assert bases[:3] == pytest.approx([0.1 * BASE_LR, 0.55 * BASE_LR, BASE_LR])

    audit = (tmp_path / runner.timestamp / AUDIT_FILENAME).read_text().splitlines()
    trainable = [n for n, p in runner.model.named_parameters() if p.requires_grad]
    assert len(audit) == 2 + len(trainable)
    assert sorted(line.split()[0] for line in audit[2:]) == sorted(trainable)
    log_text = (tmp_path / runner.timestamp / f"{runner.timestamp}.log").read_text()
    assert f"Layer-wise lr decay (rate {RATE:g}" in log_text
    assert log_text.index("Layer-wise lr decay") < log_text.index("Iter(train) [1/6]")
