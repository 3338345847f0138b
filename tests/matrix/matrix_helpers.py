"""Helpers for the matrix execution tests: matrices over the real smoke configs, the CLI in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The classification smoke config's ViT is smaller than vit_tiny_patch16; these overrides make it
# the tiny arch so that the generated tiny checkpoint loads into it (as benchmarks/smoke.yaml does).
TINY_SHAPE = ("model.backbone.embed_dim: 192, model.backbone.num_heads: 3, model.backbone.patch_size: 16, "
              "model.backbone.depth: 12")
TINY_CLASSIFIER = "{" + TINY_SHAPE + "}"


def matrix_text(tasks: str, seeds: str = "1", extra: str = "") -> str:
    """A matrix with one generated tiny backbone and a generated iNat2017 set."""
    return f"""
name: t
backbones:
  - {{name: tiny, checkpoint: "generate:vit_tiny_patch16"}}
datasets:
  inat2017: {{generate: true}}
resources: {{gpus_per_cell: 0, time_limit_hours: 1}}
seeds: {seeds}
max_attempts: 3
{extra}
tasks:
{tasks}
"""


def cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``mae-transfer ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "mae_transfer.cli", *args], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout)
