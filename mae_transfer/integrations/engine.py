"""What every task's integration shares: safe checkpoint loading for resume, ``load_from`` and
evaluation, the layer-decay optimizer constructor, the hooks every training run gets, and the
hook that records a run's validations, progress and load report
(`mae_transfer.integrations.records_hook`).

mmengine 0.10.7 reads checkpoints with a bare ``torch.load``, whose ``weights_only`` default an
environment variable (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) turns off. Local checkpoints are
routed instead (mmengine's ``CheckpointLoader`` scheme for plain paths) to
`mae_transfer.checkpoints.reader.read_training_checkpoint`, which passes ``weights_only=True``
explicitly: runner.resume, ``load_from``, ``load_checkpoint`` and ``tools/test.py`` all read
through it. URLs and model-zoo names (``https://``, ``torchvision://``, ...) are refused: they
would be downloaded and read with a bare ``torch.load``. The weights-only unpickler refuses the few non-tensor objects mmengine stores (its
message hub's ``HistoryBuffer`` and numpy arrays/scalars inside it); we allow-list exactly those
types with ``torch.serialization.add_safe_globals``. A pickled ``HistoryBuffer`` also names its
statistics methods through ``getattr``; instead of allowing ``getattr`` itself, a stand-in
resolves only those methods and refuses anything else.
"""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mae_transfer import failpoints
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.reader import read_training_checkpoint
from mae_transfer.integrations import finite_loss, optim_constructor, resume_state  # noqa: F401  (registers)
from mae_transfer.integrations.config_text import install as _memoize_config_text
from mae_transfer.integrations.records_hook import MAETransferFinalMetricsHook  # noqa: F401  (registers)

logger = logging.getLogger(__name__)


def _numpy_globals() -> list:
    """The numpy reconstructors and types that pickled arrays and scalars reference."""
    multiarray = getattr(np, "_core", None) or np.core
    names = [multiarray.multiarray._reconstruct, multiarray.multiarray.scalar, np.ndarray, np.dtype]
    names += [type(np.dtype(kind)) for kind in ("float64", "float32", "float16", "int64", "int32", "bool")]
    return names


def history_buffer_statistic(owner: object, name: str):
    """``getattr`` as seen by checkpoint unpickling: only ``HistoryBuffer`` statistics resolve."""
    # mmengine fills _statistics_methods lazily (first HistoryBuffer()), so name the defaults too
    if owner is HistoryBuffer and name in {"min", "max", "mean", "current", *HistoryBuffer._statistics_methods}:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f"checkpoint asks for getattr({owner!r}, {name!r}); only HistoryBuffer statistics methods are allowed"
    )


MMENGINE_CHECKPOINT_GLOBALS = [HistoryBuffer, *_numpy_globals(), (history_buffer_statistic, "builtins.getattr")]


def allow_mmengine_checkpoint_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read mmengine's own training checkpoints."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)


allow_mmengine_checkpoint_globals()


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """mmengine's loader for plain paths, reading through the weights-only reader.

    Raises:
        FileNotFoundError: no such file (as mmengine's own loader does).
        CheckpointError: a truncated file, or one whose pickle names a global outside the
            allow-list (refused; nothing from it runs).
    """
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} can not be found.")
    return read_training_checkpoint(path, map_location=map_location)


def refuse_remote_checkpoint(filename: str, map_location=None, *args, **kwargs) -> dict:
    """mmengine's loader for URLs and model-zoo names: refused (they would load with a bare
    ``torch.load``, and nothing is downloaded at run time)."""
    raise CheckpointError("remote checkpoints are not loaded by mae-transfer (no downloads at run time, and "
                          "mmengine would read them without weights_only); download the file and give its path",
                          file=filename)


CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint, force=True)
# every other scheme mmengine registered (http(s)://, torchvision://, open-mmlab://, s3://, ...)
for _prefix in [prefix for prefix in CheckpointLoader._schemes if prefix]:
    CheckpointLoader.register_scheme(prefixes=_prefix, loader=refuse_remote_checkpoint, force=True)
_memoize_config_text()  # Config.pretty_text formats each distinct config text once per process


def safety_hooks() -> list[dict]:
    """Hook configs every training run adds (``tools/train.py`` appends them to ``custom_hooks``).

    A non-finite loss stops the run at that iteration (`MAETransferFiniteLossHook`); random
    state and sample position are checkpointed so that resuming is exact
    (`MAETransferExactResumeHook`).
    """
    hooks = [dict(type="MAETransferFiniteLossHook"), dict(type="MAETransferExactResumeHook")]
    if failpoints.active():  # fault-injection tests only (MAE_TRANSFER_FAILPOINT)
        import mae_transfer.integrations.failpoints  # noqa: F401  (registers the hook)

        hooks.append(dict(type="MAETransferFailpointHook"))
    return hooks
