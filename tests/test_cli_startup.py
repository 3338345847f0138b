"""`plan`, `status` and `leaderboard` start without torch (mmengine parses the configs): about a second, not ten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import contextlib, io, sys
from mae_transfer.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    for command in ("plan", "status", "leaderboard"):
        assert main([command, sys.argv[1], "--work-root", sys.argv[2]]) == 0, command
heavy = sorted(name for name in ("torch", "timm", "torchvision", "mmdet", "mmseg") if name in sys.modules)
print(",".join(heavy) or "none")
"""


def test_plan_status_and_leaderboard_import_no_torch(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "benchmarks" / "smoke.yaml"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "none", out.stdout


def test_help_lists_every_command_group() -> None:
    out = subprocess.run([sys.executable, "-m", "mae_transfer.cli", "--help"], capture_output=True, text=True,
                         timeout=120, cwd=str(REPO))
    assert out.returncode == 0, out.stderr
    for command in ("inspect", "convert", "data", "plan", "run", "status", "leaderboard", "visualize"):
        assert command in out.stdout
