"""Typed settings of the frozen-feature probes, read from a config's ``probe`` dict.

Every value carries its source; every error names the key (``probe.knn.ks``) and what was
expected. The defaults are the peers' published settings:

- k-NN: DINO (Caron et al. 2021, Sec. 4.1 and ``eval_knn.py``) and DINOv2 ``eval/knn.py``: cosine
  similarity, temperature 0.07, weighted vote ``exp(sim / T)``, k = 10, 20, 100, 200.
- linear sweep: DINOv2 ``eval/linear.py``: 13 learning rates 1e-5 ... 0.1 scaled by
  ``batch x world / 256``, SGD momentum 0.9, no weight decay, cosine to 0, 10 epochs
  (``epochs=10, epoch_length=1250`` at 128 x 8 = one ImageNet epoch each), last 1 or 4 blocks;
  the feature sources are CAPI's (``eval_classification.py``: cls, mean of patch tokens, both).
- attentive: CAPI ``eval_classification.py``: one learned query (attention-pooling head),
  learning rates 1e-5 ... 1e-2 x weight decays (5e-4, 1e-3, 5e-2), AdamW betas (0.9, 0.95),
  10% linear warm-up then cosine (``warmup_iters=1250`` of ``n_iters=12500``), 10 ImageNet epochs.
- hold-out: CAPI: a fixed-seed 10% of train (``val_proportion=0.1``); DINOv2's logistic
  regression also selects on 10% of train and refits on all of it.

Pure Python: no torch, no mm* import.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

PROBE_PROTOCOLS = ("knn", "linear-sweep", "attentive")  # = classification.protocols.PROBE_PROTOCOLS
FEATURE_SOURCES = ("cls", "avg", "both")
# DINOv2 eval/linear.py --learning-rates default (13 values)
DINOV2_LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1)
# CAPI eval_classification.py eval_model(learning_rates=..., weight_decays=...)
CAPI_LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)
CAPI_WEIGHT_DECAYS = (5e-4, 1e-3, 5e-2)


class ProbeConfigError(ValueError):
    """A probe setting is missing, empty or out of range; the message names its key."""


def _numbers(where: str, value: Any, kind: type, positive: bool = True) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise ProbeConfigError(f"{where}: expected a list of numbers, got {value!r}")
    if not value:
        raise ProbeConfigError(f"{where}: empty grid; expected at least one value")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or (kind is int and item != int(item)):
            raise ProbeConfigError(f"{where}: {item!r} is not {'an integer' if kind is int else 'a number'}")
        if positive and not item > 0:
            raise ProbeConfigError(f"{where}: {item!r} must be > 0")
        out.append(kind(item))
    if len(set(out)) != len(out):
        raise ProbeConfigError(f"{where}: repeated values in {list(value)}")
    return tuple(out)


def _names(where: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise ProbeConfigError(f"{where}: empty grid; expected a non-empty list of {', '.join(allowed)}")
    for item in value:
        if item not in allowed:
            raise ProbeConfigError(f"{where}: {item!r} is not allowed; expected one of {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise ProbeConfigError(f"{where}: repeated values in {list(value)}")
    return tuple(value)


def _positive_int(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProbeConfigError(f"{where}: expected an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class HoldoutSettings:
    """The train hold-out every grid point is scored on.

    Attributes:
        fraction: share of each class's training images held out, in (0, 0.5] (CAPI: 0.1).
        seed: the split's seed; the same seed gives the same hold-out ids.
    """

    fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)) \
                or not 0 < self.fraction <= 0.5:
            raise ProbeConfigError(f"probe.holdout.fraction: {self.fraction!r} is outside (0, 0.5]")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ProbeConfigError(f"probe.holdout.seed: expected an integer, got {self.seed!r}")


@dataclass(frozen=True)
class KnnSettings:
    """Weighted k-NN (DINO / DINOv2 ``eval/knn.py``).

    Attributes:
        ks: neighbour counts, all read from one top-max(k) search; 20 is the headline.
        temperature: the vote weight is ``exp(cosine / temperature)``.
        feature: ``cls`` (the cls token after the final norm, as DINO/DINOv2), ``avg`` (mean of
            the patch tokens) or ``auto``: the cls token, or the mean of the patch tokens for a
            family that declares it (``EncoderOptions.probe_feature == "avg"``: no cls token).
        query_chunk / bank_chunk: queries and bank rows per similarity block (bounds memory:
            ``query_chunk x bank_chunk`` similarities at a time).
    """

    ks: tuple[int, ...] = (10, 20, 100, 200)
    temperature: float = 0.07
    feature: str = "auto"
    query_chunk: int = 1024
    bank_chunk: int = 65536

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(sorted(_numbers("probe.knn.ks", self.ks, int))))
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) \
                or not self.temperature > 0:
            raise ProbeConfigError(f"probe.knn.temperature: expected a number > 0, got {self.temperature!r}")
        if self.feature not in ("auto", "cls", "avg"):
            raise ProbeConfigError(f"probe.knn.feature: {self.feature!r} is not allowed; expected auto, cls or avg")
        _positive_int("probe.knn.query_chunk", self.query_chunk)
        _positive_int("probe.knn.bank_chunk", self.bank_chunk)


@dataclass(frozen=True)
class LinearSweepSettings:
    """The linear heads trained side by side on one frozen forward per batch (DINOv2 ``eval/linear.py``).

    Attributes:
        learning_rates: base learning rates, each scaled by ``batch x world / 256``.
        sources: ``cls`` (cls tokens), ``avg`` (means of the patch tokens), ``both`` (concatenated).
        blocks: read the last 1 or last n blocks (their features concatenated).
        epochs: passes over the training images.
        momentum: SGD momentum.
    """

    learning_rates: tuple[float, ...] = DINOV2_LEARNING_RATES
    sources: tuple[str, ...] = FEATURE_SOURCES
    blocks: tuple[int, ...] = (1, 4)
    epochs: int = 10
    momentum: float = 0.9

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rates", _numbers("probe.linear_sweep.learning_rates",
                                                            self.learning_rates, float))
        object.__setattr__(self, "sources", _names("probe.linear_sweep.sources", self.sources, FEATURE_SOURCES))
        object.__setattr__(self, "blocks", _numbers("probe.linear_sweep.blocks", self.blocks, int))
        _positive_int("probe.linear_sweep.epochs", self.epochs)
        if not 0 <= self.momentum < 1:
            raise ProbeConfigError(f"probe.linear_sweep.momentum: expected a value in [0, 1), got {self.momentum!r}")


@dataclass(frozen=True)
class AttentiveSettings:
    """Attention-pooling heads (one learned query over the patch tokens, then linear; CAPI).

    Attributes:
        learning_rates / weight_decays: the grid (their product); lrs scaled by ``batch x world / 256``.
        epochs: passes over the training images.
        warmup_fraction: share of the iterations with a linear warm-up from 0.
        betas: AdamW betas.
    """

    learning_rates: tuple[float, ...] = CAPI_LEARNING_RATES
    weight_decays: tuple[float, ...] = CAPI_WEIGHT_DECAYS
    epochs: int = 10
    warmup_fraction: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rates", _numbers("probe.attentive.learning_rates",
                                                            self.learning_rates, float))
        object.__setattr__(self, "weight_decays", _numbers("probe.attentive.weight_decays", self.weight_decays,
                                                           float, positive=False))
        _positive_int("probe.attentive.epochs", self.epochs)
        if not 0 <= self.warmup_fraction < 1:
            raise ProbeConfigError(f"probe.attentive.warmup_fraction: expected [0, 1), got {self.warmup_fraction!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))


@dataclass(frozen=True)
class ProbeSettings:
    """One probe run.

    Attributes:
        protocol: ``knn``, ``linear-sweep`` or ``attentive``.
        holdout: the train hold-out the grid is scored on.
        refit: after selection, retrain the chosen point on all of train (k-NN: the bank holds
            all of train) before the one evaluation on val.
        batch_size: training images per process and step (the lr scales with it x world / 256).
        eval_batch_size: images per process and step when extracting or scoring.
        num_workers: data-loading processes per probe process.
        amp: frozen forwards under bfloat16 autocast on a GPU (features are used in float32).
        seed: head initialisation, shuffling and the per-image augmentation draws.
        knn / linear_sweep / attentive: the protocols' settings.
    """

    protocol: str
    holdout: HoldoutSettings = field(default_factory=HoldoutSettings)
    refit: bool = True
    batch_size: int = 128
    eval_batch_size: int = 256
    num_workers: int = 0
    amp: bool = False
    seed: int = 0
    knn: KnnSettings = field(default_factory=KnnSettings)
    linear_sweep: LinearSweepSettings = field(default_factory=LinearSweepSettings)
    attentive: AttentiveSettings = field(default_factory=AttentiveSettings)

    def __post_init__(self) -> None:
        if self.protocol not in PROBE_PROTOCOLS:
            raise ProbeConfigError(f"probe.protocol: {self.protocol!r} is not allowed; expected one of "
                                   f"{', '.join(PROBE_PROTOCOLS)}")
        _positive_int("probe.batch_size", self.batch_size)
        _positive_int("probe.eval_batch_size", self.eval_batch_size)
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ProbeConfigError(f"probe.num_workers: expected an integer >= 0, got {self.num_workers!r}")

    @classmethod
    def from_config(cls, probe: Mapping[str, Any]) -> ProbeSettings:
        """From a config's ``probe`` dict; unknown keys are refused (naming them)."""
        if not isinstance(probe, Mapping):
            raise ProbeConfigError(f"probe: expected a dict, got {type(probe).__name__}")
        if "protocol" not in probe:
            raise ProbeConfigError(f"probe.protocol: missing; expected one of {', '.join(PROBE_PROTOCOLS)}")
        nested = {"holdout": HoldoutSettings, "knn": KnnSettings, "linear_sweep": LinearSweepSettings,
                  "attentive": AttentiveSettings}
        values: dict[str, Any] = {}
        for key, value in probe.items():
            if key in nested:
                values[key] = _build(nested[key], f"probe.{key}", value)
            else:
                values[key] = value
        return _build(cls, "probe", values)

    def grid_description(self) -> dict[str, Any]:
        """The grid this protocol searches, for the result."""
        if self.protocol == "knn":
            return {"k": list(self.knn.ks), "temperature": self.knn.temperature, "feature": self.knn.feature}
        if self.protocol == "linear-sweep":
            grid = self.linear_sweep
            return {"learning_rates": list(grid.learning_rates), "sources": list(grid.sources),
                    "blocks": list(grid.blocks), "epochs": grid.epochs, "momentum": grid.momentum,
                    "lr_scaling": "lr x batch x world / 256"}
        grid = self.attentive
        return {"learning_rates": list(grid.learning_rates), "weight_decays": list(grid.weight_decays),
                "epochs": grid.epochs, "warmup_fraction": grid.warmup_fraction, "betas": list(grid.betas),
                "lr_scaling": "lr x batch x world / 256"}


def _build(kind: type, where: str, values: Any) -> Any:
    if isinstance(values, kind):
        return values
    if not isinstance(values, Mapping):
        raise ProbeConfigError(f"{where}: expected a dict, got {values!r}")
    known = {item.name for item in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ProbeConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    try:
        return kind(**dict(values))
    except TypeError as error:
        raise ProbeConfigError(f"{where}: {error}") from error
