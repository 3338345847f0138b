"""Issue 19: what a hostile user writes in a matrix is refused by `plan` and `doctor` before any
cell runs, in one line naming the file, the key and what was expected (no traceback).

Every case goes through the CLI's ``main`` in this process; nothing trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mae_transfer.cli import main

SMOKE_PRETRAIN = "pretrain/mae_vit-tiny-d4_smoke-64px.py"  # 100 epochs, 5 warmup
SMOKE_BACKBONE = '{name: tiny, checkpoint: "generate:vit_tiny_patch16", depth: 4}'
TASK = "  - {task: inat2017, recipe: smoke}"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))


def _matrix(tmp_path: Path, backbones: str, tasks: str = TASK, extra: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "m.yaml"
    path.write_text(f"""
name: hostile
work_root: {json.dumps(str(tmp_path / 'runs'))}
backbones:
{backbones}
datasets:
  imagenet: {{generate: true}}
  inat2017: {{generate: true}}
resources: {{gpus_per_cell: 0}}
{extra}
tasks:
{tasks}
""")
    return path


def _refused(capsys: pytest.CaptureFixture[str], matrix: Path, command: str = "plan") -> str:
    """The one error line ``mae-transfer COMMAND MATRIX`` prints, after checking it refused cleanly."""
    code = main([command, str(matrix)])
    out = capsys.readouterr()
    assert code == 2, out.out + out.err
    assert "Traceback" not in out.out + out.err
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {matrix}: "), out.err
    return lines[0]


def _stage(name: str, body: str) -> str:
    return f"  - name: {name}\n    pretrain: {{config: {SMOKE_PRETRAIN}, recipe: smoke, {body}}}"


# 1. derived backbone names ------------------------------------------------------------------------

def test_a_derived_name_equal_to_a_declared_backbone_is_refused_naming_both(tmp_path, capsys) -> None:
    """The issue's reproduction: a random init named like a pre-training's checkpoint was averaged with it."""
    matrix = _matrix(tmp_path, "\n".join([
        '  - {name: ptm-mask_ratio0.5-ep4, checkpoint: "generate:vit_tiny_patch16", depth: 4}',
        _stage("ptm", "epochs: 8, sweep: {mask_ratio: [0.5, 0.75]}, evaluate_epochs: [4, 8]")]))
    for command in ("plan", "doctor"):
        line = _refused(capsys, matrix, command)
        assert "'ptm-mask_ratio0.5-ep4'" in line and "backbones[0].name" in line and "backbones[1].pretrain" in line, line


def test_two_stages_deriving_one_name_are_refused_naming_both(tmp_path, capsys) -> None:
    matrix = _matrix(tmp_path, "\n".join([_stage("a", "epochs: 8, sweep: {mask_ratio: [0.5]}"),
                                          _stage("a-mask_ratio0.5", "epochs: 8")]))
    line = _refused(capsys, matrix)
    assert "'a-mask_ratio0.5'" in line and "backbones[0].pretrain" in line and "backbones[1]" in line, line


# 2. overrides that shadow a named or swept parameter ------------------------------------------

@pytest.mark.parametrize("body, key, param", [
    ("epochs: 8, sweep: {mask_ratio: [0.5, 0.75]}, overrides: {model.mask_ratio: 0.9}", "model.mask_ratio", "mask_ratio"),
    ("epochs: 8, mask_ratio: 0.6, overrides: {model: {mask_ratio: 0.9}}", "model.mask_ratio", "mask_ratio"),
    ("epochs: 8, overrides: {model.decoder.depth: 1}", "model.decoder.depth", "decoder_depth"),
    ("epochs: 8, overrides: {train_cfg.max_epochs: 3}", "train_cfg.max_epochs", "epochs"),
    ("epochs: 8, overrides: {model.decoder: 3}", "model.decoder", "decoder_depth"),
])
def test_a_stage_override_that_shadows_a_parameter_is_refused(tmp_path, capsys, body: str, key: str,
                                                               param: str) -> None:
    matrix = _matrix(tmp_path, _stage("ptm", body))
    line = _refused(capsys, matrix)
    assert f"backbones[0].pretrain.overrides.{key}" in line and f"'{param}'" in line, line


# 3. override keys the config does not have -----------------------------------------------------

@pytest.mark.parametrize("override, nearest", [
    ("lr: 0.5", "optim_wrapper.optimizer.lr"),
    ("max_epochs: 1", "train_cfg.max_epochs"),
    ('"a=b": 1', None),
    ("num_classes: 7", "model.num_classes"),  # a top-level variable of the config: substituted when parsed
])
def test_a_transfer_override_key_the_config_does_not_read_is_refused_with_the_nearest_key(
        tmp_path, capsys, override: str, nearest: str | None) -> None:
    matrix = _matrix(tmp_path, f"  - {SMOKE_BACKBONE}",
                     tasks=f"  - {{task: inat2017, recipe: smoke, overrides: {{{override}}}}}")
    key = override.split(":")[0].strip('"')
    for command in ("plan", "doctor"):
        line = _refused(capsys, matrix, command)
        assert f"tasks[0].overrides.{key}" in line and "inat_finetune.py" in line, line
        if nearest:
            assert f"did you mean {nearest}?" in line, line


def test_a_stage_override_key_the_config_does_not_read_is_refused_with_the_nearest_key(tmp_path, capsys) -> None:
    matrix = _matrix(tmp_path, _stage("ptm", "epochs: 8, overrides: {lr: 0.5}"))
    line = _refused(capsys, matrix)
    assert "backbones[0].pretrain.overrides.lr" in line and "did you mean optim_wrapper.optimizer.lr?" in line, line
    assert "mae_vit-tiny-d4_smoke-64px.py" in line


def test_matrix_wide_overrides_are_checked_against_every_config_they_reach(tmp_path, capsys) -> None:
    matrix = _matrix(tmp_path, f"  - {SMOKE_BACKBONE}", extra="overrides: {train_cfg.max_epoch: 2}")
    line = _refused(capsys, matrix)
    assert "overrides.train_cfg.max_epoch" in line and "did you mean train_cfg.max_epochs?" in line, line


def test_overrides_the_configs_have_still_plan(tmp_path, capsys) -> None:
    matrix = _matrix(tmp_path, "\n".join([f"  - {SMOKE_BACKBONE}", _stage("ptm", "epochs: 8, overrides: "
                                                                            "{model.decoder.num_heads: 4}")]),
                     tasks="  - {task: inat2017, recipe: smoke, overrides: {optim_wrapper.optimizer.betas: [0.9, 0.95], "
                           "train_cfg.max_epochs: 2, randomness.deterministic: true}}")
    assert main(["plan", str(matrix), "--json"]) == 0, capsys.readouterr().err
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [c["task"] for c in cells] == ["mae-pretrain", "inat2017", "inat2017"]


# 5. YAML that would exhaust memory or time ---------------------------------------------------

def _alias_bomb(levels: int = 9) -> str:
    """An override value of 9**levels leaves built from a few hundred bytes of aliases."""
    lines = ["      a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels):
        lines.append(f"      a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines)


HOSTILE_YAML = {
    "alias bomb": ("  - task: inat2017\n    recipe: smoke\n    overrides:\n" + _alias_bomb(),
                   "", "tasks[0].overrides", "expands"),
    "recursive alias": ("  - task: inat2017\n    recipe: smoke\n    overrides:\n      a: &loop [1, *loop]",
                        "", "tasks[0].overrides.a[1]", "recursive"),
    "deep nesting": ("  - task: inat2017\n    recipe: smoke\n    overrides: " + "{a: " * 5000 + "1" + "}" * 5000,
                     "", "tasks[0].overrides.a.a", "nested more than"),
    "seed count": (TASK, "seeds: 100000000", "seeds", "at most"),
    "seed count as text": (TASK, "seeds: 1e8", "seeds", "seed count"),
    "batch": ("  - {task: inat2017, recipe: smoke, batch: 1000000000000}", "", "tasks[0].batch", "at most"),
    "task seeds": ("  - {task: inat2017, recipe: smoke, seeds: 100000000}", "", "tasks[0].seeds", "at most"),
    "sweep length": (TASK, "", "backbones[1].pretrain.sweep.decoder_depth", "at most"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML))
def test_hostile_yaml_is_refused_naming_the_key(tmp_path, capsys, case: str) -> None:
    tasks, extra, key, words = HOSTILE_YAML[case]
    backbones = f"  - {SMOKE_BACKBONE}"
    if case == "sweep length":
        backbones += "\n" + _stage("ptm", "sweep: {decoder_depth: [" + ", ".join(map(str, range(1, 2002))) + "]}")
    line = _refused(capsys, _matrix(tmp_path, backbones, tasks=tasks, extra=extra))
    assert f": {key}" in line and words in line, line


# 10. resources that only fail when a job is submitted ---------------------------------------

@pytest.mark.parametrize("resources, key, expected", [
    ("{time_limit_hours: .nan}", "resources.time_limit_hours", "finite"),
    ("{time_limit_hours: .inf}", "resources.time_limit_hours", "finite"),
    ("{partition: 7}", "resources.partition", "partition name"),
    ('{partition: "gpu\\nrm -rf /"}', "resources.partition", "partition name"),
    ("{partition: ''}", "resources.partition", "partition name"),
])
def test_slurm_resources_are_checked_when_the_spec_is_read(tmp_path, capsys, resources: str, key: str,
                                                         expected: str) -> None:
    matrix = _matrix(tmp_path, f"  - {SMOKE_BACKBONE}")
    matrix.write_text(matrix.read_text().replace("resources: {gpus_per_cell: 0}", f"resources: {resources}"))
    for command in ("plan", "doctor"):
        line = _refused(capsys, matrix, command)
        assert f": {key}: " in line and expected in line, line


MEASURE = """
import json, resource, sys, time
from mae_transfer.matrix.plan import plan_matrix
from mae_transfer.matrix.spec import SpecError, load_spec
import mmengine.config  # imported before measuring: plan parses configs with it
rows = {}
for path in sys.argv[1:]:
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    try:
        plan_matrix(load_spec(path))
        error = None
    except (SpecError, MemoryError, RecursionError) as raised:
        error = f"{type(raised).__name__}: {raised}"[:300]
    rows[path] = {"error": error, "seconds": time.perf_counter() - start,
                  "grown_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}
print(json.dumps(rows))
"""


def test_hostile_yaml_is_refused_within_two_seconds_and_200_mb(tmp_path: Path) -> None:
    """The issue's measurements, in a fresh process (peak memory is per process); plan included."""
    import os
    import subprocess
    import sys

    paths = []
    for index, case in enumerate(sorted(HOSTILE_YAML)):
        tasks, extra, _, _ = HOSTILE_YAML[case]
        backbones = f"  - {SMOKE_BACKBONE}"
        if case == "sweep length":
            backbones += "\n" + _stage("ptm", "sweep: {decoder_depth: [" + ", ".join(map(str, range(1, 2002))) + "]}")
        paths.append(str(_matrix(tmp_path / str(index), backbones, tasks=tasks, extra=extra)))
    done = subprocess.run([sys.executable, "-c", MEASURE, *paths], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ, "OMP_NUM_THREADS": "1",
                                               "MAE_TRANSFER_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    for case, path in zip(sorted(HOSTILE_YAML), paths):
        row = rows[path]
        assert row["error"] and row["error"].startswith("SpecError"), (case, row)
        assert row["seconds"] < 2 and row["grown_mb"] < 200, (case, row)


# 2 (planner-set keys), 7: what only failed inside a cell, spending an attempt ---------------------

@pytest.mark.parametrize("body, key, owner", [
    ("epochs: 8, evaluate_epochs: [4, 8], overrides: {custom_hooks.0.save_epochs: [2]}", "custom_hooks.0.save_epochs",
     "evaluate_epochs"),
    ("epochs: 8, overrides: {param_scheduler: []}", "param_scheduler", "epochs"),
    ("epochs: 8, overrides: {randomness.seed: 3}", "randomness.seed", "seed"),
    ("epochs: 8, overrides: {train_dataloader.dataset.data_root: /x}", "train_dataloader.dataset.data_root",
     "datasets.imagenet"),
])
def test_a_stage_override_of_a_key_the_stage_derives_is_refused(tmp_path, capsys, body: str, key: str,
                                                                owner: str) -> None:
    line = _refused(capsys, _matrix(tmp_path, _stage("ptm", body)))
    assert f"backbones[0].pretrain.overrides.{key}: sets" in line and owner in line, line


@pytest.mark.parametrize("override, owner", [("randomness.seed: 0", "seeds"), ("model.pretrained: /x.pth", "checkpoint"),
                                             ("model: {protocol: linear}", "tasks[0].protocol"),
                                             ("train_dataloader.dataset.data_root: /x", "datasets.inat2017")])
def test_a_transfer_override_of_a_key_the_planner_sets_per_cell_is_refused(tmp_path, capsys, override: str,
                                                                           owner: str) -> None:
    matrix = _matrix(tmp_path, f"  - {SMOKE_BACKBONE}", tasks=f"  - {{task: inat2017, recipe: smoke, protocol: partial-1, "
                                                              f"overrides: {{{override}}}}}")
    line = _refused(capsys, matrix)
    assert f"tasks[0].overrides.{override.split(':')[0]}" in line and owner in line, line


@pytest.mark.parametrize("value, expected", [("four", "expected a number like the config's 4"),
                                             (".nan", "not a finite number")])
def test_an_override_value_the_config_cannot_take_is_refused(tmp_path, capsys, value: str, expected: str) -> None:
    matrix = _matrix(tmp_path, f"  - {SMOKE_BACKBONE}",
                     tasks=f"  - {{task: inat2017, recipe: smoke, overrides: {{model.backbone.depth: {value}}}}}")
    line = _refused(capsys, matrix)
    assert "tasks[0].overrides.model.backbone.depth: " in line and expected in line, line


def _nan_checkpoint(path: Path) -> Path:
    import torch

    from mae_transfer.models import build_vit

    state = build_vit("vit_tiny_patch16", depth=4).state_dict()
    state["blocks.0.attn.qkv.weight"][0, 0] = float("nan")
    torch.save({"model": state}, path)
    return path


BROKEN = {
    "missing checkpoint": ("  - {name: gone, checkpoint: gone.pth, arch: vit_tiny_patch16}", "",
                           "backbones[0].checkpoint", "does not exist"),
    "non-finite checkpoint": ("  - {name: nan, checkpoint: nan.pth, arch: vit_tiny_patch16}", "",
                              "backbones[0].checkpoint", "non-finite weights"),
    "two nodes": (f"  - {SMOKE_BACKBONE}", "resources: {gpus_per_cell: 0, nodes: 2}", "resources",
                  "planned for 2 process(es)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_doctor_reports_and_run_refuses_a_cell_that_cannot_train_before_any_attempt(tmp_path, capsys,
                                                                                    case: str) -> None:
    import signal

    backbones, resources, key, expected = BROKEN[case]
    _nan_checkpoint(tmp_path / "nan.pth")
    matrix = _matrix(tmp_path, backbones)
    if resources:
        matrix.write_text(matrix.read_text().replace("resources: {gpus_per_cell: 0}", resources))
    assert main(["doctor", str(matrix)]) == (0 if case == "two nodes" else 1)
    report = capsys.readouterr().out
    assert ("[warn] nodes: 1 cell(s) ask for up to 2 nodes" if case == "two nodes"
            else f"[FAIL] checkpoints: {backbones.split()[2].rstrip(',')}") in report, report
    handler = signal.getsignal(signal.SIGTERM)  # `run` installs its own
    try:
        line = _refused(capsys, matrix, "run")
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert f": {key}: " in line and expected in line and "no attempt spent" in line, line
    cells = tmp_path / "runs" / "cells"
    assert not cells.exists() or not any(cells.rglob("state.json")), list(cells.rglob("*"))


def test_doctor_fails_an_ade20k_set_with_an_empty_validation_split(tmp_path, capsys) -> None:
    from mae_transfer.data import make_dataset

    root = make_dataset("ade20k", tmp_path / "ade", seed=0, num_train=2, num_val=1)
    for folder in (root / "images" / "validation", root / "annotations" / "validation"):
        for path in folder.iterdir():
            path.unlink()
    matrix = _matrix(tmp_path, f"  - {SMOKE_BACKBONE}", tasks="  - {task: ade20k-upernet, recipe: smoke}")
    matrix.write_text(matrix.read_text().replace("datasets:\n", f"datasets:\n  ade20k: {{root: {json.dumps(str(root))}}}\n"))
    assert main(["doctor", str(matrix)]) == 1
    report = capsys.readouterr().out
    assert "[FAIL] datasets: ade20k dataset at" in report and "no image/label pairs in the validation split" in report
