"""The layer-decay audit: every trainable parameter exactly once, tables readable."""

from __future__ import annotations

import re

import pytest
import torch
from layer_decay_models import DEPTH, TinyClassifier

from mae_transfer.optim import (
    LayerDecaySpec,
    audit_rows,
    format_audit_table,
    format_layer_summary,
    layer_summary,
    param_groups,
)

SPEC = LayerDecaySpec(0.75)


def test_audit_lists_every_trainable_parameter_once(classifier: TinyClassifier) -> None:
    classifier.head.bias.requires_grad_(False)
    rows = audit_rows(param_groups(classifier, SPEC, 1e-3, 0.05), model=classifier)
    names = [row.name for row in rows]
    trainable = [name for name, p in classifier.named_parameters() if p.requires_grad]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(trainable)
    shapes = dict(classifier.named_parameters())
    for row in rows:
        assert row.shape == tuple(shapes[row.name].shape)
        assert row.lr == pytest.approx(1e-3 * row.lr_scale)


def test_audit_of_optimizer_matches_groups(classifier: TinyClassifier) -> None:
    groups = param_groups(classifier, SPEC, 1e-3, 0.05)
    expected = audit_rows(groups)
    optimizer = torch.optim.SGD(groups, lr=1.0, momentum=0.9)
    assert audit_rows(optimizer.param_groups, model=classifier) == expected


def test_audit_rejects_missing_duplicate_and_malformed(classifier: TinyClassifier) -> None:
    groups = param_groups(classifier, SPEC, 1e-3, 0.05)
    dropped = [dict(g) for g in groups]
    last = dropped[-1]
    gone = last["param_names"][0]
    dropped[-1] = {**last, "params": last["params"][1:], "param_names": last["param_names"][1:]}
    with pytest.raises(ValueError, match=rf"missing trainable \['{re.escape(gone)}'\]"):
        audit_rows(dropped, model=classifier)

    doubled = [dict(g) for g in groups] + [dict(groups[0])]
    with pytest.raises(ValueError, match=r"also listed.*exactly once"):
        audit_rows(doubled)

    unnamed = [{k: v for k, v in g.items() if k != "param_names"} for g in groups]
    with pytest.raises(ValueError, match=r"param group 0 lacks key\(s\) \['param_names'\]"):
        audit_rows(unnamed)


def test_audit_table_has_one_line_per_parameter(classifier: TinyClassifier) -> None:
    rows = audit_rows(param_groups(classifier, SPEC, 1e-3, 0.05))
    lines = format_audit_table(rows).splitlines()
    assert lines[0].split() == ["parameter", "shape", "layer", "lr_scale", "lr", "weight_decay"]
    assert len(lines) == 2 + len(rows)
    pos_line = next(line for line in lines if line.startswith("backbone.pos_embed "))
    assert pos_line.split()[1:4] == ["1x5x32", "0", f"{0.75 ** (DEPTH + 1):.6g}"]
    assert pos_line.split()[-1] == "0"


def test_layer_summary_has_one_line_per_layer(classifier: TinyClassifier) -> None:
    rows = audit_rows(param_groups(classifier, SPEC, 1e-3, 0.05))
    summary = layer_summary(rows)
    assert [s.layer_id for s in summary] == list(range(DEPTH + 2))
    assert sum(s.decay_tensors + s.no_decay_tensors for s in summary) == len(rows)
    assert sum(s.numel for s in summary) == sum(p.numel() for p in classifier.parameters())
    top = summary[-1]
    assert (top.lr_scale, top.decay_tensors) == (1.0, 2)
    assert len(format_layer_summary(rows).splitlines()) == 2 + DEPTH + 2
