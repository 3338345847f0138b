"""mmengine optimizer-wrapper constructor for layer-wise lr decay (official MAE semantics).

Registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS`` as
``MAETransferLayerDecayOptimWrapperConstructor``, so mmdet, mmseg and plain mmengine configs reach it
through their child registries. The name cannot collide with mmseg's
``LayerDecayOptimizerConstructor``/``LearningRateDecayOptimizerConstructor`` or mmpretrain's
``LearningRateDecayOptimWrapperConstructor``, which key layers on parameter-name substrings.
"""

from __future__ import annotations

import difflib
import logging
import os
from typing import Any

from mmengine.dist import is_main_process
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

from mae_transfer.optim import (
    LayerDecaySpec,
    audit_rows,
    format_audit_table,
    format_layer_summary,
    param_groups,
)

__all__ = ["AUDIT_FILENAME", "MAETransferLayerDecayOptimWrapperConstructor"]

AUDIT_FILENAME = "layer_decay_audit.txt"

_PARAMWISE_KEYS = ("layer_decay_rate", "num_layers", "no_decay_names")


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MAETransferLayerDecayOptimWrapperConstructor:
    """Build an optimizer wrapper whose param groups follow MAE layer-wise lr decay.

    The model (a classifier, detector or segmentor, possibly DDP-wrapped) must hold exactly
    one ``mae_transfer.models.MAEViT`` anywhere in its module tree. With ``L = depth + 1``:
    patch embedding, ``cls_token`` and ``pos_embed`` get layer 0, ``backbone.blocks[i]`` layer
    ``i + 1``, everything else (final norm, neck, heads) layer ``L``; each group's
    ``lr = optimizer.lr * layer_decay_rate ** (L - layer_id)`` and carries ``lr_scale`` and
    ``layer_id``. Parameters with at most one dimension, the backbone's ``no_weight_decay()``
    names (pos_embed, cls_token, relative position tables) and ``no_decay_names`` patterns get
    ``weight_decay = 0``; the rest get ``optimizer.weight_decay``.

    Config example (mmdet/mmseg/mmengine)::

        custom_imports = dict(imports=["mae_transfer.integrations.engine"],
                              allow_failed_imports=False)
        optim_wrapper = dict(
            type="AmpOptimWrapper",
            constructor="MAETransferLayerDecayOptimWrapperConstructor",
            optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
            paramwise_cfg=dict(
                layer_decay_rate=0.65,       # required, in (0, 1]
                num_layers=None,             # default: backbone depth + 1
                no_decay_names=["decode_head.conv_seg.*"],  # extra glob patterns, optional
            ),
            clip_grad=None,
        )
        param_scheduler = [
            dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=1500),
            dict(type="CosineAnnealingLR", eta_min_ratio=0.0, by_epoch=False,
                 begin=1500, end=160000),
        ]

    mmengine's ParamSchedulers scale each group's own initial lr, so every group keeps its
    ratio to the base lr through warmup and decay; use ``eta_min_ratio`` (or ``eta_min=0``)
    with ``CosineAnnealingLR``, since an absolute ``eta_min`` is shared by all groups and
    flattens the decay near the end (official MAE scales its min lr per group too).

    Before step 0 the per-layer summary is logged at INFO, the full table (every trainable
    parameter once: name, shape, layer, lr scale, lr, weight decay) at DEBUG and, on the main
    process, written to ``layer_decay_audit.txt`` next to the run's log file.

    Args:
        optim_wrapper_cfg: The ``optim_wrapper`` config without ``constructor`` and
            ``paramwise_cfg``; must hold ``optimizer`` with ``lr`` and ``weight_decay``.
        paramwise_cfg: ``layer_decay_rate`` (required), ``num_layers``, ``no_decay_names``.
            Any other key is an error (other suites silently ignore typos like ``decay_mult``).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict):
            kind = type(optim_wrapper_cfg).__name__
            raise TypeError(f"optim_wrapper: expected a dict, got {kind}")
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        if "optimizer" not in self.optim_wrapper_cfg:
            raise ValueError(
                "optim_wrapper: missing 'optimizer' (MAETransferLayerDecayOptimWrapperConstructor needs it)"
            )
        self.optimizer_cfg = dict(self.optim_wrapper_cfg.pop("optimizer"))
        if "type" not in self.optimizer_cfg:
            raise ValueError("optim_wrapper.optimizer: missing 'type' (for example 'AdamW')")
        for key in ("lr", "weight_decay"):
            if key not in self.optimizer_cfg:
                raise ValueError(
                    f"optim_wrapper.optimizer: missing '{key}'; "
                    "MAETransferLayerDecayOptimWrapperConstructor derives every group's lr and weight "
                    "decay from optimizer.lr and optimizer.weight_decay, so set both explicitly"
                )
        self.base_lr = float(self.optimizer_cfg["lr"])
        self.base_wd = float(self.optimizer_cfg["weight_decay"])
        self.spec = self._parse_paramwise(paramwise_cfg)

    @staticmethod
    def _parse_paramwise(paramwise_cfg: dict | None) -> LayerDecaySpec:
        cfg = dict(paramwise_cfg or {})
        unknown = sorted(set(cfg) - set(_PARAMWISE_KEYS))
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, _PARAMWISE_KEYS, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(
                f"optim_wrapper.paramwise_cfg: unknown key(s) {', '.join(hints)} for "
                f"MAETransferLayerDecayOptimWrapperConstructor; expected only {list(_PARAMWISE_KEYS)} "
                "(keys inherited from a _base_ config are dropped by "
                "paramwise_cfg=dict(_delete_=True, ...))"
            )
        if "layer_decay_rate" not in cfg:
            raise ValueError(
                "optim_wrapper.paramwise_cfg: missing 'layer_decay_rate' for "
                "MAETransferLayerDecayOptimWrapperConstructor (for example 0.65 for ViT-B, 0.75 for ViT-L)"
            )
        try:
            return LayerDecaySpec(
                decay_rate=cfg["layer_decay_rate"],
                num_layers=cfg.get("num_layers"),
                no_decay_names=tuple(cfg.get("no_decay_names") or ()),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"optim_wrapper.paramwise_cfg: {error}") from error

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer over the layer-decay groups of ``model`` and wrap it."""
        if hasattr(model, "module"):
            model = model.module
        try:
            groups = param_groups(model, self.spec, self.base_lr, self.base_wd)
        except ValueError as error:
            raise ValueError(f"optim_wrapper.paramwise_cfg (layer decay): {error}") from error

        optimizer_cfg = dict(self.optimizer_cfg)
        optimizer_type = optimizer_cfg["type"]
        if isinstance(optimizer_type, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_type)
            if optimizer_cls is None:
                raise ValueError(
                    f"optim_wrapper.optimizer.type: unknown optimizer {optimizer_type!r}"
                )
        else:
            optimizer_cls = optimizer_type
        optimizer_cfg.pop("type")
        optimizer = optimizer_cls(groups, **optimizer_cfg)

        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault("type", "OptimWrapper")
        optim_wrapper = OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
        self._log_audit(model, optimizer.param_groups)
        return optim_wrapper

    def _log_audit(self, model: nn.Module, groups: list[dict[str, Any]]) -> None:
        rows = audit_rows(groups, model=model)
        logger = MMLogger.get_current_instance()
        logger.info(
            "Layer-wise lr decay (rate %g, %d groups, %d parameters, base lr %g, "
            "weight decay %g):\n%s",
            self.spec.decay_rate,
            len(groups),
            len(rows),
            self.base_lr,
            self.base_wd,
            format_layer_summary(rows),
        )
        table = format_audit_table(rows)
        logger.debug("Layer-decay audit, every trainable parameter:\n%s", table)
        log_dir = _log_dir(logger)
        if log_dir is not None and is_main_process():
            path = os.path.join(log_dir, AUDIT_FILENAME)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(table + "\n")
            logger.info("Layer-decay audit table written to %s", path)


def _log_dir(logger: logging.Logger) -> str | None:
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            return os.path.dirname(os.path.abspath(handler.baseFilename))
    return None
