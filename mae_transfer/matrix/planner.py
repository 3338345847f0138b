"""Plan a matrix: the cells (checkpoint x task x recipe x seed), their ids, configs and work dirs.

A cell id is the sha256 of what determines its result: the checkpoint's content digest (cached
by path, mtime and size), the text of its config and of every local ``_base_`` it inherits, the
``--cfg-options`` it receives, the package versions and the cell's coordinates. Two cells never
share a work dir, and a changed input makes a new cell.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from mae_transfer.matrix.spec import TASK_DATASETS, Backbone, MatrixSpec, Resources, TaskEntry
from mae_transfer.matrix.tasks import TASKS, config_path, gpu_hours, protocol_options, test_config_path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONED_PACKAGES = ("mae-transfer", "torch", "timm", "mmengine", "mmcv", "mmdet", "mmsegmentation")


@dataclass(frozen=True)
class Cell:
    """One unit of work: a backbone evaluated on a task with a recipe and a seed."""

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

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``cell.json`` in the work dir)."""
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Cell:
        payload = dict(payload)
        payload["resources"] = Resources(**payload["resources"])
        return cls(**payload)


@dataclass
class Plan:
    """The planned cells of a matrix and the problems noticed while planning."""

    spec: MatrixSpec
    cells: list[Cell]
    warnings: list[str] = field(default_factory=list)

    @property
    def total_gpu_hours(self) -> float:
        return sum(cell.gpu_hours for cell in self.cells)


def cache_dir() -> Path:
    """Where digests are cached (``$MAE_TRANSFER_CACHE`` or ``~/.cache/mae-transfer``)."""
    return Path(os.environ.get("MAE_TRANSFER_CACHE", Path.home() / ".cache" / "mae-transfer"))


class DigestCache:
    """sha256 of file contents, cached by (path, mtime_ns, size) in a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "digests.json"
        try:
            self.entries: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def digest(self, file: Path) -> str:
        """The content digest of ``file`` (hashing it only when it changed)."""
        stat = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if entry and entry["mtime_ns"] == stat.st_mtime_ns and entry["size"] == stat.st_size:
            return entry["sha256"]
        sha = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                sha.update(chunk)
        self.entries[key] = {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "sha256": sha.hexdigest()}
        self.dirty = True
        return sha.hexdigest()

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries))
            os.replace(tmp, self.path)
        except OSError as error:
            logger.warning("cannot write the digest cache %s: %s", self.path, error)


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


def config_closure(path: Path, seen: dict[Path, str] | None = None) -> dict[Path, str]:
    """The text of a config and of every local ``_base_`` file it inherits, recursively.

    ``pkg::`` bases (mmdet::, mmseg::) are covered by the package versions instead.
    """
    seen = {} if seen is None else seen
    path = path.resolve()
    if path in seen or not path.is_file():
        return seen
    text = path.read_text()
    seen[path] = text
    for base in _bases(text):
        if "::" not in base:
            config_closure(path.parent / base, seen)
    return seen


def _bases(text: str) -> list[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    return []


def generated_checkpoint_path(spec: MatrixSpec, backbone: Backbone) -> Path:
    """Where a ``generate:ARCH`` checkpoint is written in the matrix's work root."""
    return spec.work_root / "checkpoints" / f"{backbone.name}.pth"


def dataset_root(spec: MatrixSpec, kind: str) -> Path | None:
    """The root of dataset ``kind``: the spec's root, or the generated one in the work root."""
    entry = spec.datasets.get(kind)
    if entry is None:
        return None
    if entry.generate:
        return spec.work_root / "data" / kind
    return spec.resolve(entry.root)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


class Planner:
    """Turns a MatrixSpec into cells; one instance caches digests and config texts."""

    def __init__(self, spec: MatrixSpec, repo_root: Path = REPO_ROOT) -> None:
        self.spec = spec
        self.repo_root = repo_root
        self.digests = DigestCache()
        self.config_digests: dict[Path, str | None] = {}
        self.warnings: list[str] = []

    def checkpoint_source(self, backbone: Backbone) -> tuple[str, str]:
        """(path passed to the config, content digest) of a backbone's checkpoint."""
        if backbone.generated:
            return str(generated_checkpoint_path(self.spec, backbone)), f"{backbone.checkpoint}:depth{backbone.depth}:seed0"
        path = self.spec.resolve(backbone.checkpoint)
        if not path.is_file():
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
                    sha.update(str(file.relative_to(self.repo_root) if file.is_relative_to(self.repo_root) else file).encode())
                    sha.update(closure[file].encode())
                self.config_digests[config] = sha.hexdigest()
        return self.config_digests[config]

    def cfg_options(self, entry: TaskEntry, checkpoint: str, seed: int) -> dict[str, Any]:
        profile = TASKS[entry.task]
        options: dict[str, Any] = {key: checkpoint for key in profile.checkpoint_keys}
        root = dataset_root(self.spec, TASK_DATASETS[entry.task])
        if root is not None:
            options.update({key: f"{root}{suffix}" for key, suffix in profile.data_keys_for(entry.recipe)})
        options.update(protocol_options(entry.protocol))
        options["randomness.seed"] = seed
        options.update(self.spec.overrides)
        options.update(entry.overrides)
        return options

    def cells_for(self, entry: TaskEntry) -> list[Cell]:
        spec = self.spec
        backbones = [b for b in spec.backbones if entry.backbones is None or b.name in entry.backbones]
        dataset = TASK_DATASETS[entry.task]
        if dataset not in spec.datasets:
            self.warnings.append(f"{spec.path}: datasets.{dataset}: not declared; task {entry.task} will use the config's data_root")
        cells = []
        for backbone in backbones:
            if backbone.arch == "auto":
                from mae_transfer.matrix.archs import detect_arch

                arch = detect_arch(spec, backbone)
            else:
                arch = backbone.arch
            checkpoint, digest = self.checkpoint_source(backbone)
            relative = entry.config or config_path(entry.task, entry.recipe, arch, entry.protocol, entry.resolution, entry.eval_mode)
            config = (self.repo_root / relative).resolve() if entry.config is None else spec.resolve(entry.config)
            test_relative = test_config_path(entry.task, arch, entry.eval_mode)
            test_config = None if test_relative is None else str((self.repo_root / test_relative).resolve())
            config_digest = self.config_digest(config)
            if test_config is not None:
                config_digest = f"{config_digest}+{self.config_digest(Path(test_config))}"
            if config_digest is None:
                self.warnings.append(f"{spec.path}: task {entry.task} recipe {entry.recipe}: config {config} does not exist")
            for seed in entry.seeds or spec.seeds:
                options = self.cfg_options(entry, checkpoint, seed)
                coordinates = {
                    "backbone": backbone.name, "arch": arch, "task": entry.task, "recipe": entry.recipe,
                    "protocol": entry.protocol, "resolution": entry.resolution, "eval": entry.eval_mode, "seed": seed,
                    "policy": spec.checkpoint_policy,
                }
                identity = json.dumps(
                    {"cell": coordinates, "checkpoint": digest, "config": config_digest, "options": options,
                     "packages": package_versions()}, sort_keys=True, default=str)
                cell_id = hashlib.sha256(identity.encode()).hexdigest()[:16]
                parts = [entry.task, entry.recipe, entry.protocol, None if entry.resolution == 224 else f"r{entry.resolution}",
                         None if entry.eval_mode == "ss" else "msflip", backbone.name, f"s{seed}"]
                label = ".".join(_UNSAFE.sub("_", str(p)) for p in parts if p)
                cells.append(Cell(
                    id=cell_id, label=label, backbone=backbone.name, arch=arch, checkpoint=checkpoint, task=entry.task,
                    dataset=dataset, recipe=entry.recipe, protocol=entry.protocol, resolution=entry.resolution,
                    eval_mode=entry.eval_mode, seed=seed, config=str(config), cfg_options=options,
                    work_dir=str(spec.work_root / "cells" / f"{label}-{cell_id[:10]}"),
                    resources=entry.resources or spec.resources,
                    gpu_hours=gpu_hours(entry.task, entry.recipe, arch, entry.resolution),
                    checkpoint_policy=spec.checkpoint_policy, max_attempts=spec.max_attempts, test_config=test_config,
                ))
        return cells

    def plan(self) -> Plan:
        cells = [cell for entry in self.spec.tasks for cell in self.cells_for(entry)]
        self.digests.save()
        by_id: dict[str, Cell] = {}
        for cell in cells:
            if cell.id in by_id:
                self.warnings.append(f"{self.spec.path}: cells {by_id[cell.id].label} and {cell.label} are identical; "
                                     "the second is dropped")
            by_id.setdefault(cell.id, cell)
        return Plan(spec=self.spec, cells=list(by_id.values()), warnings=list(dict.fromkeys(self.warnings)))


def plan_matrix(spec: MatrixSpec, only: str | None = None) -> Plan:
    """Plan every cell of ``spec``; ``only`` keeps the cells whose label or id matches the glob."""
    plan = Planner(spec).plan()
    if only:
        from fnmatch import fnmatchcase

        patterns = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in only.split(",")]
        plan.cells = [c for c in plan.cells if any(fnmatchcase(c.label, p) or fnmatchcase(c.id, p) for p in patterns)]
    return plan
