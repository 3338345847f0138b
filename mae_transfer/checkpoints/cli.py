"""`mae-transfer inspect CKPT` and `mae-transfer convert CKPT OUT`.

Both read the checkpoint (a file or a HuggingFace directory) safely, detect its format, family
and architecture, and check it against a model built for that architecture and family (on the
meta device, so no weights are allocated): inspect reports what would load and what must be
declared (``--family``, ``--activation``, ``--norm-eps``: what the weights cannot tell); convert
writes the canonical checkpoint only if it loads and everything is declared, with the family
and its options in the header, so the canonical file tells them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from mae_transfer.checkpoints.arch import arch_name, arch_shape, infer_model_overrides
from mae_transfer.models.archs import ARCHS, family_options
from mae_transfer.models.options import ACTIVATIONS, DEFAULT_FAMILY, FAMILIES
from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.formats import CANONICAL_META_KEY, FORMATS
from mae_transfer.checkpoints.load import non_finite_tensors, open_checkpoint, plan_load, refuse_non_finite
from mae_transfer.checkpoints.report import LoadReport
from mae_transfer.records import atomic_path

_FALLBACK_ARCH = "vit_base_patch16"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` and ``convert`` commands."""
    inspect = subparsers.add_parser(
        "inspect", help="detect a checkpoint's format and architecture and report what loads"
    )
    inspect.add_argument("checkpoint", metavar="CKPT", help=".pth/.pt/.bin or .safetensors file")
    inspect.add_argument(
        "--arch",
        choices=sorted(ARCHS),
        help="check against this architecture (default: detected)",
    )
    _add_declarations(inspect)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=_inspect)

    convert = subparsers.add_parser(
        "convert", help="write a checkpoint in canonical timm naming ({'model': state_dict})"
    )
    convert.add_argument("checkpoint", metavar="CKPT", help="checkpoint in any supported format")
    convert.add_argument("out", metavar="OUT", help="output file; .safetensors writes safetensors")
    convert.add_argument(
        "--arch", choices=sorted(ARCHS), help="require this architecture (default: detected)"
    )
    _add_declarations(convert)
    convert.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    convert.add_argument("--json", action="store_true", help="machine-readable output")
    convert.set_defaults(func=_convert)


def _add_declarations(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", choices=sorted(FAMILIES),
                        help="declare the ViT family (default: the one the file names)")
    parser.add_argument("--activation", choices=ACTIVATIONS,
                        help="declare the MLP activation (CLIP: quick_gelu for OpenAI weights, gelu for most open_clip)")
    parser.add_argument("--norm-eps", type=float, help="declare the LayerNorm eps (default: the family's)")


def declarations(converted: ConvertedCheckpoint, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """(``build_vit`` family keywords, what is still undeclared -> hint) for a converted checkpoint."""
    from mae_transfer.checkpoints.families.agreement import family_of_told

    family = args.family or converted.family or family_of_told(converted.told)
    undeclared = {}
    for key, hint in converted.must_declare.items():
        if key == "family" and args.family is None:
            undeclared["family"] = hint
        elif key == "activation" and args.activation is None and "activation" not in converted.told:
            undeclared["activation"] = hint
    spec = FAMILIES.get(family or DEFAULT_FAMILY)
    for key, hint in spec.declare if spec else ():
        if key == "activation" and args.activation is None and "activation" not in converted.told:
            undeclared.setdefault(key, hint)
    build = {"family": family or DEFAULT_FAMILY, "activation": args.activation or converted.told.get("activation"),
             "norm_eps": args.norm_eps or converted.told.get("norm_eps")}
    return build, undeclared


def check_against_model(
    converted: ConvertedCheckpoint, arch: str | None = None, family: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any], dict[str, torch.Tensor], LoadReport]:
    """Plan loading a converted checkpoint into a meta-device `build_vit` model.

    Args:
        converted: the checkpoint in canonical naming.
        arch: architecture to check against; None uses the detected one (or, for a
            non-standard shape, ``vit_base_patch16`` with the checkpoint's dimensions).

        family: ``build_vit`` family keywords (``family``, ``activation``, ``norm_eps``); an
            undeclared activation is checked as ``gelu`` (the structure does not depend on it).

    Returns:
        (arch, build_vit overrides, tensors that would load, load report).

    Raises:
        CheckpointError: the checkpoint does not load into that model.
    """
    from mae_transfer.models import build_vit

    state_dict = converted.state_dict
    detected = arch_name(arch_shape(state_dict))
    name = arch or detected or _FALLBACK_ARCH
    overrides = infer_model_overrides(state_dict, shape_overrides=arch is None and detected is None)
    family = dict(family or {})
    if family.get("family") is not None:
        options = family_options(family["family"], family.get("activation") or "gelu", family.get("norm_eps"), name)
        overrides = {**overrides, "family": family["family"], "options": options}
    try:
        model = _build_without_weights(build_vit, name, overrides)
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"cannot build {name} with {overrides} to check the checkpoint: {error}",
            file=converted.source,
        ) from error
    state, report = plan_load(
        model.state_dict(), converted, grid_size=model.grid_size, omitted=model.omitted_keys(), options=model.options
    )
    if "options" in overrides:
        overrides["options"] = overrides["options"].to_dict()
    return name, overrides, state, report


def _build_without_weights(build_vit, name: str, overrides: dict[str, Any]) -> torch.nn.Module:
    """Build on the meta device (no memory); on CPU if the constructor needs real tensors."""
    try:
        with torch.device("meta"):
            return build_vit(name, **overrides)
    except (NotImplementedError, RuntimeError):
        return build_vit(name, **overrides)


def _inspect(args: argparse.Namespace) -> int:
    try:
        converted = open_checkpoint(args.checkpoint)
    except CheckpointError as error:
        return _fail(args, error)
    summary = _summary(converted)
    build, undeclared = declarations(converted, args)
    summary.update(family=build["family"], must_declare=undeclared)
    try:
        arch, overrides, _, report = check_against_model(converted, args.arch, build)
        refuse_non_finite(converted)
    except (CheckpointError, ValueError) as error:
        summary.update(ok=False, error=str(error))
        _emit(args, summary, None)
        return 1
    summary.update(ok=True, error=None, model={"arch": arch, "overrides": overrides})
    summary["load"] = report.to_dict()
    _emit(args, summary, report)
    return 0


def _convert(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        error = CheckpointError("the output exists; pass --force to overwrite it", file=str(out))
        return _fail(args, error)
    try:
        converted = open_checkpoint(args.checkpoint)
        build, undeclared = declarations(converted, args)
        if undeclared:
            flags = "; ".join(f"--{key.replace('_', '-')}: {hint}" for key, hint in undeclared.items())
            raise CheckpointError(f"the weights do not tell what must be declared to convert them: {flags}",
                                  file=converted.source, key=next(iter(undeclared)))
        _, overrides, planned, report = check_against_model(converted, args.arch, build)
        refuse_non_finite(converted)
    except CheckpointError as error:
        return _fail(args, error)
    state_dict = dict(converted.state_dict)
    if converted.zero_pos_embed and "pos_embed" in planned:
        state_dict["pos_embed"] = planned["pos_embed"]
    header = {
        "format": "canonical",
        "source_format": converted.format,
        "source": str(Path(args.checkpoint).resolve()),
        "arch": arch_name(arch_shape(state_dict)) or "",
        "family": build["family"],
        "options": json.dumps(overrides.get("options") or family_options(build["family"], build["activation"],
                                                                          build["norm_eps"]).to_dict()),
    }
    _write(out, state_dict, header)
    result = {"out": str(out), "tensors": len(state_dict), **header, "load": report.to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(report.render())
        print(f"wrote {len(state_dict)} tensors ({converted.format} -> canonical) to {out}")
    return 0


def _write(out: Path, state_dict: dict[str, torch.Tensor], header: dict[str, str]) -> None:
    """Write atomically: a temporary file in OUT's folder, then a rename."""
    with atomic_path(out) as tmp_name:
        if out.suffix == ".safetensors":
            from safetensors.torch import save_file

            tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
            metadata = {f"mae_transfer_{k}": v for k, v in header.items()}
            metadata["mae_transfer_format"] = "canonical"
            save_file(tensors, str(tmp_name), metadata=metadata)
        else:
            torch.save({"model": state_dict, CANONICAL_META_KEY: header}, tmp_name)


def _summary(converted: ConvertedCheckpoint) -> dict[str, Any]:
    shape = arch_shape(converted.state_dict)
    dtypes: dict[str, int] = {}
    for tensor in converted.state_dict.values():
        name = str(tensor.dtype).replace("torch.", "")
        dtypes[name] = dtypes.get(name, 0) + 1
    return {
        "source": converted.source,
        "container": converted.container,
        "format": converted.format,
        "format_description": FORMATS.get(converted.format, ""),
        "arch": arch_name(shape),
        "shape": None if shape is None else vars(shape),
        "tensors": len(converted.state_dict),
        "parameters": sum(t.numel() for t in converted.state_dict.values()),
        "dtypes": dtypes,
        "dropped_in_conversion": len(converted.dropped),
        "non_finite": [
            {"key": converted.origin.get(key, key), "nan": nan, "inf": inf}
            for key, nan, inf in non_finite_tensors(converted.state_dict)
        ],
    }


def _emit(args: argparse.Namespace, summary: dict[str, Any], report: LoadReport | None) -> None:
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    shape = summary["shape"]
    print(f"checkpoint: {summary['source']} ({summary['container']})")
    print(f"format:     {summary['format']} ({summary['format_description']})")
    print(f"family:     {summary['family']}")
    for key, hint in summary["must_declare"].items():
        print(f"DECLARE:    --{key.replace('_', '-')} ({hint}): the weights do not tell it")
    if shape:
        dims = f"{shape['embed_dim']}-d, {shape['depth']} blocks, patch {shape['patch_size']}"
        print(f"shape:      {dims} -> {summary['arch'] or 'no known arch'}")
    counts = f"{summary['parameters']:,} values, {summary['dtypes']}"
    print(f"tensors:    {summary['tensors']} ({counts})")
    for entry in summary["non_finite"]:
        print(f"NON-FINITE: {entry['key']}: {entry['nan']} NaN, {entry['inf']} inf", file=sys.stderr)
    if report is not None:
        print(f"load check against {summary['model']['arch']} {summary['model']['overrides']}:")
        print(report.render())
    else:
        print(f"load check failed: {summary['error']}", file=sys.stderr)


def _fail(args: argparse.Namespace, error: CheckpointError) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": str(error)}, indent=2))
    print(f"error: {error}", file=sys.stderr)
    return 1
