"""The files in a cell's work dir, by name, and reading the end of its log."""

from __future__ import annotations

import os
from pathlib import Path

CELL_NAME = "cell.json"  # the planned cell (written by the executors' prepare step)
STATE_NAME = "state.json"  # its life: `mae_transfer.matrix.run.state`
RESULT_NAME = "result.json"  # `mae_transfer.matrix.run.result`
LOG_NAME = "log.txt"  # every attempt's output, appended
LOCK_NAME = ".cell.lock"  # held by the one trainer of the cell


def tail(path: Path, lines: int = 20, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of a text file ("" when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
