"""What a run records, and the one atomic writer every file of the project goes through.

A trainer's work dir holds three structured records, written by
`mae_transfer.integrations.records_hook.MAETransferFinalMetricsHook` and read by the cell runner:

* ``validations.json``: every validation of the run (:class:`Validation`), metrics in percent;
* ``progress.json``: where training stands (:class:`ProgressRecord`), rewritten every few seconds;
* ``load_report.json``: the pretrained load's summary (format, matched/missing/dropped/resized
  counts), from the backbone's ``init_weights``.

Pure Python (no torch, no mm* import): the matrix side reads these files without the trainers'
dependencies.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from mae_transfer import failpoints

VALIDATIONS_NAME = "validations.json"
PROGRESS_NAME = "progress.json"
LOAD_REPORT_NAME = "load_report.json"


def _fsync_dir(folder: Path) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename itself is atomic
    finally:
        os.close(handle)


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic across threads; a fallback only)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto ``path``.

    Readers see the old file or the whole new one, never half of it. The file gets the mode a
    plain ``open(path, "w")`` would give a new file (0666 less the umask). On any error (a full disk,
    a read-only folder, an interrupt) the temporary file is removed and the error re-raised as
    an ``OSError`` with the same errno that names ``path`` (not the temporary file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}", str(path)) from error
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from the user's group
        with tmp.open("rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}", str(path)) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str, failpoint: str | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`).

    ``failpoint``: a `mae_transfer.failpoints` point that, when armed, kills the process with the
    temporary file half written (fault-injection tests).
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        if failpoint is not None and failpoints.armed(failpoint):
            with tmp.open("rb+") as stream:
                stream.truncate(len(text.encode()) // 2)
                os.fsync(stream.fileno())
            failpoints.crash(failpoint, f"writing {path}")
    return Path(path)


def atomic_write_json(path: str | os.PathLike, payload: Any, failpoint: str | None = None) -> Path:
    """Write ``payload`` as indented, key-sorted JSON to ``path`` atomically (``failpoint``: as above)."""
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", failpoint)


def publish_folder(folder: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move a completely written ``folder`` to ``final`` in one rename (readers see all of it or nothing).

    Raises:
        OSError: ``final`` exists and is not empty (another writer published it first), or the rename failed.
    """
    folder, final = Path(folder), Path(final)
    os.rename(folder, final)
    _fsync_dir(final.parent)
    return final


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Validation:
    """One validation of a run: the iteration and epoch it followed, its metrics in percent."""

    step: int
    epoch: int
    metrics: dict[str, float]
    raw: dict[str, float] = field(default_factory=dict)


def read_validations(work_dir: str | os.PathLike) -> list[Validation]:
    """The validations recorded in ``work_dir`` (oldest first; [] when there is no record)."""
    rows = read_json(Path(work_dir) / VALIDATIONS_NAME)
    if not isinstance(rows, list):
        return []
    return [Validation(**row) for row in rows if isinstance(row, dict)]


def record_validation(work_dir: str | os.PathLike, validation: Validation) -> list[Validation]:
    """Add ``validation`` to ``work_dir``'s record, replacing one at the same or a later step.

    A later step can only be a previous attempt's validation after the checkpoint this attempt
    resumed from: it is dropped, as that training is being redone.
    """
    kept = [row for row in read_validations(work_dir) if row.step < validation.step]
    rows = [*kept, validation]
    atomic_write_json(Path(work_dir) / VALIDATIONS_NAME, [asdict(row) for row in rows])
    return rows


@dataclass(frozen=True)
class ProgressRecord:
    """Where a training run stands: ``step`` of ``total`` iterations, epoch, when, an ETA."""

    step: int
    total: int | None
    epoch: int
    time: float
    eta_seconds: float | None = None
    latest: dict[str, float] = field(default_factory=dict)  # the last validation's metrics (percent)


def write_progress(work_dir: str | os.PathLike, progress: ProgressRecord) -> Path:
    """Rewrite ``work_dir/progress.json``."""
    return atomic_write_json(Path(work_dir) / PROGRESS_NAME, asdict(progress))


def read_progress_record(work_dir: str | os.PathLike) -> ProgressRecord | None:
    """The progress recorded in ``work_dir``, or None when there is none readable."""
    payload = read_json(Path(work_dir) / PROGRESS_NAME)
    try:
        return ProgressRecord(**payload) if isinstance(payload, dict) else None
    except TypeError:
        return None


def write_load_report(work_dir: str | os.PathLike, summary: Mapping[str, Any]) -> Path:
    """Write a pretrained load's summary (``LoadReport.summary()``) to ``work_dir/load_report.json``."""
    return atomic_write_json(Path(work_dir) / LOAD_REPORT_NAME, dict(summary))


def read_load_report(work_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The load summary recorded in ``work_dir``, or None."""
    payload = read_json(Path(work_dir) / LOAD_REPORT_NAME)
    return payload if isinstance(payload, dict) else None


# The latest pretrained load of this process (set where a backbone loads its checkpoint, written
# to the work dir by the records hook: init_weights does not know the work dir).
_LOADS: list[dict[str, Any]] = []


def note_load(summary: Mapping[str, Any]) -> None:
    """Remember a pretrained load's summary in this process, for the records hook to write."""
    _LOADS.append(dict(summary))


def latest_load() -> dict[str, Any] | None:
    """The summary last given to :func:`note_load` in this process, or None."""
    return _LOADS[-1] if _LOADS else None
