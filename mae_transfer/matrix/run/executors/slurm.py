"""SLURM executor: one-node cells as submitit job arrays, multi-node cells as sbatch arrays.

submitit (as the official MAE repository uses): one job array per resource group; each job runs
the cell on one node (torchrun for several GPUs). A job is *checkpointable*: on preemption or
time-out submitit requeues it, and the cell resumes from its last checkpoint. With
``cluster='local'`` submitit's LocalExecutor runs the same jobs as local processes (tests).

Multi-node cells (``resources.nodes > 1``): one sbatch array per resource group, the very script
``--sbatch-only`` writes (`mae_transfer.matrix.run.executors.sbatch`): N nodes, the cell runner in
the batch step, the training one ``srun`` step over all nodes. Requeued (``scontrol requeue``,
preemption) or warned of its time limit (USR1, on which the script requeues itself), the job
records its cell interrupted and resumes it from the last checkpoint when it starts again.

Both kinds are recorded in the cell's state at submission (``job_id``), so a second ``run`` checks
the job instead of submitting the cell again; ``--wait`` follows each job through slurmctld
(`mae_transfer.matrix.run.slurm_jobs`) until it ended, requeues included, and the cell's own files
decide what happened: done (a valid result, also after a requeue), interrupted (the cell runner
recorded a signal: scancel), blocked (its pre-training failed) or failed.

sbatch only (``--sbatch-only``): the scripts under ``WORK_ROOT/slurm/``, to submit by hand.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mae_transfer.matrix.plan.planner import Cell, Plan
from mae_transfer.matrix.run.cell import run_cell
from mae_transfer.matrix.run.executors.sbatch import (
    REQUEUE_SIGNAL_SECONDS,
    SlurmSpecError,
    groups,
    launcher_of,
    submit_array,
    write_sbatch,
)
from mae_transfer.matrix.run.slurm_jobs import ENDED_STATES, UNKNOWN, slurm_job_state
from mae_transfer.matrix.run.state import blocked_reason, is_done, mark_blocked, mark_submitted, read_state, status
from mae_transfer.matrix.spec.matrix_spec import Resources

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0


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


@dataclass(frozen=True)
class ArrayTask:
    """One task of an sbatch array (a multi-node cell): its job id as squeue names it, ``JOB_I``."""

    job_id: str


def dependency_job(cell: Cell, submitted: dict[str, str]) -> str | None:
    """The SLURM job a transfer cell must wait for: its pre-training's job, submitted now or queued before.

    None when the cell has no pre-training or it is done.
    """
    if cell.depends_on is None or is_done(Path(cell.depends_on)):
        return None
    return submitted.get(cell.depends_on) or read_state(Path(cell.depends_on)).job_id


def _on_slurm(job) -> bool:
    import submitit

    return isinstance(job, (submitit.SlurmJob, ArrayTask))


def run_submitted(plan: Plan, cells: list[Cell], max_parallel: int, summary, cluster: str | None = None,
                  wait: bool = False) -> None:
    """Submit one job array per resource group; with ``wait`` block until all finish.

    Pre-training cells are submitted first; a transfer cell waiting on one is submitted with
    ``--dependency=afterok:JOB`` and ``--kill-on-invalid-dep=yes`` (SLURM cancels it when the
    pre-training fails; it is then recorded ``blocked``). Without a SLURM cluster (submitit's
    local executor) the pre-training jobs are waited for before their dependents are submitted.
    """
    starting = {cell.work_dir for cell in cells}
    first = [cell for cell in cells if cell.depends_on not in starting]  # their pre-training is done or queued
    jobs = _submit(plan, first, max_parallel, cluster, {})
    submitted = {cell.work_dir: str(job.job_id) for cell, job in jobs}
    later = [cell for cell in cells if cell not in first]
    if later and not all(_on_slurm(job) for _, job in jobs):
        for _, job in jobs:  # no job dependencies here: let the pre-training finish first
            with contextlib.suppress(Exception):
                job.result()
        submitted = {}
    jobs += _submit(plan, later, max_parallel, cluster, submitted)
    if not wait:
        summary.submitted += [cell.label for cell, _ in jobs]
        return
    for cell, job in jobs:
        _wait(cell, job)
        _record(cell, summary)


def _wait(cell: Cell, job) -> None:
    """Block until ``job`` (submitit's, or an sbatch array task) has ended; what it says is logged."""
    import submitit

    try:
        if isinstance(job, ArrayTask):
            final = wait_for_array_task(job.job_id)
            logger.info("cell %s: job %s ended (%s)", cell.label, job.job_id, final or "no longer known to slurmctld")
        elif isinstance(job, submitit.SlurmJob):
            wait_for_job(job)
        else:
            job.result()
    except Exception as error:  # noqa: BLE001 - the cell's state says what the job left
        logger.warning("cell %s: job %s: %s", cell.label, job.job_id, error)


def _record(cell: Cell, summary) -> None:
    """After its job ended, the cell's own files decide: a requeued job may have finished it later."""
    cell_dir = Path(cell.work_dir)
    if is_done(cell_dir, cell.id):
        summary.succeeded.append(cell.label)
    elif _blocked(cell, summary):
        return
    elif read_state(cell_dir).state == "interrupted":  # the cell runner recorded a signal (scancel)
        summary.interrupted.append(cell.label)
    else:
        summary.failed.append(cell.label)


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
    """Submit ``cells``: one job array per (resources, dependency) group; the (cell, job) pairs.

    Every job is recorded in its cell's state before anything else: a second ``run`` checks the
    job instead of submitting the cell again.
    """
    grouped: dict[tuple[Resources, str | None], list[Cell]] = defaultdict(list)
    for resources, group in groups(plan, cells).items():
        for cell in group:
            grouped[(resources, dependency_job(cell, submitted))].append(cell)
    jobs = []
    for (resources, dependency), group in grouped.items():
        if resources.nodes > 1:
            if cluster == "local":
                raise SlurmSpecError(f"{plan.spec.path}: resources.nodes={resources.nodes}: multi-node cells run on a "
                                     "SLURM cluster (--cluster slurm); submitit's local executor has one node")
            batch = [(cell, ArrayTask(job_id))
                     for cell, job_id in zip(group, submit_array(plan, resources, group, max_parallel, dependency))]
        else:
            batch = _submit_submitit(plan, resources, group, max_parallel, cluster, dependency)
        for cell, job in batch:
            logger.info("cell %s: submitted as job %s", cell.label, job.job_id)
            if _on_slurm(job):
                mark_submitted(Path(cell.work_dir), str(job.job_id))
        jobs += batch
    return jobs


def _submit_submitit(plan: Plan, resources: Resources, group: list[Cell], max_parallel: int, cluster: str | None,
                     dependency: str | None) -> list:
    import submitit

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
    launcher, nproc = launcher_of(resources)
    with executor.batch():
        return [(cell, executor.submit(CellJob(cell.work_dir, launcher, nproc))) for cell in group]


def wait_for_array_task(job_id: str, poll_seconds: float = POLL_SECONDS) -> str | None:
    """Block until slurmctld reports the job ended (or forgets it); its final state, None when forgotten.

    A requeued or preempted job is pending again, not ended: the wait goes on through it.
    """
    while True:
        state = slurm_job_state(job_id)
        if state is None or state in ENDED_STATES:
            return state
        if state == UNKNOWN:
            logger.warning("SLURM job %s: its state cannot be read now; still waiting", job_id)
        time.sleep(poll_seconds)


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


def run_slurm(plan: Plan, cells: list[Cell], max_parallel: int, summary, cluster: str | None = None,
              wait: bool = False, sbatch_only: bool = False) -> None:
    """The SLURM executor: submit (submitit; sbatch for multi-node cells), or write sbatch scripts only."""
    if sbatch_only:
        scripts = write_sbatch(plan, cells, max_parallel)
        submit = plan.spec.work_root / "slurm" / "submit.sh"
        for script in scripts:
            logger.info("wrote %s (submit with: %s)", script,
                        f"bash {submit}, which orders the stages" if submit.is_file() else f"sbatch {script}")
        summary.submitted += [cell.label for cell in cells]
        return
    run_submitted(plan, cells, max_parallel, summary, cluster=cluster, wait=wait)
