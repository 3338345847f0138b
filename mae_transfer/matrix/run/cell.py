"""Run one cell: ``python -m mae_transfer.train`` (resumed when a checkpoint exists), then ``result.json``.

The cell trains from its own resolved config, ``CELL_DIR/config.py`` (its config with every
override merged in, written before each attempt); the command line carries no overrides, so a
checkpoint or data path may hold any character. ``python -m mae_transfer.train CELL_DIR/config.py
--work-dir CELL_DIR/train`` by hand reproduces the cell. A test-only config (ADE20K ms+flip) is
resolved the same way into ``CELL_DIR/test_config.py``.

Every executor ends up here: the local and torchrun executors call :func:`run_cell` in a worker
thread, SLURM jobs call it on the node (``python -m mae_transfer.matrix.run.cell CELL_DIR``).
The training process dies with its parent (Linux ``PR_SET_PDEATHSIG``), so killing ``run``
never leaves an orphan training in a cell's work dir.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from mae_transfer.matrix.run import launch
from mae_transfer.matrix.plan.planner import Cell
from mae_transfer.matrix.spec.pretrain_stage import PRETRAIN_TASK
from mae_transfer.matrix.plan.resolve import CONFIG_NAME, ConfigDumpError, dump_config, write_cell_config
from mae_transfer.matrix.run.result import (
    ResultError,
    build_result,
    check_result,
    read_train_metrics,
    validate_result,
    write_result,
)
from mae_transfer.matrix.run.files import CELL_NAME, LOG_NAME, RESULT_NAME, tail
from mae_transfer.matrix.run.resume import latest_checkpoint_iter, remove_stale_tmp, usable_checkpoint
from mae_transfer.matrix.run.state import (
    CellBusy,
    Heartbeat,
    blocked_reason,
    cell_lock,
    is_done,
    mark_blocked,
    mark_finished,
    mark_interrupted,
    mark_running,
)
from mae_transfer.records import VALIDATIONS_NAME, read_validations

logger = logging.getLogger(__name__)

TEST_CONFIG_NAME = "test_config.py"


def launched_processes(cell: Cell, launcher: str, nproc: int) -> int:
    """Training processes a launch starts: ``nproc`` per node under torchrun/srun, else one."""
    if launcher == "slurm":
        return nproc * cell.resources.nodes
    return nproc if launcher == "pytorch" else 1


def process_mismatch(cell: Cell, launcher: str, nproc: int) -> str | None:
    """Why a launch would not train at the planned batch (None when it matches the plan).

    The per-GPU batch and accumulation are planned for ``cell.processes`` processes; another
    process count would change the effective batch, so the cell is refused before training.
    """
    world = launched_processes(cell, launcher, nproc)
    if cell.effective_batch is None or world == cell.processes:
        return None
    return (f"cell {cell.label} ({cell.config}): planned for {cell.processes} process(es) "
            f"({cell.processes} x {cell.per_gpu_batch} per GPU x {cell.accumulation} accumulation = batch "
            f"{cell.effective_batch}), but this launch ({launcher}, {nproc} per node) starts {world}, which would "
            f"train at batch {world * (cell.per_gpu_batch or 0) * cell.accumulation}; run it with the executor "
            f"and process count its resources ask for (resources.gpus_per_cell x nodes), or change its resources")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_command(cell: Cell, launcher: str, nproc: int, resume: bool | str | Path | None,
                  python: str = sys.executable, extra: tuple[str, ...] = ()) -> list[str]:
    """The command line that trains and evaluates a cell from ``WORK_DIR/config.py``.

    The config must have been written (:func:`write_cell_config`). ``resume``: True for
    mmengine's latest checkpoint, or a checkpoint path; ``extra``: more ``mae_transfer.train``
    flags (the rehearsal's ``--rehearsal``).
    """
    script = ["-m", "mae_transfer.train", str(Path(cell.work_dir) / CONFIG_NAME),
              "--work-dir", str(Path(cell.work_dir) / "train")]
    if launcher == "pytorch":
        head = [python, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                "--master-port", str(_free_port()), *script, "--launcher", "pytorch"]
    elif launcher == "slurm":
        # Multi-node: one srun step over the job's nodes, a task per GPU (per node without GPUs);
        # each task takes its rank and the rendezvous from srun's variables (integrations.slurm_rendezvous).
        head = ["srun", f"--nodes={cell.resources.nodes}", f"--ntasks-per-node={nproc}",
                f"--cpus-per-task={cell.resources.cpus_per_gpu}", "--kill-on-bad-exit=1",
                python, *script, "--launcher", "slurm"]
    else:
        head = [python, *script, "--launcher", launcher]
    resuming = ["--resume"] if resume is True else ["--resume", str(resume)] if resume else []
    return [*head, *resuming, *extra]


def cell_env(cell: Cell, launcher: str) -> dict[str, str]:
    """A cell child's environment: a CPU cell trained here (launcher ``none``, no GPU) runs
    ``cpus_per_gpu`` OpenMP threads unless the environment sets ``OMP_NUM_THREADS``, so cells run
    side by side (``max_parallel``) share the cores instead of each taking all of them."""
    cpu_here = launcher == "none" and cell.resources.gpus_per_cell == 0
    return launch.child_env(threads=cell.resources.cpus_per_gpu if cpu_here else None)


def best_validation(train_dir: Path) -> tuple[dict[str, float], int]:
    """Under the ``best`` policy: the metrics (percent) and step of the best checkpoint's validation.

    The step comes from the ``best_*_{iter,epoch}_N.pth`` checkpoint mmengine's CheckpointHook kept;
    the metrics are the validation record at that step (``validations.json``), exactly.

    Raises:
        ResultError: no best checkpoint, or no validation recorded at its step.
    """
    found = sorted(train_dir.glob("best_*.pth"), key=lambda p: p.stat().st_mtime)
    match = re.search(r"_(iter|epoch)_(\d+)\.pth$", found[-1].name) if found else None
    if match is None:
        raise ResultError(f"{train_dir}: checkpoint_policy best, but no best_*_(iter|epoch)_N.pth checkpoint")
    unit, number = match.group(1), int(match.group(2))
    for validation in reversed(read_validations(train_dir)):
        if (validation.step if unit == "iter" else validation.epoch) == number:
            return dict(validation.metrics), validation.step
    raise ResultError(f"{train_dir / VALIDATIONS_NAME}: no validation recorded at {unit} {number}, the step of "
                      f"{found[-1].name}")


RECONSTRUCTION_NAME = "reconstruction.png"
RECONSTRUCTION_IMAGES = 4


def reconstruction_figure(cell: Cell, log) -> str | None:
    """After pre-training: ``CELL_DIR/reconstruction.png`` of the last checkpoint on a few val images.

    Seeded masks (seed 0). A figure that cannot be drawn is logged and returns None: the
    pre-training and its checkpoints stand without it.
    """
    try:
        from mae_transfer.pretrain.checkpoint import build_from_checkpoint
        from mae_transfer.pretrain.visualize import visualize

        train_dir = Path(cell.work_dir) / "train"
        last = max(train_dir.glob("checkpoint-*.pth"), key=lambda p: int(p.stem.split("-")[1]))
        root = Path(cell.cfg_options.get("val_dataloader.dataset.data_root", "")) / "val"
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        # one image from each of the first classes (sorted paths group them by class folder)
        picked = list({p.parent: p for p in reversed(images)}.values())[::-1][:RECONSTRUCTION_IMAGES]
        model, _ = build_from_checkpoint(str(last))
        out, result = visualize(model, picked, Path(cell.work_dir) / RECONSTRUCTION_NAME, seed=0,
                                title=f"{cell.backbone} | {last.name} | mask ratio {model.mask_ratio}")
        log.write(f"[mae-transfer] wrote {out} ({len(picked)} val images, masked-patch loss {result.loss:.4f})\n")
        return str(out)
    except Exception as error:  # noqa: BLE001 - the figure is an extra, never the cell's failure
        log.write(f"[mae-transfer] no reconstruction figure: {type(error).__name__}: {error}\n")
        return None


def _run_test(cell: Cell, train_dir: Path, log, on_interrupt: Callable[[str], None],
              env: dict[str, str]) -> int:
    """Evaluate the trained checkpoint with the cell's test-only config (ms+flip); the exit code."""
    found = latest_checkpoint_iter(train_dir)
    if found is None:
        log.write(f"[mae-transfer] {train_dir}: no checkpoint to test\n")
        return 1
    options = {k: v for k, v in cell.cfg_options.items() if k.startswith(("test_dataloader.", "test_evaluator."))}
    try:
        config = dump_config(cell.test_config, options, Path(cell.work_dir) / TEST_CONFIG_NAME)
    except ConfigDumpError as error:
        log.write(f"[mae-transfer] {error}\n")
        return 1
    command = [sys.executable, "-m", "mae_transfer.test", str(config), str(found[0]),
               "--work-dir", str(Path(cell.work_dir) / "test")]
    log.write("[mae-transfer] " + " ".join(command) + "\n")
    log.flush()
    return _call(command, log, on_interrupt, env=env)


# The signals that interrupted this process (the first names the interruption) and the children a
# signal stops. The handler takes no lock: see _on_signal.
_INTERRUPT_REASON: list[str] = []
_CHILDREN: set[subprocess.Popen] = set()
_INTERRUPT_POLL_SECONDS = 0.5  # how soon a waiting cell process notices a signal and records it
# Exit codes of a training process stopped by SIGINT or SIGTERM (by the signal, or Python's 128 + n).
INTERRUPT_CODES = {-signal.SIGINT: "SIGINT", -signal.SIGTERM: "SIGTERM", 128 + signal.SIGINT: "SIGINT",
                   128 + signal.SIGTERM: "SIGTERM"}


def _on_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    """SIGINT/SIGTERM in a cell process: stop the training (SIGTERM) and let run_cell record it.

    It takes no lock. A second signal can run this handler again inside the first one (SLURM
    signals every process of a requeued job, and the batch script forwards the same SIGTERM), and
    a lock the interrupted handler held would never be released: the process hung until SLURM's
    SIGKILL, and the interruption went unrecorded. ``tuple()`` copies the set in one step, so a
    thread adding or removing a child meanwhile cannot break the loop.
    """
    _INTERRUPT_REASON.append(signal.Signals(signum).name)
    for child in tuple(_CHILDREN):
        with contextlib.suppress(OSError):
            child.send_signal(signal.SIGTERM)


def interrupted() -> bool:
    """A SIGINT or SIGTERM has reached this process (the cells not started yet stay pending)."""
    return bool(_INTERRUPT_REASON)


def _unknown_overrides(cell: Cell) -> list[str]:
    """The cell's override keys that its config does not have (a typo trains with the key ignored)."""
    from mae_transfer.matrix.plan.overrides import unknown_override_keys

    return unknown_override_keys(Path(cell.config), list(cell.cfg_options)) or []


def _call(command: list[str], log, on_interrupt: Callable[[str], None] | None = None, **kwargs) -> int:
    """Run a child process to its end; it is stopped with SIGTERM when this process is interrupted.

    ``on_interrupt(reason)`` is called once, as soon as the interruption is noticed and before the
    child has stopped: SLURM kills a requeued job ``KillWait`` seconds after its SIGTERM, and a
    training stopping under load can take longer than that, so the record must not wait for it.
    """
    child = launch.start(command, log, **kwargs)
    _CHILDREN.add(child)
    if interrupted():  # the signal came before the handler could see this child
        with contextlib.suppress(OSError):
            child.send_signal(signal.SIGTERM)
    told = False
    try:
        while True:
            try:
                code = child.wait(timeout=_INTERRUPT_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                code = None
            except KeyboardInterrupt:
                _on_signal(signal.SIGINT, None)
                code = None
            if interrupted() and on_interrupt is not None and not told:
                told = True
                on_interrupt(_INTERRUPT_REASON[0])
            if code is not None:
                return code
    finally:
        _CHILDREN.discard(child)


def _interruption(code: int) -> str | None:
    """The signal that stopped an attempt (SIGINT, SIGTERM), or None when it was not interrupted."""
    if interrupted():
        return _INTERRUPT_REASON[0]
    return INTERRUPT_CODES.get(code)


def run_cell(cell_dir: Path, launcher: str = "none", nproc: int = 1) -> bool:
    """Train, evaluate and record one cell; True when it finished with a valid result.

    The cell's lock (:func:`cell_lock`) is held for the whole attempt: a second trainer of the
    same cell (another ``run``, a SLURM job, on any host sharing the filesystem) raises
    :class:`CellBusy` and changes nothing. A finished cell (valid ``result.json``) is left alone.
    An interrupted one resumes from its newest readable checkpoint (``--resume``; a truncated
    latest checkpoint is skipped for the previous one, named in the log); the cell's log records
    the iteration it resumed from. An attempt stopped by SIGINT/SIGTERM is recorded
    ``interrupted`` and does not count against ``max_attempts``.

    Raises:
        CellBusy: another trainer holds the cell.
    """
    cell_dir = Path(cell_dir)
    cell = Cell.from_json(json.loads((cell_dir / CELL_NAME).read_text()))
    with cell_lock(cell_dir):
        for stale in remove_stale_tmp(cell_dir, RESULT_NAME):
            logger.warning("%s: removed %s, left by a result write that was killed", cell_dir, stale.name)
        if (cell_dir / RESULT_NAME).is_file():
            try:
                validate_result(cell_dir / RESULT_NAME, cell.id)
                return True
            except ResultError as error:
                logger.warning("%s: replacing an invalid result.json: %s", cell_dir, error)
        if cell.depends_on is not None and not is_done(Path(cell.depends_on)):
            # started before its pre-training finished (a job released by hand): no attempt is spent
            mark_blocked(cell_dir, blocked_reason(Path(cell.depends_on)))
            logger.warning("%s: its pre-training cell %s is not done; not started", cell_dir, cell.depends_on)
            return False
        try:
            return _attempt(cell, cell_dir, launcher, nproc)
        except OSError as error:
            # a full disk or a read-only work dir: record the failure if anything can still be written
            logger.error("%s: %s", cell_dir, error)
            with contextlib.suppress(OSError):
                mark_finished(cell_dir, ok=False, error_tail=f"{type(error).__name__}: {error}")
            return False


def _attempt(cell: Cell, cell_dir: Path, launcher: str, nproc: int) -> bool:
    train_dir = cell_dir / "train"
    found, skipped = usable_checkpoint(train_dir)
    log_path = cell_dir / LOG_NAME
    state = mark_running(cell_dir, found[1] if found else None)
    with log_path.open("a") as log, Heartbeat(cell_dir):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"[mae-transfer] {stamp} attempt {state.attempts} of cell {cell.label} ({cell.id}) "
                  f"on {socket.gethostname()}\n")
        for message in skipped:
            log.write(f"[mae-transfer] {message}\n")
        if found:
            log.write(f"[mae-transfer] resuming from checkpoint {found[0]} (iteration {found[1]})\n")
        elif skipped:
            log.write("[mae-transfer] no readable checkpoint left; training from the start\n")
        mismatch = process_mismatch(cell, launcher, nproc)
        if mismatch is not None:
            log.write(f"[mae-transfer] {mismatch}\n")
            mark_finished(cell_dir, ok=False, error_tail=mismatch)
            return False
        unknown = _unknown_overrides(cell)
        if unknown:
            message = f"cell {cell.label}: refused before training: " + "; ".join(unknown)
            log.write(f"[mae-transfer] {message}\n")
            mark_finished(cell_dir, ok=False, error_tail=message)
            return False
        try:
            write_cell_config(cell, launcher)
            command = train_command(cell, launcher, nproc, resume=found[0] if found else None)
        except ConfigDumpError as error:
            log.write(f"[mae-transfer] {error}\n")
            mark_finished(cell_dir, ok=False, error_tail=str(error))
            return False
        log.write("[mae-transfer] " + " ".join(command) + "\n")
        log.flush()
        recorded: list[str] = []

        def record_interruption(reason: str, stage: str = "training") -> None:
            """Record the interruption once, the moment it is noticed (the child may still be stopping)."""
            if not recorded:
                recorded.append(reason)
                log.write(f"[mae-transfer] {stage} stopped by {reason}; the cell stays resumable\n")
                log.flush()
                mark_interrupted(cell_dir, reason)

        env = cell_env(cell, launcher)
        code = _call(command, log, record_interruption, env=env)
        if (reason := _interruption(code)) is not None:
            record_interruption(reason)
            return False
        resume_note = f" (it resumed from {found[0]})" if found else ""
        if code != 0:
            mark_finished(cell_dir, ok=False,
                          error_tail=f"mae_transfer.train exited with code {code}{resume_note}\n{tail(log_path)}")
            return False
        if cell.test_config is not None:
            tested = _run_test(cell, train_dir, log, lambda why: record_interruption(why, "evaluation"), env)
            if (reason := _interruption(tested)) is not None:
                record_interruption(reason, "evaluation")
                return False
            if tested != 0:
                mark_finished(cell_dir, ok=False, error_tail=f"mae_transfer.test failed (code {tested})\n{tail(log_path)}")
                return False
        try:
            if cell.test_config:
                raw = read_train_metrics(cell_dir / "test", "test_metrics.json")
            else:
                raw = read_train_metrics(train_dir)
            step = None
            if cell.checkpoint_policy == "best":
                raw, step = best_validation(train_dir)
            payload = build_result(cell, train_dir, launched_processes(cell, launcher, nproc), raw, step)
            if cell.task == PRETRAIN_TASK:
                payload["provenance"]["reconstruction_png"] = reconstruction_figure(cell, log)
            check_result(payload, cell_dir / RESULT_NAME, cell.id)
            write_result(cell_dir, payload)
        except (ResultError, OSError) as error:
            log.write(f"[mae-transfer] {error}\n{traceback.format_exc()}")
            mark_finished(cell_dir, ok=False, error_tail=str(error))
            return False
    mark_finished(cell_dir, ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m mae_transfer.matrix.run.cell CELL_DIR [--launcher ...] [--nproc N]`` (SLURM jobs)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cell_dir")
    parser.add_argument("--launcher", default="none", choices=("none", "pytorch", "slurm"))
    parser.add_argument("--nproc", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    # SIGINT (Ctrl-C) and SIGTERM (SLURM preemption, scancel): stop the training, record the cell
    # interrupted (resumable, the attempt not counted), exit 143/130.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    try:
        ok = run_cell(Path(args.cell_dir), args.launcher, args.nproc)
    except CellBusy as error:
        logger.error("%s", error)
        return 3
    if interrupted():
        return 143
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
