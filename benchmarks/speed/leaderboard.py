"""Speed of planning and of the leaderboard: a 1,000-cell plan and a 10,000-result leaderboard.

    python benchmarks/speed/leaderboard.py [--cells 1000] [--results 10000]

Targets: each under 2 seconds on a 2-core CPU. The matrix has 10 backbones (1 MB checkpoint
files, hashed on the cold run and read from the digest cache on the warm one) x 10 task entries
x N seeds. Result files are written before timing; the leaderboard timing covers what
``mae-transfer leaderboard`` does: plan, read every result.json, aggregate, render md and csv.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

TASKS = """
tasks:
  - {task: coco-maskrcnn, recipe: paper}
  - {task: coco-maskrcnn, recipe: vitdet}
  - {task: coco-maskrcnn, recipe: reduced}
  - {task: ade20k-upernet, recipe: paper}
  - {task: ade20k-upernet, recipe: paper, eval: ms+flip}
  - {task: inat2017, recipe: paper}
  - {task: inat2018, recipe: paper}
  - {task: inat2019, recipe: paper}
  - {task: places205, recipe: paper}
  - {task: places365, recipe: paper}
"""
METRICS = {"coco-maskrcnn": ("AP_box", "AP_mask"), "ade20k-upernet": ("mIoU", "mAcc", "aAcc")}


def write_matrix(root: Path, seeds: int) -> Path:
    lines = [f"name: speed{seeds}", f"seeds: {seeds}", "backbones:"]
    for index in range(10):
        checkpoint = root / f"ckpt{index}.pth"
        if not checkpoint.exists():
            checkpoint.write_bytes(os.urandom(1 << 20))
        lines.append(f"  - {{name: b{index}, checkpoint: {checkpoint.name}, arch: vit_base_patch16}}")
    path = root / f"speed{seeds}.yaml"
    path.write_text("\n".join(lines) + TASKS)
    return path


def timed(label: str, func):
    start = time.perf_counter()
    value = func()
    elapsed = time.perf_counter() - start
    print(f"{label:<58s} {elapsed:7.3f} s  {'ok' if elapsed < 2.0 else 'OVER 2 s'}")
    return value, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--results", type=int, default=10000)
    args = parser.parse_args()
    from mae_transfer.leaderboard import build_leaderboard
    from mae_transfer.matrix.plan.planner import plan_matrix
    from mae_transfer.matrix.spec.matrix_spec import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["MAE_TRANSFER_CACHE"] = str(root / "cache")
        matrix = write_matrix(root, args.cells // 100)
        plan, cold = timed(f"plan, {args.cells} cells, cold digest cache (10 x 1 MB)", lambda: plan_matrix(load_spec(matrix)))
        assert len(plan.cells) == args.cells and len({c.id for c in plan.cells}) == args.cells
        _, warm = timed(f"plan, {args.cells} cells, warm digest cache", lambda: plan_matrix(load_spec(matrix)))

        big = plan_matrix(load_spec(write_matrix(root, args.results // 100)))
        rng = random.Random(0)
        for cell in big.cells:
            cell_dir = Path(cell.work_dir)
            cell_dir.mkdir(parents=True)
            metrics = {m: rng.uniform(40, 60) for m in METRICS.get(cell.task, ("top1", "top5"))}
            payload = {"schema": 1, "cell": {"backbone": cell.backbone, "task": cell.task, "recipe": cell.recipe,
                                             "seed": cell.seed}, "metrics": metrics,
                       "provenance": {"eval_mode": cell.eval_mode, "checkpoint_policy": "last", "effective_batch": 64,
                                      "gpus": 8, "git_commit": "0123456789abcdef", "git_dirty": False}}
            (cell_dir / "result.json").write_text(json.dumps(payload))

        def leaderboard():
            board = build_leaderboard(plan_matrix(load_spec(root / f"speed{args.results // 100}.yaml")))
            return board, board.render("md"), board.render("csv")

        (board, markdown, _), total = timed(f"leaderboard, {args.results} result files (plan+read+md+csv)", leaderboard)
        done = sum(o.status == "done" for o in board.collection.outcomes)
        assert done == args.results, done
        print(f"{done} results aggregated into {sum(len(t.rows) for t in board.tables)} rows; "
              f"markdown {len(markdown):,} characters")
    return 0 if max(cold, warm, total) < 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
