"""Fault injection for tests: SIGKILL this process at a named point of a cell's life.

A testing facility, off by default. ``MAE_TRANSFER_FAILPOINT=<point>`` arms one point; the
process that reaches it kills itself with SIGKILL, so nothing (no ``finally``, no atexit, no
signal handler) gets to clean up -- as with the OOM killer, a node failure or ``kill -9``.
With ``MAE_TRANSFER_FAILPOINT_MARKER=<file>`` the point fires only while the file does not
exist, and creates it (holding the point's name and where it fired) before dying, so a re-run
with the same environment is not killed again. When the variable is unset, every check is one
dictionary lookup.

Points (the training ones are placed by `mae_transfer.integrations.failpoints`):

- ``first_step``: after the first training iteration of the process.
- ``mid_epoch``: after the middle iteration of the second epoch (of the first when there is one
  epoch; of the run for an iteration-based loop).
- ``checkpoint_write``: in the second checkpoint save of the process, after half of the file's
  bytes are written at its final path (mmengine writes checkpoints in place, not atomically).
- ``evaluation``: after the first batch of the first validation.
- ``result_write``: in the cell runner, while ``result.json``'s temporary file is half written.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "MAE_TRANSFER_FAILPOINT"
MARKER_ENV = "MAE_TRANSFER_FAILPOINT_MARKER"
POINTS = ("first_step", "mid_epoch", "checkpoint_write", "evaluation", "result_write")


def active() -> str | None:
    """The armed point (None when fault injection is off, or the marker says it already fired)."""
    point = os.environ.get(ENV)
    if not point:
        return None
    if point not in POINTS:
        raise ValueError(f"{ENV}={point!r}: unknown failpoint; expected one of {', '.join(POINTS)}")
    marker = os.environ.get(MARKER_ENV)
    return None if marker and os.path.exists(marker) else point


def armed(point: str) -> bool:
    """``point`` is armed in this process."""
    return ENV in os.environ and active() == point


def crash(point: str, where: str = "") -> None:
    """Record that ``point`` fired (the marker file, stderr), then SIGKILL this process."""
    marker = os.environ.get(MARKER_ENV)
    if marker:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, f"{point} {where}\n".encode())
        os.fsync(fd)
        os.close(fd)
    sys.stderr.write(f"[mae-transfer] failpoint {point} fired {where}: SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def crash_if(point: str, where: str = "") -> None:
    """`crash` when ``point`` is armed; nothing otherwise."""
    if armed(point):
        crash(point, where)
