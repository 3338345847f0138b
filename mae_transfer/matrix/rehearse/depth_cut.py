"""Depth cuts for rehearsals: fewer ViT blocks, every shape of the real config kept.

A rehearsal (``run --rehearse``) may run a cell's backbone with fewer blocks to keep CPU time
small, but only where every shape survives: token grid, widths, heads, position tables and
head sizes do not depend on depth; what does is kept explicitly:

- window attention (ViTDet, MAE A.3): at least one windowed and one global block remain, so
  both kinds of attention and relative-position tables run. The global blocks are remapped to
  the ends of ``n`` equal groups of the cut depth, ``n = min(global blocks, K // 2)`` (depth 12
  ``[2, 5, 8, 11]`` -> depth 2 ``[1]``, depth 4 ``[1, 3]``, depth 8 ``[1, 3, 5, 7]``);
- multi-level taps (the A.3 COCO adapter, ADE20K's ``out_indices``): four distinct taps remain
  (so ``K >= 4``), remapped proportionally (``[3, 5, 7, 11]`` of 12 -> ``[0, 1, 2, 3]`` of 4)
  with the last tap on the last block; the A.3 adapter's default taps are the group ends of
  the cut depth, which needs ``K % 4 == 0``;
- partial fine-tuning of the last ``k`` blocks needs ``K > k`` (some block stays frozen).

Pure Python over the config's ``model.backbone`` mapping; the returned options are
``--cfg-options`` keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mae_transfer.classification.protocols import Protocol
from mae_transfer.models.archs import ARCHS

MULTI_LEVEL_TAPS = 4


class DepthCutError(ValueError):
    """A depth cut that would lose a shape; the message names what and the smallest depth allowed."""


@dataclass(frozen=True)
class DepthCut:
    """A backbone depth change and the config options that make it.

    Attributes:
        depth: the config's depth.
        cut_to: the rehearsed depth (``== depth`` when nothing is cut).
        minimum: the smallest depth that keeps every shape of this config.
        options: ``--cfg-options`` keys (``model.backbone.*``).
        notes: one line per change, for the rehearsal table.
    """

    depth: int
    cut_to: int
    minimum: int
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def cut(self) -> bool:
        return self.cut_to < self.depth


def _get(node: Any, key: str, default: Any = None) -> Any:
    return node.get(key, default) if isinstance(node, Mapping) else default


def _partial_blocks(protocol: Any) -> int:
    """Blocks a partial fine-tuning protocol trains (0 for any other protocol or none)."""
    if protocol is None:
        return 0
    parsed = Protocol.parse(dict(protocol) if isinstance(protocol, Mapping) else protocol)
    return parsed.num_blocks if parsed.name == "partial" else 0


def _requirements(depth: int, global_blocks: list[int], taps: list[int] | None, multi_level: bool,
                  partial: int) -> tuple[int, list[str]]:
    """(the smallest depth keeping every shape, why) for one backbone."""
    minimum, reasons = 1, []
    windowed = [i for i in range(depth) if i not in global_blocks]
    if global_blocks and windowed:
        minimum = 2
        reasons.append("one windowed and one global attention block")
    tap_count = MULTI_LEVEL_TAPS if multi_level else len(taps or [])
    if tap_count > 1:
        minimum = max(minimum, tap_count)
        reasons.append(f"{tap_count} distinct block taps")
    if partial:
        minimum = max(minimum, partial + 1)
        reasons.append(f"partial fine-tuning of the last {partial} block(s) with a frozen block below them")
    if multi_level and taps is None and minimum % MULTI_LEVEL_TAPS:
        minimum += MULTI_LEVEL_TAPS - minimum % MULTI_LEVEL_TAPS
    return minimum, reasons


def remap_global_blocks(global_blocks: list[int], cut_to: int) -> list[int]:
    """Global blocks at the ends of ``min(len(global_blocks), cut_to // 2)`` equal groups."""
    count = max(1, min(len(global_blocks), cut_to // 2))
    return [cut_to * (j + 1) // count - 1 for j in range(count)]


def remap_taps(taps: list[int], depth: int, cut_to: int) -> list[int]:
    """Distinct taps at the same relative depth, the last on the last block."""
    ordered = sorted(taps)
    mapped: list[int] = []
    for position, tap in enumerate(ordered):
        value = round((tap + 1) * cut_to / depth) - 1
        low = mapped[-1] + 1 if mapped else 0
        high = cut_to - (len(ordered) - position)
        mapped.append(min(max(value, low), high))
    if ordered[-1] == depth - 1:
        mapped[-1] = cut_to - 1
    return mapped


def plan_depth_cut(backbone: Mapping, protocol: Any = None, target: int | str | None = None) -> DepthCut:
    """How to run ``backbone`` (a config's ``model.backbone``) at depth ``target``.

    Args:
        backbone: the backbone config (``arch``, optional ``depth``, ``window``,
            ``out_indices``, ``adapter``).
        protocol: the classifier's ``model.protocol`` (partial fine-tuning limits the cut).
        target: the depth to cut to, ``"min"`` for the smallest that keeps every shape, or
            None for no cut.

    Raises:
        DepthCutError: ``target`` is below the smallest depth that keeps every shape.
    """
    arch = _get(backbone, "arch")
    depth = int(_get(backbone, "depth") or (ARCHS[arch].depth if arch in ARCHS else 12))
    window = _get(backbone, "window")
    global_blocks = [int(i) for i in (_get(window, "global_blocks") or [])]
    taps = _get(backbone, "out_indices")
    taps = [int(i) for i in taps] if taps is not None else None
    multi_level = _get(backbone, "adapter") == "multi_level"
    minimum, reasons = _requirements(depth, global_blocks, taps, multi_level, _partial_blocks(protocol))
    minimum = min(minimum, depth)
    if target is None:
        return DepthCut(depth, depth, minimum)
    cut_to = minimum if target == "min" else int(target)
    if cut_to >= depth:
        return DepthCut(depth, depth, minimum)
    why = "; ".join(reasons) or "at least one block"
    if cut_to < minimum:
        raise DepthCutError(f"depth {depth} -> {cut_to} would lose a shape (needs {why}); the smallest depth "
                            f"that keeps every shape is {minimum}")
    if multi_level and taps is None and cut_to % MULTI_LEVEL_TAPS:
        raise DepthCutError(f"depth {depth} -> {cut_to}: the multi-level adapter taps the ends of "
                            f"{MULTI_LEVEL_TAPS} equal block groups, so the depth must be a multiple of "
                            f"{MULTI_LEVEL_TAPS} (smallest allowed: {minimum})")
    options: dict[str, Any] = {"model.backbone.depth": cut_to}
    notes = [f"depth {depth} -> {cut_to}"]
    if global_blocks and len(global_blocks) < depth:
        remapped = remap_global_blocks(global_blocks, cut_to)
        options["model.backbone.window.global_blocks"] = remapped
        notes.append(f"global blocks {global_blocks} -> {remapped}")
    if taps is not None and len(taps) > 1:
        remapped = remap_taps(taps, depth, cut_to)
        options["model.backbone.out_indices"] = remapped
        notes.append(f"taps {taps} -> {remapped}")
    elif taps is not None:
        options["model.backbone.out_indices"] = [cut_to - 1]
    elif multi_level:
        size = cut_to // MULTI_LEVEL_TAPS
        notes.append(f"taps (group ends) -> {[size * (k + 1) - 1 for k in range(MULTI_LEVEL_TAPS)]}")
    return DepthCut(depth, cut_to, minimum, options, notes)
