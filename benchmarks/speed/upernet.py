#!/usr/bin/env python
"""UperNet training-step time at 512x512: our ViT-B backbone vs MMSegmentation's ``MAE``.

Both segmentors come from ``configs/ade20k/upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py``
(UperNet 768 channels + FCN aux head); one keeps our ``MAETransferSegViT`` and
``MAETransferMultiLevelNeck``, the other swaps in mmseg's ``MAE`` backbone (init_values=1.0,
LN eps 1e-6) and ``Feature2Pyramid`` with the same weights (random, relative position tables
included). A training step is forward + loss + backward + AdamW step on a batch of 512x512
images with random labels (ignore pixels included). Prints a table and the speed-up; exits
non-zero when the outputs of the two differ or the speed-up is below ``--min-speedup``.

    python benchmarks/speed/upernet.py                       # CPU, float32, batch 2
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


def step_time(model: torch.nn.Module, images: torch.Tensor, samples: list, steps: int, warmup: int,
              amp: str | None) -> float:
    """Median seconds per training step (forward, loss, backward, AdamW step)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    device_type = images.device.type
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    autocast = torch.autocast(device_type, dtype=dtype) if dtype else contextlib.nullcontext()
    scaler = torch.amp.GradScaler(device_type, enabled=amp == "fp16")
    times = []
    model.train()
    for index in range(warmup + steps):
        if device_type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=2, help="at least 2 (BatchNorm after 1x1 pooling)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype (default float32)")
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
    rows = []
    for name, model in (("mmseg MAE + Feature2Pyramid", theirs), ("mae-transfer MAETransferSegViT", ours)):
        rows.append((name, step_time(model, images, samples, args.steps, args.warmup, args.amp)))
    speedup = rows[0][1] / rows[1][1]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    print(f"UperNet ViT-B training step, {args.size}x{args.size}, batch {args.batch}, "
          f"{args.amp or 'float32'}, {device_name}")
    print(f"{'model':34s} {'s/step':>9s} {'img/s':>8s}")
    for name, seconds in rows:
        print(f"{name:34s} {seconds:9.3f} {args.batch / seconds:8.2f}")
    print(f"speed-up (mmseg / ours): {speedup:.2f}x   (target >= {args.min_speedup}x)")
    print(f"max |logit difference| before training (float32): {difference:.2e}")
    ok = difference < 1e-3 and speedup >= args.min_speedup
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
