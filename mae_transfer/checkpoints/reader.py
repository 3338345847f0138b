"""Read checkpoint files without executing code from them.

PyTorch files go through ``torch.load(..., weights_only=True)``, whose unpickler only rebuilds
tensors and plain containers. Training checkpoints also carry bookkeeping objects (an
``argparse.Namespace`` of run arguments, mmengine's message hub, numpy scalars); their globals
are mapped to `OpaqueObject`, an inert stand-in of ours, so no function or class named by the
file is ever called. Any other global is refused with an error naming it. ``.safetensors``
files hold tensors only and are read with the safetensors library.
"""

from __future__ import annotations

import contextlib

import logging
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mae_transfer.checkpoints.errors import CheckpointError

logger = logging.getLogger(__name__)

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
# Phrases of torch's weights-only unpickler when it refuses a global (as opposed to bad bytes).
_REFUSAL_MARKERS = ("Unsupported global", "unrecognized function", "Can only", "is blocked")


class OpaqueObject:
    """Inert stand-in for a bookkeeping object in a training checkpoint.

    It accepts and discards any construction arguments and pickled state: nothing from the
    file is called, only this class.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "OpaqueObject":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return "OpaqueObject()"


class OpaqueDict(dict):
    """Inert stand-in for a dict subclass (mmengine ``ConfigDict``); keeps its items."""

    def __setstate__(self, state: Any) -> None:
        pass


def stand_in_getattr(obj: Any, name: str) -> OpaqueObject:
    """Stand-in for ``getattr`` in pickles: resolves attributes of stand-ins only.

    mmengine's ``HistoryBuffer`` pickles its statistics methods as ``getattr(cls, 'mean')``.
    The attribute is never looked up: the result is another stand-in. Allowed on stand-ins and
    on classes that this process allow-listed for weights-only loading (e.g. the real
    ``HistoryBuffer`` when the mmengine integration is imported); anything else is refused.
    """
    if obj is OpaqueObject or isinstance(obj, OpaqueObject) or _allow_listed_class(obj):
        return OpaqueObject()
    raise pickle.UnpicklingError(
        f"Unsupported global: getattr({type(obj).__name__}, {name!r}) outside bookkeeping objects"
    )


def _allow_listed_class(obj: Any) -> bool:
    if not isinstance(obj, type):
        return False
    entries = torch.serialization.get_safe_globals()
    return any(entry is obj or (isinstance(entry, tuple) and entry[0] is obj) for entry in entries)


# Globals seen in real training checkpoints outside the weights; all mapped to inert stand-ins.
BOOKKEEPING_GLOBALS: dict[str, Any] = {
    "builtins.getattr": stand_in_getattr,
    "argparse.Namespace": OpaqueObject,
    "mmengine.logging.history_buffer.HistoryBuffer": OpaqueObject,
    "mmengine.config.config.ConfigDict": OpaqueDict,
    "numpy.dtype": OpaqueObject,
    "numpy.ndarray": OpaqueObject,
    "numpy.core.multiarray.scalar": OpaqueObject,
    "numpy.core.multiarray._reconstruct": OpaqueObject,
    "numpy._core.multiarray.scalar": OpaqueObject,
    "numpy._core.multiarray._reconstruct": OpaqueObject,
    **{
        f"numpy.dtypes.{name}DType": OpaqueObject
        for name in (
            "Bool", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
            "Float16", "Float32", "Float64", "Str", "Bytes", "Object",
        )
    },
}


@dataclass
class RawCheckpoint:
    """A checkpoint file's top-level object, before format detection.

    Attributes:
        source: the path, or ``<in-memory dict>``.
        container: ``torch`` (torch.save file), ``safetensors`` or ``dict`` (given in memory).
        obj: the top-level object (a dict).
        metadata: safetensors header metadata (empty for other containers).
    """

    source: str
    container: str
    obj: dict
    metadata: dict[str, str] = field(default_factory=dict)


def _not_a_file(path: Path) -> str:
    """Why ``path`` is not a regular file to read: missing, a directory, a FIFO, a symlink loop..."""
    import errno
    import stat

    try:
        mode = path.stat().st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symlink loop, not a checkpoint file"
        if error.errno == errno.ENOENT and path.is_symlink():
            return f"a dangling symlink (to {os.readlink(path)}), no checkpoint file behind it"
        if error.errno == errno.ENOENT:
            return "no such checkpoint file"
        return f"cannot stat the checkpoint: {error.strerror}"
    if stat.S_ISDIR(mode):
        return "a directory, not a checkpoint file (name the .pth inside it)"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a checkpoint file; it is not read"
    if stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a socket or device, not a checkpoint file; it is not read"
    return "not a regular file"


def read_checkpoint(path: str | os.PathLike) -> RawCheckpoint:
    """Read a ``.pth``/``.pt``/``.bin``/``.ckpt`` (torch.save) or ``.safetensors`` file safely.

    Raises:
        CheckpointError: the file is missing, empty, text, truncated, not a checkpoint, or its
            pickle names a global outside the weights-only allow-list (it is then not run).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CheckpointError(_not_a_file(path), file=source)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError("the file is empty (0 bytes), expected a checkpoint", file=source)
    with path.open("rb") as handle:
        head = handle.read(16)
    if path.suffix == ".safetensors" or _looks_like_safetensors(head, size):
        return _read_safetensors(path)
    if not (head.startswith(_ZIP_MAGIC) or head[0] == _PICKLE_PROTO):
        raise CheckpointError(
            "not a checkpoint: expected a torch.save file (zip archive or pickle) or "
            f".safetensors, but the file starts with {_preview(head)}",
            file=source,
        )
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"expected a dict at the top level of the checkpoint, found {type(obj).__name__}",
            file=source,
        )
    logger.debug("read %s: top-level keys %s", source, list(obj)[:8])
    return RawCheckpoint(source=source, container="torch", obj=obj)


@contextlib.contextmanager
def _only_allowed(stand_ins: list):
    """Unpickle with our stand-ins alone: globals that other code allow-listed for the process
    (for example mmengine's resume types) must not make user checkpoints less inert."""
    previous = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        with torch.serialization.safe_globals(stand_ins):
            yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(previous)


def read_training_checkpoint(path: str | os.PathLike, map_location: Any = None) -> dict:
    """Read a training checkpoint (resume, ``load_from``, evaluation) with the weights-only unpickler.

    Unlike `read_checkpoint`, the objects a trainer stores are rebuilt for real, but only those
    the process allow-listed with ``torch.serialization.add_safe_globals`` (the mmengine
    integration allows its message hub's ``HistoryBuffer`` and numpy arrays). ``weights_only=True``
    is passed explicitly: torch (2.4 and later) then ignores ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``,
    which only changes calls that leave ``weights_only`` unset; a warning says the variable has
    no effect here.

    Raises:
        CheckpointError: the file is missing, empty, truncated, not a dict, or its pickle names
            a global outside the allow-list (nothing from it is then run).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CheckpointError(_not_a_file(path), file=source)
    if path.stat().st_size == 0:
        raise CheckpointError("the file is empty (0 bytes), expected a checkpoint", file=source)
    if _truthy(os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")):
        if _truthy(os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")):
            raise CheckpointError("both TORCH_FORCE_WEIGHTS_ONLY_LOAD and TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD are "
                                  "set; unset TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", file=source)
        logger.warning("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set; ignored for %s: mae-transfer reads every "
                       "checkpoint with weights_only=True", source)
    obj = _torch_load(path, map_location=map_location, process_allow_list=True)
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"expected a dict at the top level of the checkpoint, found {type(obj).__name__}", file=source
        )
    return obj


def _truthy(value: str | None) -> bool:
    return (value or "0").lower() in ("1", "y", "yes", "true")


def _torch_load(path: Path, map_location: Any = "cpu", process_allow_list: bool = False) -> Any:
    """``torch.load(weights_only=True)`` with errors as `CheckpointError`.

    The only globals allowed are the inert bookkeeping stand-ins, or with ``process_allow_list``
    the ones this process allow-listed (``torch.serialization.add_safe_globals``).
    """
    source = str(path)
    _check_zip_sizes(path)
    stand_ins = None if process_allow_list else [(obj, name) for name, obj in BOOKKEEPING_GLOBALS.items()]
    allowed = _only_allowed(stand_ins) if stand_ins is not None else contextlib.nullcontext()
    try:
        with allowed:
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickler_detail(str(error))
        refused = _refused_globals(path, stand_ins)
        if not refused and not any(marker in detail for marker in _REFUSAL_MARKERS):
            message = f"truncated or corrupt checkpoint ({detail})"
            raise CheckpointError(message, file=source) from error
        match = re.search(r"GLOBAL ([\w.]+)", detail)
        names = refused or ([match.group(1)] if match else [])
        what = (
            "the pickle references " + ", ".join(f"'{name}'" for name in names)
            + " (not a tensor, container or known bookkeeping object)"
            if names
            else f"the weights-only unpickler refused the pickle: {detail}"
        )
        raise CheckpointError(
            f"refusing to load: {what}; nothing from the file was executed. If you trust the "
            "file, re-save its weights with torch.save(state_dict) or as .safetensors",
            file=source,
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise CheckpointError(
            f"truncated or corrupt checkpoint ({type(error).__name__}: {_first_line(str(error))})",
            file=source,
        ) from error


# torch.save stores its zip entries uncompressed; a recompressed archive may expand this much
MAX_ZIP_EXPANSION = 4


def _check_zip_sizes(path: Path) -> None:
    """Refuse a zip checkpoint whose entries declare more bytes than the file can hold.

    torch reads each record into one buffer of its declared (uncompressed) size before it
    checks anything, so a 1 MB archive with a deflated entry of zeros would claim 1 GB. The
    declared sizes must sum to at most `MAX_ZIP_EXPANSION` times the file size (a torch.save
    file: at most its size). Only the central directory is read.
    """
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            if handle.read(4) != _ZIP_MAGIC:
                return
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch.load names the damage
    declared = sum(entry.file_size for entry in entries)
    if entries and declared > MAX_ZIP_EXPANSION * size:
        largest = max(entries, key=lambda entry: entry.file_size)
        raise CheckpointError(
            f"refusing to load: its zip entries declare {declared} bytes uncompressed in a {size}-byte file "
            f"(entry '{largest.filename}' alone {largest.file_size} bytes); a torch.save file stores its "
            "entries uncompressed, so this one is corrupt or crafted; nothing was read from it",
            file=str(path),
        )


def _refused_globals(path: Path, stand_ins: list | None) -> list[str]:
    """Globals in a zip checkpoint that are outside the allow-list (static scan, runs nothing)."""
    allowed = _only_allowed(stand_ins) if stand_ins is not None else contextlib.nullcontext()
    try:
        with allowed:
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - the scan is only for a better message
        return []


def _unpickler_detail(message: str) -> str:
    """The unpickler's own reason inside torch's long weights-only error message."""
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", message)
    return match.group(1).strip() if match else _first_line(message)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "no detail"


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 0 < header_len < size and head[8:9] == b"{"


def _read_safetensors(path: Path) -> RawCheckpoint:
    from safetensors import SafetensorError, safe_open

    source = str(path)
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            for key in handle.keys():
                tensors[key] = handle.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"truncated or corrupt .safetensors file ({error})", file=source
        ) from error
    return RawCheckpoint(source=source, container="safetensors", obj=tensors, metadata=metadata)


def _preview(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"text {text[:16]!r}"
    return f"bytes {head[:8].hex(' ')}"


def read_weight_files(paths: list[Path], source: str) -> RawCheckpoint:
    """Read one weights file, or the shards of one model (merged), as a RawCheckpoint named ``source``.

    Raises:
        CheckpointError: as `read_checkpoint`, or two shards holding the same key.
    """
    parts = [read_checkpoint(path) for path in paths]
    if len(parts) == 1:
        part = parts[0]
        return RawCheckpoint(source=source, container=part.container, obj=part.obj, metadata=part.metadata)
    merged: dict = {}
    for path, part in zip(paths, parts):
        for key, value in part.obj.items():
            if key in merged:
                raise CheckpointError(f"key '{key}' is in two shards", file=str(path), key=key)
            merged[key] = value
    return RawCheckpoint(source=source, container=parts[0].container, obj=merged)
