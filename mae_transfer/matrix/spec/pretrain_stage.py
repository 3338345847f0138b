"""Pre-training stages of a matrix: a backbone made by MAE pre-training, then transferred.

A backbone may name a pre-training config instead of a checkpoint::

    backbones:
      - name: mae_tiny
        pretrain:
          config: pretrain/mae_vit-tiny-d4_smoke-64px.py   # a packaged config or a path
          recipe: smoke                # the batch/lr recipe (paper: batch 4096; smoke: batch 16)
          mask_ratio: 0.75             # named parameters (PARAMS), each optional
          epochs: 100
          evaluate_epochs: [50, 100]   # whose checkpoints the tasks evaluate (default: the last)
          sweep: {mask_ratio: [0.5, 0.75, 0.9]}   # one pre-training per value (the paper's Fig. 5)
          overrides: {model.decoder.num_heads: 4} # any other config key

The planner makes one pre-training cell (task ``mae-pretrain``, content-addressed like any
cell) per sweep point, and the tasks evaluate each of its ``evaluate_epochs`` checkpoints
(``checkpoint-{epoch - 1}.pth``, the official format) as a backbone of its own, named
``NAME[-PARAMVALUE...][-epE]``. A transfer cell waits for its pre-training cell
(``Cell.depends_on``; SLURM: ``--dependency=afterok``) and is ``blocked`` when it failed.

This module is pure: configs are parsed by the planner (``describe_config`` takes the parsed
mapping).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from mae_transfer.matrix.spec.recipes import Recipe

PRETRAIN_TASK = "mae-pretrain"
PRETRAIN_DATASET = "imagenet"  # ImageFolder train/ and val/ (the official main_pretrain.py reads train/)
PRETRAIN_RECIPES = ("paper", "smoke")
# named stage parameters -> the config key they set; "epochs" sets the loop and the cosine end
PARAM_KEYS = {
    "mask_ratio": "model.mask_ratio",
    "norm_pix_loss": "model.norm_pix_loss",
    "decoder_depth": "model.decoder.depth",
    "decoder_width": "model.decoder.embed_dim",
}
PARAMS = (*PARAM_KEYS, "epochs")
# the leaderboard metric of a pre-training cell: the held-out masked-patch loss (lower is better)
METRICS = {"masked_patch_loss": ("mae/masked_patch_loss",)}
DATA_KEYS = ("train_dataloader.dataset.data_root", "val_dataloader.dataset.data_root")
CHECKPOINT_HOOK = "MAETransferOfficialCheckpointHook"

# Paper Table 8 / official PRETRAIN.md: batch 4096 = 64 per GPU x 8 GPUs x 8 nodes, lr = blr 1.5e-4
# x 4096 / 256 = 2.4e-3, 800 epochs (ablations; the released checkpoints: 1600); the same for
# ViT-B/L/H (PRETRAIN.md changes only --model).
_PAPER = Recipe(4096, 2.4e-3, 64, "epoch", 800,
                "MAE Table 8 / PRETRAIN.md: batch 4096, lr = 1.5e-4 x 4096 / 256, 800 epochs",
                "PRETRAIN.md: --batch_size 64 per GPU, 8 nodes x 8 GPUs")
# configs/pretrain/mae_vit-tiny-d4_smoke-64px.py: batch 16, lr 1.5e-3, 100 epochs on one CPU process
_SMOKE = Recipe(16, 1.5e-3, 16, "epoch", 100, "our CPU smoke pre-training config: not a paper recipe",
                "our CPU smoke pre-training config")


def pretrain_recipe(recipe: str) -> Recipe:
    """The batch/lr recipe of a pre-training stage (``paper`` or ``smoke``)."""
    return {"paper": _PAPER, "smoke": _SMOKE}[recipe]


@dataclass(frozen=True)
class PretrainStage:
    """A backbone's pre-training: its config, recipe, named parameters, sweep and evaluated epochs.

    ``params`` and ``sweep`` hold names of ``PARAMS``; ``overrides`` any dotted config key.
    ``resources`` (None: the matrix's) are the pre-training cell's; ``key`` is the stage's key
    path in the matrix file, for messages.
    """

    config: str
    recipe: str = "paper"
    params: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    evaluate_epochs: tuple[int, ...] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resources: Any = None
    seed: int = 0
    key: str = "backbones"

    def variants(self) -> list[dict[str, Any]]:
        """The parameter set of every sweep point (the cartesian product of ``sweep``)."""
        names = list(self.sweep)
        points = itertools.product(*(self.sweep[name] for name in names)) if names else [()]
        return [{**self.params, **dict(zip(names, point))} for point in points]


class StageError(ValueError):
    """A pre-training stage cannot be planned: ``key`` (its key path in the matrix) and why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


@dataclass(frozen=True)
class ConfigFacts:
    """What the planner needs from a parsed pre-training config."""

    arch: str
    depth: int | None
    epochs: int
    warmup_epochs: int
    cosine_index: int
    hook_index: int
    defaults: dict[str, Any] = field(default_factory=dict)  # PARAMS as the config sets them


def describe_config(cfg: dict[str, Any], key: str, config: str) -> ConfigFacts:
    """The arch, schedule and checkpoint hook of a parsed pre-training config (a plain mapping).

    Raises:
        StageError: the config is not an MAE pre-training config this stage can drive.
    """
    model = cfg.get("model") or {}
    if model.get("type") != "MAETransferPretrainer" or "arch" not in model:
        raise StageError(key, f"{config}: model.type: expected 'MAETransferPretrainer' with an arch, got "
                         f"{model.get('type')!r}")
    hooks = [i for i, hook in enumerate(cfg.get("custom_hooks") or []) if hook.get("type") == CHECKPOINT_HOOK]
    if len(hooks) != 1:
        raise StageError(key, f"{config}: custom_hooks: expected one {CHECKPOINT_HOOK} (it writes the "
                         f"checkpoints the tasks evaluate), found {len(hooks)}")
    schedulers = cfg.get("param_scheduler") or []
    cosine = [i for i, s in enumerate(schedulers) if s.get("type") == "CosineAnnealingLR"]
    warmup = [s for s in schedulers if s.get("type") == "LinearLR"]
    if len(cosine) != 1 or len(warmup) != 1:
        raise StageError(key, f"{config}: param_scheduler: expected one LinearLR warmup and one "
                         f"CosineAnnealingLR (the official schedule), found {[s.get('type') for s in schedulers]}")
    decoder = model.get("decoder") or {}
    defaults = {"mask_ratio": model.get("mask_ratio"), "norm_pix_loss": model.get("norm_pix_loss"),
                "decoder_depth": decoder.get("depth"), "decoder_width": decoder.get("embed_dim"),
                "epochs": int(cfg["train_cfg"]["max_epochs"])}
    return ConfigFacts(arch=model["arch"], depth=(model.get("encoder") or {}).get("depth"),
                       epochs=defaults["epochs"], warmup_epochs=int(warmup[0]["end"]),
                       cosine_index=cosine[0], hook_index=hooks[0],
                       defaults={k: v for k, v in defaults.items() if v is not None})


def variant_options(stage: PretrainStage, params: dict[str, Any],
                    facts: ConfigFacts) -> tuple[dict[str, Any], int, tuple[int, ...]]:
    """The config overrides of one sweep point, its epochs and the epochs whose checkpoints are evaluated.

    Raises:
        StageError: an epoch count the schedule cannot take, or evaluated epochs outside it.
    """
    epochs = int(params.get("epochs", facts.epochs))
    if epochs <= facts.warmup_epochs:
        raise StageError(f"{stage.key}.epochs", f"{epochs} is not allowed; the config warms up for "
                         f"{facts.warmup_epochs} epochs, so pre-training needs more")
    evaluated = stage.evaluate_epochs or (epochs,)
    beyond = [e for e in evaluated if e > epochs]
    if beyond:
        raise StageError(f"{stage.key}.evaluate_epochs", f"{beyond} exceed the {epochs} pre-training epochs")
    options: dict[str, Any] = {PARAM_KEYS[name]: value for name, value in params.items() if name in PARAM_KEYS}
    if epochs != facts.epochs:
        options["train_cfg.max_epochs"] = epochs
        options[f"param_scheduler.{facts.cosine_index}.end"] = epochs
    options[f"custom_hooks.{facts.hook_index}.save_epochs"] = sorted(set(evaluated))
    options.update(stage.overrides)
    return options, epochs, tuple(sorted(set(evaluated)))


def variant_name(name: str, stage: PretrainStage, params: dict[str, Any], epoch: int,
                 evaluated: tuple[int, ...]) -> str:
    """The backbone name of one evaluated checkpoint: ``NAME[-PARAMVALUE...][-epE]``."""
    parts = [name, *(f"{param}{_short(params[param])}" for param in stage.sweep)]
    if len(evaluated) > 1:
        parts.append(f"ep{epoch}")
    return "-".join(parts)


def _short(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
