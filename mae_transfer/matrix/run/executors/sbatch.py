"""sbatch array scripts: what ``run --sbatch-only`` writes and what ``run`` submits for multi-node cells.

One script per group of cells with the same resources: an array over the cells, listed in the
script itself (a job that is requeued later reads the list it was submitted with, never a newer
one), ``--requeue``, and USR1 two minutes before the time limit, on which the script requeues
its task. The batch step runs the cell runner (``python -m mae_transfer.matrix.run.cell``), which
holds the cell's lock and state and launches the training: in place (one process), under torchrun
(one node, several GPUs) or as one ``srun`` step of N nodes x one task per GPU (``--launcher
slurm``; one task per node without GPUs), whose tasks meet at the first node
(`mae_transfer.integrations.slurm_rendezvous`).

``run --executor slurm`` submits multi-node cells with exactly this text (:func:`submit_array`),
so a script written by ``--sbatch-only`` and submitted by hand runs the way ``run`` would.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from mae_transfer.matrix.plan.planner import Cell, Plan
from mae_transfer.matrix.spec.matrix_spec import PARTITION_PATTERN, Resources
from mae_transfer.paths import import_root

logger = logging.getLogger(__name__)

REQUEUE_SIGNAL_SECONDS = 120


class SlurmSpecError(ValueError):
    """A matrix's resources cannot be expressed as a SLURM job; the message names file and key."""


def check_resources(plan: Plan, resources: Resources, key: str = "resources") -> None:
    """Refuse what would break a SLURM job: matrix name or partition syntax, non-finite time limit.

    ``key``: where ``resources`` come from in the matrix (``tasks[2].resources``), for the message.

    Raises:
        SlurmSpecError: naming the matrix file, the key and what was expected.
    """
    if not PARTITION_PATTERN.fullmatch(plan.spec.name):
        raise SlurmSpecError(f"{plan.spec.path}: name={plan.spec.name!r}: a SLURM job name needs letters, digits, "
                             "'_', '.', '-' only")
    where = f"{plan.spec.path}: {key}"
    partition = resources.partition
    if partition is not None and not (isinstance(partition, str) and PARTITION_PATTERN.fullmatch(partition)):
        raise SlurmSpecError(f"{where}.partition={partition!r}: expected a SLURM partition name (letters, digits, "
                             "'_', '.', '-'; several separated by commas), with no spaces or shell characters")
    hours = resources.time_limit_hours
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise SlurmSpecError(f"{where}.time_limit_hours={hours!r}: expected a finite number of hours above 0")


def launcher_of(resources: Resources) -> tuple[str, int]:
    """How a cell's training is launched on its allocation, and its processes per node."""
    nproc = max(resources.gpus_per_cell, 1)
    if resources.nodes > 1:
        return "slurm", nproc
    return ("pytorch" if nproc > 1 else "none"), nproc


def groups(plan: Plan, cells: list[Cell]) -> dict[Resources, list[Cell]]:
    """The cells by resources, each checked first (:func:`check_resources`)."""
    grouped: dict[Resources, list[Cell]] = defaultdict(list)
    for cell in cells:
        check_resources(plan, cell.resources)
        grouped[cell.resources].append(cell)
    return grouped


def slurm_time(hours: float) -> str:
    """``--time`` of ``hours``, rounded up to whole minutes: ``HH:MM:00``."""
    minutes = int(math.ceil(hours * 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def sbatch_script(plan: Plan, resources: Resources, cells: list[Cell], max_parallel: int,
                  python: str = sys.executable) -> str:
    """The text of one sbatch array script running ``cells`` (all with ``resources``).

    Paths are shell-quoted (a work root may contain spaces or quotes); the resources are checked first.

    Raises:
        SlurmSpecError: a partition, time limit or log path that SLURM cannot take.
    """
    check_resources(plan, resources)
    launcher, nproc = launcher_of(resources)
    multi_node = resources.nodes > 1
    logs = plan.spec.work_root / "slurm" / "logs"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=mae-transfer-{plan.spec.name}",
        f"#SBATCH --array=0-{len(cells) - 1}%{max_parallel}",
        f"#SBATCH --nodes={resources.nodes}",
        # multi-node: the allocation holds the srun step's tasks (one per GPU, or one per node);
        # one node: one task, the cell runner, which starts torchrun or the training itself
        f"#SBATCH --ntasks-per-node={nproc if multi_node else 1}",
        *([f"#SBATCH --gpus-per-node={resources.gpus_per_cell}"] if resources.gpus_per_cell else []),
        f"#SBATCH --cpus-per-task={resources.cpus_per_gpu * (1 if multi_node else nproc)}",
        f"#SBATCH --time={slurm_time(resources.time_limit_hours)}",
        *([f"#SBATCH --partition={resources.partition}"] if resources.partition else []),
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{REQUEUE_SIGNAL_SECONDS}",
        f"#SBATCH --output={_sbatch_path(logs / '%A_%a.out')}",
        "#SBATCH --open-mode=append",  # a requeued task adds to its log instead of truncating it
        "set -euo pipefail",
        "CELLS=(",
        *(f"  {shlex.quote(cell.work_dir)}" for cell in cells),
        ")",
        'CELL_DIR="${CELLS[$SLURM_ARRAY_TASK_ID]}"',
        # USR1 (the time limit is near): requeue this task; SLURM then sends SIGTERM to every
        # process of the job, and the cell runner records the cell interrupted (resumable)
        'requeue() { scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; }',
        "trap requeue USR1",
        'forward() { kill -TERM "$cell" 2>/dev/null || true; }',
        "trap forward TERM",
        # the submitting directory (relative data roots), and this very mae_transfer package
        f"cd {shlex.quote(str(Path.cwd()))}",
        f'export PYTHONPATH={shlex.quote(str(import_root()))}"${{PYTHONPATH:+:$PYTHONPATH}}"',
        f'{shlex.quote(python)} -m mae_transfer.matrix.run.cell "$CELL_DIR" --launcher {launcher} --nproc {nproc} &',
        "cell=$!",
        # a trapped signal ends `wait` early: wait again until the cell runner has recorded the
        # cell's state and exited, and exit with its code
        'while :; do wait "$cell" && exit 0; code=$?; kill -0 "$cell" 2>/dev/null || exit "$code"; done',
        "",
    ]
    return "\n".join(lines)


def _sbatch_path(path: Path) -> str:
    """A path in an ``#SBATCH`` line: sbatch reads these itself and takes double quotes."""
    text = str(path)
    if '"' in text or "\n" in text:
        raise SlurmSpecError(f"{text!r}: a SLURM log path cannot contain double quotes or newlines")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def write_sbatch(plan: Plan, cells: list[Cell], max_parallel: int) -> list[Path]:
    """Write one sbatch script per resource group under ``WORK_ROOT/slurm/``; returns the scripts.

    With pre-training cells among ``cells``, their transfer cells get scripts of their own and
    ``submit.sh`` is written too: it submits the pre-training arrays, then the transfer arrays with
    ``--dependency=afterok:`` on all of them (and ``--kill-on-invalid-dep=yes``).
    """
    starting = {cell.work_dir for cell in cells}
    first = [cell for cell in cells if cell.depends_on not in starting]
    later = [cell for cell in cells if cell.depends_on in starting]
    texts = [sbatch_script(plan, resources, group, max_parallel) for resources, group in groups(plan, first).items()]
    dependent_texts = [sbatch_script(plan, resources, group, max_parallel)
                       for resources, group in groups(plan, later).items()]
    folder = plan.spec.work_root / "slurm"  # everything is checked before anything is written
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    scripts = []
    for index, text in enumerate(texts + dependent_texts):
        script = folder / f"array-{index}.sbatch"
        script.write_text(text)
        scripts.append(script)
    submit = folder / "submit.sh"
    submit.unlink(missing_ok=True)  # left by an earlier run with stages
    if later:
        lines = ["#!/bin/bash", "# the pre-training arrays first; the transfer arrays wait for all of them", "set -euo pipefail"]
        lines += [f"job{i}=$(sbatch --parsable {shlex.quote(str(script))})" for i, script in enumerate(scripts[:len(texts)])]
        after = ":".join(f"${{job{i}%%;*}}" for i in range(len(texts)))
        lines += [f"sbatch --dependency=afterok:{after} --kill-on-invalid-dep=yes {shlex.quote(str(script))}"
                  for script in scripts[len(texts):]]
        submit.write_text("\n".join(lines) + "\n")
        submit.chmod(0o755)
    return scripts


class SubmissionError(RuntimeError):
    """``sbatch`` refused a script; the message names the script and sbatch's answer."""


def submit_array(plan: Plan, resources: Resources, cells: list[Cell], max_parallel: int,
                 dependency: str | None = None) -> list[str]:
    """Write the array script of ``cells`` under ``WORK_ROOT/slurm/submitted/`` and submit it.

    The script is :func:`sbatch_script`'s text, named by its content (a later submission never
    overwrites a queued one's). ``dependency``: a job the array waits for (``afterok``; SLURM
    cancels the array when that job fails). Returns the array task ids, ``JOB_I`` per cell.

    Raises:
        SubmissionError: sbatch failed, naming the script and sbatch's message.
    """
    text = sbatch_script(plan, resources, cells, max_parallel)
    folder = plan.spec.work_root / "slurm" / "submitted"
    folder.mkdir(parents=True, exist_ok=True)
    (plan.spec.work_root / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
    script = folder / f"array-{hashlib.sha256(text.encode()).hexdigest()[:12]}.sbatch"
    script.write_text(text)
    command = ["sbatch", "--parsable"]
    if dependency is not None:
        command += [f"--dependency=afterok:{dependency}", "--kill-on-invalid-dep=yes"]
    try:
        done = subprocess.run([*command, str(script)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SubmissionError(f"{script}: sbatch could not be run: {error}") from error
    if done.returncode != 0 or not done.stdout.strip():
        raise SubmissionError(f"{script}: sbatch refused it: {(done.stderr or done.stdout).strip()[:500]}")
    job = done.stdout.strip().split(";")[0]  # --parsable: "JOB" or "JOB;CLUSTER"
    logger.info("submitted %s as array job %s (%d cell(s))", script, job, len(cells))
    return [f"{job}_{index}" for index in range(len(cells))]
