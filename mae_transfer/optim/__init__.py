"""Layer-wise lr decay for MAE ViT fine-tuning: spec -> parameter groups -> audit table.

Pure PyTorch; the mmengine optimizer-wrapper constructor that uses it lives in
``mae_transfer.integrations.optim_constructor``.
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

__all__ = [
    "AuditRow",
    "LayerAssignment",
    "LayerDecaySpec",
    "LayerSummary",
    "assign_layers",
    "audit_rows",
    "find_backbone",
    "format_audit_table",
    "format_layer_summary",
    "layer_id_for",
    "layer_summary",
    "param_groups",
]
