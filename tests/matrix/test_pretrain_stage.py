"""Pre-training stages in a matrix: spec validation, planning, content addressing, blocking, sbatch order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mae_transfer.matrix.run.executors import RunSummary
from mae_transfer.matrix.run.state import select
from mae_transfer.matrix.run.executors.sbatch import write_sbatch
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec
from mae_transfer.matrix.run.files import STATE_NAME
from mae_transfer.matrix.run.state import CellState, read_state, write_state

SMOKE_PRETRAIN = "pretrain/mae_vit-tiny-d4_smoke-64px.py"  # 100 epochs, 5 warmup, save_epochs [25, 50]


def _matrix(tmp_path: Path, stage: str, tasks: str = "  - {task: inat2017, recipe: smoke}") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "m.yaml"
    path.write_text(f"""
name: stages
work_root: {json.dumps(str(tmp_path / 'runs'))}
max_attempts: 2
backbones:
  - {{name: random, checkpoint: "generate:vit_tiny_patch16", depth: 4}}
  - name: mae
    pretrain: {stage}
datasets:
  imagenet: {{generate: true}}
  inat2017: {{generate: true}}
resources: {{gpus_per_cell: 0}}
tasks:
{tasks}
""")
    return path


def _plan(tmp_path: Path, stage: str, **kwargs):
    return plan_matrix(load_spec(_matrix(tmp_path, stage, **kwargs)))


def test_a_sweep_plans_one_pretraining_per_point_and_a_transfer_cell_per_evaluated_epoch(tmp_path: Path) -> None:
    plan = _plan(tmp_path, f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20, evaluate_epochs: [10, 20], "
                           "sweep: {mask_ratio: [0.5, 0.9]}}")
    pretrain = [c for c in plan.cells if c.task == "mae-pretrain"]
    transfer = [c for c in plan.cells if c.task == "inat2017"]
    assert [c.backbone for c in pretrain] == ["mae-mask_ratio0.5", "mae-mask_ratio0.9"]
    assert plan.cells[:2] == pretrain  # pre-training first: its dependents wait on it
    assert sorted(c.backbone for c in transfer) == ["mae-mask_ratio0.5-ep10", "mae-mask_ratio0.5-ep20",
                                                   "mae-mask_ratio0.9-ep10", "mae-mask_ratio0.9-ep20", "random"]
    first = pretrain[0]
    assert first.cfg_options["model.mask_ratio"] == 0.5
    assert first.cfg_options["train_cfg.max_epochs"] == 20
    assert first.cfg_options["param_scheduler.1.end"] == 20  # the cosine ends with the shortened schedule
    assert first.cfg_options["custom_hooks.0.save_epochs"] == [10, 20]
    assert first.cfg_options["train_dataloader.dataset.data_root"] == str(tmp_path / "runs" / "data" / "imagenet")
    assert (first.effective_batch, first.per_gpu_batch, first.accumulation, first.lr) == (16, 16, 1, 1.5e-3)
    assert first.pretrain == {"stage": "mae", "cell": first.id, "params": {
        "mask_ratio": 0.5, "norm_pix_loss": True, "decoder_depth": 2, "decoder_width": 128, "epochs": 20}}
    ep10 = next(c for c in transfer if c.backbone == "mae-mask_ratio0.5-ep10")
    # the official name of the checkpoint after 10 epochs: checkpoint-9.pth
    assert ep10.cfg_options["model.pretrained"] == str(Path(first.work_dir) / "train" / "checkpoint-9.pth")
    assert ep10.depends_on == first.work_dir
    assert ep10.pretrain == {"stage": "mae", "cell": first.id, "epoch": 10, "params": first.pretrain["params"],
                             "depth": 4}  # the stage config's encoder blocks (a rehearsal's stand-in has them)
    assert next(c for c in transfer if c.backbone == "random").depends_on is None


def test_pretraining_cells_are_content_addressed(tmp_path: Path) -> None:
    stage = f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20}}"
    one = _plan(tmp_path / "a", stage)
    again = _plan(tmp_path / "a", stage)
    other = _plan(tmp_path / "a", f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20, mask_ratio: 0.6}}")
    ids = [[c.id for c in plan.cells] for plan in (one, again, other)]
    assert ids[0] == ids[1]
    assert ids[0][0] != ids[2][0]  # another mask ratio: another pre-training cell
    # and its transfer cells change with it (their checkpoint is another pre-training's)
    assert {c.id for c in one.cells if c.depends_on}.isdisjoint({c.id for c in other.cells if c.depends_on})
    # the random backbone's transfer cell does not depend on the stage
    assert [c.id for c in one.cells if c.backbone == "random"] == [c.id for c in other.cells if c.backbone == "random"]


def test_only_keeps_the_pretraining_a_selected_transfer_cell_waits_on(tmp_path: Path) -> None:
    spec = load_spec(_matrix(tmp_path, f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20}}"))
    plan = plan_matrix(spec, only="inat2017.smoke.finetune.mae.*")
    assert [c.task for c in plan.cells] == ["mae-pretrain", "inat2017"]


@pytest.mark.parametrize(("stage", "key", "expected"), [
    (f"{{config: {SMOKE_PRETRAIN}, mask_ratio: 1.0}}", "backbones[1].pretrain.mask_ratio", "leaves no visible patch"),
    (f"{{config: {SMOKE_PRETRAIN}, mask_ratio: 0}}", "backbones[1].pretrain.mask_ratio", "masks no patch"),
    (f"{{config: {SMOKE_PRETRAIN}, mask_ratio: 0.5, sweep: {{mask_ratio: [0.6]}}}}",
     "backbones[1].pretrain.sweep.mask_ratio", "both set"),
    (f"{{config: {SMOKE_PRETRAIN}, sweep: {{mask: [0.6]}}}}", "backbones[1].pretrain.sweep.mask", "unknown key"),
    (f"{{config: {SMOKE_PRETRAIN}, norm_pix_loss: 1}}", "backbones[1].pretrain.norm_pix_loss", "true, false"),
    ("{recipe: smoke}", "backbones[1].pretrain.config", "missing"),
])
def test_bad_stages_name_the_key(tmp_path: Path, stage: str, key: str, expected: str) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(_matrix(tmp_path, stage))
    assert raised.value.key == key and expected in str(raised.value)


@pytest.mark.parametrize(("stage", "key", "expected"), [
    (f"{{config: {SMOKE_PRETRAIN}, epochs: 5}}", "backbones[1].pretrain.epochs", "warms up for 5 epochs"),
    (f"{{config: {SMOKE_PRETRAIN}, epochs: 20, evaluate_epochs: [30]}}", "backbones[1].pretrain.evaluate_epochs",
     "[30] exceed the 20 pre-training epochs"),
    ("{config: smoke/inat_finetune.py}", "backbones[1].pretrain.config", "MAETransferPretrainer"),
    ("{config: pretrain/nope.py}", "backbones[1].pretrain.config", "no such packaged config"),
])
def test_stages_the_config_cannot_take_are_refused_when_planned(tmp_path: Path, stage: str, key: str,
                                                                expected: str) -> None:
    with pytest.raises(SpecError) as raised:
        _plan(tmp_path, stage)
    assert raised.value.key == key and expected in str(raised.value)


def test_a_failed_pretraining_blocks_its_transfer_cells_without_spending_their_attempts(tmp_path: Path) -> None:
    plan = _plan(tmp_path, f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20}}")
    pretrain = plan.cells[0]
    write_state(Path(pretrain.work_dir), CellState(state="failed", attempts=2, error_tail="Traceback\nValueError: boom"))
    summary = RunSummary()
    chosen = select(plan, retry_failed=False, summary=summary)
    assert [c.backbone for c in chosen] == ["random"]
    assert summary.exhausted == [pretrain.label]
    assert summary.blocked == ["inat2017.smoke.finetune.mae.s0"]
    dependent = next(c for c in plan.cells if c.depends_on)
    state = read_state(Path(dependent.work_dir))
    assert (state.state, state.attempts) == ("blocked", 0)
    assert pretrain.label in state.error_tail and "ValueError: boom" in state.error_tail
    # --retry-failed runs the pre-training again, and its dependents with it
    retried = select(plan, retry_failed=True, summary=RunSummary())
    assert [c.task for c in retried] == ["mae-pretrain", "inat2017", "inat2017"]
    assert (Path(dependent.work_dir) / STATE_NAME).is_file()


def test_sbatch_only_submits_the_transfer_arrays_after_the_pretraining(tmp_path: Path) -> None:
    plan = _plan(tmp_path, f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20}}")
    scripts = write_sbatch(plan, plan.cells, max_parallel=1)
    submit = (plan.spec.work_root / "slurm" / "submit.sh").read_text().splitlines()
    lists = [[line.strip() for line in script.read_text().split("CELLS=(\n")[1].split("\n)")[0].splitlines()]
             for script in scripts]
    pretrain = plan.cells[0]
    assert lists[0] == [pretrain.work_dir, *(c.work_dir for c in plan.cells if c.backbone == "random")]
    assert lists[1] == [c.work_dir for c in plan.cells if c.depends_on]
    assert submit[3] == f"job0=$(sbatch --parsable {scripts[0]})"
    assert submit[4] == f"sbatch --dependency=afterok:${{job0%%;*}} --kill-on-invalid-dep=yes {scripts[1]}"


def test_plan_resolve_writes_the_config_each_cell_trains_from(tmp_path: Path) -> None:
    from mae_transfer.matrix.plan.resolve import write_resolved_configs

    plan = _plan(tmp_path, f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20, mask_ratio: 0.6}}")
    written = write_resolved_configs(plan)
    assert written == [Path(c.work_dir) / "config.py" for c in plan.cells]
    pretrain, random, pretrained = (path.read_text() for path in written)
    assert "mask_ratio=0.6" in pretrain and "max_epochs=20" in pretrain
    assert str(Path(plan.cells[0].work_dir) / "train" / "checkpoint-19.pth") in pretrained
    assert str(tmp_path / "runs" / "checkpoints" / "random.pth") in random


def test_doctor_reports_a_stage_backbone_as_written_by_its_pretraining(tmp_path: Path) -> None:
    from mae_transfer.matrix.doctor import run_doctor

    plan = _plan(tmp_path, f"{{config: {SMOKE_PRETRAIN}, recipe: smoke, epochs: 20}}")
    report = run_doctor(plan)
    checkpoints = [c.message for c in report.checks if c.topic == "checkpoints"]
    assert f"mae: written by its pre-training cell(s) {plan.cells[0].label}" in checkpoints
    # the pre-training config's planned keys (data roots, mask ratio, hook epochs...) all exist in it
    assert not [c.message for c in report.checks if c.level == "fail" and SMOKE_PRETRAIN in c.message]
    # a generated ImageNet (4 classes) is not held to the real set's 1000 classes
    from mae_transfer.data import make_dataset

    root = tmp_path / "runs" / "data" / "imagenet"
    make_dataset("imagenet", root, seed=0)
    (root / ".generated").write_text("generated by the test\n")
    imagenet = [c for c in run_doctor(plan).checks if c.topic == "datasets" and "imagenet" in c.message]
    assert [c.level for c in imagenet] == ["ok"], [c.message for c in imagenet]
