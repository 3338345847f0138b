"""Reading mmengine config files from the matrix's threads: one parse at a time.

mmengine's ``Config.fromfile`` resolves ``mmdet::`` / ``mmseg::`` bases through ``pkg_resources``,
which is not thread-safe: two cells of one ``run`` (``max_parallel`` > 1) parsing their configs at
once fail with ``TypeError: ('Expected str, Requirement, or Distribution', mmdet 3.3.0 ...)``
(mmengine 0.10.7; tests/matrix/test_configs_threads.py). Every parse in the matrix goes through
:func:`read_config`, which holds one lock for the process.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


def read_config(path: str | Path, import_custom_modules: bool = True) -> Any:
    """``mmengine.config.Config.fromfile(path)``, one thread at a time (its ``pretty_text`` memoized)."""
    from mmengine.config import Config

    from mae_transfer.integrations.config_text import install

    install()

    with _LOCK:
        return Config.fromfile(str(path), import_custom_modules=import_custom_modules)
