"""Optimisation for MAE transfer: layer-wise lr decay (spec -> parameter groups -> audit table)
and MAE's LARS for the linear probe.

Pure PyTorch; the mmengine optimizer-wrapper constructor that uses layer decay lives in
``mae_transfer.integrations.optim_constructor``, and ``MAETransferLars`` is registered by
``mae_transfer.integrations.classification``.
"""

from mae_transfer.optim.audit import (
    AuditRow,
    LayerSummary,
    audit_rows,
    format_audit_table,
    format_layer_summary,
    layer_summary,
)
from mae_transfer.optim.layer_decay import (
    LayerAssignment,
    LayerDecaySpec,
    assign_layers,
    find_backbone,
    layer_id_for,
    param_groups,
)
from mae_transfer.optim.lars import LARS, lars_direction

__all__ = [
    "LARS",
    "AuditRow",
    "LayerAssignment",
    "LayerDecaySpec",
    "LayerSummary",
    "assign_layers",
    "audit_rows",
    "find_backbone",
    "format_audit_table",
    "format_layer_summary",
    "lars_direction",
    "layer_id_for",
    "layer_summary",
    "param_groups",
]
