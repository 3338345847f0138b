"""CPU adaptations of a training config, so one command runs on a laptop and on a cluster.

``tools/train.py CONFIG --launcher pytorch`` under ``torchrun`` must work on a machine without a
GPU (tests, rehearsals, laptops) exactly as on a GPU node. mmengine 0.10.7 assumes a GPU in a
few places; :func:`apply_cpu_fallbacks` changes the config where it does and returns every
change as a :class:`Deviation` (``tools/train.py`` logs each as a warning and writes them to
``WORK_DIR/deviations.json``). On a machine with a GPU it changes nothing.

What it changes without a GPU:

- ``AmpOptimWrapper`` -> ``OptimWrapper`` (float32): mmengine's AMP wrapper refuses to start
  without CUDA (or NPU/MLU/MUSA).
- SyncBN -> BN, in every spelling the configs use (mmcv ``norm_cfg`` types ``SyncBN`` and
  ``MMSyncBN``; the core's ``adapter_norm`` / ``norm`` value ``"syncbn"``): synchronised batch
  norm needs GPU tensors under DDP. mmengine reverts SyncBN itself only in non-distributed
  runs; this covers both, and drops the Runner's ``sync_bn`` option (BN -> SyncBN) in
  distributed ones.
- Distributed runs (``launcher`` other than ``none``): the process group uses ``gloo``
  (``nccl`` needs GPUs) and mmengine's DDP wrapper gets ``device_ids=None`` (its default passes
  ``[LOCAL_RANK]``, which DDP refuses for CPU modules). mmengine's other wrapper defaults stay:
  ``broadcast_buffers=False``, ``find_unused_parameters=False``.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, MutableSequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mae_transfer.records import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["Deviation", "apply_cpu_fallbacks", "start_cpu_process_group", "write_deviations"]

# mmcv/mmdet/mmseg norm_cfg types of synchronised batch norm -> their per-process equivalent
SYNC_BN_TYPES = {"SyncBN": "BN", "MMSyncBN": "BN"}
# keyword arguments of mae_transfer modules that take a core norm name (models.pyramid.make_norm)
CORE_NORM_KEYS = ("adapter_norm", "norm")
NO_GPU = "no GPU on this machine"
SYNC_BN_REASON = f"{NO_GPU}: synchronised batch norm needs GPU tensors; per-process BN instead"


@dataclass(frozen=True)
class Deviation:
    """One config value changed from what the config says, and why.

    Attributes:
        key: dotted config path, e.g. ``optim_wrapper.type`` or ``model.neck.norm_cfg.type``.
        before: the config's value.
        after: the value used.
        reason: why it was changed.
    """

    key: str
    before: Any
    after: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """``{"key", "from", "to", "reason"}``, the ``deviations.json`` entry."""
        return {"key": self.key, "from": self.before, "to": self.after, "reason": self.reason}

    def describe(self) -> str:
        """One line for the log."""
        return f"{self.key}: {self.before!r} -> {self.after!r} ({self.reason})"


def apply_cpu_fallbacks(cfg: MutableMapping, gpu_available: bool | None = None) -> list[Deviation]:
    """Adapt a resolved mmengine config (in place) to a machine without a GPU.

    Args:
        cfg: the config, with ``launcher`` set (``none`` for a single process).
        gpu_available: whether a GPU can be used; default ``torch.cuda.is_available()``.

    Returns:
        The changes made, in order; empty on a machine with a GPU.
    """
    if gpu_available is None:
        gpu_available = torch.cuda.is_available()
    if gpu_available:
        return []
    deviations = _amp_to_fp32(cfg)
    if "model" in cfg:
        deviations += _sync_bn_to_bn(cfg["model"], "model")
    if cfg.get("launcher", "none") != "none":
        deviations += _cpu_distributed(cfg)
    return deviations


def _amp_to_fp32(cfg: MutableMapping) -> list[Deviation]:
    wrapper = cfg.get("optim_wrapper")
    if not isinstance(wrapper, MutableMapping) or wrapper.get("type") != "AmpOptimWrapper":
        return []
    wrapper["type"] = "OptimWrapper"
    dropped = [key for key in ("loss_scale", "dtype", "use_fsdp") if wrapper.pop(key, None) is not None]
    reason = f"{NO_GPU}: mmengine's AmpOptimWrapper needs CUDA; training runs in float32"
    if dropped:
        reason += f" (AMP options {', '.join(dropped)} dropped)"
    return [Deviation("optim_wrapper.type", "AmpOptimWrapper", "OptimWrapper", reason)]


def _sync_bn_to_bn(node: Any, path: str) -> list[Deviation]:
    """Replace synchronised batch norm by batch norm everywhere under ``node``."""
    deviations = []
    if isinstance(node, MutableMapping):
        for key in list(node):
            value, where = node[key], f"{path}.{key}"
            if key == "type" and isinstance(value, str) and value in SYNC_BN_TYPES:
                node[key] = SYNC_BN_TYPES[value]
                deviations.append(Deviation(where, value, node[key], SYNC_BN_REASON))
            elif key in CORE_NORM_KEYS and value == "syncbn":
                node[key] = "bn"
                deviations.append(Deviation(where, value, "bn", SYNC_BN_REASON))
            else:
                deviations += _sync_bn_to_bn(value, where)
    elif isinstance(node, MutableSequence):
        for index, item in enumerate(node):
            deviations += _sync_bn_to_bn(item, f"{path}.{index}")
    return deviations


def _cpu_distributed(cfg: MutableMapping) -> list[Deviation]:
    deviations = []
    if cfg.get("sync_bn") is not None:  # Runner.wrap_model would turn every BN into SyncBN
        deviations.append(
            Deviation("sync_bn", cfg["sync_bn"], None, SYNC_BN_REASON)
        )
        cfg["sync_bn"] = None
    if cfg.get("env_cfg") is None:
        cfg["env_cfg"] = dict()
    if cfg["env_cfg"].get("dist_cfg") is None:
        cfg["env_cfg"]["dist_cfg"] = dict()
    dist_cfg = cfg["env_cfg"]["dist_cfg"]
    backend = dist_cfg.get("backend", "nccl")  # mmengine's default
    if backend != "gloo":
        dist_cfg["backend"] = "gloo"
        deviations.append(Deviation("env_cfg.dist_cfg.backend", backend, "gloo", f"{NO_GPU}: {backend} needs GPUs"))
    wrapper = cfg.get("model_wrapper_cfg")
    if wrapper is None:
        # mmengine's default wrapper (Runner.wrap_model), only without the device ids
        cfg["model_wrapper_cfg"] = dict(
            type="MMDistributedDataParallel",
            broadcast_buffers=False,
            find_unused_parameters=cfg.get("find_unused_parameters", False),
            device_ids=None,
        )
        before = "[LOCAL_RANK] (mmengine default)"
    else:
        before = wrapper.get("device_ids", "[LOCAL_RANK] (mmengine default)")
        wrapper["device_ids"] = None
    if before is not None:
        reason = f"{NO_GPU}: DistributedDataParallel takes no device ids for CPU modules"
        deviations.append(Deviation("model_wrapper_cfg.device_ids", before, None, reason))
    return deviations


def start_cpu_process_group(launcher: str, backend: str = "gloo") -> bool:
    """Start the process group of a CPU ``pytorch`` or ``slurm`` launch before mmengine's Runner does.

    mmengine's launchers call ``torch.cuda.set_device`` before they initialise the process group,
    which fails without a GPU; they skip their own set-up when a group exists. The group is
    initialised from the environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``:
    torchrun sets them; for ``slurm`` `mae_transfer.integrations.slurm_rendezvous` does).

    Returns:
        Whether a process group was started here.
    """
    if launcher not in ("pytorch", "slurm") or torch.cuda.is_available() or torch.distributed.is_initialized():
        return False
    torch.distributed.init_process_group(backend=backend)
    return True


def end_process_group() -> None:
    """Leave the process group once every rank has finished (a barrier, then its destruction).

    A process that exits with the group alive leaves its teardown to the interpreter's exit, where
    a rank of a 2-process CPU (gloo) run was seen to abort ("terminate called without an active
    exception", SIGABRT) after its training and metrics were complete: torchrun then reported the
    finished run as failed.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def write_deviations(path: str | Path, deviations: list[Deviation]) -> Path:
    """Write ``deviations.json``: a JSON list of ``{"key", "from", "to", "reason"}`` (may be empty)."""
    return atomic_write_json(path, [deviation.to_dict() for deviation in deviations])
