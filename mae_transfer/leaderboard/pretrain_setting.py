"""How a backbone was pre-trained: a leaderboard row is compared only with a reference of the same pre-training.

A setting has these facets: the length of the cosine schedule (``epochs``), the reconstruction
``target`` (``norm-pix``: per-patch normalised pixels; ``pixel``: raw pixels), the ``mask_ratio``,
the decoder (``decoder_depth`` x ``decoder_width``) and whether the checkpoint is the official
release. A checkpoint taken before the end of its schedule (``snapshot``) is a setting no reference
reports: every Fig. 7 point of the MAE paper is a full schedule of its own (its caption). Every
published number was pre-trained with the paper's recipe (Table 8: batch 4096, blr 1.5e-4); a
matrix stage run with another recipe, or off its batch or lr, says so in ``recipe`` and matches none.

Where a cell's setting comes from (`mae_transfer.leaderboard.aggregate.Settings.of`):

- a backbone made by a matrix pre-training stage: the stage's parameters and the evaluated epoch
  (``result.json``'s ``cell.pretrain``, else the planned cell's ``pretrain``);
- a declared checkpoint of the official MAE format (``mae``, ``mae_full``: the backbone's declared
  ``format:``, else the format its cells' load reports detected) or timm's ``.mae`` weights: the
  official release, :data:`RELEASED`. The format cannot tell an official release from another
  checkpoint written by the official script; the label says the setting was taken from the format;
- a generated checkpoint: no pre-training; any other: unknown. Neither gets a difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

TARGETS = {"norm-pix": "norm-pix", "pixel": "raw pixels"}  # value -> how it reads
# Checkpoint formats (mae_transfer.checkpoints.formats.FORMATS) that the official MAE release is written in.
RELEASE_FORMATS = ("mae", "mae_full")
# timm names the MAE release's weights with the `.mae` tag: vit_{base,large}_patch16_224.mae, vit_huge_patch14_224.mae
# (timm/models/vision_transformer.py: their url is dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_*.pth).
_TIMM_MAE_TAG = re.compile(r"\.mae(?![A-Za-z0-9_])")
FACETS = ("epochs", "target", "mask_ratio", "decoder_depth", "decoder_width", "released")
PAPER_RECIPE = "paper"  # MAE Table 8 / PRETRAIN.md (mae_transfer.matrix.spec.pretrain_stage's `paper` recipe)


@dataclass(frozen=True)
class PretrainSetting:
    """A pre-training, facet by facet (None: not known); ``unknown`` says why a setting is not known."""

    epochs: int | None = None
    target: str | None = None
    mask_ratio: float | None = None
    decoder_depth: int | None = None
    decoder_width: int | None = None
    released: bool = False
    snapshot: int | None = None  # the evaluated epoch, when earlier than ``epochs``
    recipe: str | None = PAPER_RECIPE  # the pre-training's batch/lr recipe (None: not known)
    unknown: str = ""
    assumed: str = ""  # what the setting was taken from, when it is an assumption (a checkpoint format)

    @property
    def known(self) -> bool:
        return not self.unknown and all(getattr(self, name) is not None for name in (*FACETS, "recipe"))

    def matches(self, other: PretrainSetting) -> bool:
        """Both known, the same facets and recipe, and neither a snapshot: a difference between them means something."""
        return (self.known and other.known and self.snapshot is None and other.snapshot is None
                and all(getattr(self, name) == getattr(other, name) for name in (*FACETS, "recipe")))

    def distance(self, other: PretrainSetting) -> int:
        """How many facets differ, a snapshot or another recipe counting as one more (all, when either is unknown)."""
        if not self.unknown and not other.unknown:
            return (sum(getattr(self, name) != getattr(other, name) for name in (*FACETS, "recipe"))
                    + (self.snapshot != other.snapshot))
        return len(FACETS) + 2

    def short(self) -> str:
        """A few words, e.g. ``released 1600 ep norm-pix`` or ``800 ep raw pixels mask 0.5``."""
        if self.unknown:
            return "pre-training unknown"
        parts = ["released"] if self.released else []
        if self.snapshot is not None:
            parts.append(f"epoch {self.snapshot} of {self.epochs}")
        elif self.epochs is not None:
            parts.append(f"{self.epochs} ep")
        if self.target is not None:
            parts.append(TARGETS.get(self.target, self.target))
        if self.mask_ratio is not None and self.mask_ratio != 0.75:
            parts.append(f"mask {self.mask_ratio:g}")
        if (self.decoder_depth, self.decoder_width) != (8, 512) and None not in (self.decoder_depth, self.decoder_width):
            parts.append(f"decoder {self.decoder_depth}x{self.decoder_width}")
        if self.recipe != PAPER_RECIPE:
            parts.append(f"recipe {self.recipe or 'unknown'}")
        return " ".join(parts)

    def describe(self) -> str:
        """A sentence-part naming every facet (or why the setting is unknown)."""
        if self.unknown:
            return f"unknown ({self.unknown})"
        if self.snapshot is not None:
            length = f"snapshot at epoch {self.snapshot} of {article(self.epochs)} {self.epochs}-epoch schedule"
        else:
            length = f"full {self.epochs}-epoch schedule" if self.epochs is not None else "epochs unknown"
        words = [("the released checkpoint, " if self.released else "") + length,
                 TARGETS.get(self.target, self.target) if self.target else "target unknown",
                 f"mask ratio {self.mask_ratio:g}" if self.mask_ratio is not None else "mask ratio unknown",
                 f"decoder {self.decoder_depth} x {self.decoder_width}"
                 if None not in (self.decoder_depth, self.decoder_width) else "decoder unknown"]
        if self.recipe != PAPER_RECIPE:
            words.append(f"pre-training recipe {self.recipe}" if self.recipe else "pre-training recipe unknown")
        return ", ".join(words) + (f" (taken from {self.assumed})" if self.assumed else "")


# The official MAE release (mae_pretrain_vit_{base,large,huge}.pth): FINETUNE.md "The pre-trained models we
# provide are trained with normalized pixels --norm_pix_loss (1600 epochs, Table 3 in paper)"; README "the
# pre-trained checkpoints used in the paper, converted from TF/TPU"; PRETRAIN.md --mask_ratio 0.75;
# models_mae.py mae_vit_*_dec512d8b (decoder 8 blocks, 512 wide).
RELEASED = PretrainSetting(epochs=1600, target="norm-pix", mask_ratio=0.75, decoder_depth=8, decoder_width=512,
                           released=True)
UNKNOWN = PretrainSetting(unknown="not known")


def article(number: int | None) -> str:
    """``a`` or ``an`` before a number read aloud (an 800-epoch, an 11-epoch, a 1600-epoch schedule)."""
    text = str(number)
    lead = int(text[:len(text) % 3 or 3]) if text.isdigit() else 0  # the group read first: 18 of 18000
    hundreds = len(text) == 4 and text[:2] in ("11", "18")  # eleven / eighteen hundred
    return "an" if str(lead).startswith("8") or lead in (11, 18) or hundreds else "a"


def setting_of_stage(pretrain: Mapping[str, Any], recipe: str | None) -> PretrainSetting:
    """The setting of a checkpoint made by a matrix pre-training stage (a cell's ``pretrain`` mapping).

    ``recipe``: the pre-training cell's recipe (`recipe_of`); None when that cell is not known.
    """
    params = pretrain.get("params") or {}
    epochs, epoch = params.get("epochs"), pretrain.get("epoch")
    norm_pix = params.get("norm_pix_loss")
    return PretrainSetting(
        epochs=None if epochs is None else int(epochs),
        target=None if norm_pix is None else ("norm-pix" if norm_pix else "pixel"),
        mask_ratio=None if params.get("mask_ratio") is None else float(params["mask_ratio"]),
        decoder_depth=params.get("decoder_depth"), decoder_width=params.get("decoder_width"), released=False,
        snapshot=int(epoch) if epoch is not None and epochs is not None and int(epoch) != int(epochs) else None,
        recipe=recipe,
    )


def recipe_of(pretrain_cell: Any) -> str:
    """A pre-training cell's recipe as a setting states it: ``paper``, else the recipe and what is off it."""
    reason = (pretrain_cell.off_recipe_reason or "off its batch or lr") if pretrain_cell.off_recipe else ""
    return pretrain_cell.recipe + (f" ({reason})" if reason else "")


def setting_of_checkpoint(checkpoint: str, fmt: str | None, how: str) -> PretrainSetting:
    """The setting of a declared checkpoint of format ``fmt`` (None: not known yet); ``how`` says where
    the format came from (``declared`` or ``detected``)."""
    if fmt in RELEASE_FORMATS:
        return replace(RELEASED, assumed=f"the {how} checkpoint format {fmt!r}")
    if fmt == "timm" and _TIMM_MAE_TAG.search(Path(checkpoint).as_posix()):
        return replace(RELEASED, assumed="timm's .mae weights")
    if fmt is None:
        return PretrainSetting(unknown="checkpoint format not known until a cell has loaded it; declare "
                                       "backbones[].format")
    return PretrainSetting(unknown=f"{how} checkpoint format {fmt!r} is not the official MAE release")


GENERATED = PretrainSetting(unknown="a generated random checkpoint: no pre-training")


def detected_format(result: Mapping[str, Any] | None) -> str | None:
    """The checkpoint format a finished cell's load report detected (``provenance.load_report.format``)."""
    load = ((result or {}).get("provenance") or {}).get("load_report")
    return load.get("format") if isinstance(load, Mapping) and isinstance(load.get("format"), str) else None


def declared_format(cfg_options: Mapping[str, Any]) -> str | None:
    """The format a matrix backbone forced on the loader (the planner sets ``*.pretrained_format``)."""
    for key, value in cfg_options.items():
        if key.endswith("pretrained_format") and isinstance(value, str) and value != "auto":
            return value
    return None


def declared_settings(outcomes: Iterable[Any], generated: Iterable[str]) -> dict[str, PretrainSetting]:
    """The setting of every declared backbone among ``outcomes`` (cells without ``pretrain``), by backbone name.

    ``generated``: the names of backbones whose checkpoint the matrix generates. A backbone's format is
    the one it declares, else the one a finished cell detected.
    """
    generated = set(generated)
    formats: dict[str, tuple[str | None, str, str]] = {}
    for outcome in outcomes:
        cell = outcome.cell
        if cell.pretrain or ((outcome.result or {}).get("cell") or {}).get("pretrain"):
            continue
        declared = declared_format(cell.cfg_options or {})
        found = (declared, "declared") if declared else (detected_format(outcome.result), "detected")
        if cell.backbone not in formats or formats[cell.backbone][0] is None:
            formats[cell.backbone] = (*found, cell.checkpoint)
    return {name: GENERATED if name in generated else setting_of_checkpoint(checkpoint, fmt, how)
            for name, (fmt, how, checkpoint) in formats.items()}
