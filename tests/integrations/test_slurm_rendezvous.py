"""The rendezvous a ``--launcher slurm`` training derives from srun's variables (no cluster needed)."""

from __future__ import annotations

import pytest

from mae_transfer.integrations.slurm_rendezvous import (
    SlurmEnvironmentError,
    export_slurm_rendezvous,
    first_host,
    rendezvous_port,
    slurm_rendezvous,
)


@pytest.mark.parametrize(("nodelist", "host"), [
    ("node[1-2]", "node1"), ("gpu[007-010,012],cpu1", "gpu007"), ("a,b[1-3]", "a"), ("vm", "vm"),
    ("rack[2-3]-node[04-08]", "rack2-node04"), ("n[5,1-3]", "n5"), (" node1 ", "node1"),
])
def test_first_host_of_a_slurm_host_list(nodelist: str, host: str) -> None:
    assert first_host(nodelist) == host


@pytest.mark.parametrize("nodelist", ["", "a[1", "a]", "a[[1]]", "a[]", "a[x-y]", ",a"])
def test_malformed_host_lists_are_refused(nodelist: str) -> None:
    with pytest.raises(ValueError, match="malformed SLURM host list"):
        first_host(nodelist)


TASK = {"SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "15123",
        "SLURM_JOB_NODELIST": "node[1-2]", "MASTER_ADDR": "inherited-from-the-login-node", "MASTER_PORT": "29500"}


def test_every_task_of_a_job_meets_at_the_first_node_on_the_job_port() -> None:
    environ = dict(TASK)
    values = export_slurm_rendezvous(environ)
    assert values == {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node1",
                      "MASTER_PORT": str(15000 + 15123 % 15000)}
    assert {k: environ[k] for k in values} == values  # the inherited MASTER_ADDR/PORT are replaced
    # another task of the same job agrees; the step's node list wins over the job's
    other = slurm_rendezvous({**TASK, "SLURM_PROCID": "0", "SLURM_STEP_NODELIST": "node[2-3]"})
    assert (other["MASTER_ADDR"], other["MASTER_PORT"]) == ("node2", values["MASTER_PORT"])
    assert 15000 <= rendezvous_port(10**9 + 7) < 30000 and rendezvous_port("41") != rendezvous_port("42")


def test_outside_an_srun_step_the_missing_variables_are_named() -> None:
    with pytest.raises(SlurmEnvironmentError, match=r"SLURM_PROCID, SLURM_LOCALID.*srun"):
        slurm_rendezvous({"SLURM_NTASKS": "2", "SLURM_JOB_ID": "5", "SLURM_JOB_NODELIST": "n1"})
    with pytest.raises(SlurmEnvironmentError, match="SLURM_JOB_NODELIST not set"):
        slurm_rendezvous({k: v for k, v in TASK.items() if k != "SLURM_JOB_NODELIST"})
