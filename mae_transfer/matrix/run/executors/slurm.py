"""SLURM executor: submitit job arrays with requeue, or generated sbatch array scripts.

submitit (as the official MAE repository uses): one job array per resource group; each job runs
the cell on one node (torchrun for several GPUs). A job is *checkpointable*: on preemption or
time-out submitit requeues it, and the cell resumes from its last checkpoint. With
``cluster='local'`` submitit's LocalExecutor runs the same jobs as local processes (tests).

sbatch (``--sbatch-only``): one script per resource group under ``WORK_ROOT/slurm/``, an array
over a cell list, ``--requeue`` and a USR1 signal two minutes before the time limit that requeues
the task; multi-node cells run ``tools/train.py --launcher slurm`` under ``srun``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

from mae_transfer.matrix.run.cell import run_cell
from mae_transfer.matrix.plan.planner import Cell, Plan
from mae_transfer.paths import import_root
from mae_transfer.matrix.spec.matrix_spec import Resources
from mae_transfer.matrix.run.slurm_jobs import ENDED_STATES, slurm_job_state
from mae_transfer.matrix.run.state import blocked_reason, is_done, mark_blocked, mark_submitted, read_state, status

logger = logging.getLogger(__name__)

REQUEUE_SIGNAL_SECONDS = 120
# SLURM partition names (comma-separated for several): no spaces, quotes or shell metacharacters,
# which would end the #SBATCH header or run as shell lines.
PARTITION_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*")


class SlurmSpecError(ValueError):
    """A matrix's resources cannot be expressed as a SLURM job; the message names file and key."""


def check_resources(plan: Plan, resources: Resources) -> None:
    """Refuse what would break a SLURM job: matrix name or partition syntax, non-finite time limit.

    Raises:
        SlurmSpecError: naming the matrix file, the key and what was expected.
    """
    if not PARTITION_PATTERN.fullmatch(plan.spec.name):
        raise SlurmSpecError(f"{plan.spec.path}: name={plan.spec.name!r}: a SLURM job name needs letters, digits, "
                             "'_', '.', '-' only")
    where = f"{plan.spec.path}: resources"
    partition = resources.partition
    if partition is not None and not (isinstance(partition, str) and PARTITION_PATTERN.fullmatch(partition)):
        raise SlurmSpecError(f"{where}.partition={partition!r}: expected a SLURM partition name (letters, digits, "
                             "'_', '.', '-'; several separated by commas), with no spaces or shell characters")
    hours = resources.time_limit_hours
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise SlurmSpecError(f"{where}.time_limit_hours={hours!r}: expected a finite number of hours above 0")


def launcher_for(cell: Cell, nproc: int) -> str:
    """How a cell's training is launched on its allocation."""
    if cell.resources.nodes > 1:
        return "slurm"
    return "pytorch" if nproc > 1 else "none"


class CellJob:
    """A submitit callable that runs one cell and asks to be requeued when preempted."""

    def __init__(self, cell_dir: str, launcher: str, nproc: int) -> None:
        self.cell_dir, self.launcher, self.nproc = cell_dir, launcher, nproc

    def __call__(self) -> bool:
        """Run the cell; a failed cell fails the job (so ``afterok`` dependents are not started)."""
        logging.basicConfig(level=logging.INFO)
        ok = run_cell(Path(self.cell_dir), self.launcher, self.nproc)
        if not ok and status(Path(self.cell_dir)).state == "failed":
            raise RuntimeError(f"cell {self.cell_dir} failed (its state.json and log.txt say why)")
        return ok

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on preemption or time-out: requeue; the cell resumes on restart."""
        import submitit

        return submitit.helpers.DelayedSubmission(CellJob(self.cell_dir, self.launcher, self.nproc))


def _groups(plan: Plan, cells: list[Cell]) -> dict[Resources, list[Cell]]:
    """The cells by resources, each checked first (`check_resources`)."""
    groups: dict[Resources, list[Cell]] = defaultdict(list)
    for cell in cells:
        check_resources(plan, cell.resources)
        groups[cell.resources].append(cell)
    return groups


def dependency_job(cell: Cell, submitted: dict[str, str]) -> str | None:
    """The SLURM job a transfer cell must wait for: its pre-training's job, submitted now or queued before.

    None when the cell has no pre-training or it is done.
    """
    if cell.depends_on is None or is_done(Path(cell.depends_on)):
        return None
    return submitted.get(cell.depends_on) or read_state(Path(cell.depends_on)).job_id


def run_submitit(plan: Plan, cells: list[Cell], max_parallel: int, summary, cluster: str | None = None,
                 wait: bool = False) -> None:
    """Submit one job array per resource group; with ``wait`` block until all finish.

    Pre-training cells are submitted first; a transfer cell waiting on one is submitted with
    ``--dependency=afterok:JOB`` and ``--kill-on-invalid-dep=yes`` (SLURM cancels it when the
    pre-training fails; it is then recorded ``blocked``). Without a SLURM cluster (submitit's
    local executor) the pre-training jobs are waited for before their dependents are submitted.
    """
    import submitit

    starting = {cell.work_dir for cell in cells}
    first = [cell for cell in cells if cell.depends_on not in starting]  # their pre-training is done or queued
    jobs = _submit(plan, first, max_parallel, cluster, {})
    submitted = {cell.work_dir: str(job.job_id) for cell, job in jobs}
    later = [cell for cell in cells if cell not in first]
    if later and not all(isinstance(job, submitit.SlurmJob) for _, job in jobs):
        for _, job in jobs:  # no job dependencies here: let the pre-training finish first
            with contextlib.suppress(Exception):
                job.result()
        submitted = {}
    jobs += _submit(plan, later, max_parallel, cluster, submitted)
    if not wait:
        summary.submitted += [cell.label for cell, _ in jobs]
    if wait:
        for cell, job in jobs:
            try:
                wait_for_job(job) if isinstance(job, submitit.SlurmJob) else job.result()
            except Exception as error:  # noqa: BLE001 - the cell's state says what the job left
                logger.warning("cell %s: job %s: %s", cell.label, job.job_id, error)
            # the cell's state decides, not the job's exit: a requeued job may finish the cell later
            ok = is_done(Path(cell.work_dir), cell.id)
            if not ok and _blocked(cell, summary):
                continue
            (summary.succeeded if ok else summary.failed).append(cell.label)


def _blocked(cell: Cell, summary) -> bool:
    """After a transfer job ended without a result: record it blocked when its pre-training failed."""
    if cell.depends_on is None or is_done(Path(cell.depends_on)):
        return False
    mark_blocked(Path(cell.work_dir), blocked_reason(Path(cell.depends_on)))
    summary.blocked.append(cell.label)
    logger.warning("cell %s: blocked: its pre-training cell failed", cell.label)
    return True


def _submit(plan: Plan, cells: list[Cell], max_parallel: int, cluster: str | None,
            submitted: dict[str, str]) -> list:
    """Submit ``cells``: one job array per (resources, dependency) group; the (cell, job) pairs."""
    import submitit

    groups: dict[tuple[Resources, str | None], list[Cell]] = defaultdict(list)
    for resources, group in _groups(plan, cells).items():
        for cell in group:
            groups[(resources, dependency_job(cell, submitted))].append(cell)
    jobs = []
    for (resources, dependency), group in groups.items():
        if resources.nodes > 1:
            raise ValueError(f"{plan.spec.path}: resources.nodes={resources.nodes}: multi-node cells need the sbatch "
                             "path (--sbatch-only); submitit runs one node per cell here")
        executor = submitit.AutoExecutor(folder=str(plan.spec.work_root / "slurm" / "%j"), cluster=cluster)
        gpus = resources.gpus_per_cell
        executor.update_parameters(
            name=f"mae-transfer-{plan.spec.name}", nodes=1, tasks_per_node=1, gpus_per_node=gpus,
            cpus_per_task=resources.cpus_per_gpu * max(gpus, 1),
            timeout_min=max(1, math.ceil(resources.time_limit_hours * 60)),
            slurm_array_parallelism=max_parallel, slurm_signal_delay_s=REQUEUE_SIGNAL_SECONDS,
            **({"slurm_partition": resources.partition} if resources.partition else {}),
        )
        if dependency is not None:
            executor.update_parameters(slurm_additional_parameters={"dependency": f"afterok:{dependency}",
                                                                    "kill_on_invalid_dep": "yes"})
        with executor.batch():
            batch = [(cell, executor.submit(CellJob(cell.work_dir, launcher_for(cell, max(gpus, 1)), max(gpus, 1))))
                     for cell in group]
        for cell, job in batch:
            logger.info("cell %s: submitted as job %s", cell.label, job.job_id)
            if isinstance(job, submitit.SlurmJob):
                # recorded before anything else: a second `run` checks this job instead of resubmitting
                mark_submitted(Path(cell.work_dir), str(job.job_id))
        jobs += batch
    return jobs


def wait_for_job(job, poll_seconds: float = 5.0, grace_seconds: float = 30.0) -> bool:
    """Block until a submitit SLURM job has ended; its cell function's return value.

    submitit learns that a job ended from its result file or from ``sacct``; on a cluster without
    accounting storage a job killed before it wrote a result (cancelled, out of memory, node
    failure) would be waited for forever. Here a job that slurmctld reports ended, or no longer
    knows, and that left no result within ``grace_seconds`` (a shared filesystem may show files
    late) is a failure naming its state and log.

    Raises:
        RuntimeError: the job ended without a result.
        submitit.core.utils.FailedJobError: the cell function raised inside the job.
    """
    ended_since = None
    while not job.paths.result_pickle.exists():
        state = slurm_job_state(job.job_id)
        if state is None or state in ENDED_STATES:
            ended_since = ended_since or time.monotonic()
            if time.monotonic() - ended_since > grace_seconds:
                raise RuntimeError(f"job {job.job_id} ended ({state or 'no longer known to slurmctld'}) without a "
                                   f"result; its log: {job.paths.stderr}")
        else:
            ended_since = None
        time.sleep(poll_seconds)
    return bool(job.result())


def _time(hours: float) -> str:
    minutes = int(math.ceil(hours * 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def sbatch_script(plan: Plan, resources: Resources, cell_list: Path, count: int, max_parallel: int,
                  python: str = sys.executable) -> str:
    """The text of one sbatch array script running the cells listed in ``cell_list``.

    Paths are shell-quoted (a work root may contain spaces); the resources are checked first.

    Raises:
        SlurmSpecError: a partition or time limit that SLURM cannot take.
    """
    check_resources(plan, resources)
    gpus, nodes = resources.gpus_per_cell, resources.nodes
    nproc = max(gpus, 1)
    launcher = "slurm" if nodes > 1 else ("pytorch" if nproc > 1 else "none")
    logs = plan.spec.work_root / "slurm" / "logs"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=mae-transfer-{plan.spec.name}",
        f"#SBATCH --array=0-{count - 1}%{max_parallel}",
        f"#SBATCH --nodes={nodes}",
        f"#SBATCH --ntasks-per-node={nproc if nodes > 1 else 1}",
        *([f"#SBATCH --gpus-per-node={gpus}"] if gpus else []),
        f"#SBATCH --cpus-per-task={resources.cpus_per_gpu * (1 if nodes > 1 else nproc)}",
        f"#SBATCH --time={_time(resources.time_limit_hours)}",
        *([f"#SBATCH --partition={resources.partition}"] if resources.partition else []),
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{REQUEUE_SIGNAL_SECONDS}",
        f"#SBATCH --output={_sbatch_path(logs / '%A_%a.out')}",
        "set -euo pipefail",
        f'CELL_DIR="$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(cell_list))})"',
        'requeue() { scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; }',
        "trap requeue USR1",
        # the submitting directory (relative data roots), and this very mae_transfer package
        f"cd {shlex.quote(str(Path.cwd()))}",
        f'export PYTHONPATH={shlex.quote(str(import_root()))}"${{PYTHONPATH:+:$PYTHONPATH}}"',
        f'{shlex.quote(python)} -m mae_transfer.matrix.run.cell "$CELL_DIR" --launcher {launcher} --nproc {nproc} &',
        "wait $!",
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
    """Write one cell list and one sbatch script per resource group; returns the scripts.

    With pre-training cells among ``cells``, their transfer cells get scripts of their own and
    ``submit.sh`` is written too: it submits the pre-training arrays, then the transfer arrays with
    ``--dependency=afterok:`` on all of them (and ``--kill-on-invalid-dep=yes``).
    """
    starting = {cell.work_dir for cell in cells}
    first = [cell for cell in cells if cell.depends_on not in starting]
    later = [cell for cell in cells if cell.depends_on in starting]
    scripts = _write_arrays(plan, first, max_parallel, 0)
    submit = plan.spec.work_root / "slurm" / "submit.sh"
    submit.unlink(missing_ok=True)  # left by an earlier run with stages
    if later:
        dependents = _write_arrays(plan, later, max_parallel, len(scripts))
        lines = ["#!/bin/bash", "# the pre-training arrays first; the transfer arrays wait for all of them", "set -euo pipefail"]
        lines += [f"job{i}=$(sbatch --parsable {shlex.quote(str(script))})" for i, script in enumerate(scripts)]
        after = ":".join(f"${{job{i}%%;*}}" for i in range(len(scripts)))
        lines += [f"sbatch --dependency=afterok:{after} --kill-on-invalid-dep=yes {shlex.quote(str(script))}"
                  for script in dependents]
        submit.write_text("\n".join(lines) + "\n")
        submit.chmod(0o755)
        scripts += dependents
    return scripts


def _write_arrays(plan: Plan, cells: list[Cell], max_parallel: int, start: int) -> list[Path]:
    folder = plan.spec.work_root / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    scripts = []
    for index, (resources, group) in enumerate(_groups(plan, cells).items(), start=start):
        cell_list = folder / f"cells-{index}.txt"
        if any("\n" in cell.work_dir for cell in group):
            raise SlurmSpecError(f"{plan.spec.work_root}: a work root with a newline cannot be listed for sbatch")
        cell_list.write_text("".join(f"{cell.work_dir}\n" for cell in group))
        script = folder / f"array-{index}.sbatch"
        script.write_text(sbatch_script(plan, resources, cell_list, len(group), max_parallel))
        scripts.append(script)
    return scripts


def run_slurm(plan: Plan, cells: list[Cell], max_parallel: int, summary, cluster: str | None = None,
              wait: bool = False, sbatch_only: bool = False) -> None:
    """The SLURM executor: submitit by default, or sbatch scripts to submit by hand."""
    if sbatch_only:
        scripts = write_sbatch(plan, cells, max_parallel)
        submit = plan.spec.work_root / "slurm" / "submit.sh"
        for script in scripts:
            logger.info("wrote %s (submit with: %s)", script,
                        f"bash {submit}, which orders the stages" if submit.is_file() else f"sbatch {script}")
        summary.submitted += [cell.label for cell in cells]
        return
    run_submitit(plan, cells, max_parallel, summary, cluster=cluster, wait=wait)
