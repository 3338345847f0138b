"""`mae-transfer visualize CKPT IMAGE... --out PNG`: MAE reconstructions of images."""

from __future__ import annotations

import argparse
import json
import sys

from mae_transfer.checkpoints import CheckpointError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``visualize`` command."""
    parser = subparsers.add_parser(
        "visualize",
        help="reconstruct images with an MAE checkpoint (with decoder): original | masked | "
        "reconstruction | reconstruction + visible, one row per image",
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="MAE pre-training checkpoint holding the decoder")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument("--out", required=True, metavar="PNG", help="output PNG file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random masks (default 0)")
    parser.add_argument("--mask-ratio", type=float, default=None,
                        help="fraction of patches removed (default: the checkpoint's, else 0.75)")
    parser.add_argument("--norm-pix-loss", choices=("auto", "on", "off"), default="auto",
                        help="whether the model predicts per-patch normalised pixels (auto: the checkpoint's "
                             "args; official files do not record it and are taken as off)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=_visualize)


def _visualize(args: argparse.Namespace) -> int:
    from mae_transfer.pretrain.checkpoint import build_from_checkpoint
    from mae_transfer.pretrain.visualize import visualize

    overrides = {} if args.norm_pix_loss == "auto" else {"norm_pix_loss": args.norm_pix_loss == "on"}
    try:
        model, checkpoint = build_from_checkpoint(args.checkpoint, **overrides)
        ratio = args.mask_ratio
        title = (f"{args.checkpoint} | mask ratio {ratio if ratio is not None else model.mask_ratio} | "
                 f"seed {args.seed}{' | norm-pix' if model.norm_pix_loss else ''}")
        path, result = visualize(model, args.images, args.out, seed=args.seed, mask_ratio=ratio, title=title)
    except (CheckpointError, ValueError, FileNotFoundError) as error:
        if args.json:
            print(json.dumps({"ok": False, "error": str(error)}, indent=2))
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = {"ok": True, "out": str(path), "images": len(args.images), "masked_patch_loss": result.loss,
               "mask_ratio": args.mask_ratio if args.mask_ratio is not None else model.mask_ratio,
               "norm_pix_loss": model.norm_pix_loss, "seed": args.seed, "notes": checkpoint.notes}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path} ({len(args.images)} images, masked-patch loss {result.loss:.4f})")
    return 0
