"""YAML reading that refuses what ``yaml.safe_load`` silently accepts: duplicate keys, non-UTF-8.

``yaml.safe_load`` keeps the last of two equal keys in a mapping; in a matrix or a references
file that hides an edit (``lr: 0.1`` ... ``lr: 0.5``). :func:`load_yaml_file` raises instead,
naming the line of both occurrences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # PyYAML reports unhashable keys itself
                if key in seen:
                    raise DuplicateKeyError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1}); "
                        "YAML would silently keep only the last value", key_node.start_mark)
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """Parse YAML text; duplicate keys raise :class:`DuplicateKeyError` (a ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_utf8(path: Path) -> str:
    """A file's text; a ``ValueError`` naming the file and the byte offset when it is not UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}: {data[error.start:error.start + 1]!r})") from None


def load_yaml_file(path: Path) -> Any:
    """Parse a YAML file strictly (UTF-8, no duplicate keys)."""
    return load_yaml_text(read_utf8(path))
