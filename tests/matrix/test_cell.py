"""How a cell becomes a command line, and the state file transitions."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mae_transfer.matrix.plan.resolve import launch_options, write_cell_config
from mae_transfer.matrix.run.cell import cell_env, train_command
from mae_transfer.matrix.plan.planner import Cell
from mae_transfer.matrix.spec.matrix_spec import Resources
from mae_transfer.matrix.progress_view import read_progress
from mae_transfer.matrix.run.state import mark_finished, mark_running, read_state
from mae_transfer.paths import config_file, config_name


def _cell(tmp_path: Path, policy: str = "last") -> Cell:
    return Cell(id="0" * 16, label="l", backbone="b", arch="vit_tiny_patch16", checkpoint="c.pth", task="inat2017",
                dataset="inat2017", recipe="smoke", protocol="finetune", resolution=224, eval_mode="ss", seed=0,
                config="configs/smoke/inat_finetune.py", cfg_options={"randomness.seed": 0}, work_dir=str(tmp_path),
                resources=Resources(gpus_per_cell=0), gpu_hours=0.0, checkpoint_policy=policy, max_attempts=3)


def test_train_command_for_each_launcher(tmp_path: Path) -> None:
    local = train_command(_cell(tmp_path), "none", 1, resume=True)
    assert local[:4] == [sys.executable, "-m", "mae_transfer.train", str(tmp_path / "config.py")]
    assert local[local.index("--work-dir") + 1] == str(tmp_path / "train")
    assert "--resume" in local and "--cfg-options" not in local
    torchrun = train_command(_cell(tmp_path, policy="best"), "pytorch", 2, resume=False)
    assert torchrun[1:5] == ["-m", "torch.distributed.run", "--nproc-per-node", "2"]
    assert torchrun[torchrun.index("mae_transfer.train") - 1:][:2] == ["-m", "mae_transfer.train"]
    assert "--resume" not in torchrun and "--cfg-options" not in torchrun
    assert launch_options(_cell(tmp_path, policy="best"), "none")["default_hooks.checkpoint.save_best"] == "auto"


def test_a_local_cpu_cell_runs_its_cpus_per_gpu_threads_unless_the_environment_says(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpu = replace(_cell(tmp_path), resources=Resources(gpus_per_cell=0, cpus_per_gpu=3))
    assert cell_env(cpu, "none")["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in cell_env(cpu, "pytorch")  # torchrun sets its own
    assert "OMP_NUM_THREADS" not in cell_env(replace(cpu, resources=Resources(gpus_per_cell=1)), "none")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cell_env(cpu, "none")["OMP_NUM_THREADS"] == "1"


def test_cell_config_carries_paths_the_command_line_could_not(tmp_path: Path) -> None:
    """A checkpoint path with a space and a comma reaches the training through config.py alone."""
    from mmengine.config import Config

    checkpoint = str(tmp_path / "my ckpts, v2" / "tiny.pth")
    options = {"randomness.seed": 0, "model.pretrained": checkpoint,
               "train_dataloader.dataset.data_root": str(tmp_path / "data (a,b)")}
    cell = replace(_cell(tmp_path), config=str(config_file("configs/smoke/inat_finetune.py")), cfg_options=options)
    written = write_cell_config(cell, "none")
    assert written == tmp_path / "config.py"
    cfg = Config.fromfile(str(written), import_custom_modules=False)
    assert "_base_" not in written.read_text()
    assert cfg.model.pretrained == checkpoint and cfg.randomness.seed == 0
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path / "data (a,b)")
    assert all(checkpoint not in arg for arg in train_command(cell, "none", 1, resume=None))


def test_shipped_configs_resolve_inside_the_package() -> None:
    import mae_transfer

    package = Path(mae_transfer.__file__).resolve().parent
    assert config_file("configs/smoke/inat_finetune.py") == package / "configs" / "smoke" / "inat_finetune.py"
    assert config_name(package / "configs" / "smoke" / "inat_finetune.py") == "configs/smoke/inat_finetune.py"
    top = Path(__file__).resolve().parents[2] / "configs"  # the checkout's symlink, for users and tests
    assert (top / "smoke" / "inat_finetune.py").resolve() == config_file("configs/smoke/inat_finetune.py")


def test_state_transitions_record_attempts_and_error_tail(tmp_path: Path) -> None:
    assert read_state(tmp_path).state == "pending"
    mark_running(tmp_path, None)
    assert read_state(tmp_path).state == "running" and not read_state(tmp_path).interrupted  # this process
    mark_finished(tmp_path, ok=False, error_tail="boom")
    mark_running(tmp_path, 4)
    state = read_state(tmp_path)
    assert (state.attempts, state.resumed_from_iter, state.error_tail) == (2, 4, "boom")
    (tmp_path / "state.json").write_text("{half")
    assert read_state(tmp_path).state == "pending"


def test_progress_and_eta_from_the_progress_record(tmp_path: Path) -> None:
    from mae_transfer.records import ProgressRecord, write_progress

    assert read_progress(tmp_path).text == ""
    (tmp_path / "log.txt").write_text("x Iter(train) [ 20/300]  lr: 1e-3  eta: 0:01:40  time: 0.3\n")  # not read
    write_progress(tmp_path / "train", ProgressRecord(step=40, total=300, epoch=0, time=0.0, eta_seconds=90.4))
    progress = read_progress(tmp_path)
    assert progress.text == "iter 40/300" and progress.eta == "0:01:30" and abs(progress.fraction - 40 / 300) < 1e-9


def _planned_cell(tmp_path: Path, processes: int, per_gpu: int, accumulation: int) -> Cell:
    return Cell(id="1" * 16, label="inat2017.smoke.finetune.tiny.s0", backbone="tiny", arch="vit_tiny_patch16",
                checkpoint=str(tmp_path / "c.pth"), task="inat2017", dataset="inat2017", recipe="smoke", protocol="finetune",
                resolution=224, eval_mode="ss", seed=0, config="configs/smoke/inat_finetune.py",
                cfg_options={"randomness.seed": 0}, work_dir=str(tmp_path), resources=Resources(gpus_per_cell=processes),
                gpu_hours=0.0, checkpoint_policy="last", max_attempts=3, processes=processes,
                effective_batch=processes * per_gpu * accumulation, per_gpu_batch=per_gpu, accumulation=accumulation,
                lr=1e-3, recipe_batch=8, recipe_lr=1e-3)


def test_launch_with_another_process_count_is_refused_before_training(tmp_path: Path) -> None:
    import json

    from mae_transfer.matrix.run.cell import run_cell

    cell = _planned_cell(tmp_path, processes=2, per_gpu=4, accumulation=1)
    (tmp_path / "cell.json").write_text(json.dumps(cell.to_json()))
    assert not run_cell(tmp_path, launcher="none", nproc=1)
    state = read_state(tmp_path)
    assert state.state == "failed" and not (tmp_path / "train").exists()
    assert ("cell inat2017.smoke.finetune.tiny.s0 (configs/smoke/inat_finetune.py): planned for 2 process(es) "
            "(2 x 4 per GPU x 1 accumulation = batch 8), but this launch (none, 1 per node) starts 1, which would "
            "train at batch 4") in state.error_tail


LOAD = {"source": "c.pth", "format": "mae", "arch": "vit_tiny_patch16", "model_arch": "vit_tiny_patch16",
        "matched": 150, "missing": 0, "dropped": 4, "resized": 1}


def _dumped(train_dir: Path, batch_size: int, accumulation: int, lr: float) -> None:
    from mae_transfer.records import write_load_report

    train_dir.mkdir(parents=True)
    (train_dir.parent / "c.pth").write_bytes(b"weights")
    write_load_report(train_dir, LOAD)
    (train_dir / "inat_finetune.py").write_text(
        f"train_dataloader = dict(batch_size={batch_size})\n"
        f"optim_wrapper = dict(optimizer=dict(type='AdamW', lr={lr}), accumulative_counts={accumulation})\n")


def test_result_reads_back_the_batch_and_records_the_plan(tmp_path: Path) -> None:
    pytest.importorskip("mmengine")
    from mae_transfer.matrix.run.result import build_result

    _dumped(tmp_path / "train", batch_size=4, accumulation=2, lr=1e-3)
    cell = _planned_cell(tmp_path, processes=1, per_gpu=4, accumulation=2)
    provenance = build_result(cell, tmp_path / "train", 1, {"accuracy/top1": 50.0}, None)["provenance"]
    assert {k: provenance[k] for k in ("effective_batch", "per_gpu_batch", "accumulation", "lr", "recipe_batch",
                                       "recipe_lr", "off_recipe", "off_recipe_reason")} == {
        "effective_batch": 8, "per_gpu_batch": 4, "accumulation": 2, "lr": 1e-3, "recipe_batch": 8, "recipe_lr": 1e-3,
        "off_recipe": False, "off_recipe_reason": None}
    assert provenance["checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert provenance["load_report"] == LOAD


def test_result_refuses_a_missing_sha256_or_load_summary(tmp_path: Path) -> None:
    pytest.importorskip("mmengine")
    from mae_transfer.matrix.run.result import ResultError, build_result, check_result

    _dumped(tmp_path / "train", batch_size=4, accumulation=2, lr=1e-3)
    cell = _planned_cell(tmp_path, processes=1, per_gpu=4, accumulation=2)
    payload = build_result(cell, tmp_path / "train", 1, {"accuracy/top1": 50.0}, None)
    where = tmp_path / f"x-{cell.id[:10]}" / "result.json"
    check_result(payload, where, cell.id)
    for key, bad in (("checkpoint_sha256", None), ("load_report", {"format": "mae"})):
        broken = {**payload, "provenance": {**payload["provenance"], key: bad}}
        with pytest.raises(ResultError, match=f"provenance.{key}"):
            check_result(broken, where, cell.id)
    (tmp_path / "train" / "load_report.json").unlink()
    with pytest.raises(ResultError, match="load_report.json: missing"):
        build_result(cell, tmp_path / "train", 1, {"accuracy/top1": 50.0}, None)


def test_best_policy_takes_the_validation_at_the_best_checkpoint_exactly(tmp_path: Path) -> None:
    from mae_transfer.matrix.run.cell import best_validation
    from mae_transfer.matrix.run.result import ResultError
    from mae_transfer.records import Validation, record_validation

    train = tmp_path / "train"
    for epoch, top1 in ((1, 12.5), (2, 37.123456789), (3, 30.0)):
        record_validation(train, Validation(step=epoch * 8, epoch=epoch, metrics={"accuracy/top1": top1}))
    with pytest.raises(ResultError, match="no best"):
        best_validation(train)
    (train / "best_accuracy_top1_epoch_2.pth").write_bytes(b"")
    assert best_validation(train) == ({"accuracy/top1": 37.123456789}, 16)
    (train / "best_accuracy_top1_epoch_2.pth").rename(train / "best_accuracy_top1_epoch_5.pth")
    with pytest.raises(ResultError, match="no validation recorded at epoch 5"):
        best_validation(train)


@pytest.mark.parametrize(("batch_size", "accumulation", "lr", "message"), [
    (4, 1, 1e-3, "effective batch mismatch: planned 8 = 1 process(es) x 4 per GPU x 2 accumulation, the run used 4 "
                 "= 4 per process x accumulation 1"),
    (4, 2, 2e-3, "lr mismatch: planned 0.001, the run used 0.002"),
])
def test_result_with_another_batch_or_lr_than_planned_is_an_error(tmp_path: Path, batch_size, accumulation, lr,
                                                                   message: str) -> None:
    pytest.importorskip("mmengine")
    from mae_transfer.matrix.run.result import ResultError, build_result

    _dumped(tmp_path / "train", batch_size=batch_size, accumulation=accumulation, lr=lr)
    with pytest.raises(ResultError, match="cell inat2017.smoke.finetune.tiny.s0: ") as raised:
        build_result(_planned_cell(tmp_path, 1, 4, 2), tmp_path / "train", 1, {"accuracy/top1": 50.0}, None)
    assert message in str(raised.value) and str(tmp_path / "train" / "inat_finetune.py") in str(raised.value)


def test_an_interruption_is_recorded_before_a_slow_child_has_stopped(tmp_path: Path) -> None:
    """SLURM SIGKILLs a requeued job KillWait seconds after its SIGTERM: the cell process records
    the interruption as soon as it notices the signal, not after its training child has stopped."""
    import signal
    import threading

    from mae_transfer.matrix.run import cell as cell_module

    noticed: list[tuple[str, bool]] = []
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(30)"]
    timer = threading.Timer(1.0, cell_module._on_signal, (signal.SIGTERM, None))
    try:
        with (tmp_path / "log.txt").open("w") as log:
            timer.start()
            children = cell_module._CHILDREN

            def record(reason: str) -> None:
                (child,) = children  # still running: it ignores SIGTERM
                noticed.append((reason, child.poll() is None))
                child.kill()

            code = cell_module._call(stubborn, log, record)
        assert noticed == [("SIGTERM", True)] and code == -signal.SIGKILL
        assert cell_module._interruption(code) == "SIGTERM"
    finally:
        timer.cancel()
        cell_module._INTERRUPT_REASON.clear()


def test_a_second_signal_inside_the_handler_does_not_hang_it() -> None:
    """SLURM SIGTERMs every process of a requeued job and the batch script forwards the same
    SIGTERM: the second can run the handler inside the first. It once waited forever on a lock the
    first held, until SLURM's SIGKILL, and the interruption went unrecorded."""
    import signal
    import threading

    from mae_transfer.matrix.run import cell as cell_module

    class Child:  # the second signal lands while the handler signals this child
        signalled = 0

        def send_signal(self, signum: int) -> None:
            self.signalled += 1
            if self.signalled == 1:
                cell_module._on_signal(signal.SIGTERM, None)

    child = Child()
    cell_module._CHILDREN.add(child)
    try:
        handler = threading.Thread(target=cell_module._on_signal, args=(signal.SIGTERM, None), daemon=True)
        handler.start()
        handler.join(timeout=10)
        assert not handler.is_alive(), "the nested signal hung the handler"
        assert child.signalled == 2 and cell_module._INTERRUPT_REASON == ["SIGTERM", "SIGTERM"]
        assert cell_module._interruption(0) == "SIGTERM"
    finally:
        cell_module._CHILDREN.discard(child)
        cell_module._INTERRUPT_REASON.clear()
