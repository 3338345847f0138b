"""mmengine's ``Config.pretty_text``, the same text at a fraction of the cost.

mmengine 0.10.7 formats a config's text with yapf every time ``pretty_text`` is read: at each
checkpoint save (the text goes into the checkpoint's meta), when the Runner logs the config, in
``RuntimeInfoHook.before_run`` and in every ``Config.dump``. yapf is pure Python: 0.2-0.9 CPU
seconds per read for the smoke configs, several reads per training process, and once per cell and
attempt for the matrix's resolved configs. yapf's result depends only on the unformatted text and
the style, so :func:`install` memoizes it on exactly those: the text mmengine writes does not change
by a character, a config that changed formats anew.

A process of rank 1 or above (``RANK``, as torchrun and the SLURM launch set it) is given the
unformatted text, which is the same config: mmengine writes a config's text only from rank 0 (the
checkpoints' meta, the dumped config, the log file), except a rank's own log file under
``log_level='DEBUG'`` or ``distributed=True`` logging, where the config then reads unwrapped.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

_LOCK = threading.Lock()
_CACHE_SIZE = 64  # distinct config texts kept per process (a matrix run formats one per cell)


def install() -> None:
    """Route mmengine's yapf call in ``Config.pretty_text`` through the memo (idempotent)."""
    import mmengine.config.config as config_module

    with _LOCK:
        current = config_module.FormatCode
        if getattr(current, "memoized_by_mae_transfer", False):
            return
        config_module.FormatCode = _memoized(current)


def _memoized(format_code: Any) -> Any:
    @functools.lru_cache(maxsize=_CACHE_SIZE)
    def cached(text: str, style: tuple | None, kwargs: tuple) -> tuple[str, bool]:
        return format_code(text, style_config=None if style is None else dict(style), **dict(kwargs))

    @functools.wraps(format_code)
    def format_once(text: str, style_config: dict | None = None, **kwargs: Any) -> tuple[str, bool]:
        if os.environ.get("RANK", "0").strip() not in ("", "0"):
            return text, False  # see the module's docstring: no rank but 0 writes this text
        key = (None if style_config is None else tuple(sorted(style_config.items())), tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:  # a style that is not plain data: no memo, the call as mmengine makes it
            return format_code(text, style_config=style_config, **kwargs)
        return cached(text, *key)

    format_once.memoized_by_mae_transfer = True
    format_once.cache_info = cached.cache_info
    return format_once
