"""Exact resumption: a run killed at any step and resumed ends as the uninterrupted run did.

mmengine (0.10.7) resumes weights, optimizer, schedulers, the iteration counter and, through
``DefaultSampler``'s ``seed + epoch``, the sample order of each epoch. It does not resume the
random streams: the resumed process starts from the configured seed, so drop path, Mixup/CutMix
and every random augmentation draw different numbers than the uninterrupted run did. This
module closes the gaps, as one hook every task gets:

- **Training random state.** The python, numpy, torch (CPU) and CUDA generator states go into
  each checkpoint (``before_save_checkpoint``; tensors, ints and strings only, so the
  weights-only unpickler reads them) and are put back before the first resumed iteration.
- **Evaluation leaves no trace.** Validation and test run between two training iterations and
  draw from the same generators (a DataLoader iterator takes a torch seed when it starts); the
  states are saved before and restored after them, so a run that evaluated at a step and a run
  resumed from that step continue from the same state.
- **Data augmentation has its own streams.** Each training dataset's ``prepare_data`` (the
  pipeline) and ``_rand_another`` draw from private python/numpy/torch states, seeded from
  (seed, rank, dataloader worker, epoch) when an epoch starts and carried from sample to sample
  within it. The training streams above then hold only model randomness, and the data of an
  epoch depends only on the seed and the epoch, whatever the number of workers, whether they
  persist, and wherever the run was interrupted. (mmengine's own worker seeding repeats the
  same draws every epoch.)
- **Mid-epoch resume of an epoch-based loop.** mmengine restarts an interrupted epoch from its
  first batch while counting iterations on from the checkpoint. When the resumed iteration is
  not at an epoch boundary, the first epoch's loader is wrapped to load and drop the batches
  already trained on, so the sample order and the augmentation streams continue where they
  stopped (iteration-based loops already replay the dataloader this way in mmengine).

The resumed run must use the same seed, world size, dataloader workers and batch size. mmengine
saves checkpoints from rank 0 only, so with several processes the restored training state is
rank 0's on every rank: exact with mmengine's default ``randomness.diff_rank_seed=False`` (all
ranks draw the same numbers), not with ``diff_rank_seed=True``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

logger = logging.getLogger(__name__)

CHECKPOINT_KEY = "mae_transfer_random_state"


def capture_random_state(cuda: bool = True) -> dict[str, Any]:
    """The python, numpy, torch CPU (and CUDA) generator states, as weights-only-safe values."""
    version, python_state, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if cuda:
        # this process's device only: reading every device's state would open a context on each
        in_use = torch.cuda.is_available() and torch.cuda.is_initialized()
        state["cuda"] = [torch.cuda.get_rng_state()] if in_use else []
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Put back a state taken by `capture_random_state`."""
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda[0])


class DataRandomStreams:
    """Private python/numpy/torch generator states for a dataset's sample preparation.

    Seeded from (seed, rank, dataloader worker id, epoch) when a process first prepares a sample
    of an epoch; then carried from one sample to the next. ``epoch`` is a shared-memory tensor
    the main process sets before each epoch, so persistent workers see the new epoch too.
    """

    def __init__(self, seed: int, rank: int) -> None:
        self.seed, self.rank = int(seed), int(rank)
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._key: tuple[int, int] | None = None
        self._state: dict[str, Any] | None = None
        self._depth = 0

    def __getstate__(self) -> dict[str, Any]:
        # a spawned worker starts its own streams
        return {**self.__dict__, "_key": None, "_state": None, "_depth": 0}

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Draw from the data streams inside the block; the caller's streams are untouched."""
        if self._depth:
            yield
            return
        info = torch.utils.data.get_worker_info()
        key = (int(self.epoch), info.id if info is not None else -1)
        outer = capture_random_state(cuda=False)
        if key != self._key:
            self._seed(key)
        else:
            restore_random_state(self._state)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            self._state = capture_random_state(cuda=False)
            restore_random_state(outer)

    def _seed(self, key: tuple[int, int]) -> None:
        epoch, worker = key
        words = np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.rank, worker + 1, epoch]).generate_state(4)
        random.seed(int(words[0]))
        np.random.seed(int(words[1]))
        torch.random.default_generator.manual_seed(int(words[2]) << 32 | int(words[3]))
        self._key = key


class _InStreams:
    """``dataset.<name>(...)`` run inside the data streams (picklable for spawned workers)."""

    def __init__(self, dataset: Any, name: str, streams: DataRandomStreams) -> None:
        self.dataset, self.name, self.streams = dataset, name, streams
        self.function = getattr(type(dataset), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.streams.active():
            return self.function(self.dataset, *args, **kwargs)


def route_data_randomness(dataset: Any, streams: DataRandomStreams) -> int:
    """Make ``dataset`` (and the datasets it wraps) prepare samples inside ``streams``.

    Returns the number of datasets routed (0: nothing has ``prepare_data``).
    """
    routed = 0
    if hasattr(type(dataset), "prepare_data") and not isinstance(vars(dataset).get("prepare_data"), _InStreams):
        for name in ("prepare_data", "_rand_another"):
            if hasattr(type(dataset), name):
                setattr(dataset, name, _InStreams(dataset, name, streams))
        routed += 1
    for inner in getattr(dataset, "datasets", None) or []:
        routed += route_data_randomness(inner, streams)
    if getattr(dataset, "dataset", None) is not None:
        routed += route_data_randomness(dataset.dataset, streams)
    return routed


class _SkipFirstBatches:
    """A dataloader whose next pass loads and drops its first ``skip`` batches, then restores
    the training random state (starting the pass drew from it, as it did before the checkpoint)."""

    def __init__(self, loader: Any, skip: int, state: dict[str, Any]) -> None:
        self.loader, self.skip, self.state = loader, skip, state

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        for _ in range(self.skip):
            next(batches)
        restore_random_state(self.state)
        yield from batches

    def __len__(self) -> int:
        return len(self.loader) - self.skip

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


@HOOKS.register_module()
class MAETransferExactResumeHook(Hook):
    """Checkpoints and restores the random state and sample position (see the module docstring)."""

    # last at after_val (restores), after every other before_train hook (which a resumed run
    # runs again, while the uninterrupted run ran them long before the checkpoint)
    priority = "LOWEST"

    def __init__(self) -> None:
        self._loaded: tuple[int, dict[str, Any]] | None = None
        self._skip: tuple[int, dict[str, Any]] | None = None
        self._streams: DataRandomStreams | None = None
        self._outside_eval: list[dict[str, Any]] = []

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = capture_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        iteration = checkpoint.get("meta", {}).get("iter")
        self._loaded = (iteration, state) if state is not None and iteration is not None else None

    def before_train(self, runner) -> None:
        dataset = runner.train_loop.dataloader.dataset
        self._streams = DataRandomStreams(runner.seed if runner.seed is not None else 0, runner.rank)
        if not route_data_randomness(dataset, self._streams):
            logger.warning("%s has no prepare_data: its augmentation draws from the training random streams; "
                           "resumption is exact only at epoch boundaries without dataloader workers",
                           type(dataset).__name__)
        if self._loaded is None or self._loaded[0] != runner.iter:
            if runner.iter:
                logger.warning("resumed at iteration %d from a checkpoint without random state: the rest of the "
                               "run will not match an uninterrupted one", runner.iter)
            return
        state, self._loaded = self._loaded[1], None
        done = 0
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            done = runner.iter - runner.epoch * len(runner.train_loop.dataloader)
        if done > 0:
            self._skip = (done, state)  # restored once the epoch's first batches are skipped
            logger.info("resuming inside epoch %d: its first %d batches are loaded and skipped", runner.epoch + 1,
                        done)
        else:
            restore_random_state(state)
        logger.info("restored the random state of iteration %d", runner.iter)

    def before_train_epoch(self, runner) -> None:
        if self._streams is not None:
            self._streams.epoch.fill_(runner.epoch)
        if self._skip is not None:
            runner.train_loop.dataloader = _SkipFirstBatches(runner.train_loop.dataloader, *self._skip)
            self._skip = None

    def after_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop.dataloader, _SkipFirstBatches):
            runner.train_loop.dataloader = runner.train_loop.dataloader.loader

    def before_val(self, runner) -> None:
        self._outside_eval.append(capture_random_state())

    def after_val(self, runner) -> None:
        if self._outside_eval:
            restore_random_state(self._outside_eval.pop())

    def before_test(self, runner) -> None:
        self._outside_eval.append(capture_random_state())

    def after_test(self, runner) -> None:
        if self._outside_eval:
            restore_random_state(self._outside_eval.pop())
