#!/usr/bin/env python
"""Backbone speed and memory: MAEViT against timm's ViT and MMSegmentation's MAE backbone.

Every comparison runs in this one process on the same weights and prints a ratio against a
reference measured in the same run:

- ADE20K setting (ViT-B, 512x512, relative position bias, taps [3, 5, 7, 11]): forward+backward
  time of MAEViT vs MMSeg's ``MAE`` backbone (explicit attention); target >= 1.8x.
- plain 224x224 ViT-B: forward+backward throughput vs timm's VisionTransformer; target >= 0.95x.
- COCO setting (ViT-B, 1024x1024, window 14 + global blocks [2, 5, 8, 11]): peak training memory
  with activation checkpointing vs without; target <= 0.5x. Each memory run is a fresh
  subprocess (CPU: peak resident set growth; CUDA: torch's peak allocated bytes).

    python benchmarks/speed/backbone.py [--device cpu|cuda] [--dtype fp32|bf16] [--repeats N]

MMSeg is optional (the GPU machine may lack OpenMMLab packages): without it that row is skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from mae_transfer.models import build_vit

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_step(step, device: str, repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``step()`` (a forward+backward pass)."""
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fwd_bwd(model: torch.nn.Module, images: torch.Tensor, forward, dtype: torch.dtype, device: str):
    """A closure running one autocast forward and backward."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
            outputs = forward(model, images)
        loss = sum(out.float().mean() for out in (outputs if isinstance(outputs, (list, tuple)) else [outputs]))
        loss.backward()

    return step


def ade20k_row(args) -> dict | None:
    try:
        from mmseg.models.backbones import MAE

        from mae_transfer.integrations.mmseg import to_mmseg_mae_state_dict
    except ImportError:
        print("  (mmsegmentation not installed: ADE20K comparison skipped)")
        return None
    size, taps = 512, (3, 5, 7, 11)
    ours = build_vit(
        "vit_base_patch16", img_size=size, rel_pos_bias=True, layer_scale_init=1.0, out_indices=taps
    )
    theirs = MAE(img_size=(size, size), init_values=1.0, out_indices=list(taps))
    with torch.no_grad():
        for param in ours.parameters():
            param.normal_(std=0.02)
    missing, unexpected = theirs.load_state_dict(to_mmseg_mae_state_dict(ours.state_dict()), strict=False)
    assert not unexpected and all(k.endswith("relative_position_index") for k in missing), (missing, unexpected)
    images = torch.randn(args.batch_512, 3, size, size, device=args.device)
    ours, theirs = ours.to(args.device), theirs.to(args.device)
    with torch.no_grad():
        gap = max((a - b).abs().max().item() for a, b in zip(ours.forward_maps(images), theirs(images)))
    t_ours = time_step(fwd_bwd(ours, images, lambda m, x: m.forward_maps(x), args.dtype, args.device), args.device, args.repeats)
    t_theirs = time_step(fwd_bwd(theirs, images, lambda m, x: m(x), args.dtype, args.device), args.device, args.repeats)
    return {
        "setting": f"ADE20K ViT-B {size}x{size} rel-pos, batch {args.batch_512}, fwd+bwd",
        "ours_s": t_ours,
        "reference": "mmseg MAE",
        "reference_s": t_theirs,
        "speedup": t_theirs / t_ours,
        "target": ">= 1.8x",
        "max_abs_diff_maps": gap,
    }


def plain_row(args) -> dict:
    import timm

    reference = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    ours = build_vit("vit_base_patch16")
    ours.load_state_dict(reference.state_dict())
    images = torch.randn(args.batch_224, 3, 224, 224, device=args.device)
    ours, reference = ours.to(args.device), reference.to(args.device)
    t_ours = time_step(fwd_bwd(ours, images, lambda m, x: m.forward_features(x), args.dtype, args.device), args.device, args.repeats)
    t_timm = time_step(fwd_bwd(reference, images, lambda m, x: m.forward_features(x), args.dtype, args.device), args.device, args.repeats)
    tokens = args.batch_224 * 197
    return {
        "setting": f"plain ViT-B 224x224, batch {args.batch_224}, fwd+bwd",
        "ours_s": t_ours,
        "reference": "timm VisionTransformer",
        "reference_s": t_timm,
        "speedup": t_timm / t_ours,
        "target": ">= 0.95x",
        "ours_tokens_per_s": tokens / t_ours,
    }


def measure_memory(checkpointing: bool, device: str, dtype: str, size: int) -> float:
    """Peak training memory (MiB) of the COCO-setting ViT-B, measured in a fresh subprocess."""
    code = f"""
import json, resource, torch
from mae_transfer.models import build_vit
model = build_vit('vit_base_patch16', window=dict(size=14, global_blocks=[2, 5, 8, 11]),
                  grad_checkpointing={checkpointing}).to('{device}')
images = torch.randn(1, 3, {size}, {size}, device='{device}')
def rss_mib():
    with open('/proc/self/status') as status:
        fields = dict(line.split(':', 1) for line in status)
    return int(fields['VmRSS'].split()[0]) / 1024, int(fields['VmHWM'].split()[0]) / 1024
if '{device}' == 'cuda':
    torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated() / 2**20
else:
    open('/proc/self/clear_refs', 'w').write('5'); base = rss_mib()[0]
with torch.autocast(device_type='{device}', dtype={DTYPES[dtype]}, enabled={dtype != 'fp32'}):
    out = model.forward_maps(images)[-1]
out.float().mean().backward()
peak = torch.cuda.max_memory_allocated() / 2**20 if '{device}' == 'cuda' else rss_mib()[1]
print(json.dumps(peak - base))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def memory_row(args) -> dict:
    without = measure_memory(False, args.device, args.dtype_name, args.coco_size)
    with_ckpt = measure_memory(True, args.device, args.dtype_name, args.coco_size)
    return {
        "setting": f"COCO ViT-B {args.coco_size}x{args.coco_size} window 14 + 4 global, batch 1, train peak MiB",
        "ours_mib_checkpointing": with_ckpt,
        "reference": "same model without checkpointing",
        "reference_mib": without,
        "ratio": with_ckpt / without,
        "target": "<= 0.5x",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", dest="dtype_name", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-224", type=int, default=16)
    parser.add_argument("--batch-512", type=int, default=2)
    parser.add_argument("--coco-size", type=int, default=1024)
    parser.add_argument("--only", choices=["ade20k", "plain", "memory"], nargs="*")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.dtype = DTYPES[args.dtype_name]
    torch.manual_seed(0)
    rows = []
    for name, run in [("ade20k", ade20k_row), ("plain", plain_row), ("memory", memory_row)]:
        if args.only and name not in args.only:
            continue
        row = run(args)
        if row is not None:
            rows.append(row)
            print(json.dumps(row) if args.json else "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    print(f"device={args.device} dtype={args.dtype_name} torch={torch.__version__} threads={torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
