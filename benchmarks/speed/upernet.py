#!/usr/bin/env python
"""UperNet training-step time at 512x512: our ViT-B backbone vs MMSegmentation's ``MAE``.

Both segmentors come from ``configs/ade20k/upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py``
(UperNet 768 channels + FCN aux head); one keeps our ``MAETransferSegViT`` and
``MAETransferMultiLevelNeck``, the other swaps in mmseg's ``MAE`` backbone (init_values=1.0,
LN eps 1e-6) and ``Feature2Pyramid`` with the same weights (random, relative position tables
included). A training step is forward + loss + backward + AdamW step on a batch of 512x512
images with random labels (ignore pixels included).

Each model is timed in float32 and under autocast (``--amp``, bf16 by default), and the
backbone + neck alone (forward + backward) in both, all in one run. Three comparisons follow:

- same precision, float32 and autocast: what the backbone implementation alone buys;
- shipped recipes: mmseg's ``mae-base_upernet_8xb2-amp-160k`` config runs float32 (a plain
  ``OptimWrapper`` with a legacy ``fp16`` key that mmengine ignores), ours runs
  ``AmpOptimWrapper``: mmseg float32 vs ours under autocast.

Exits non-zero when the outputs differ or the shipped-recipe speed-up is below
``--min-speedup``; the same-precision ratios are printed next to it, never hidden.

    python benchmarks/speed/upernet.py                       # CPU, batch 2, bf16 autocast rows
    python benchmarks/speed/upernet.py --device cuda --batch 4 --amp bf16
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "ade20k" / "upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py"


def build_pair(size: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, mmseg's) UperNet segmentors with identical weights, BN in place of SyncBN."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mae_transfer.integrations.mmseg import to_mmseg_feature2pyramid_state_dict, to_mmseg_mae_state_dict

    cfg = Config.fromfile(str(CONFIG))
    init_default_scope("mmseg")
    bn = dict(type="BN", requires_grad=True)
    ours_cfg = copy.deepcopy(cfg.model)
    ours_cfg.backbone.pretrained = None
    ours_cfg.backbone.img_size = (size, size)
    ours_cfg.data_preprocessor.size = (size, size)
    ours_cfg.neck.norm_cfg = bn
    for head in (ours_cfg.decode_head, ours_cfg.auxiliary_head):
        head.norm_cfg = bn
    theirs_cfg = copy.deepcopy(ours_cfg)
    theirs_cfg.backbone = dict(
        type="MAE", img_size=(size, size), patch_size=16, embed_dims=768, num_layers=12, num_heads=12,
        mlp_ratio=4, out_indices=list(cfg.model.backbone.out_indices), init_values=1.0,
        drop_path_rate=cfg.model.backbone.drop_path_rate, norm_cfg=dict(type="LN", eps=1e-6))
    theirs_cfg.neck = dict(type="Feature2Pyramid", embed_dim=768, rescales=[4, 2, 1, 0.5], norm_cfg=bn)

    torch.manual_seed(0)
    ours = MODELS.build(ours_cfg)
    theirs = MODELS.build(theirs_cfg)
    with torch.no_grad():
        for block in ours.backbone.vit.blocks:
            block.attn.relative_position_bias_table.normal_(0.0, 0.5)
    state = {k: v for k, v in ours.state_dict().items() if not k.startswith(("backbone.", "neck."))}
    state.update({f"backbone.{k}": v for k, v in to_mmseg_mae_state_dict(ours.backbone.vit.state_dict()).items()})
    state.update({f"neck.{k}": v for k, v in to_mmseg_feature2pyramid_state_dict(ours.neck.state_dict()).items()})
    result = theirs.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys if not key.endswith("relative_position_index")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"weight transfer failed: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    return ours, theirs


def make_batch(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, list]:
    """Normalised images and SegDataSamples with labels in 0..149 plus ignore (255) pixels."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    samples = []
    for _ in range(batch):
        labels = torch.randint(0, 150, (1, size, size), generator=generator)
        labels[:, : size // 8] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=labels.to(device))
        samples.append(sample)
    return images, samples


def autocast(device_type: str, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` ("bf16" / "fp16"), or a no-op for float32 (None)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    return torch.autocast(device_type, dtype=dtype) if dtype else contextlib.nullcontext()


def step_time(model: torch.nn.Module, images: torch.Tensor, samples: list, steps: int, warmup: int,
              amp: str | None) -> float:
    """Median seconds per training step (forward, loss, backward, AdamW step)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    device_type = images.device.type
    scaler = torch.amp.GradScaler(device_type, enabled=amp == "fp16")
    times = []
    model.train()
    for index in range(warmup + steps):
        if device_type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast(device_type, amp):
            losses = model.loss(images, samples)
            loss = sum(value for key, value in losses.items() if "loss" in key)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device_type == "cuda":
            torch.cuda.synchronize()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def max_output_difference(ours: torch.nn.Module, theirs: torch.nn.Module, images: torch.Tensor) -> float:
    """Largest absolute difference of the decode-head logits (eval mode, float32)."""
    ours.eval(), theirs.eval()
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            return float((ours(images, mode="tensor") - theirs(images, mode="tensor")).abs().max())
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def backbone_time(model: torch.nn.Module, images: torch.Tensor, repeats: int, amp: str | None) -> float:
    """Median seconds of backbone + neck forward and backward (no head, no optimizer)."""
    device_type = images.device.type
    times = []
    model.train()
    for _ in range(repeats + 1):
        if device_type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast(device_type, amp):
            levels = model.neck(model.backbone(images))
            total = sum(level.float().mean() for level in levels)
        total.backward()
        if device_type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return sorted(times[1:])[len(times[1:]) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=2, help="at least 2 (BatchNorm after 1x1 pooling)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--amp", choices=["bf16", "fp16"], default="bf16", help="autocast dtype of the AMP rows")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--min-speedup", type=float, default=1.5)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import mae_transfer.integrations.mmseg  # noqa: F401  (registers our modules)

    device = torch.device(args.device)
    ours, theirs = build_pair(args.size)
    ours, theirs = ours.to(device), theirs.to(device)
    images, samples = make_batch(args.batch, args.size, device)
    difference = max_output_difference(ours, theirs, images[:1])
    models = {"mmseg": theirs, "ours": ours}
    step, backbone = {}, {}
    for precision in (None, args.amp):
        for name, model in models.items():
            key = (name, precision or "fp32")
            step[key] = step_time(model, images, samples, args.steps, args.warmup, precision)
            backbone[key] = backbone_time(model, images, args.steps, precision)
            print(f"  measured {name:5s} {key[1]:5s}: step {step[key]:.3f} s, backbone+neck {backbone[key]:.3f} s",
                  flush=True)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    print(f"UperNet ViT-B training step, {args.size}x{args.size}, batch {args.batch}, {device_name}")
    print(f"{'model':8s} {'precision':10s} {'s/step':>8s} {'img/s':>7s} {'backbone+neck s':>16s} {'share':>6s}")
    for (name, precision), seconds in step.items():
        share = backbone[name, precision] / seconds
        print(f"{name:8s} {precision:10s} {seconds:8.3f} {args.batch / seconds:7.2f} "
              f"{backbone[name, precision]:16.3f} {share:6.0%}")
    amp = args.amp
    comparisons = [
        ("same precision, fp32", step["mmseg", "fp32"] / step["ours", "fp32"]),
        (f"same precision, {amp}", step["mmseg", amp] / step["ours", amp]),
        (f"shipped recipes: mmseg fp32 vs ours {amp}", step["mmseg", "fp32"] / step["ours", amp]),
    ]
    for label, ratio in comparisons:
        print(f"speed-up (mmseg / ours), {label}: {ratio:.2f}x   (target >= {args.min_speedup}x)")
    print(f"backbone+neck speed-up, fp32: {backbone['mmseg', 'fp32'] / backbone['ours', 'fp32']:.2f}x, "
          f"{amp}: {backbone['mmseg', amp] / backbone['ours', amp]:.2f}x")
    print(f"max |logit difference| before training (float32): {difference:.2e}")
    return 0 if difference < 1e-3 and comparisons[-1][1] >= args.min_speedup else 1


if __name__ == "__main__":
    sys.exit(main())
