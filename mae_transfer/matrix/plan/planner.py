"""Plan a matrix: the cells (checkpoint x task x recipe x seed), their ids, configs and work dirs.

A cell id is the sha256 of what determines its result: the checkpoint's content digest (cached
by path, mtime and size), the text of its config and of every local ``_base_`` it inherits, the
``--cfg-options`` it receives, the package versions and the cell's coordinates. Two cells never
share a work dir, and a changed input makes a new cell.

Every cell trains at its recipe's batch (``mae_transfer.matrix.spec.recipes``): the planner derives
the per-GPU batch and gradient accumulation from the cell's resources and rescales iteration
schedules for them (``mae_transfer.matrix.plan.batching``). A cell whose resources cannot reach the
batch is refused (``Plan.refused``, also listed in ``Plan.warnings``); the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from mae_transfer.matrix.plan.batching import LR_KEY, BatchError, BatchPlan, batch_options, iteration_options, plan_batch
from mae_transfer.matrix.plan.digests import DigestCache, config_closure
from mae_transfer.matrix.plan.overrides import matrix_override_problems, shadowed
from mae_transfer.matrix.spec.pretrain_stage import (
    DATA_KEYS,
    PRETRAIN_DATASET,
    PRETRAIN_TASK,
    StageError,
    describe_config,
    pretrain_recipe,
    variant_name,
    variant_options,
)
from mae_transfer.matrix.spec.recipes import RecipeError, gpu_hours, recipe_for
from mae_transfer.matrix.spec.matrix_spec import TASK_DATASETS, Backbone, MatrixSpec, Resources, SpecError, TaskEntry
from mae_transfer.matrix.spec.tasks import (
    TASKS,
    arch_options,
    config_path,
    declaration_options,
    protocol_options,
    test_config_path,
)
from mae_transfer.paths import config_file, config_name

logger = logging.getLogger(__name__)

VERSIONED_PACKAGES = ("mae-transfer", "torch", "timm", "mmengine", "mmcv", "mmdet", "mmsegmentation")


@dataclass(frozen=True)
class Cell:
    """One unit of work: a backbone evaluated on a task with a recipe and a seed.

    The batch fields say how the cell reaches its batch: ``processes`` (nodes x GPUs, one CPU
    process without GPUs) x ``per_gpu_batch`` x ``accumulation`` == ``effective_batch``, at
    ``lr``; ``recipe_batch``/``recipe_lr`` are the recipe's. ``off_recipe`` is set (with the
    reason) when the matrix chose another batch or lr on purpose.
    """

    id: str
    label: str
    backbone: str
    arch: str
    checkpoint: str
    task: str
    dataset: str
    recipe: str
    protocol: str | None
    resolution: int
    eval_mode: str
    seed: int
    config: str
    cfg_options: dict[str, Any]
    work_dir: str
    resources: Resources
    gpu_hours: float
    checkpoint_policy: str
    max_attempts: int
    test_config: str | None = None
    processes: int = 1
    effective_batch: int | None = None
    per_gpu_batch: int | None = None
    accumulation: int = 1
    lr: float | None = None
    recipe_batch: int | None = None
    recipe_lr: float | None = None
    off_recipe: bool = False
    off_recipe_reason: str | None = None
    # Pre-train -> transfer (a backbone declared by a pre-training stage, ``spec.PretrainStage``):
    # on a transfer cell, ``pretrain`` = {"stage": declared backbone name, "cell": the pre-training
    # cell's id, "epoch": epochs pre-trained, "params": {swept/named parameter: value}, and "depth":
    # the encoder's blocks where the config sets model.encoder.depth} and
    # ``depends_on`` = the pre-training cell's work dir (the cell waits for it). On the
    # pre-training cell itself (task ``mae-pretrain``), ``pretrain`` holds the same keys but "epoch".
    pretrain: dict[str, Any] | None = None
    depends_on: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``cell.json`` in the work dir)."""
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Cell:
        payload = dict(payload)
        payload["resources"] = Resources(**payload["resources"])
        return cls(**payload)


def cells_dir(work_root: Path) -> Path:
    """Where a work root keeps its cell directories (``LABEL-ID10`` each)."""
    return Path(work_root) / "cells"


@dataclass(frozen=True)
class Source:
    """One checkpoint the tasks evaluate: a declared backbone, or one epoch of a pre-training stage.

    ``digest`` identifies the checkpoint's content (for a pre-training stage: the pre-training
    cell's id and the epoch, known before the file exists).
    """

    name: str
    arch: str
    checkpoint: str
    digest: str
    pretrain: dict[str, Any] | None = None
    depends_on: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A cell the planner refused: its label, config and the reason (with the arithmetic)."""

    cell: str
    config: str
    reason: str

    @property
    def message(self) -> str:
        return f"cell {self.cell} ({self.config}): {self.reason}"


@dataclass
class Plan:
    """The planned cells of a matrix, the refused ones and the problems noticed while planning."""

    spec: MatrixSpec
    cells: list[Cell]
    warnings: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def total_gpu_hours(self) -> float:
        return sum(cell.gpu_hours for cell in self.cells)


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on ("absent" when not installed)."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def generated_checkpoint_path(spec: MatrixSpec, backbone: Backbone) -> Path:
    """Where a ``generate:ARCH`` checkpoint is written in the matrix's work root (a directory for a
    HuggingFace layout)."""
    from mae_transfer.checkpoints.layouts import DIRECTORY_FORMATS, written_format

    directory = written_format(backbone.family, backbone.format) in DIRECTORY_FORMATS
    return spec.work_root / "checkpoints" / (backbone.name if directory else f"{backbone.name}.pth")


def dataset_root(spec: MatrixSpec, kind: str) -> Path | None:
    """The root of dataset ``kind``: the spec's root, or the generated one in the work root."""
    entry = spec.datasets.get(kind)
    if entry is None:
        return None
    if entry.generate:
        return spec.work_root / "data" / kind
    return spec.resolve(entry.root)


FEATURES_DIR = "features"  # WORK_ROOT/features: the probes' shared feature cache (mae_transfer.probes.cache)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


class Planner:
    """Turns a MatrixSpec into cells; one instance caches digests and config texts."""

    def __init__(self, spec: MatrixSpec) -> None:
        self.spec = spec
        self.digests = DigestCache()
        self.config_digests: dict[Path, str | None] = {}
        self.parsed: dict[Path, Any] = {}
        self.checked: set[tuple[Path, str]] = set()  # (config, matrix key of overrides) already checked
        self.warnings: list[str] = []
        self.refused: list[Refusal] = []
        self.sources: dict[str, list[Source]] = {}
        self.pretrain_cells: list[Cell] = []

    def checkpoint_source(self, backbone: Backbone) -> tuple[str, str]:
        """(path passed to the config, content digest) of a backbone's checkpoint."""
        if backbone.generated:
            from mae_transfer.checkpoints.layouts import written_format

            layout = written_format(backbone.family, backbone.format)
            declared = "".join(f":{key}={value}" for key, value in backbone.declarations.items())
            extra = "" if layout == "mae" and not declared else f":{layout}{declared}"  # MAE's ids unchanged
            digest = f"{backbone.checkpoint}:depth{backbone.depth}:seed0{extra}"
            return str(generated_checkpoint_path(self.spec, backbone)), digest
        path = self.spec.resolve(backbone.checkpoint)
        if not path.exists():
            self.warnings.append(f"{self.spec.path}: backbone {backbone.name!r}: checkpoint {path} does not exist")
            return str(path), f"missing:{path}"
        return str(path), self.digests.digest(path)

    def config_digest(self, config: Path) -> str | None:
        if config not in self.config_digests:
            closure = config_closure(config)
            if not closure:
                self.config_digests[config] = None
            else:
                sha = hashlib.sha256()
                for file in sorted(closure):
                    sha.update(config_name(file).encode())
                    sha.update(closure[file].encode())
                self.config_digests[config] = sha.hexdigest()
        return self.config_digests[config]

    def cfg_options(self, entry: TaskEntry, checkpoint: str, seed: int, checkpoint_format: str = "auto",
                    declarations: dict[str, Any] | None = None, arch: str | None = None) -> dict[str, Any]:
        profile = TASKS[entry.task]
        options: dict[str, Any] = {key: checkpoint for key in profile.checkpoint_keys}
        owners = {key: "the backbone's checkpoint" for key in profile.checkpoint_keys}
        if checkpoint_format != "auto":  # backbones[].format: the loader refuses a file of another format
            options.update({key: checkpoint_format for key in profile.format_keys})
            owners.update({key: "the backbone's format" for key in profile.format_keys})
        # backbones[].family/activation/norm_eps: the backbone is built with them, the loader checks the file
        declared = declaration_options(entry.task, declarations or {})
        options.update(declared)
        owners.update({key: "the backbone's family/activation/norm_eps" for key in declared})
        if arch is not None:
            options.update(arch_options(entry.task, arch))
            owners.update({key: "the backbone's arch" for key in arch_options(entry.task, arch)})
        dataset = TASK_DATASETS[entry.task]
        root = dataset_root(self.spec, dataset)
        if root is not None:
            options.update({key: f"{root}{suffix}" for key, suffix in profile.data_keys_for(entry.recipe)})
            owners.update({key: f"datasets.{dataset}" for key, _ in profile.data_keys_for(entry.recipe)})
        options.update(protocol_options(entry.protocol))
        owners.update({key: f"{entry.key}.protocol" for key in protocol_options(entry.protocol)})
        if "probe.protocol" in options:  # every probe cell of the matrix shares one feature cache
            options["probe.cache_root"] = str(self.spec.work_root / FEATURES_DIR)
            owners["probe.cache_root"] = "the matrix's shared feature cache (WORK_ROOT/features)"
        options["randomness.seed"] = seed
        owners["randomness.seed"] = "the cell's seed (seeds)"
        self.refuse_shadowing(owners, (("overrides", self.spec.overrides), (f"{entry.key}.overrides", entry.overrides)))
        options.update(self.spec.overrides)
        options.update(entry.overrides)
        return options

    def refuse_shadowing(self, owners: dict[str, str], origins: tuple[tuple[str, dict[str, Any]], ...]) -> None:
        """Refuse an override of a key the planner sets per cell (``owners``: key -> what sets it)."""
        for origin, overrides in origins:
            hit = shadowed(owners, overrides)
            if hit is not None:
                key, owned, owner = hit
                raise SpecError(self.spec.path, f"{origin}.{key}", f"sets {owned}, which the planner sets for each "
                                f"cell from {owner}; set that instead, so that the cell records what it trained")

    def parsed_config(self, config: Path) -> Any:
        """``config`` parsed by mmengine (no custom imports), once per planner."""
        if config not in self.parsed:
            from mae_transfer.matrix.plan.config_files import read_config

            self.parsed[config] = read_config(config, import_custom_modules=False)
        return self.parsed[config]

    def check_overrides(self, config: Path, origins: tuple[tuple[str, dict[str, Any]], ...]) -> None:
        """Refuse a matrix override ``config`` would ignore or cannot take, before any cell is planned.

        ``origins``: (key path in the matrix, overrides) pairs. Raises `SpecError` naming the key, why,
        the nearest key of the config and the config. Skipped without mmengine (``doctor`` says so).
        """
        todo = [(origin, overrides) for origin, overrides in origins
                if overrides and (config, origin) not in self.checked]
        if not todo or not config.is_file():
            return
        try:
            cfg = self.parsed_config(config).to_dict()
        except ImportError:
            return
        for origin, overrides in todo:
            self.checked.add((config, origin))
            for key, problem in matrix_override_problems(cfg, overrides):
                raise SpecError(self.spec.path, f"{origin}.{key}", f"{problem} (config {config_name(config)})")

    def batch_plan(self, entry: TaskEntry, arch: str, options: dict[str, Any]) -> tuple[BatchPlan, Any]:
        """The cell's batch plan and its recipe (BatchError when the resources cannot reach it)."""
        try:
            recipe = recipe_for(entry.task, entry.recipe, arch, entry.protocol, entry.resolution)
        except RecipeError as error:
            raise BatchError(f"no batch recipe declared: {error}") from error
        lr_override = _lookup(options, LR_KEY)
        plan = plan_batch(recipe, entry.resources or self.spec.resources, entry.batch,
                          None if lr_override is None else float(lr_override), f"{entry.key}.batch")
        return plan, recipe

    def rescaled_schedule(self, config: Path, options: dict[str, Any], plan: BatchPlan) -> dict[str, Any]:
        """Iteration-valued keys of ``config`` (with ``options``) rescaled for ``plan``.

        Parses the config (mmengine, no custom imports) only when the plan changes iterations.
        """
        if not plan.rescales_iterations:
            return {}
        if not config.is_file():
            raise BatchError(f"the config does not exist, so its iteration schedule cannot be rescaled for "
                             f"accumulation {plan.accumulation} at batch {plan.effective_batch}")
        cfg = self.parsed_config(config).copy()
        cfg.merge_from_dict(dict(options))
        return iteration_options(cfg, plan)

    def refuse(self, entry: TaskEntry, label: str, config: Path, reason: str) -> None:
        refusal = Refusal(cell=label, config=config_name(config), reason=reason)
        self.refused.append(refusal)
        self.warnings.append(f"{self.spec.path}: {entry.key}: refused {refusal.message}")

    def cells_for(self, entry: TaskEntry) -> list[Cell]:
        spec = self.spec
        backbones = [b for b in spec.backbones if entry.backbones is None or b.name in entry.backbones]
        dataset = TASK_DATASETS[entry.task]
        if dataset not in spec.datasets:
            self.warnings.append(f"{spec.path}: datasets.{dataset}: not declared; task {entry.task} will use the config's data_root")
        resources = entry.resources or spec.resources
        cells = []
        for backbone, source in ((b, source) for b in backbones for source in self.sources_of(b)):
            arch, checkpoint, digest = source.arch, source.checkpoint, source.digest
            relative = entry.config or config_path(entry.task, entry.recipe, arch, entry.protocol, entry.resolution, entry.eval_mode)
            config = config_file(relative) if entry.config is None else spec.resolve(entry.config)
            test_relative = test_config_path(entry.task, arch, entry.eval_mode)
            test_config = None if test_relative is None else str(config_file(test_relative))
            config_digest = self.config_digest(config)
            if test_config is not None:
                config_digest = f"{config_digest}+{self.config_digest(Path(test_config))}"
            if config_digest is None:
                self.warnings.append(f"{spec.path}: task {entry.task} recipe {entry.recipe}: config {config} does not exist")
            self.check_overrides(config, (("overrides", spec.overrides), (f"{entry.key}.overrides", entry.overrides)))
            for seed in entry.seeds or spec.seeds:
                options = self.cfg_options(entry, checkpoint, seed, backbone.format, backbone.declarations, arch)
                parts = [entry.task, entry.recipe, entry.protocol, None if entry.resolution == 224 else f"r{entry.resolution}",
                         None if entry.eval_mode == "ss" else "msflip", None if entry.batch is None else f"b{entry.batch}",
                         source.name, f"s{seed}"]
                label = ".".join(_UNSAFE.sub("_", str(p)) for p in parts if p)
                try:
                    batch, recipe = self.batch_plan(entry, arch, options)
                    options.update(batch_options(batch))
                    options.update(self.rescaled_schedule(config, options, batch))
                except BatchError as error:
                    self.refuse(entry, label, config, str(error))
                    continue
                coordinates = {
                    "backbone": source.name, "arch": arch, "task": entry.task, "recipe": entry.recipe,
                    "protocol": entry.protocol, "resolution": entry.resolution, "eval": entry.eval_mode, "seed": seed,
                    "policy": spec.checkpoint_policy, "processes": batch.processes,
                }
                identity = json.dumps(
                    {"cell": coordinates, "checkpoint": digest, "config": config_digest, "options": options,
                     "packages": package_versions()}, sort_keys=True, default=str)
                cell_id = hashlib.sha256(identity.encode()).hexdigest()[:16]
                length = _lookup(entry.overrides, recipe.length_key) or _lookup(spec.overrides, recipe.length_key)
                cells.append(Cell(
                    id=cell_id, label=label, backbone=source.name, arch=arch, checkpoint=checkpoint, task=entry.task,
                    dataset=dataset, recipe=entry.recipe, protocol=entry.protocol, resolution=entry.resolution,
                    eval_mode=entry.eval_mode, seed=seed, config=str(config), cfg_options=options,
                    work_dir=str(cells_dir(spec.work_root) / f"{label}-{cell_id[:10]}"),
                    resources=resources,
                    gpu_hours=gpu_hours(entry.task, arch, entry.resolution, recipe,
                                        length if isinstance(length, int) else None),
                    checkpoint_policy=spec.checkpoint_policy, max_attempts=spec.max_attempts, test_config=test_config,
                    processes=batch.processes, effective_batch=batch.effective_batch, per_gpu_batch=batch.per_gpu_batch,
                    accumulation=batch.accumulation, lr=batch.lr, recipe_batch=batch.recipe_batch,
                    recipe_lr=batch.recipe_lr, off_recipe=batch.off_recipe, off_recipe_reason=batch.off_recipe_reason,
                    pretrain=source.pretrain, depends_on=source.depends_on,
                ))
        return cells

    def sources_of(self, backbone: Backbone) -> list[Source]:
        """The checkpoints a declared backbone stands for (several for a swept pre-training stage)."""
        if backbone.name not in self.sources:
            if backbone.pretrain is not None:
                self.sources[backbone.name] = self.stage_sources(backbone)
            else:
                if backbone.arch == "auto":
                    from mae_transfer.matrix.plan.backbones import backbone_arch

                    arch = backbone_arch(self.spec, backbone)
                else:
                    arch = backbone.arch
                checkpoint, digest = self.checkpoint_source(backbone)
                self.sources[backbone.name] = [Source(backbone.name, arch, checkpoint, digest)]
        return self.sources[backbone.name]

    def stage_config(self, backbone: Backbone) -> tuple[Path, dict[str, Any]]:
        """A pre-training stage's config file (packaged, else relative to the matrix) and its parsed mapping."""
        stage = backbone.pretrain
        packaged = config_file(stage.config if stage.config.startswith("configs/") else f"configs/{stage.config}")
        config = packaged if packaged.is_file() else self.spec.resolve(stage.config)
        if not config.is_file():
            raise SpecError(self.spec.path, f"{stage.key}.config", f"{stage.config!r}: no such packaged config "
                            f"({packaged}) or file ({config})")
        return config, self.parsed_config(config).to_dict()

    def stage_sources(self, backbone: Backbone) -> list[Source]:
        """Plan a stage's pre-training cells; the checkpoints they write, one Source per evaluated epoch."""
        from mae_transfer.pretrain.files import pretrain_checkpoint_path

        stage, spec = backbone.pretrain, self.spec
        config, cfg = self.stage_config(backbone)
        self.check_overrides(config, ((f"{stage.key}.overrides", stage.overrides),))
        owners = {"randomness.seed": f"{stage.key}.seed"}
        if dataset_root(spec, PRETRAIN_DATASET) is not None:
            owners.update({key: f"datasets.{PRETRAIN_DATASET}" for key in DATA_KEYS})
        self.refuse_shadowing(owners, ((f"{stage.key}.overrides", stage.overrides),))
        try:
            facts = describe_config(cfg, f"{stage.key}.config", config_name(config))
            if backbone.arch not in ("auto", facts.arch):
                raise StageError(stage.key.rsplit(".", 1)[0] + ".arch",
                                 f"{backbone.arch!r} contradicts the pre-training config's {facts.arch!r}")
            planned = [(params, *variant_options(stage, params, facts)) for params in stage.variants()]
        except StageError as error:
            raise SpecError(spec.path, error.key, error.message) from error
        if PRETRAIN_DATASET not in spec.datasets:
            self.warnings.append(f"{spec.path}: datasets.{PRETRAIN_DATASET}: not declared; pre-training stage "
                                 f"{backbone.name!r} will use its config's data_root")
        sources = []
        for params, stage_options, epochs, evaluated in planned:
            resolved = {**facts.defaults, **params, "epochs": epochs}
            cell = self.pretrain_cell(backbone, config, resolved, stage_options, facts.arch)
            if cell is None:
                continue
            self.pretrain_cells.append(cell)
            for epoch in evaluated:
                name = variant_name(backbone.name, stage, params, epoch, evaluated)
                sources.append(Source(
                    name=name, arch=facts.arch,
                    checkpoint=str(pretrain_checkpoint_path(Path(cell.work_dir) / "train", epoch)),
                    digest=f"pretrain:{cell.id}:epoch{epoch}",
                    pretrain={"stage": backbone.name, "cell": cell.id, "epoch": epoch, "params": resolved,
                              **({} if facts.depth is None else {"depth": facts.depth})},
                    depends_on=cell.work_dir))
        return sources

    def pretrain_cell(self, backbone: Backbone, config: Path, params: dict[str, Any], stage_options: dict[str, Any],
                      arch: str) -> Cell | None:
        """The pre-training cell of one sweep point (None when its resources cannot reach the batch)."""
        stage, spec = backbone.pretrain, self.spec
        resources = stage.resources or spec.resources
        options: dict[str, Any] = {}
        root = dataset_root(spec, PRETRAIN_DATASET)
        if root is not None:
            options.update({key: str(root) for key in DATA_KEYS})
        options["randomness.seed"] = stage.seed
        options.update(stage_options)
        swept = {name: params[name] for name in stage.sweep}
        base = variant_name(backbone.name, stage, swept, params["epochs"], (params["epochs"],))
        label = ".".join(_UNSAFE.sub("_", p) for p in (PRETRAIN_TASK, stage.recipe, base, f"s{stage.seed}"))
        recipe = pretrain_recipe(stage.recipe)
        lr_override = _lookup(options, LR_KEY)
        try:
            batch = plan_batch(recipe, resources, None, None if lr_override is None else float(lr_override),
                               f"{stage.key}.resources")
        except BatchError as error:
            self.refuse_stage(stage.key, label, config, str(error))
            return None
        options.update(batch_options(batch))
        identity = json.dumps(
            {"cell": {"backbone": base, "arch": arch, "task": PRETRAIN_TASK, "recipe": stage.recipe, "params": params,
                      "seed": stage.seed, "processes": batch.processes},
             "config": self.config_digest(config), "options": options, "packages": package_versions()},
            sort_keys=True, default=str)
        cell_id = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return Cell(
            id=cell_id, label=label, backbone=base, arch=arch, checkpoint="", task=PRETRAIN_TASK,
            dataset=PRETRAIN_DATASET, recipe=stage.recipe, protocol=None, resolution=224, eval_mode="ss",
            seed=stage.seed, config=str(config), cfg_options=options,
            work_dir=str(cells_dir(spec.work_root) / f"{label}-{cell_id[:10]}"), resources=resources,
            gpu_hours=0.0,  # not estimated: no published pre-training throughput per GPU
            checkpoint_policy="last", max_attempts=spec.max_attempts, processes=batch.processes,
            effective_batch=batch.effective_batch, per_gpu_batch=batch.per_gpu_batch, accumulation=batch.accumulation,
            lr=batch.lr, recipe_batch=batch.recipe_batch, recipe_lr=batch.recipe_lr, off_recipe=batch.off_recipe,
            off_recipe_reason=batch.off_recipe_reason,
            pretrain={"stage": backbone.name, "cell": cell_id, "params": params},
        )

    def refuse_stage(self, key: str, label: str, config: Path, reason: str) -> None:
        refusal = Refusal(cell=label, config=config_name(config), reason=reason)
        self.refused.append(refusal)
        self.warnings.append(f"{self.spec.path}: {key}: refused {refusal.message}")

    def plan(self) -> Plan:
        for backbone in self.spec.backbones:
            self.sources_of(backbone)  # plans the pre-training cells, before the transfer cells that wait on them
        cells = [*self.pretrain_cells, *(cell for entry in self.spec.tasks for cell in self.cells_for(entry))]
        self.digests.save()
        by_id: dict[str, Cell] = {}
        for cell in cells:
            if cell.id in by_id:
                self.warnings.append(f"{self.spec.path}: cells {by_id[cell.id].label} and {cell.label} are identical; "
                                     "the second is dropped")
            by_id.setdefault(cell.id, cell)
        return Plan(spec=self.spec, cells=list(by_id.values()), warnings=list(dict.fromkeys(self.warnings)),
                    refused=list(self.refused))


def plan_matrix(spec: MatrixSpec, only: str | None = None) -> Plan:
    """Plan every cell of ``spec``; ``only`` keeps the cells whose label or id matches the glob."""
    plan = Planner(spec).plan()
    if only:
        from fnmatch import fnmatchcase

        patterns = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in only.split(",")]
        kept = [c for c in plan.cells if any(fnmatchcase(c.label, p) or fnmatchcase(c.id, p) for p in patterns)]
        needed = {c.depends_on for c in kept if c.depends_on}  # a kept transfer cell keeps its pre-training
        plan.cells = [c for c in plan.cells if c in kept or c.work_dir in needed]
        plan.refused = [r for r in plan.refused if any(fnmatchcase(r.cell, p) for p in patterns)]
    return plan


def _lookup(options: dict[str, Any], dotted: str) -> Any:
    """The value of a dotted key in an options mapping, flat (``a.b``) or nested (``{a: {b}}``)."""
    if dotted in options:
        return options[dotted]
    head, _, rest = dotted.partition(".")
    value = options.get(head)
    return _lookup(value, rest) if rest and isinstance(value, dict) else None
