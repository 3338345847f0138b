"""Plan room: a spec -> cells (checkpoint x task x recipe x seed) with content ids, per-GPU batch,
accumulation and lr, resolved configs; nothing here runs a cell or reads its state.
"""

from mae_transfer.matrix.plan.planner import Cell, Plan, Refusal, Source, cells_dir, dataset_root, plan_matrix

__all__ = ["Cell", "Plan", "Refusal", "Source", "cells_dir", "dataset_root", "plan_matrix"]
