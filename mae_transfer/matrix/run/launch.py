"""Start a training or evaluation child process the way every cell and rehearsal does.

The child imports the same ``mae_transfer`` as this process (its directory leads PYTHONPATH),
writes unbuffered output to the given log, and dies with its parent (Linux
``PR_SET_PDEATHSIG``), so killing ``run`` never leaves an orphan training behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import IO, Any

from mae_transfer.paths import import_root


def child_env(threads: int | None = None) -> dict[str, str]:
    """This process's environment for a child: unbuffered, this package first on PYTHONPATH.

    ``threads``: the child's ``OMP_NUM_THREADS`` unless the environment already sets it.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_root()), env.get("PYTHONPATH")) if p)
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(max(1, threads)))
    return env


def die_with_parent() -> None:
    """In the child before exec: receive SIGKILL when the parent thread exits (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(command: list[str], log: IO[str], env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen:
    """Start ``command`` with stdout and stderr in ``log`` (see the module docstring).

    ``env`` defaults to :func:`child_env`; ``kwargs`` go to ``subprocess.Popen`` (e.g.
    ``start_new_session``). The child runs in this process's working directory, so relative
    paths in a config mean what they mean to the user who started ``run``.
    """
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env() if env is None else env,
                            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None, **kwargs)
