"""``mae-transfer doctor MATRIX``: everything that can be checked before any GPU time is spent.

Package versions, configs and the override keys the planner sets in them, every checkpoint
loaded into its task backbone (the LoadReport, with position-embedding resizing), every dataset
root validated, GPUs and disk. One readable report; any failure makes the exit code non-zero.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from mae_transfer.matrix.spec.pretrain_stage import DATA_KEYS as PRETRAIN_DATA_KEYS
from mae_transfer.matrix.spec.pretrain_stage import PRETRAIN_TASK
from mae_transfer.matrix.plan.overrides import unknown_override_keys
from mae_transfer.matrix.plan.planner import Plan, dataset_root, generated_checkpoint_path
from mae_transfer.matrix.spec.matrix_spec import SpecError
from mae_transfer.matrix.spec.tasks import DECLARATIONS, TASKS

# package -> (requirement text, predicate on the version string)
PINS = {
    "torch": (">= 2.1", lambda v: tuple(int(x) for x in v.split(".")[:2]) >= (2, 1)),
    "mmengine": ("== 0.10.7", lambda v: v == "0.10.7"),
    "mmcv": (">= 2.0, < 2.2", lambda v: v.startswith(("2.0", "2.1"))),
    "mmdet": ("== 3.3.0", lambda v: v == "3.3.0"),
    "mmsegmentation": ("== 1.2.2", lambda v: v == "1.2.2"),
    "timm": (">= 1.0", lambda v: int(v.split(".")[0]) >= 1),
}
FAMILY_PACKAGES = {"coco": ("mmdet", "mmcv", "pycocotools"), "ade20k": ("mmsegmentation", "mmcv"), "classification": ()}
TASK_INPUT = {"coco": 1024, "ade20k": 512}
MIN_FREE_GB = 1.0


@dataclass
class Check:
    """One line of the report."""

    level: str  # ok | warn | fail
    topic: str
    message: str


@dataclass
class DoctorReport:
    """All checks; ``ok`` when none failed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.level != "fail" for check in self.checks)

    def add(self, level: str, topic: str, message: str) -> None:
        self.checks.append(Check(level, topic, message))

    def render(self) -> str:
        marks = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}
        lines = [f"{marks[c.level]} {c.topic}: {c.message}" for c in self.checks]
        failed = sum(c.level == "fail" for c in self.checks)
        lines.append("doctor: all checks passed" if self.ok else f"doctor: {failed} problem(s)")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"ok": self.ok, "checks": [asdict(c) for c in self.checks]}, indent=2)


def _packages(plan: Plan, report: DoctorReport) -> None:
    # pre-training cells (not in TASKS) need only torch, timm and mmengine
    needed = {"torch", "timm", "mmengine"} | {p for c in plan.cells if c.task in TASKS
                                              for p in FAMILY_PACKAGES[TASKS[c.task].family]}
    for name in sorted(needed):
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            report.add("fail", "packages", f"{name} is not installed (run tools/setup_env.sh)")
            continue
        pin = PINS.get(name)
        if pin and not pin[1](version):
            report.add("fail", "packages", f"{name} {version} found; expected {pin[0]}")
        else:
            report.add("ok", "packages", f"{name} {version}")


PYTHON_CONFIG_NOTE = ("a matrix names Python config files (tasks[].config, pretrain.config and the recipes' configs); "
                      "plan, doctor and run execute them: treat a matrix file as code and run only matrices you trust")


def _configs(plan: Plan, report: DoctorReport) -> None:
    report.add("warn", "configs", PYTHON_CONFIG_NOTE)
    seen: dict[str, dict[str, None]] = {}
    for cell in plan.cells:
        if cell.task == PRETRAIN_TASK:
            planned = set(PRETRAIN_DATA_KEYS)
        else:
            profile = TASKS[cell.task]
            planned = {*profile.checkpoint_keys, *(key for key, _ in profile.data_keys_for(cell.recipe))}
        keys = seen.setdefault(cell.config, {})
        keys.update({key: None for key in cell.cfg_options if key in planned})
        keys.update({key: None for key in cell.cfg_options if key not in planned})
    for config, keys in seen.items():
        if not Path(config).is_file():
            report.add("fail", "configs", f"{config} does not exist")
            continue
        unknown = unknown_override_keys(Path(config), list(keys))
        if unknown is None:
            report.add("warn", "configs", f"{config}: cannot be parsed without mmengine; keys not verified")
        elif unknown:
            report.add("fail", "configs", f"{config}: " + "; ".join(unknown))
        else:
            report.add("ok", "configs", f"{config} ({len(keys)} override keys present)")


def _checkpoints(plan: Plan, report: DoctorReport) -> None:
    spec = plan.spec
    for backbone in spec.backbones:
        if backbone.pretrain is not None:
            stages = [c.label for c in plan.cells if c.task == PRETRAIN_TASK and c.pretrain["stage"] == backbone.name]
            report.add("ok", "checkpoints", f"{backbone.name}: written by its pre-training cell(s) {', '.join(stages)}")
            continue
        cells = [c for c in plan.cells if c.backbone == backbone.name]
        if not cells:
            continue
        path = generated_checkpoint_path(spec, backbone) if backbone.generated else spec.resolve(backbone.checkpoint)
        if not path.exists():
            level = "ok" if backbone.generated else "fail"
            report.add(level, "checkpoints", f"{backbone.name}: {path} " + ("is generated by run" if backbone.generated else "does not exist"))
            continue
        try:
            from mae_transfer.checkpoints import load_pretrained
            from mae_transfer.matrix.plan.backbones import file_family
            from mae_transfer.models import build_vit
        except ImportError as error:
            report.add("fail", "checkpoints", f"{backbone.name}: cannot import the loader: {error}")
            continue
        try:  # what the file is, and what the backbone must declare for it (before building anything)
            report.add("ok", "checkpoints", f"{backbone.name}: {file_family(spec, backbone, path)}")
        except SpecError as error:
            report.add("fail", "checkpoints", str(error))
            continue
        # the backbone each cell's training builds (its config with the cell's overrides), at each input size
        builds = {}
        for cell in cells:
            kwargs = cell_backbone_kwargs(cell)
            size = TASK_INPUT.get(TASKS[cell.task].family, cell.resolution)
            builds.setdefault((size, tuple(sorted(kwargs.items()))), kwargs)
        for (size, _), kwargs in sorted(builds.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            arch = kwargs.pop("arch")
            shape = "".join(f", {k} {v}" for k, v in sorted(kwargs.items()))
            what = f"{backbone.name} ({arch} at {size}px{shape})"
            try:
                model = build_vit(arch, img_size=size, **kwargs)
                loaded = load_pretrained(model, str(path), fmt=backbone.format)
            except Exception as error:  # noqa: BLE001 - every loader error is a finding to report
                report.add("fail", "checkpoints", f"{what}: {error}")
                continue
            render = getattr(loaded, "render", None)
            summary = render() if callable(render) else str(loaded)
            report.add("ok", "checkpoints", f"{what} loads:\n      " + summary.replace("\n", "\n      "))


# model.backbone keys that change which weights a ViT has (what load_pretrained checks), and the
# declarations a matrix backbone forwards (the family the encoder is built in)
SHAPE_KEYS = ("depth", "embed_dim", "num_heads", "patch_size", *DECLARATIONS)


def cell_backbone_kwargs(cell) -> dict:
    """``arch`` and the shape keywords of the backbone a cell trains: its config's ``model.backbone``
    with the cell's overrides merged, as ``run`` builds it (``depth: 6`` for a 6-block checkpoint).

    Falls back to the cell's arch alone when mmengine cannot parse the config.
    """
    try:
        from mae_transfer.matrix.plan.config_files import read_config

        cfg = read_config(cell.config, import_custom_modules=False)
        cfg.merge_from_dict(dict(cell.cfg_options))
        backbone = dict(cfg.get("model", {}).get("backbone", None) or {})
    except Exception:  # noqa: BLE001 - the configs check reports an unparsable config
        backbone = {}
    kwargs = {key: backbone[key] for key in SHAPE_KEYS if backbone.get(key) is not None}
    return {"arch": backbone.get("arch") or cell.arch, **kwargs}


def _datasets(plan: Plan, report: DoctorReport) -> None:
    from mae_transfer.data import check_dataset

    for kind in sorted({c.dataset for c in plan.cells}):
        entry = plan.spec.datasets.get(kind)
        root = dataset_root(plan.spec, kind)
        if entry is None:
            report.add("warn", "datasets", f"{kind}: no root declared (datasets.{kind}); the config's data_root is used")
            continue
        if entry.generate and not (root / ".generated").is_file():
            report.add("ok", "datasets", f"{kind}: generated by run into {root}")
            continue
        # a generated ImageNet holds a few classes by design; a real root must hold the 1000
        options = {"num_classes": None} if entry.generate and entry.maker == "imagenet" else {}
        result = check_dataset(entry.maker if entry.generate else kind, root, **options)
        report.add("ok" if result.ok else "fail", "datasets", result.render(limit=10))


def _cluster(plan: Plan, report: DoctorReport) -> None:
    """``--executor slurm``: the partitions sinfo lists, and whether every cell fits one (or why not)."""
    from mae_transfer.matrix.run.executors.slurm_cluster import (
        ClusterUnavailable,
        cluster_problems,
        describe_partitions,
        read_partitions,
    )

    try:
        partitions = read_partitions()
    except ClusterUnavailable as error:
        report.add("fail", "cluster", f"cannot check the cells against the SLURM cluster: {error}")
        for problem in cluster_problems(plan, ask_cluster=False):  # the SLURM syntax needs no cluster
            report.add(problem.level, "cluster", problem.message)
        return
    for line in describe_partitions(partitions):
        report.add("ok", "cluster", line)
    problems = cluster_problems(plan, partitions=partitions)
    for problem in problems:
        report.add(problem.level, "cluster", problem.message)
    if not any(problem.level == "fail" for problem in problems):
        report.add("ok", "cluster", f"all {len(plan.cells)} cell(s) fit their partitions (nodes, GPUs and CPUs per "
                                    "node, time limit)")


def _local_gpus(plan: Plan, report: DoctorReport) -> None:
    wanted = max((c.resources.gpus_per_cell for c in plan.cells), default=0)
    try:
        import torch

        available = torch.cuda.device_count()
    except ImportError:
        available = 0
    if wanted > available:
        report.add("warn", "gpus", f"cells ask for up to {wanted} GPU(s), this machine has {available} "
                   "(fine for --executor slurm on a cluster; local runs need them)")
    else:
        report.add("ok", "gpus", f"{available} GPU(s) available, cells ask for up to {wanted}")
    multi_node = [cell.label for cell in plan.cells if cell.resources.nodes > 1]
    if multi_node:
        nodes = max(cell.resources.nodes for cell in plan.cells)
        shown = ", ".join(multi_node[:3]) + (", ..." if len(multi_node) > 3 else "")
        report.add("warn", "nodes", f"{len(multi_node)} cell(s) ask for up to {nodes} nodes ({shown}): only --executor slurm runs them; run --executor "
                   "local or torchrun refuses them before starting any cell")


def _machine(plan: Plan, report: DoctorReport, executor: str = "local") -> None:
    if executor != "slurm":  # on SLURM the cells run on the cluster's nodes: `_cluster` asks about their GPUs
        _local_gpus(plan, report)
    root = plan.spec.work_root
    existing = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    free_gb = shutil.disk_usage(existing).free / 1e9
    report.add("ok" if free_gb >= MIN_FREE_GB else "fail", "disk", f"{free_gb:.1f} GB free at {existing}")


def run_doctor(plan: Plan, executor: str = "local") -> DoctorReport:
    """Every pre-flight check for the cells of ``plan``; with ``executor="slurm"`` the cluster's too
    (this machine's GPUs are then not asked: the cells run on the cluster's nodes)."""
    report = DoctorReport()
    for warning in plan.warnings:
        report.add("warn", "plan", warning)
    checks = [("packages", _packages), ("configs", _configs), ("checkpoints", _checkpoints), ("datasets", _datasets),
              ("machine", lambda plan, report: _machine(plan, report, executor))]
    if executor == "slurm":
        checks.append(("cluster", _cluster))
    for name, check in checks:
        try:
            check(plan, report)
        except Exception as error:  # noqa: BLE001 - doctor reports, it never crashes
            report.add("fail", name, f"check raised {type(error).__name__}: {error}")
    return report
