"""`LoadReport`: what a pretrained load matched, left at init, dropped and resized."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DroppedKey:
    """A checkpoint key that was not loaded, and why."""

    key: str
    reason: str


@dataclass(frozen=True)
class MissingKey:
    """A model key the checkpoint does not provide (it keeps its init), and why that is allowed."""

    key: str
    reason: str


@dataclass(frozen=True)
class ResizedKey:
    """A checkpoint tensor interpolated to the model's shape."""

    key: str
    from_shape: tuple[int, ...]
    to_shape: tuple[int, ...]
    method: str


@dataclass
class LoadReport:
    """The outcome of reading a checkpoint and (optionally) loading it into a model.

    Attributes:
        source: the file path, or ``<in-memory dict>``.
        format: detected checkpoint format (see `mae_transfer.checkpoints.formats.FORMATS`).
        arch: architecture detected from the checkpoint's shapes, or None if not a known one.
        model_arch: architecture detected from the model's shapes (None when not loaded).
        matched: model keys loaded from the checkpoint (resized ones included).
        missing: model keys left at their init, each with the rule that allows it.
        unexpected: checkpoint keys dropped, each with the reason.
        resized: checkpoint tensors interpolated to the model's shape.
        notes: other conversions worth knowing (renames, synthesised tensors, dtype casts).
        family: the ViT family of the file's layout (``models.options.FAMILIES``), if it names one.
        declared: options the file does not tell, with the values the model was built with
            (its declared family or options): activation, eps, position rule.
        model_family: the family the model was built as (None: options of no named family).
    """

    source: str
    format: str
    arch: str | None = None
    model_arch: str | None = None
    matched: list[str] = field(default_factory=list)
    missing: list[MissingKey] = field(default_factory=list)
    unexpected: list[DroppedKey] = field(default_factory=list)
    resized: list[ResizedKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    family: str | None = None
    declared: dict = field(default_factory=dict)
    model_family: str | None = None

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of the whole report."""
        out = asdict(self)
        out["resized"] = [
            {**r, "from_shape": list(r["from_shape"]), "to_shape": list(r["to_shape"])}
            for r in out["resized"]
        ]
        return out

    def summary(self) -> dict:
        """Format, architectures and the matched/missing/dropped/resized counts (for provenance)."""
        return {"source": self.source, "format": self.format, "family": self.family, "declared": self.declared,
                "model_family": self.model_family,
                "arch": self.arch, "model_arch": self.model_arch,
                "matched": len(self.matched), "missing": len(self.missing), "dropped": len(self.unexpected),
                "resized": len(self.resized)}

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def render(self, max_keys: int = 20) -> str:
        """A human-readable summary; lists of keys are cut after ``max_keys`` entries."""
        lines = [
            f"source:     {self.source}",
            f"format:     {self.format}",
            f"family:     {self.family or 'not named by the file'}"
            + (f" (declared: {', '.join(f'{k}={v}' for k, v in self.declared.items())})" if self.declared else ""),
            f"arch:       {self.arch or 'unknown'}"
            + (f" (model: {self.model_arch or 'unknown'})" if self.model_arch is not None else ""),
            f"matched:    {len(self.matched)} keys",
        ]
        sections = [
            ("missing (kept init)", [f"{m.key}: {m.reason}" for m in self.missing]),
            ("unexpected (dropped)", [f"{d.key}: {d.reason}" for d in self.unexpected]),
            (
                "resized",
                [
                    f"{r.key}: {tuple(r.from_shape)} -> {tuple(r.to_shape)} ({r.method})"
                    for r in self.resized
                ],
            ),
            ("notes", list(self.notes)),
        ]
        for title, items in sections:
            lines.append(f"{title}: {len(items)}")
            lines.extend(f"  {item}" for item in _collapse(items)[:max_keys])
            if len(_collapse(items)) > max_keys:
                lines.append(f"  ... {len(_collapse(items)) - max_keys} more")
        return "\n".join(lines)


def _collapse(items: list[str]) -> list[str]:
    """Group per-block lines that differ only in the block index (``blocks.{0..11}``)."""
    groups: dict[str, list[str]] = {}
    order: list[str] = []
    for item in items:
        match = re.match(r"^blocks\.(\d+)\.(.*)$", item)
        pattern = f"blocks.*.{match.group(2)}" if match else item
        if pattern not in groups:
            groups[pattern] = []
            order.append(pattern)
        groups[pattern].append(match.group(1) if match else "")
    out = []
    for pattern in order:
        ids = groups[pattern]
        if len(ids) > 1 and all(ids):
            out.append(pattern.replace("blocks.*", f"blocks.{{{_ranges(ids)}}}", 1))
        else:
            out.append(pattern.replace("blocks.*", f"blocks.{ids[0]}", 1) if ids[0] else pattern)
    return out


def _ranges(ids: list[str]) -> str:
    numbers = sorted(int(i) for i in ids)
    spans: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}..{prev}")
        if n is not None:
            start = prev = n
    return ",".join(spans)
