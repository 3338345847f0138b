"""Whether a plan's cells fit a SLURM cluster, from sinfo's text (no cluster needed; issue 23 item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.run.executors.slurm_cluster import (
    cluster_problems,
    describe_partitions,
    parse_gpus,
    parse_sinfo,
    parse_time_limit,
)
from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec

# sinfo -h -N -a -o "%P|%N|%c|%G|%l|%a": a default CPU partition of 2 nodes, a GPU partition of 8
# nodes x 8 GPUs (one of them with 4) limited to 2 days, a drained-down one
SINFO = "\n".join([
    "debug*|node1|2|(null)|infinite|up",
    "debug*|node2|2|(null)|infinite|up",
    *(f"gpu|gpu{i:02d}|96|gpu:a100:8(S:0-1)|2-00:00:00|up" for i in range(1, 8)),
    "gpu|gpu08|96|gpu:a100:4(S:0)|2-00:00:00|up",
    "old|n9|16|gpu:2,nic:1|30:00|down",
])

MATRIX = """
name: fit
backbones: [{{name: b, checkpoint: w.pth, arch: vit_base_patch16}}]
resources: {{gpus_per_cell: 0, time_limit_hours: 1, cpus_per_gpu: 1}}
tasks:
{tasks}
"""


def _plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *tasks: str):
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "w.pth").write_bytes(b"w")
    (tmp_path / "m.yaml").write_text(MATRIX.format(tasks="\n".join(f"  - {task}" for task in tasks)))
    return plan_matrix(load_spec(tmp_path / "m.yaml"))


@pytest.mark.parametrize(("text", "minutes"), [("infinite", None), ("UNLIMITED", None), ("30", 30), ("30:00", 30),
                                               ("0:30", 1), ("2:00:00", 120), ("1-00:00:00", 1440), ("1-12", 2160),
                                               ("2-3:30", 3090)])
def test_time_limits_as_sinfo_prints_them(text: str, minutes: int | None) -> None:
    assert parse_time_limit(text) == minutes


def test_an_unreadable_time_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="unreadable SLURM time limit 'soon'"):
        parse_time_limit("soon")


@pytest.mark.parametrize(("gres", "gpus"), [("(null)", 0), ("gpu:8", 8), ("gpu:a100:4(S:0-1)", 4), ("gpu:2,nic:1", 2),
                                            ("gpu:a100:2(S:0),gpu:v100:2(S:1)", 4), ("nic:1", 0)])
def test_gpus_per_node_from_gres(gres: str, gpus: int) -> None:
    assert parse_gpus(gres) == gpus


def test_partitions_from_sinfo() -> None:
    partitions = parse_sinfo(SINFO)
    assert list(partitions) == ["debug", "gpu", "old"]
    assert [p.default for p in partitions.values()] == [True, False, False]
    assert [len(p.fitting(8, 80)) for p in partitions.values()] == [0, 7, 0]
    assert (partitions["gpu"].max_minutes, partitions["old"].available) == (2880, False)
    assert describe_partitions(partitions)[1] == ("partition 'gpu': 8 node(s), 96 CPU(s) and 4/8 GPU(s) per node, "
                                                  "time limit 2880 minutes")


def test_cells_that_fit_give_no_problem(tmp_path: Path, monkeypatch) -> None:
    plan = _plan(tmp_path, monkeypatch, "{task: inat2017, recipe: paper, resources: {gpus_per_cell: 0, nodes: 2}}",
                 "{task: coco-maskrcnn, recipe: vitdet, resources: {gpus_per_cell: 8, nodes: 4, cpus_per_gpu: 12, "
                 "time_limit_hours: 48, partition: gpu}}")
    assert cluster_problems(plan, partitions=parse_sinfo(SINFO)) == []


@pytest.mark.parametrize(("resources", "expected"), [
    ("{partition: nope}", r"tasks\[0\]\.resources\.partition='nope': no partition 'nope' on this cluster "
                          r"\(sinfo lists: debug, gpu, old\)"),
    ("{nodes: 4}", r"tasks\[0\]\.resources\.nodes=4: partition 'debug' has 2 node\(s\) with at least 0 GPU\(s\) and "
                   r"1 CPU\(s\) \(2 node\(s\) in all\); a cell can ask for at most 2"),
    ("{gpus_per_cell: 8}", r"tasks\[0\]\.resources\.gpus_per_cell=8: no node of partition 'debug' has 8 GPU\(s\) "
                           r"\(at most 0\)"),
    ("{cpus_per_gpu: 4}", r"tasks\[0\]\.resources\.cpus_per_gpu=4: the cell needs 4 CPU\(s\) per node"),
    ("{partition: gpu, gpus_per_cell: 8, nodes: 8, cpus_per_gpu: 12}", r"nodes=8: partition 'gpu' has 7 node\(s\)"),
    ("{partition: gpu, gpus_per_cell: 8, time_limit_hours: 49, cpus_per_gpu: 12}",
     r"tasks\[0\]\.resources\.time_limit_hours=49: 2940 minutes exceed partition 'gpu''s time limit of 2880 minutes"),
    ("{partition: 'debug,gpu', gpus_per_cell: 8, nodes: 8, cpus_per_gpu: 12}",
     r"fits none of the partitions debug, gpu: .*gpus_per_cell=8: no node of partition 'debug'.*nodes=8: "
     r"partition 'gpu' has 7"),
    ("{partition: \"gpu\\nrm -rf ~\"}", r"tasks\[0\]\.resources\.partition='gpu\\nrm -rf ~': expected a SLURM "
                                        "partition name"),
])
def test_each_problem_names_the_file_key_value_and_what_the_cluster_has(tmp_path: Path, monkeypatch, resources: str,
                                                                        expected: str) -> None:
    try:
        plan = _plan(tmp_path, monkeypatch, f"{{task: inat2017, recipe: paper, resources: {resources}}}")
    except SpecError as error:  # the spec's own syntax checks (issue 19) may refuse a newline first
        assert "\\n" in resources and "tasks[0].resources.partition" in str(error), error
        return
    (problem,) = cluster_problems(plan, partitions=parse_sinfo(SINFO))
    assert problem.level == "fail"
    assert problem.message.startswith(f"{tmp_path / 'm.yaml'}: ")
    assert problem.message.endswith("(cell inat2017.paper.finetune.b.s0)")
    assert re.search(expected, problem.message), problem.message


def test_a_partition_that_is_down_is_a_warning_and_no_default_partition_a_refusal(tmp_path: Path, monkeypatch) -> None:
    plan = _plan(tmp_path, monkeypatch, "{task: inat2017, recipe: paper, resources: {partition: old, time_limit_hours: 0.5}}",
                 "{task: inat2018, recipe: paper}")
    problems = cluster_problems(plan, partitions=parse_sinfo(SINFO))
    assert [(p.level, p.message.split(": ", 1)[1]) for p in problems] == [
        ("warn", "tasks[0].resources.partition: partition 'old' is not up (jobs queue until it is) "
                 "(cell inat2017.paper.finetune.b.s0)")]
    no_default = cluster_problems(plan, partitions=parse_sinfo(SINFO.replace("debug*", "debug")))
    assert no_default[-1].message.split(": ", 1)[1] == (
        "resources.partition is not set and the cluster has no default partition (sinfo lists: debug, gpu, old); "
        "name one (cell inat2018.paper.finetune.b.s0)")
