"""What the SLURM cluster offers, from ``sinfo``, and whether a plan's cells fit it.

``doctor --executor slurm``, ``plan --executor slurm`` and ``run --executor slurm`` ask the
same question before any script is written or job submitted: for every cell, does the partition
it names (or the cluster's default partition) exist, do enough of its nodes have the GPUs and
CPUs the cell asks per node, and does its time limit fit the partition's? Every problem is one
message naming the matrix file, the key and the value, and what the cluster has.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
from dataclasses import dataclass, field

from mae_transfer.matrix.plan.planner import Cell, Plan
from mae_transfer.matrix.run.executors.sbatch import SlurmSpecError, check_resources
from mae_transfer.matrix.spec.matrix_spec import Resources

logger = logging.getLogger(__name__)

# sinfo's per-node rows: partition (default marked '*'), node, CPUs, GRES, time limit, availability
SINFO_FORMAT = "%P|%N|%c|%G|%l|%a"
UNLIMITED = None  # a partition without a time limit


class ClusterUnavailable(RuntimeError):
    """``sinfo`` cannot be run or does not answer: the cluster cannot be checked from here."""


@dataclass(frozen=True)
class Node:
    """One node as a partition lists it."""

    name: str
    cpus: int
    gpus: int


@dataclass
class Partition:
    """A partition: its nodes, time limit (minutes, None when unlimited) and availability."""

    name: str
    default: bool = False
    available: bool = True
    max_minutes: int | None = None
    nodes: list[Node] = field(default_factory=list)

    def fitting(self, gpus: int, cpus: int) -> list[Node]:
        """The nodes with at least ``gpus`` GPUs and ``cpus`` CPUs."""
        return [node for node in self.nodes if node.gpus >= gpus and node.cpus >= cpus]


def parse_time_limit(text: str) -> int | None:
    """Minutes of a SLURM time limit as sinfo prints it (``infinite`` -> None).

    Formats: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``.

    Raises:
        ValueError: any other text.
    """
    text = text.strip()
    if text.lower() in ("infinite", "unlimited"):
        return UNLIMITED
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"unreadable SLURM time limit {text!r}")
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
        total = int(days) * 1440 + hours * 60 + minutes
    elif third is not None:  # HH:MM:SS
        total, seconds = int(first) * 60 + int(second), int(third)
    else:  # MM or MM:SS
        total, seconds = int(first), int(second or 0)
    return total + (1 if seconds else 0)


def parse_gpus(gres: str) -> int:
    """GPUs in a node's GRES text: ``gpu:8``, ``gpu:a100:4(S:0-1)``, ``gpu:2,nic:1`` -> 8, 4, 2; none -> 0."""
    total = 0
    for item in re.split(r",(?![^(]*\))", gres):
        parts = re.sub(r"\(.*\)$", "", item.strip()).split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from ``sinfo -h -N -a -o SINFO_FORMAT`` output (one row per node per partition)."""
    partitions: dict[str, Partition] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:  # noqa: PLR2004 - SINFO_FORMAT's six fields
            continue
        raw_name, node, cpus, gres, limit, available = fields
        name = raw_name.rstrip("*")
        partition = partitions.setdefault(name, Partition(name, default=raw_name.endswith("*")))
        partition.available = available.strip().lower() == "up"
        partition.max_minutes = parse_time_limit(limit)
        if node not in {n.name for n in partition.nodes}:
            partition.nodes.append(Node(node, int(cpus) if cpus.isdigit() else 0, parse_gpus(gres)))
    return partitions


def read_partitions(timeout: float = 30) -> dict[str, Partition]:
    """The cluster's partitions, from ``sinfo``.

    Raises:
        ClusterUnavailable: sinfo is not installed, fails, does not answer in time or answers
            what cannot be read.
    """
    try:
        shown = subprocess.run(["sinfo", "-h", "-N", "-a", "-o", SINFO_FORMAT], capture_output=True, text=True,
                               timeout=timeout)
    except FileNotFoundError as error:
        raise ClusterUnavailable("sinfo is not installed here: the SLURM cluster cannot be checked (run doctor on "
                                 "a login node of the cluster)") from error
    except subprocess.TimeoutExpired as error:
        raise ClusterUnavailable(f"sinfo did not answer within {timeout:g} s (is slurmctld up?)") from error
    if shown.returncode != 0:
        raise ClusterUnavailable(f"sinfo failed: {(shown.stderr or shown.stdout).strip()[:300]}")
    try:
        return parse_sinfo(shown.stdout)
    except ValueError as error:
        raise ClusterUnavailable(f"sinfo's answer cannot be read: {error}") from error


@dataclass(frozen=True)
class ClusterProblem:
    """One finding about a plan on the cluster: ``fail`` (the cells cannot run as asked) or ``warn``."""

    level: str
    message: str


def resources_key(plan: Plan, cell: Cell) -> str:
    """The matrix key a cell's resources come from: ``tasks[i].resources``, ``backbones[i].pretrain.resources``
    or the top-level ``resources``."""
    if cell.pretrain is not None and cell.depends_on is None:  # a pre-training cell
        for backbone in plan.spec.backbones:
            stage = backbone.pretrain
            if stage is not None and backbone.name == cell.pretrain.get("stage") and stage.resources is not None:
                return f"{stage.key}.resources"
        return "resources"
    for entry in plan.spec.tasks:
        if entry.resources is not None and entry.task == cell.task and entry.resources == cell.resources:
            return f"{entry.key}.resources"
    return "resources"


def _needs(resources: Resources) -> tuple[int, int]:
    """GPUs and CPUs a cell needs on each of its nodes (one process per GPU, one per node without)."""
    processes = max(resources.gpus_per_cell, 1)
    return resources.gpus_per_cell, resources.cpus_per_gpu * processes


def _fit(partition: Partition, resources: Resources, where: str) -> str | None:
    """Why ``partition`` cannot hold a cell with ``resources`` (None when it can), naming the key."""
    gpus, cpus = _needs(resources)
    most_gpus = max((node.gpus for node in partition.nodes), default=0)
    most_cpus = max((node.cpus for node in partition.nodes), default=0)
    if gpus > most_gpus:
        return (f"{where}.gpus_per_cell={gpus}: no node of partition '{partition.name}' has {gpus} GPU(s) "
                f"(at most {most_gpus})")
    if cpus > most_cpus:
        return (f"{where}.cpus_per_gpu={resources.cpus_per_gpu}: the cell needs {cpus} CPU(s) per node, no node of "
                f"partition '{partition.name}' has that many (at most {most_cpus})")
    fitting = len(partition.fitting(gpus, cpus))
    if resources.nodes > fitting:
        return (f"{where}.nodes={resources.nodes}: partition '{partition.name}' has {fitting} node(s) with at least "
                f"{gpus} GPU(s) and {cpus} CPU(s) ({len(partition.nodes)} node(s) in all); a cell can ask for at most "
                f"{fitting}")
    minutes = math.ceil(resources.time_limit_hours * 60)
    if partition.max_minutes is not None and minutes > partition.max_minutes:
        return (f"{where}.time_limit_hours={resources.time_limit_hours:g}: {minutes} minutes exceed partition "
                f"'{partition.name}''s time limit of {partition.max_minutes} minutes")
    return None


def cluster_problems(plan: Plan, cells: list[Cell] | None = None, partitions: dict[str, Partition] | None = None,
                     ask_cluster: bool = True) -> list[ClusterProblem]:
    """What keeps ``cells`` (default: all of the plan's) from running on the cluster as asked.

    Per distinct resources: the SLURM syntax (`check_resources`: job name, partition name, time
    limit), then (``ask_cluster``) that the partition (or the default one) exists, that enough of
    its nodes have the GPUs and CPUs the cell needs on each node, and that the time limit fits. A
    partition that is not up is a warning: jobs queue until it is.

    Raises:
        ClusterUnavailable: ``ask_cluster``, ``partitions`` not given, and sinfo cannot be asked.
    """
    cells = plan.cells if cells is None else cells
    by_resources: dict[tuple[str, Resources], list[Cell]] = {}
    for cell in cells:
        by_resources.setdefault((resources_key(plan, cell), cell.resources), []).append(cell)
    problems: list[ClusterProblem] = []
    for (key, resources), group in by_resources.items():
        where = f"{plan.spec.path}: {key}"
        which = f" (cell {group[0].label}" + (f" and {len(group) - 1} more)" if len(group) > 1 else ")")
        try:
            check_resources(plan, resources, key)
        except SlurmSpecError as error:
            problems.append(ClusterProblem("fail", f"{error}{which}"))
            continue
        if not ask_cluster:
            continue
        if partitions is None:
            partitions = read_partitions()
        problems += [ClusterProblem(level, message + which)
                     for level, message in _partition_problems(partitions, resources, where)]
    return list(dict.fromkeys(problems))


def _partition_problems(partitions: dict[str, Partition], resources: Resources, where: str) -> list[tuple[str, str]]:
    listed = ", ".join(sorted(partitions)) or "none"
    if resources.partition is None:
        default = next((p for p in partitions.values() if p.default), None)
        if default is None:
            return [("fail", f"{where}.partition is not set and the cluster has no default partition "
                             f"(sinfo lists: {listed}); name one")]
        names = [default.name]
    else:
        names = resources.partition.split(",")
        missing = [name for name in names if name not in partitions]
        if missing:
            return [("fail", f"{where}.partition={resources.partition!r}: no partition {', '.join(map(repr, missing))} "
                             f"on this cluster (sinfo lists: {listed})")]
    reasons = {name: _fit(partitions[name], resources, where) for name in names}
    found: list[tuple[str, str]] = []
    if all(reasons.values()):
        found.append(("fail", "; ".join(reasons.values()) if len(names) == 1 else
                      f"{where}: fits none of the partitions {', '.join(names)}: " + "; ".join(reasons.values())))
    found += [("warn", f"{where}.partition: partition '{name}' is not up (jobs queue until it is)")
              for name in names if not partitions[name].available]
    return found


def describe_partitions(partitions: dict[str, Partition]) -> list[str]:
    """One line per partition: its nodes, CPUs and GPUs per node, time limit (doctor's report)."""
    lines = []
    for partition in partitions.values():
        cpus = sorted({node.cpus for node in partition.nodes})
        gpus = sorted({node.gpus for node in partition.nodes})
        limit = "no time limit" if partition.max_minutes is None else f"time limit {partition.max_minutes} minutes"
        lines.append(f"partition '{partition.name}'{' (default)' if partition.default else ''}: "
                     f"{len(partition.nodes)} node(s), {'/'.join(map(str, cpus))} CPU(s) and "
                     f"{'/'.join(map(str, gpus))} GPU(s) per node, {limit}{'' if partition.available else ', not up'}")
    return lines


def refusals(plan: Plan, cluster: str | None = None, required: bool = False) -> list[str]:
    """The problems that refuse ``plan`` on SLURM (``plan``/``run --executor slurm``), warnings logged.

    ``cluster="local"`` (submitit's local executor) checks SLURM's syntax only. When sinfo cannot
    be asked, the syntax is checked and a warning says so, unless ``required`` (submitting to the
    cluster): then that is the refusal.
    """
    try:
        problems = cluster_problems(plan, ask_cluster=cluster != "local")
    except ClusterUnavailable as error:
        if required:
            return [f"cannot check the cells against the SLURM cluster: {error}"]
        logger.warning("%s; the cells' resources are checked for SLURM's syntax only", error)
        problems = cluster_problems(plan, ask_cluster=False)
    for problem in problems:
        if problem.level == "warn":
            logger.warning("%s", problem.message)
    return [problem.message for problem in problems if problem.level == "fail"]
