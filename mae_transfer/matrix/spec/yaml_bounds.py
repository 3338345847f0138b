"""Bounds on a YAML document, checked on its event stream before any Python object is built.

``yaml.safe_load`` builds an alias as a second reference to the anchored object, so a few hundred
bytes of nested aliases (a "billion laughs") load at once and explode later, when the planner
walks or serialises the overrides (34 s and 1.2 GB, then ``MemoryError``); a recursive alias
builds a cyclic object; ten thousand nested brackets overflow the composer's recursion. A matrix
or a reference file is kilobytes, a few levels deep, with a handful of aliases, so each is
bounded here, and the message names the key path where the bound was crossed.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_ALIASES = 256
MAX_VALUES = 100_000  # with every alias expanded, as the planner walks the document


class YamlBoundError(ValueError):
    """A YAML document beyond a bound: ``key`` (a key path) is where, ``message`` which bound."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


@dataclass
class _Collection:
    """An open mapping or sequence: its key path, where a child goes next, its anchor and size."""

    mapping: bool
    path: str
    start: int  # values counted before it opened (its expanded size is the count when it closes, less this)
    anchor: str | None
    index: int = 0
    key: str = "?"
    at_key: bool = True  # a mapping expects a key next (else that key's value)

    def child_path(self) -> str:
        if not self.mapping:
            return f"{self.path}[{self.index}]"
        if self.at_key:
            return self.path
        return f"{self.path}.{self.key}" if self.path else self.key

    def advance(self, scalar: str | None) -> None:
        """A child ended (``scalar``: its text when it was a scalar)."""
        if not self.mapping:
            self.index += 1
        elif self.at_key:
            self.key, self.at_key = scalar if scalar is not None else "?", False
        else:
            self.at_key = True


def _shown(path: str) -> str:
    return path if len(path) <= 80 else path[:77] + "..."


def check_yaml_bounds(text: str) -> None:
    """Refuse a document that is too large, too deep, or has too many, recursive or exploding aliases.

    Raises:
        YamlBoundError: naming the key path and the bound.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YamlBoundError("-", f"the file is {size} bytes; expected at most {MAX_BYTES} (a matrix is kilobytes)")
    stack: list[_Collection] = []
    sizes: dict[str, int] = {}
    values = aliases = 0

    def where() -> str:
        return _shown(stack[-1].child_path() if stack else "") or "the top level"

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlBoundError(where(), f"more than {MAX_ALIASES} aliases (*name); expected a few")
            if any(open_.anchor == event.anchor for open_ in stack):
                raise YamlBoundError(where(), f"alias *{event.anchor} inside its own anchor &{event.anchor}: a "
                                     "recursive value; expected a finite one")
            values += sizes.get(event.anchor, 1)
        elif isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            values += 1
        if values > MAX_VALUES:
            raise YamlBoundError(where(), f"the document expands (aliases followed) to more than {MAX_VALUES} "
                                 "values; expected a small file (an alias bomb?)")
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
            if isinstance(event, yaml.ScalarEvent) and event.anchor:
                sizes[event.anchor] = 1
            if stack:
                stack[-1].advance(event.value if isinstance(event, yaml.ScalarEvent) else None)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise YamlBoundError(where(), f"nested more than {MAX_DEPTH} levels deep; expected a few")
            path = stack[-1].child_path() if stack else ""
            stack.append(_Collection(isinstance(event, yaml.MappingStartEvent), path, values - 1, event.anchor))
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            closed = stack.pop()
            if closed.anchor:
                sizes[closed.anchor] = values - closed.start
            if stack:
                stack[-1].advance(None)
