"""MAE pre-training on mmengine's Runner: the model wrapper, optimizer groups, metric and checkpoint hook.

Configs reach everything through one import::

    custom_imports = dict(imports=["mae_transfer.integrations.pretrain"], allow_failed_imports=False)

Registered names (mmengine root registries; the ImageNet ``train/`` dataset and the image
transforms come from :mod:`mae_transfer.integrations.classification`, imported here):

- ``MAETransferPretrainer`` (``MODELS``): :class:`MAETransferPretrainer`, a
  :class:`~mae_transfer.pretrain.MaskedAutoencoderViT` as an mmengine model;
- ``MAETransferPretrainOptimWrapperConstructor`` (``OPTIM_WRAPPER_CONSTRUCTORS``): the official
  ``[no decay, decay]`` AdamW groups (:mod:`mae_transfer.pretrain.optim`);
- ``MAETransferMaskedPatchLoss`` (``METRICS``): held-out masked-patch loss ``mae/masked_patch_loss``
  (a loss, not a percentage), with fixed masks;
- ``MAETransferOfficialCheckpointHook`` (``HOOKS``): official-format ``checkpoint-{epoch}.pth``
  at chosen epochs, and continuation of an official checkpoint's optimizer state and schedule.

mmengine's own ``CheckpointHook`` stays in charge of ``epoch_N.pth`` for ``--resume``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import MMLogger, print_log
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, METRICS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

import mae_transfer.integrations.classification  # noqa: F401  (ImageFolder dataset, transforms, engine)
from mae_transfer.pretrain.checkpoint import (
    MODEL_CONFIG_ARG,
    load_official_checkpoint,
    load_optimizer_state,
    read_official_checkpoint,
    save_official_checkpoint,
)
from mae_transfer.pretrain.files import checkpoint_name
from mae_transfer.pretrain.loss import per_patch_loss, reconstruction_target
from mae_transfer.pretrain.model import MaskedAutoencoderViT, build_mae
from mae_transfer.pretrain.optim import decay_split, official_param_groups
from mae_transfer.pretrain.patches import patchify


@MODELS.register_module()
class MAETransferPretrainer(BaseModel):
    """MAE pre-training for the mmengine Runner.

    Args:
        arch: encoder arch (``vit_base_patch16``, ...; see ``mae_transfer.models.ARCHS``).
        encoder: further :class:`~mae_transfer.models.MAEViT` keywords (``img_size``, ``depth``...).
        decoder: :class:`~mae_transfer.pretrain.DecoderConfig` fields (``embed_dim``, ``depth``,
            ``num_heads``, ``mlp_ratio``); default the official 512-d x 8 blocks x 16 heads.
        mask_ratio: fraction of patches removed (0.75).
        norm_pix_loss: per-patch normalised pixel targets.
        init_from: an MAE checkpoint with decoder (ours or an official ``_full``/visualize one)
            whose weights ``init_weights`` loads; its optimizer state and epoch are continued by
            ``MAETransferOfficialCheckpointHook``.
        eval_seed: seed of the masks drawn in ``predict`` (the same masks on every evaluation).
        data_preprocessor: mmengine data preprocessor config (default: move to device).
        init_cfg: unused; accepted for mmengine compatibility.
    """

    def __init__(
        self,
        arch: str,
        encoder: dict[str, Any] | None = None,
        decoder: dict[str, Any] | None = None,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = False,
        init_from: str | None = None,
        eval_seed: int = 0,
        data_preprocessor: dict[str, Any] | None = None,
        init_cfg: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        try:
            self.mae = build_mae(arch, decoder=decoder, mask_ratio=mask_ratio, norm_pix_loss=norm_pix_loss,
                                 **dict(encoder or {}))
        except (TypeError, ValueError) as error:
            raise ValueError(f"model (MAETransferPretrainer): {error}") from error
        self.arch = arch
        self.init_from = init_from
        self.eval_seed = eval_seed

    def init_weights(self) -> None:
        """Load ``init_from`` (encoder and decoder) if set; the MAE is initialised in its constructor."""
        if self.init_from:
            checkpoint = load_official_checkpoint(self.mae, self.init_from)
            print_log(f"MAE weights (encoder and decoder) from {self.init_from}"
                      f"{'' if checkpoint.epoch is None else f' (epoch index {checkpoint.epoch})'}", logger="current")

    def forward(
        self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor"
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]] | torch.Tensor:
        """``loss``: ``{"loss": masked-patch loss}``; ``predict``: per-sample loss; ``tensor``: predictions."""
        if mode == "loss":
            return {"loss": self.mae(inputs).loss}
        if mode == "predict":
            return self.predict(inputs)
        if mode == "tensor":
            return self.mae(inputs).pred
        raise ValueError(
            f"MAETransferPretrainer.forward: unknown mode {mode!r}; expected 'loss', 'predict' or 'tensor'"
        )

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Each sample's masked-patch loss under masks drawn from ``eval_seed`` (same masks every call)."""
        generator = torch.Generator(device="cpu").manual_seed(self.eval_seed)
        output = self.mae(inputs, generator=generator)
        target = reconstruction_target(patchify(inputs, self.mae.patch_size), self.mae.norm_pix_loss)
        per_sample = (per_patch_loss(output.pred, target) * output.mask).sum(1) / output.mask.sum(1)
        return [{"masked_patch_loss": value.cpu()} for value in per_sample]


@METRICS.register_module()
class MAETransferMaskedPatchLoss(BaseMetric):
    """Mean masked-patch loss over a held-out set, ``mae/masked_patch_loss`` (lower is better).

    With norm-pix targets, predicting zeros scores about 1.0 (each target patch has unit
    variance), so values well below 1 mean the decoder predicts the removed content.
    """

    default_prefix = "mae"

    def process(self, data_batch: Any, data_samples: Sequence[dict[str, Any]]) -> None:
        """Keep each sample's loss."""
        self.results.extend(float(sample["masked_patch_loss"]) for sample in data_samples)

    def compute_metrics(self, results: list[float]) -> dict[str, float]:
        """The mean over samples."""
        return {"masked_patch_loss": sum(results) / max(len(results), 1)}


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MAETransferPretrainOptimWrapperConstructor:
    """The official pre-training optimizer groups: ``[no weight decay, weight decay]``.

    As ``main_pretrain.py`` with timm 0.3.2's ``add_weight_decay`` (no skip list): frozen
    parameters (the fixed position tables) are left out, 1-D parameters and biases get no weight
    decay, all others -- ``cls_token`` and ``mask_token`` included -- get
    ``optimizer.weight_decay``. The resulting optimizer state has the official layout, so official
    checkpoints' optimizer states load and ours load into the official script.

    Args:
        optim_wrapper_cfg: the ``optim_wrapper`` config; ``optimizer`` needs ``type`` and ``weight_decay``.
        paramwise_cfg: not supported (the official recipe has no per-parameter options).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg:
            raise ValueError(f"optim_wrapper.paramwise_cfg: MAETransferPretrainOptimWrapperConstructor takes none, got "
                             f"{sorted(paramwise_cfg)}")
        self.wrapper_cfg = dict(optim_wrapper_cfg)
        if "optimizer" not in self.wrapper_cfg:
            raise ValueError("optim_wrapper: missing 'optimizer' (for example dict(type='AdamW', lr=2.4e-3, ...))")
        self.optimizer_cfg = dict(self.wrapper_cfg.pop("optimizer"))
        if "weight_decay" not in self.optimizer_cfg:
            raise ValueError("optim_wrapper.optimizer: missing 'weight_decay' (MAE: 0.05)")

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer over the official groups of ``model`` and wrap it."""
        if is_model_wrapper(model):
            model = model.module
        optimizer_cfg = dict(self.optimizer_cfg)
        weight_decay = float(optimizer_cfg.pop("weight_decay"))
        optimizer_type = optimizer_cfg.pop("type")
        if isinstance(optimizer_type, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_type)
            if optimizer_cls is None:
                raise ValueError(f"optim_wrapper.optimizer.type: unknown optimizer {optimizer_type!r}")
        else:
            optimizer_cls = optimizer_type
        optimizer = optimizer_cls(official_param_groups(model, weight_decay), **optimizer_cfg)
        no_decay, decay = decay_split(model)
        tokens = [name for name in decay if name.rsplit(".", 1)[-1] in ("cls_token", "mask_token")]
        MMLogger.get_current_instance().info(
            "MAE pre-training optimizer groups (official add_weight_decay): %d parameters without weight decay "
            "(1-D and biases), %d with weight decay %g (including %s)",
            len(no_decay), len(decay), weight_decay, ", ".join(tokens) or "no token",
        )
        wrapper_cfg = {"type": "OptimWrapper", **self.wrapper_cfg}
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class MAETransferOfficialCheckpointHook(Hook):
    """Writes official-format MAE checkpoints and continues official ones.

    After epoch ``n`` (1-based count of finished epochs) it writes
    ``work_dir/checkpoint-{n-1}.pth`` (the official name: 0-based index of the last epoch) when
    ``n`` is in ``save_epochs``, is a multiple of ``interval``, or is the last epoch and
    ``save_last``; :func:`mae_transfer.pretrain.pretrain_checkpoint_path` gives the path for ``n``.

    Before training, if the model was built with ``init_from`` and the run did not resume from
    an mmengine checkpoint, the file's optimizer state, loss-scaler state and epoch are
    continued when ``continue_schedule`` and the file has them: training goes on at the next
    epoch of the same schedule (learning-rate schedulers fast-forwarded), as the official
    ``--resume``.

    Args:
        save_epochs: finished-epoch counts to write a checkpoint after.
        interval: also every ``interval`` epochs (0: off).
        save_last: also after the last epoch.
        continue_schedule: continue an ``init_from`` checkpoint's optimizer, scaler and epoch.
        args: extra entries for the checkpoint's ``args`` (official names, e.g. ``blr``,
            ``min_lr``, ``warmup_epochs``); plain values only.
    """

    priority = "LOW"

    def __init__(
        self,
        save_epochs: Sequence[int] = (),
        interval: int = 0,
        save_last: bool = True,
        continue_schedule: bool = True,
        args: dict[str, Any] | None = None,
    ) -> None:
        self.save_epochs = {int(epoch) for epoch in save_epochs}
        if any(epoch < 1 for epoch in self.save_epochs):
            raise ValueError(f"MAETransferOfficialCheckpointHook.save_epochs: expected counts >= 1, got {save_epochs}")
        self.interval = int(interval)
        self.save_last = save_last
        self.continue_schedule = continue_schedule
        self.extra_args = dict(args or {})
        self.written: list[str] = []

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        source = getattr(model, "init_from", None)
        if not (source and self.continue_schedule) or runner.iter > 0:
            return
        checkpoint = read_official_checkpoint(source)
        if checkpoint.optimizer is None or checkpoint.epoch is None:
            runner.logger.info(f"{source}: no optimizer state or epoch; pre-training starts a new schedule")
            return
        optimizer = runner.optim_wrapper.optimizer
        schedulers = list(runner.param_schedulers or [])
        # the schedulers are chained (each step scales the group's current value): keep their
        # step-0 values through the load, then replay the steps up to the checkpoint's position
        scheduled = {scheduler.param_name for scheduler in schedulers}
        start_values = [{key: group[key] for key in scheduled if key in group} for group in optimizer.param_groups]
        load_optimizer_state(optimizer, checkpoint.optimizer, source)
        for group, values in zip(optimizer.param_groups, start_values):
            group.update(values)
        scaler = getattr(runner.optim_wrapper, "loss_scaler", None)
        if scaler is not None and checkpoint.scaler:
            scaler.load_state_dict(checkpoint.scaler)
        start = checkpoint.epoch + 1
        iterations = start * len(runner.train_dataloader)
        runner.train_loop._epoch = start  # as mmengine's own resume sets the loop position
        runner.train_loop._iter = iterations
        for scheduler in schedulers:
            for _ in range(iterations):
                scheduler.step()
        runner.logger.info(f"continuing {source} at epoch {start} (iteration {iterations}) with its optimizer state")

    def after_train_epoch(self, runner) -> None:
        finished = runner.epoch + 1  # runner.epoch is still the 0-based index of the epoch that ended
        last = finished == runner.max_epochs
        due = finished in self.save_epochs or (self.interval and finished % self.interval == 0)
        if not (due or (last and self.save_last)) or not is_main_process():
            return
        model = _unwrap(runner.model)
        scaler = getattr(runner.optim_wrapper, "loss_scaler", None)
        path = save_official_checkpoint(
            f"{runner.work_dir}/{checkpoint_name(runner.epoch)}",
            model.mae,
            epoch=runner.epoch,
            args=self._args(runner, model),
            optimizer_state=runner.optim_wrapper.optimizer.state_dict(),
            scaler_state=scaler.state_dict() if scaler is not None else None,
        )
        self.written.append(str(path))
        runner.logger.info(f"official-format MAE checkpoint after {finished} epochs: {path}")

    def _args(self, runner, model: MAETransferPretrainer) -> dict[str, Any]:
        mae: MaskedAutoencoderViT = model.mae
        cfg = runner.cfg
        optimizer_cfg = cfg.get("optim_wrapper", {}).get("optimizer", {})
        args = {
            "model": f"mae_{model.arch}",
            "input_size": mae.grid_size[0] * mae.patch_size,
            "mask_ratio": mae.mask_ratio,
            "norm_pix_loss": mae.norm_pix_loss,
            "batch_size": int(cfg.train_dataloader.batch_size),
            "accum_iter": int(cfg.get("optim_wrapper", {}).get("accumulative_counts", 1)),
            "world_size": int(runner.world_size),
            "epochs": int(runner.max_epochs),
            "lr": float(optimizer_cfg.get("lr", 0.0)),
            "weight_decay": float(optimizer_cfg.get("weight_decay", 0.0)),
            "seed": runner.seed,
            "output_dir": str(runner.work_dir),
            MODEL_CONFIG_ARG: _plain(mae.config()),
        }
        args.update(self.extra_args)
        return args


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


__all__ = [
    "MAETransferMaskedPatchLoss",
    "MAETransferOfficialCheckpointHook",
    "MAETransferPretrainOptimWrapperConstructor",
    "MAETransferPretrainer",
]
