"""Rendezvous of a training launched by ``srun`` (``--launcher slurm``), from SLURM's variables.

``srun --nodes N --ntasks-per-node P python -m mae_transfer.train ... --launcher slurm`` starts
N x P processes; each reads its rank from SLURM (``SLURM_PROCID``, ``SLURM_LOCALID``,
``SLURM_NTASKS``) and meets the others at rank 0's node, the first node of the step
(``SLURM_STEP_NODELIST``, else ``SLURM_JOB_NODELIST``: block distribution puts rank 0 there).
That node's name must resolve, on every node, to an address of it the others can reach -- on a
real cluster its host name, on the two-node test cluster (tools/slurm/setup_cluster.sh) its
namespace's address through /etc/hosts.

The port is derived from the job id (:func:`rendezvous_port`): every task of a job computes the
same one without talking to the others, two jobs sharing a node rarely collide (mmengine's
default, 29500 for every job, always does), and a requeued job keeps its port.

Values inherited from the submitting shell (sbatch exports the environment) are replaced: a
``MASTER_ADDR`` that was right where ``run`` started is wrong on the job's nodes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping

__all__ = ["SlurmEnvironmentError", "export_slurm_rendezvous", "first_host", "rendezvous_port", "slurm_rendezvous"]

# Ports 15000-29999: below Linux's ephemeral range (32768-60999), above the well-known services.
PORT_BASE, PORT_SPAN = 15000, 15000


class SlurmEnvironmentError(RuntimeError):
    """The process was launched with ``--launcher slurm`` but not as a task of an ``srun`` step."""


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: ``node[1-2]`` -> ``node1``, ``gpu[007-010,012],cpu1`` -> ``gpu007``.

    Raises:
        ValueError: an empty or malformed list (nested or unbalanced brackets, an empty range).
    """
    depth, entry = 0, ""
    for char in nodelist.strip():  # the first entry ends at a comma outside brackets
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            raise ValueError(f"malformed SLURM host list {nodelist!r}")
        if char == "," and depth == 0:
            break
        entry += char
    if depth != 0 or not entry:
        raise ValueError(f"malformed SLURM host list {nodelist!r}")

    def lowest(group: re.Match) -> str:  # "[007-010,012]" -> "007" (zero padding kept)
        first = group.group(1).split(",")[0].split("-")[0]
        if not first.isdigit():
            raise ValueError(f"malformed SLURM host list {nodelist!r}")
        return first

    return re.sub(r"\[([^\]]*)\]", lowest, entry)


def rendezvous_port(job_id: str | int) -> int:
    """The rendezvous port of a job: the same for all of its tasks and across its requeues."""
    return PORT_BASE + int(job_id) % PORT_SPAN


def slurm_rendezvous(environ: Mapping[str, str]) -> dict[str, str]:
    """``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` of this srun task.

    Raises:
        SlurmEnvironmentError: a variable srun sets is missing (not a task of an srun step).
    """
    needed = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_JOB_ID")
    missing = [name for name in needed if not environ.get(name)]
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST")
    if missing or not nodelist:
        absent = ", ".join(missing + ([] if nodelist else ["SLURM_JOB_NODELIST"]))
        raise SlurmEnvironmentError(f"--launcher slurm: {absent} not set; start the training as a task of an srun "
                                    "step (srun --nodes N --ntasks-per-node P python -m mae_transfer.train ...)")
    return {"RANK": environ["SLURM_PROCID"], "LOCAL_RANK": environ["SLURM_LOCALID"],
            "WORLD_SIZE": environ["SLURM_NTASKS"], "MASTER_ADDR": first_host(nodelist),
            "MASTER_PORT": str(rendezvous_port(environ["SLURM_JOB_ID"]))}


def export_slurm_rendezvous(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set :func:`slurm_rendezvous`'s variables in ``environ`` (what mmengine and torch read); returns them."""
    values = slurm_rendezvous(environ)
    environ.update(values)
    return values
