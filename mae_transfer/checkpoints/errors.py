"""The one exception the checkpoint package raises for bad input."""

from __future__ import annotations

from typing import Any


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, recognised or loaded.

    The message names the file (or ``<in-memory dict>``), the offending key when there is one,
    and what was expected versus what was found.

    Attributes:
        file: path of the checkpoint, or a description of an in-memory source.
        key: the state-dict key concerned, if any.
        expected: what the model or reader expected (a shape, a format), if any.
        found: what the checkpoint holds instead, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        expected: Any = None,
        found: Any = None,
    ) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        self.found = found
        self.detail = message
        parts = [f"{file}: {message}" if file else message]
        if key is not None:
            where = f"key '{key}'"
            if expected is not None or found is not None:
                where += f": expected {_show(expected)}, found {_show(found)}"
            parts.append(f"({where})")
        super().__init__(" ".join(parts))


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)
