"""The benchmark matrix spec: typed dataclasses read from a YAML file and validated.

A matrix names backbones (checkpoints), tasks (with a recipe preset and, for classification, a
protocol), seeds, overrides, dataset roots and resources. Every mistake raises ``SpecError``
naming the file, the key path and the allowed values. Relative paths are resolved against the
directory of the matrix file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mae_transfer.checkpoints.formats import AUTO_FORMAT, FORMATS
from mae_transfer.checkpoints.layouts import WRITTEN_FORMATS
from mae_transfer.classification.protocols import Protocol
from mae_transfer.matrix.spec.matrix_checks import check_backbone_names, check_stage_overrides, count_cells
from mae_transfer.matrix.spec.pretrain_stage import PARAMS, PRETRAIN_RECIPES, PretrainStage
from mae_transfer.matrix.spec.strict_yaml import load_yaml_file
from mae_transfer.matrix.spec.tasks import PROBE_PROTOCOLS, has_probe_config
from mae_transfer.matrix.spec.yaml_bounds import YamlBoundError
from mae_transfer.models.archs import ARCHS
from mae_transfer.models.options import ACTIVATIONS, FAMILIES

TASK_DATASETS: dict[str, str] = {
    "coco-maskrcnn": "coco",
    "ade20k-upernet": "ade20k",
    "inat2017": "inat2017",
    "inat2018": "inat2018",
    "inat2019": "inat2019",
    "places205": "places205",
    "places365": "places365",
    "imagenet": "imagenet",
    "digits": "digits",
}
# The classification transfer tasks of MAE Table 6; ImageNet-1k (Tables 3 and 12, Fig. 9) is the
# pre-training dataset's own protocols, laid out in its own leaderboard table.
TRANSFER_CLASSIFICATION_TASKS = ("inat2017", "inat2018", "inat2019", "places205", "places365")
# scikit-learn's handwritten digits: a real labelled set for the frozen probes (smoke matrix)
PROBE_ONLY_TASKS = ("digits",)
CLASSIFICATION_TASKS = (*TRANSFER_CLASSIFICATION_TASKS, "imagenet", *PROBE_ONLY_TASKS)
# datasets another generator may write (`generate: NAME`): the pre-training's ImageNet as crops of
# scikit-image's photographs (mae_transfer.data.photos), the ImageFolder layout it reads
ALTERNATIVE_GENERATORS: dict[str, tuple[str, ...]] = {"imagenet": ("photos",)}
TASK_RECIPES: dict[str, tuple[str, ...]] = {
    "coco-maskrcnn": ("paper", "vitdet", "reduced", "smoke"),
    "ade20k-upernet": ("paper", "reduced", "smoke"),
    **{task: ("paper", "reduced", "smoke") for task in TRANSFER_CLASSIFICATION_TASKS},
    "imagenet": ("paper",),
    "digits": ("smoke",),
}
FORMAT_CHOICES = (AUTO_FORMAT, *FORMATS)  # backbones[].format: forced on the loader unless auto
EVAL_MODES = ("ss", "ms+flip")
CHECKPOINT_POLICIES = ("last", "best")
# \Z, not $: "$" also matches before a trailing newline ("name\n" was accepted)
NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
GENERATE_PREFIX = "generate:"
# Config keys the planner derives from the recipe batch and the resources; a matrix sets them
# through `batch:` and `resources:` instead of overrides.
PLANNED_KEYS = {
    "train_dataloader.batch_size": "the per-GPU batch is derived from the recipe batch and the resources "
                                   "(limit it with resources.max_per_gpu_batch; change the total with batch: N)",
    "optim_wrapper.accumulative_counts": "gradient accumulation is derived from the recipe batch and the resources "
                                         "(change the total with batch: N)",
}


# Bounds of every count a matrix sets: far above any real benchmark (the paper's largest batch is
# 16,384, a job a few hundred GPUs), far below what exhausts the planner (a batch of 10**12 made
# its accumulation search hang, 10**8 seeds ran out of memory).
MAX_COUNT = 1 << 20  # batch, max_per_gpu_batch, epochs and the other counts without their own bound
MAX_SEEDS = 1000
MAX_SEED = 2**32 - 1  # numpy's seed range (mmengine seeds numpy with randomness.seed)
MAX_MACHINES = 1024  # nodes, GPUs per node, CPUs per GPU
MAX_HOURS = 24 * 366  # a SLURM time limit
MAX_ENTRIES = 1000  # backbones, tasks, values of one sweep, evaluated epochs, references
MAX_CELLS = 100_000  # backbones x tasks x seeds x sweep points x evaluated epochs
MAX_ATTEMPTS = 100
MAX_RESOLUTION = 4096
MAX_DEPTH = 256  # blocks of a generated checkpoint
# a SLURM partition name, or several separated by commas (sbatch --partition=a,b): no spaces, quotes
# or shell metacharacters, which would end the #SBATCH header or run as shell lines (also the job name)
PARTITION_PATTERN = re.compile(r"\A[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*\Z")


def _as_text(value: Any) -> str:
    """A hint when YAML read a number as text (YAML 1.1 reads ``1e8`` as a string: its exponent
    needs a dot and a sign)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (YAML reads {value!r} as text, not a number: write the integer)"
    return ""


class SpecError(ValueError):
    """A matrix file is invalid; the message names the file, the key and what is allowed."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        super().__init__(f"{file}: {key}: {message}")
        self.file, self.key = str(file), key


@dataclass(frozen=True)
class Backbone:
    """One pretrained checkpoint to evaluate.

    ``checkpoint`` is a path (a file, or a HuggingFace model directory), or ``generate:ARCH`` for
    a random checkpoint the matrix writes itself (``build_vit(ARCH, family=..., depth=depth)``
    seeded with 0, in ``format`` when given, else in the family's own layout:
    ``mae_transfer.checkpoints.layouts``; ``depth`` only applies to generated checkpoints and
    defaults to the arch's). A backbone with ``pretrain`` (and an empty ``checkpoint``) is made by
    MAE pre-training in the matrix itself (:mod:`mae_transfer.matrix.spec.pretrain_stage`).

    ``family``, ``activation`` and ``norm_eps`` declare what the weights cannot tell
    (``mae_transfer.models.options.FAMILIES``; None: not declared, the config's encoder, MAE's):
    they reach every task's backbone (``TaskProfile.family_keys``), which is built with them,
    and the loader then checks the file against them.
    """

    name: str
    checkpoint: str
    arch: str = "auto"
    format: str = "auto"
    depth: int | None = None
    pretrain: PretrainStage | None = None
    family: str | None = None
    activation: str | None = None
    norm_eps: float | None = None

    @property
    def declarations(self) -> dict[str, str | float]:
        """The declared ``family``/``activation``/``norm_eps`` (the keys given only)."""
        return {key: value for key, value in (("family", self.family), ("activation", self.activation),
                                              ("norm_eps", self.norm_eps)) if value is not None}

    @property
    def generated(self) -> bool:
        return self.checkpoint.startswith(GENERATE_PREFIX)


@dataclass(frozen=True)
class Resources:
    """What one cell asks of the machine or the cluster.

    ``gpus_per_cell`` GPUs on each of ``nodes`` nodes, one training process per GPU (0: one CPU
    process per node). ``cpus_per_gpu``: CPUs per training process (SLURM's ``--cpus-per-task``;
    a CPU cell trained locally runs that many OpenMP threads). ``max_per_gpu_batch`` caps the
    per-GPU batch below the recipe's memory-proven one (smaller GPUs); gradient accumulation keeps
    the recipe batch.
    """

    gpus_per_cell: int = 1
    nodes: int = 1
    time_limit_hours: float = 24.0
    cpus_per_gpu: int = 8
    partition: str | None = None
    max_per_gpu_batch: int | None = None


@dataclass(frozen=True)
class TaskEntry:
    """One task row of the matrix: evaluated on every selected backbone for every seed.

    ``batch`` sets a total batch on purpose (None: the recipe's); the lr then follows the
    recipe's linear scaling rule and the cells are marked off-recipe. ``key`` is the entry's
    key path in the matrix file (``tasks[i]``), for messages.
    """

    task: str
    recipe: str = "paper"
    protocol: str | None = None
    resolution: int = 224
    eval_mode: str = "ss"
    backbones: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    config: str | None = None
    resources: Resources | None = None
    batch: int | None = None
    key: str = "tasks"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives, or ``generate`` to make a synthetic one in the work root."""

    kind: str
    root: str | None = None
    generate: bool = False
    generator: str | None = None  # `generate: NAME`: the data kind that writes it (default: kind)

    @property
    def maker(self) -> str:
        """The ``mae_transfer.data`` kind that generates this dataset."""
        return self.generator or self.kind


@dataclass(frozen=True)
class MatrixSpec:
    """A validated benchmark matrix."""

    path: Path
    name: str
    work_root: Path
    backbones: tuple[Backbone, ...]
    tasks: tuple[TaskEntry, ...]
    seeds: tuple[int, ...]
    datasets: dict[str, DatasetSpec]
    resources: Resources
    overrides: dict[str, Any]
    max_attempts: int = 3
    max_parallel: int = 1
    checkpoint_policy: str = "last"
    references: tuple[Path, ...] = ()

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative ones taken from the matrix file's directory."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.path.parent / candidate).resolve()


class _Reader:
    """Typed access to a YAML mapping that reports errors with the file and key path."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, key: str, message: str) -> SpecError:
        return SpecError(self.file, key, message)

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping with keys {', '.join(allowed)}, got {type(value).__name__}")
        for name in value:
            if name not in allowed:
                raise self.fail(f"{key}.{name}" if key else str(name), f"unknown key; allowed keys: {', '.join(allowed)}")
        return value

    def choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(key, f"{value!r} is not allowed; allowed values: {', '.join(allowed)}")
        return value

    def integer(self, value: Any, key: str, minimum: int, maximum: int = MAX_COUNT) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(key, f"{value!r} is not allowed; expected an integer >= {minimum} and at most "
                            f"{maximum:,}{_as_text(value)}")
        return value

    def number(self, value: Any, key: str, maximum: float) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not 0 < value <= maximum):
            raise self.fail(key, f"{value!r} is not allowed; expected a finite positive number, at most "
                            f"{maximum:,g}{_as_text(value)}")
        return float(value)

    def partition(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not PARTITION_PATTERN.match(value):
            raise self.fail(key, f"{value!r} is not allowed; expected a SLURM partition name (letters, digits, "
                            "'_', '.', '-'; several separated by commas) written as a string")
        return value

    def items(self, value: Any, key: str, maximum: int, what: str) -> list:
        """``value`` as a list of at most ``maximum`` entries."""
        if isinstance(value, list) and len(value) > maximum:
            raise self.fail(key, f"{len(value):,} {what}; expected at most {maximum:,}")
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"{value!r} is not allowed; expected a non-empty string")
        return value

    def seeds(self, value: Any, key: str) -> tuple[int, ...]:
        if isinstance(value, list):
            self.items(value, key, MAX_SEEDS, "seeds")
            seeds = tuple(self.integer(seed, f"{key}[{i}]", 0, MAX_SEED) for i, seed in enumerate(value))
            if not seeds or len(set(seeds)) != len(seeds):
                raise self.fail(key, "expected a non-empty list of distinct seeds >= 0, or a seed count >= 1")
            return seeds
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEEDS:
            raise self.fail(key, f"{value!r} is not allowed; expected a seed count >= 1 and at most {MAX_SEEDS:,} "
                            f"or a list of seeds >= 0{_as_text(value)}")
        return tuple(range(value))

    def overrides(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            raise self.fail(key, "expected a mapping of config keys (dotted paths) to values")
        for name in _dotted_keys(value):
            if name in PLANNED_KEYS:
                raise self.fail(f"{key}.{name}", f"set by the planner: {PLANNED_KEYS[name]}")
        return dict(value)

    def resources(self, value: Any, key: str, base: Resources) -> Resources:
        allowed = ("gpus_per_cell", "nodes", "time_limit_hours", "cpus_per_gpu", "partition", "max_per_gpu_batch")
        raw = self.mapping(value, key, allowed)
        limit = raw.get("max_per_gpu_batch", base.max_per_gpu_batch)
        return Resources(
            gpus_per_cell=self.integer(raw.get("gpus_per_cell", base.gpus_per_cell), f"{key}.gpus_per_cell", 0,
                                       MAX_MACHINES),
            nodes=self.integer(raw.get("nodes", base.nodes), f"{key}.nodes", 1, MAX_MACHINES),
            time_limit_hours=self.number(raw.get("time_limit_hours", base.time_limit_hours), f"{key}.time_limit_hours",
                                         MAX_HOURS),
            cpus_per_gpu=self.integer(raw.get("cpus_per_gpu", base.cpus_per_gpu), f"{key}.cpus_per_gpu", 1,
                                      MAX_MACHINES),
            partition=self.partition(raw.get("partition", base.partition), f"{key}.partition"),
            max_per_gpu_batch=None if limit is None else self.integer(limit, f"{key}.max_per_gpu_batch", 1),
        )


def _dotted_keys(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted key paths of a (possibly nested) overrides mapping."""
    keys = []
    for name, value in mapping.items():
        full = f"{prefix}{name}"
        keys += _dotted_keys(value, f"{full}.") if isinstance(value, dict) else [full]
    return keys


def _stage_value(reader: _Reader, name: str, value: Any, key: str) -> Any:
    """One named pre-training parameter, checked (``mask_ratio`` strictly between 0 and 1)."""
    if name == "norm_pix_loss":
        if not isinstance(value, bool):
            raise reader.fail(key, f"{value!r} is not allowed; allowed values: true, false")
        return value
    if name == "mask_ratio":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise reader.fail(key, f"{value!r} is not allowed; expected a fraction strictly between 0 and 1 "
                              "(0 masks no patch, 1 leaves no visible patch)")
        return float(value)
    return reader.integer(value, key, 1)


def _stage(reader: _Reader, raw: Any, key: str, resources: Resources) -> PretrainStage:
    allowed = ("config", "recipe", *PARAMS, "evaluate_epochs", "sweep", "overrides", "resources", "seed")
    raw = reader.mapping(raw, key, allowed)
    if "config" not in raw:
        raise reader.fail(f"{key}.config", "missing; a pre-training stage needs a config (e.g. "
                          "pretrain/mae_vit-base-p16_normpix-amp-800e_in1k-224.py)")
    params = {name: _stage_value(reader, name, raw[name], f"{key}.{name}") for name in PARAMS if name in raw}
    sweep: dict[str, tuple[Any, ...]] = {}
    for name, values in reader.mapping(raw.get("sweep", {}), f"{key}.sweep", PARAMS).items():
        where = f"{key}.sweep.{name}"
        if name in params:
            raise reader.fail(where, f"{name} is both set ({params[name]!r}) and swept; keep one")
        if not isinstance(values, list) or not values:
            raise reader.fail(where, "expected a non-empty list of values")
        reader.items(values, where, MAX_ENTRIES, "values")
        checked = tuple(_stage_value(reader, name, v, f"{where}[{i}]") for i, v in enumerate(values))
        if len(set(checked)) != len(checked):
            raise reader.fail(where, f"{values!r}: expected distinct values")
        sweep[name] = checked
    evaluate = raw.get("evaluate_epochs")
    if evaluate is not None:
        if not isinstance(evaluate, list) or not evaluate:
            raise reader.fail(f"{key}.evaluate_epochs", "expected a non-empty list of epoch counts >= 1")
        reader.items(evaluate, f"{key}.evaluate_epochs", MAX_ENTRIES, "evaluated epochs")
        evaluate = tuple(reader.integer(e, f"{key}.evaluate_epochs[{i}]", 1) for i, e in enumerate(evaluate))
    stage = PretrainStage(
        config=reader.string(raw["config"], f"{key}.config"),
        recipe=reader.choice(raw.get("recipe", "paper"), f"{key}.recipe", PRETRAIN_RECIPES),
        params=params, sweep=sweep, evaluate_epochs=evaluate,
        overrides=reader.overrides(raw.get("overrides"), f"{key}.overrides"),
        resources=reader.resources(raw["resources"], f"{key}.resources", resources) if "resources" in raw else None,
        seed=reader.integer(raw.get("seed", 0), f"{key}.seed", 0, MAX_SEED), key=key,
    )
    check_stage_overrides(stage, _dotted_keys(stage.overrides), reader.fail)
    return stage


def _declarations(reader: _Reader, raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A backbone's ``family``/``activation``/``norm_eps``, checked; a family's undeclared need is an error."""
    found: dict[str, Any] = {}
    if "family" in raw:
        found["family"] = reader.choice(raw["family"], f"{key}.family", tuple(sorted(FAMILIES)))
    if "activation" in raw:
        found["activation"] = reader.choice(raw["activation"], f"{key}.activation", ACTIVATIONS)
    if "norm_eps" in raw:
        found["norm_eps"] = reader.number(raw["norm_eps"], f"{key}.norm_eps", maximum=1.0)  # LayerNorm eps: 1e-6 .. 1e-5
    family = FAMILIES[found["family"]] if "family" in found else None
    for option, hint in family.declare if family else ():
        if option not in found:
            allowed = ", ".join(ACTIVATIONS) if option == "activation" else "a positive number"
            raise reader.fail(f"{key}.{option}", f"missing; family {family.name!r} needs it declared (the weights do not "
                              f"tell it): {hint}; allowed values: {allowed}")
    return found


def _backbone(reader: _Reader, raw: Any, key: str, resources: Resources) -> Backbone:
    raw = reader.mapping(raw, key, ("name", "checkpoint", "arch", "format", "depth", "pretrain", "family",
                                    "activation", "norm_eps"))
    declared = _declarations(reader, raw, key)
    if "pretrain" in raw:
        if declared.get("family", "mae") != "mae":
            raise reader.fail(f"{key}.family", f"{declared['family']!r}: a pre-training stage makes an MAE encoder; "
                              "allowed values: mae")
        if "checkpoint" in raw or "depth" in raw:
            raise reader.fail(f"{key}.pretrain", "a pre-trained backbone takes no checkpoint or depth: its "
                              "checkpoints are the pre-training's")
        if "name" not in raw:
            raise reader.fail(f"{key}.name", "missing; every backbone needs a name")
        name = reader.string(raw["name"], f"{key}.name")
        if not NAME_PATTERN.match(name):
            raise reader.fail(f"{key}.name", f"{name!r} is not allowed; use letters, digits, '_', '.', '-'")
        return Backbone(name=name, checkpoint="", arch=reader.choice(raw.get("arch", "auto"), f"{key}.arch",
                                                                      ("auto", *ARCHS)),
                        format=reader.choice(raw.get("format", "auto"), f"{key}.format", FORMAT_CHOICES),
                        pretrain=_stage(reader, raw["pretrain"], f"{key}.pretrain", resources), **declared)
    for required in ("name", "checkpoint"):
        if required not in raw:
            raise reader.fail(f"{key}.{required}", "missing; every backbone needs a name and a checkpoint "
                              f"(a path or {GENERATE_PREFIX}ARCH with ARCH one of {', '.join(ARCHS)}), "
                              "or a pre-training stage (pretrain:)")
    name = reader.string(raw["name"], f"{key}.name")
    if not NAME_PATTERN.match(name):
        raise reader.fail(f"{key}.name", f"{name!r} is not allowed; use letters, digits, '_', '.', '-'")
    checkpoint = reader.string(raw["checkpoint"], f"{key}.checkpoint")
    arch = reader.choice(raw.get("arch", "auto"), f"{key}.arch", ("auto", *ARCHS))
    if checkpoint.startswith(GENERATE_PREFIX):
        generated = reader.choice(checkpoint, f"{key}.checkpoint", tuple(GENERATE_PREFIX + a for a in ARCHS))
        generated_arch = generated[len(GENERATE_PREFIX):]
        if arch not in ("auto", generated_arch):
            raise reader.fail(f"{key}.arch", f"{arch!r} contradicts the generated checkpoint's {generated_arch!r}")
        arch = generated_arch
    depth = None
    if "depth" in raw:
        if not checkpoint.startswith(GENERATE_PREFIX):
            raise reader.fail(f"{key}.depth", f"only a generated checkpoint ({GENERATE_PREFIX}ARCH) takes a depth")
        depth = reader.integer(raw["depth"], f"{key}.depth", 1, MAX_DEPTH)
    fmt = reader.choice(raw.get("format", AUTO_FORMAT), f"{key}.format", FORMAT_CHOICES)
    family = declared.get("family", "mae")
    if checkpoint.startswith(GENERATE_PREFIX) and fmt not in (AUTO_FORMAT, *WRITTEN_FORMATS[family]):
        raise reader.fail(f"{key}.format", f"{fmt!r}: a generated {family} checkpoint is written in one of "
                          f"{', '.join(WRITTEN_FORMATS[family])} (auto: {WRITTEN_FORMATS[family][0]}, the family's own)")
    return Backbone(name=name, checkpoint=checkpoint, arch=arch, format=fmt, depth=depth, **declared)


def _task(reader: _Reader, raw: Any, key: str, names: set[str], resources: Resources) -> TaskEntry:
    allowed = ("task", "recipe", "protocol", "resolution", "eval", "backbones", "seeds", "overrides", "config", "resources",
               "batch")
    raw = reader.mapping(raw, key, allowed)
    if "task" not in raw:
        raise reader.fail(f"{key}.task", f"missing; allowed values: {', '.join(TASK_DATASETS)}")
    task = reader.choice(raw["task"], f"{key}.task", tuple(TASK_DATASETS))
    recipe = reader.choice(raw.get("recipe", "paper"), f"{key}.recipe", TASK_RECIPES[task])
    protocol = raw.get("protocol")
    if task in CLASSIFICATION_TASKS:
        protocol = protocol or ("knn" if task in PROBE_ONLY_TASKS else "finetune")
        try:
            parsed = Protocol.from_spelling(str(protocol))
        except ValueError as error:
            raise reader.fail(f"{key}.protocol", str(error)) from None
        if task in PROBE_ONLY_TASKS and not parsed.is_probe:
            raise reader.fail(f"{key}.protocol", f"{protocol!r}: {task} runs the frozen probes only: "
                                                 f"{', '.join(PROBE_PROTOCOLS)}")
        if parsed.is_probe and "config" not in raw and not has_probe_config(task, recipe, parsed.spelling):
            raise reader.fail(f"{key}.protocol", f"{protocol!r}: {task} has no probe config for recipe {recipe!r} "
                                                 f"(probe configs: recipe 'paper' on ImageNet, iNat and Places, "
                                                 f"'smoke' on digits); or name one with config:")
    elif protocol is not None:
        raise reader.fail(f"{key}.protocol", f"only classification tasks ({', '.join(CLASSIFICATION_TASKS)}) take a protocol")
    resolution = reader.integer(raw.get("resolution", 224), f"{key}.resolution", 32, MAX_RESOLUTION)
    if resolution != 224 and task not in CLASSIFICATION_TASKS:
        raise reader.fail(f"{key}.resolution", "only classification tasks take a resolution (224 or 448)")
    eval_mode = reader.choice(raw.get("eval", "ss"), f"{key}.eval", EVAL_MODES)
    if eval_mode == "ms+flip" and task != "ade20k-upernet":
        raise reader.fail(f"{key}.eval", f"'ms+flip' is defined for ade20k-upernet only; allowed values for {task}: ss")
    selected = None
    if "backbones" in raw:
        if not isinstance(raw["backbones"], list) or not raw["backbones"]:
            raise reader.fail(f"{key}.backbones", f"expected a non-empty list of backbone names: {', '.join(sorted(names))}")
        selected = tuple(reader.choice(n, f"{key}.backbones[{i}]", tuple(sorted(names))) for i, n in enumerate(raw["backbones"]))
    return TaskEntry(
        task=task, recipe=recipe, protocol=protocol, resolution=resolution, eval_mode=eval_mode, backbones=selected,
        seeds=reader.seeds(raw["seeds"], f"{key}.seeds") if "seeds" in raw else None,
        overrides=reader.overrides(raw.get("overrides"), f"{key}.overrides"),
        config=reader.string(raw["config"], f"{key}.config") if "config" in raw else None,
        resources=reader.resources(raw["resources"], f"{key}.resources", resources) if "resources" in raw else None,
        batch=reader.integer(raw["batch"], f"{key}.batch", 1) if "batch" in raw else None,
        key=key,
    )


def _datasets(reader: _Reader, raw: Any) -> dict[str, DatasetSpec]:
    kinds = tuple(dict.fromkeys(TASK_DATASETS.values()))
    raw = reader.mapping(raw or {}, "datasets", kinds)
    datasets = {}
    for kind, entry in raw.items():
        entry = reader.mapping(entry, f"datasets.{kind}", ("root", "generate"))
        generate = entry.get("generate", False)
        others = ALTERNATIVE_GENERATORS.get(kind, ())
        if not isinstance(generate, bool) and generate not in others:
            raise reader.fail(f"datasets.{kind}.generate", f"{generate!r} is not allowed; allowed values: true, false"
                              + "".join(f", {name}" for name in others))
        root = entry.get("root")
        if root is None and not generate:
            raise reader.fail(f"datasets.{kind}", "expected 'root: PATH' or 'generate: true'")
        datasets[kind] = DatasetSpec(kind=kind, root=None if root is None else reader.string(root, f"datasets.{kind}.root"),
                                     generate=bool(generate), generator=generate if isinstance(generate, str) else None)
    return datasets


def load_spec(path: str | Path, work_root: str | Path | None = None) -> MatrixSpec:
    """Read and validate a matrix YAML file.

    Args:
        path: the matrix file.
        work_root: overrides the file's ``work_root`` (default ``runs/<name>`` next to the file);
            relative to the current directory.

    Raises:
        SpecError: naming the file, the key path and the allowed values.
    """
    path = Path(path).resolve()
    reader = _Reader(path)
    try:
        raw = load_yaml_file(path)
    except OSError as error:
        raise SpecError(path, "-", f"cannot read the matrix file: {error}") from error
    except YamlBoundError as error:
        raise SpecError(path, error.key, error.message) from error
    except ValueError as error:
        raise SpecError(path, "-", str(error)) from error
    except yaml.YAMLError as error:
        raise SpecError(path, "-", f"not valid YAML: {error}") from error
    allowed = ("name", "work_root", "backbones", "tasks", "seeds", "datasets", "resources", "overrides",
               "max_attempts", "max_parallel", "checkpoint_policy", "references")
    raw = reader.mapping(raw, "", allowed)
    for required in ("name", "backbones", "tasks"):
        if required not in raw:
            raise reader.fail(required, f"missing; a matrix needs {', '.join(('name', 'backbones', 'tasks'))}")
    name = reader.string(raw["name"], "name")
    if not NAME_PATTERN.match(name):
        raise reader.fail("name", f"{name!r} is not allowed; use letters, digits, '_', '.', '-'")
    if not isinstance(raw["backbones"], list) or not raw["backbones"]:
        raise reader.fail("backbones", "expected a non-empty list of {name, checkpoint, arch, format}")
    for list_key in ("backbones", "tasks", "references"):
        reader.items(raw.get(list_key), list_key, MAX_ENTRIES, "entries")
    resources = reader.resources(raw.get("resources", {}), "resources", Resources())
    backbones = tuple(_backbone(reader, item, f"backbones[{i}]", resources) for i, item in enumerate(raw["backbones"]))
    names = [b.name for b in backbones]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise reader.fail("backbones", f"duplicate names {duplicates}; each backbone needs its own name")
    if not isinstance(raw["tasks"], list) or not raw["tasks"]:
        raise reader.fail("tasks", f"expected a non-empty list of tasks; allowed task names: {', '.join(TASK_DATASETS)}")
    tasks = tuple(_task(reader, item, f"tasks[{i}]", set(names), resources) for i, item in enumerate(raw["tasks"]))
    references = raw.get("references", [])
    if not isinstance(references, list):
        raise reader.fail("references", "expected a list of reference files")
    seeds = reader.seeds(raw.get("seeds", 1), "seeds")
    cells = count_cells(backbones, tasks, seeds)
    if cells > MAX_CELLS:
        raise reader.fail("tasks", f"the matrix expands to {cells:,} cells (backbones x tasks x seeds x sweep points x "
                          f"evaluated epochs); expected at most {MAX_CELLS:,}")
    check_backbone_names(backbones, reader.fail)
    spec_dir = path.parent
    if work_root is not None:
        root_path = Path(work_root).expanduser().resolve()
    else:
        root_path = (spec_dir / Path(reader.string(raw.get("work_root", f"runs/{name}"), "work_root")).expanduser()).resolve()
    return MatrixSpec(
        path=path, name=name,
        work_root=root_path,
        backbones=backbones, tasks=tasks,
        seeds=seeds,
        datasets=_datasets(reader, raw.get("datasets")),
        resources=resources,
        overrides=reader.overrides(raw.get("overrides"), "overrides"),
        max_attempts=reader.integer(raw.get("max_attempts", 3), "max_attempts", 1, MAX_ATTEMPTS),
        max_parallel=reader.integer(raw.get("max_parallel", 1), "max_parallel", 1, MAX_MACHINES),
        checkpoint_policy=reader.choice(raw.get("checkpoint_policy", "last"), "checkpoint_policy", CHECKPOINT_POLICIES),
        references=tuple((spec_dir / reader.string(r, f"references[{i}]")).resolve() for i, r in enumerate(references)),
    )
