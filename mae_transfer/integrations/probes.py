"""Frozen-feature probes on mmengine's Runner: ``python -m mae_transfer.train`` runs a probe config.

A probe config (``configs/_base_/classification/frozen_probes.py``) names
``runner_type = "MAETransferProbeRunner"``, a ``MAETransferFrozenBackbone`` model (the ViT and
its ``pretrained`` checkpoint, loaded by ``init_weights`` with its ``LoadReport``), a ``probe``
dict (:class:`mae_transfer.probes.ProbeSettings`; ``probe.protocol`` is the matrix protocol)
and the usual ``train_dataloader`` (its dataset, training pipeline, ``batch_size`` per process
and ``num_workers``) and ``val_dataloader`` (its dataset, evaluation pipeline and
``batch_size``). ``probe.cache_root`` is where features are cached (default ``WORK_DIR/features``;
a matrix points every cell at ``WORK_ROOT/features``).

The runner's ``train()`` calls the hooks' ``before_run``, loads the checkpoint (writing
``load_report.json``), runs :func:`mae_transfer.probes.run_probe`
(every rank; the probe averages its heads' gradients itself, so the model is never wrapped in
DDP: a frozen backbone has no gradient for DDP to reduce), writes ``WORK_DIR/probe.json`` (the
grid, every point's hold-out score, the choice, the hold-out digest) and ``holdout.json`` (the
held-out ids), hands the val metrics to the hooks as a validation (``after_val_epoch``), so
``validations.json``, ``progress.json`` and ``metrics.json`` are written as for any training, and
calls ``after_run``. No other hook point is reached: the default hooks that follow mmengine's
loops (``LOOP_HOOKS``) must be None. ``val_evaluator`` and
the ``test_*`` keys of the shared dataset bases are not used. A probe keeps no checkpoint: an
interrupted probe starts again (the feature cache keeps what was extracted).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS, RUNNERS
from mmengine.runner import Runner
from torch import nn

import mae_transfer.integrations.engine  # noqa: F401  (resume fix, records hook)
from mae_transfer import records
from mae_transfer.checkpoints.formats import forced_format
from mae_transfer.integrations.probe_data import build_probe_data
from mae_transfer.models import build_vit
from mae_transfer.probes import FeatureCache, ProbeConfigError, ProbeSettings, run_probe

# default hooks that follow mmengine's loops, which a probe does not run (frozen_probes.py sets them None)
LOOP_HOOKS = ("logger", "checkpoint", "param_scheduler", "sampler_seed")
PROBE_NAME = "probe.json"
HOLDOUT_NAME = "holdout.json"
# set from the dataloaders, not in the probe dict
LOADER_KEYS = {"batch_size": "train_dataloader.batch_size", "eval_batch_size": "val_dataloader.batch_size",
               "num_workers": "train_dataloader.num_workers"}


@MODELS.register_module()
class MAETransferFrozenBackbone(BaseModel):
    """The frozen ViT a probe reads.

    Args:
        backbone: ``build_vit`` arguments (``arch`` plus any ``MAEViT`` keyword).
        pretrained: checkpoint loaded by ``init_weights`` (any format ``load_pretrained`` reads);
            None keeps the random initialisation.
        pretrained_format: force the checkpoint's format (``checkpoints.formats.FORMATS``).
        data_preprocessor / init_cfg: accepted for mmengine; unused.
    """

    def __init__(self, backbone: dict[str, Any], pretrained: str | None = None, pretrained_format: str | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        options = dict(backbone)
        if "arch" not in options:
            raise ValueError("model.backbone: missing 'arch' (for example 'vit_base_patch16')")
        self.backbone_cfg = copy.deepcopy(options)
        self.backbone = build_vit(options.pop("arch"), **options)
        self.backbone.requires_grad_(False)
        self.pretrained = pretrained
        self.pretrained_format = forced_format(pretrained_format, "model.pretrained_format")

    def init_weights(self) -> None:
        """Load ``pretrained`` into the backbone and record the load report."""
        if self.pretrained:
            from mae_transfer.checkpoints import load_pretrained

            report = load_pretrained(self.backbone, self.pretrained, fmt=self.pretrained_format)
            print_log(f"pretrained backbone from {self.pretrained}:\n{report.render()}", logger="current")
            records.note_load(report.summary())

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor") -> torch.Tensor:
        """``tensor`` mode only: the backbone's normed tokens (the probe runner calls the backbone itself)."""
        if mode != "tensor":
            raise ValueError(f"MAETransferFrozenBackbone has no {mode!r} mode: it is trained by no optimizer; "
                             "run its config with runner_type='MAETransferProbeRunner'")
        return self.backbone.forward_features(inputs)


@RUNNERS.register_module()
class MAETransferProbeRunner(Runner):
    """A Runner whose ``train()`` runs the config's probe (see the module docstring)."""

    @classmethod
    def from_cfg(cls, cfg) -> MAETransferProbeRunner:
        """Build from a probe config: the dataloaders and ``probe`` are kept for ``train()``."""
        cfg = copy.deepcopy(cfg)
        for key in ("probe", "train_dataloader", "val_dataloader"):
            if not cfg.get(key):
                raise ProbeConfigError(f"{key}: missing; a probe config needs probe, train_dataloader and "
                                       f"val_dataloader")
        for name in LOOP_HOOKS:
            if (cfg.get("default_hooks") or {}).get(name) is not None:
                raise ProbeConfigError(f"default_hooks.{name}: set it to None; the probe runner has no mmengine "
                                       f"training loop for it to follow")
        runner = cls(model=cfg["model"], work_dir=cfg["work_dir"], default_hooks=cfg.get("default_hooks"),
                     custom_hooks=cfg.get("custom_hooks"), launcher=cfg.get("launcher", "none"),
                     env_cfg=cfg.get("env_cfg", dict(dist_cfg=dict(backend="nccl"))),
                     log_processor=cfg.get("log_processor"), log_level=cfg.get("log_level", "INFO"),
                     default_scope=cfg.get("default_scope", "mmengine"),
                     randomness=cfg.get("randomness", dict(seed=None)),
                     experiment_name=cfg.get("experiment_name"), cfg=cfg)
        runner.probe_cfg = dict(cfg["probe"])
        runner.loader_cfgs = (cfg["train_dataloader"], cfg["val_dataloader"])
        return runner

    def wrap_model(self, model_wrapper_cfg: dict | None, model: nn.Module) -> nn.Module:
        """No DDP wrapper: the backbone is frozen and the probe reduces its heads' gradients itself."""
        if model_wrapper_cfg is not None:
            self.logger.info(f"model_wrapper_cfg {dict(model_wrapper_cfg)} is not used: the probe averages its "
                             f"heads' gradients over the {self.world_size} process(es) itself")
        return model.to(get_device())

    def settings(self) -> tuple[ProbeSettings, Path]:
        """The probe settings (batch sizes and workers from the dataloaders) and the cache root."""
        probe = dict(self.probe_cfg)
        cache_root = probe.pop("cache_root", None) or str(Path(self.work_dir) / "features")
        for key, source in LOADER_KEYS.items():
            if key in probe:
                raise ProbeConfigError(f"probe.{key}: set {source} instead (the matrix plans the batch there)")
        train_loader, val_loader = self.loader_cfgs
        probe.update(batch_size=train_loader["batch_size"], eval_batch_size=val_loader["batch_size"],
                     num_workers=train_loader.get("num_workers", 0))
        return ProbeSettings.from_config(probe), Path(cache_root)

    def train(self) -> nn.Module:
        """Load the checkpoint, run the probe, record its metrics as the run's validation."""
        settings, cache_root = self.settings()
        self.call_hook("before_run")
        self._init_model_weights()
        load = records.latest_load()
        if load is not None and self.rank == 0:
            records.write_load_report(self.work_dir, load)
        model = self.model
        data = build_probe_data(*self.loader_cfgs, model.backbone, model.backbone_cfg)
        progress = _ProgressWriter(self)
        result = run_probe(settings, model.backbone, data, device=get_device(), cache=FeatureCache(cache_root),
                           progress=progress)
        if self.rank == 0:
            records.atomic_write_json(Path(self.work_dir) / PROBE_NAME, result.to_json())
            records.atomic_write_json(Path(self.work_dir) / HOLDOUT_NAME, {**result.holdout, "ids": result.holdout_ids})
        self.logger.info(f"probe {settings.protocol}: {result.metrics} (chosen on the hold-out: "
                         f"{result.chosen['name']})")
        self.call_hook("after_val_epoch", metrics=dict(result.metrics))
        self.call_hook("after_run")
        return model


class _ProgressWriter:
    """``progress.json`` (rank 0) at most every 5 seconds while heads train."""

    def __init__(self, runner: Runner, interval_s: float = 5.0) -> None:
        self.runner = runner
        self.interval_s = interval_s
        self.start = time.time()
        self.written = 0.0

    def __call__(self, what: str, step: int, total: int) -> None:
        now = time.time()
        if self.runner.rank != 0 or (now - self.written < self.interval_s and step < total):
            return
        eta = (now - self.start) / step * (total - step) if step else None
        records.write_progress(self.runner.work_dir, records.ProgressRecord(
            step=step, total=total, epoch=0, time=now, eta_seconds=eta, latest={}))
        self.written = now
