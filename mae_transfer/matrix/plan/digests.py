"""Content digests for cell ids: checkpoint files (cached by path, mtime and size) and configs.

A config's digest covers its text and the text of every local ``_base_`` it inherits;
``pkg::`` bases (mmdet::, mmseg::) are covered by the package versions instead.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from mae_transfer.records import atomic_write_text

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where digests are cached (``$MAE_TRANSFER_CACHE`` or ``~/.cache/mae-transfer``)."""
    return Path(os.environ.get("MAE_TRANSFER_CACHE", Path.home() / ".cache" / "mae-transfer"))


class DigestCache:
    """sha256 of file contents, cached by (path, mtime_ns, size) in a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "digests.json"
        try:
            self.entries: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def digest(self, file: Path) -> str:
        """The content digest of ``file`` (hashing it only when it changed)."""
        stat = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if entry and entry["mtime_ns"] == stat.st_mtime_ns and entry["size"] == stat.st_size:
            return entry["sha256"]
        sha = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                sha.update(chunk)
        self.entries[key] = {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "sha256": sha.hexdigest()}
        self.dirty = True
        return sha.hexdigest()

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            atomic_write_text(self.path, json.dumps(self.entries))
        except OSError as error:
            logger.warning("cannot write the digest cache %s: %s", self.path, error)


def config_closure(path: Path, seen: dict[Path, str] | None = None) -> dict[Path, str]:
    """The text of a config and of every local ``_base_`` file it inherits, recursively.

    ``pkg::`` bases (mmdet::, mmseg::) are covered by the package versions instead.
    """
    seen = {} if seen is None else seen
    path = path.resolve()
    if path in seen or not path.is_file():
        return seen
    text = path.read_text()
    seen[path] = text
    for base in _bases(text):
        if "::" not in base:
            config_closure(path.parent / base, seen)
    return seen


def _bases(text: str) -> list[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    return []
