"""The benchmark matrix: spec (YAML, validated), plan (cells with content ids), run, state, results.

    spec = load_spec("benchmarks/smoke.yaml")
    plan = plan_matrix(spec)
    execute(plan, executor="local")
"""

from mae_transfer.matrix.plan.planner import Cell, Plan, plan_matrix
from mae_transfer.matrix.spec.matrix_spec import MatrixSpec, SpecError, load_spec

__all__ = ["Cell", "MatrixSpec", "Plan", "SpecError", "load_spec", "plan_matrix"]
