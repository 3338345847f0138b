"""What SLURM says about a job: its state from slurmctld, and whether it is still queued or running."""

from __future__ import annotations

import logging
import re
import subprocess

logger = logging.getLogger(__name__)

# Job states after which a job runs no more (a requeued or preempted job is pending again).
ENDED_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                          "DEADLINE", "SPECIAL_EXIT"})
UNKNOWN = "UNKNOWN"  # slurmctld could not be asked (no scontrol, a time-out)


def slurm_job_state(job_id: str) -> str | None:
    """A job's state: slurmctld's (``scontrol show job``), else the accounting's (``sacct``).

    slurmctld keeps an ended job for ``MinJobAge`` seconds (300 by default); after that only
    ``sacct`` knows it, where the cluster keeps accounting (slurmdbd). Returns the state
    (``PENDING``, ``RUNNING``, ``COMPLETED``, ``CANCELLED``, ...), ``UNKNOWN`` when scontrol cannot
    be asked (not installed, a time-out), or None when neither knows the job any more.
    """
    try:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.warning("scontrol show job %s: %s", job_id, error)
        return UNKNOWN
    match = re.search(r"JobState=(\w+)", shown.stdout)
    return match.group(1) if match else accounted_state(job_id)


def accounted_state(job_id: str) -> str | None:
    """The job's state in SLURM's accounting (``sacct``), or None: no accounting here, or no such job."""
    try:
        shown = subprocess.run(["sacct", "--noheader", "--allocations", "--parsable2", "--format=JobID,State",
                                "--jobs", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in shown.stdout.splitlines() if shown.returncode == 0 else []:
        listed, _, state = line.partition("|")
        if listed == job_id and state:
            return state.split()[0]  # "CANCELLED by 0" -> CANCELLED
    return None


def job_waiting(job_id: str) -> bool:
    """A recorded job is still queued or running (its cell is not submitted again); UNKNOWN counts as waiting."""
    state = slurm_job_state(job_id)
    if state == UNKNOWN:
        logger.warning("SLURM job %s: its state cannot be read (scontrol); not submitting its cell again", job_id)
    return state is not None and state not in ENDED_STATES
