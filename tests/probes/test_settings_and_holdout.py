"""Probe settings refuse bad input naming the key; the hold-out is stable, per class and disjoint."""

import pytest

from mae_transfer.probes.holdout import GatedDataset, ValGate, ValReadBeforeSelection, split_holdout
from mae_transfer.probes.settings import HoldoutSettings, ProbeConfigError, ProbeSettings


@pytest.mark.parametrize(("probe", "message"), [
    ({"protocol": "linear-sweep", "linear_sweep": {"learning_rates": []}},
     r"probe\.linear_sweep\.learning_rates: empty grid"),
    ({"protocol": "attentive", "attentive": {"weight_decays": ()}}, r"probe\.attentive\.weight_decays: empty grid"),
    ({"protocol": "linear-sweep", "linear_sweep": {"sources": ["cls", "mean"]}},
     r"probe\.linear_sweep\.sources: 'mean' is not allowed"),
    ({"protocol": "knn", "knn": {"ks": [20, 0]}}, r"probe\.knn\.ks: 0 must be > 0"),
    ({"protocol": "knn", "holdout": {"fraction": 0.0}}, r"probe\.holdout\.fraction: 0\.0 is outside \(0, 0\.5\]"),
    ({"protocol": "knn", "holdout": {"fraction": 0.6}}, r"probe\.holdout\.fraction: 0\.6 is outside \(0, 0\.5\]"),
    ({"protocol": "knn", "knn": {"k": [20]}}, r"probe\.knn: unknown key\(s\) \['k'\]"),
    ({"protocol": "lineer"}, r"probe\.protocol: 'lineer' is not allowed"),
    ({"knn": {}}, r"probe\.protocol: missing"),
])
def test_bad_settings_name_their_key(probe, message):
    with pytest.raises(ProbeConfigError, match=message):
        ProbeSettings.from_config(probe)


def test_defaults_are_the_published_grids():
    settings = ProbeSettings.from_config({"protocol": "linear-sweep"})
    sweep = settings.linear_sweep
    assert len(sweep.learning_rates) == 13 and sweep.learning_rates[0] == 1e-5 and sweep.learning_rates[-1] == 0.1
    assert len(sweep.learning_rates) * len(sweep.sources) * len(sweep.blocks) == 78
    assert settings.knn.ks == (10, 20, 100, 200) and settings.knn.temperature == 0.07
    assert settings.holdout == HoldoutSettings(fraction=0.1, seed=0)


def test_holdout_is_stable_per_class_and_disjoint():
    labels = [c for c in range(5) for _ in range(30)] + [5]  # class 5 has one image: never held out
    ids = [f"img{i}" for i in range(len(labels))]
    first = split_holdout(labels, ids, HoldoutSettings(0.1, seed=3))
    again = split_holdout(labels, ids, HoldoutSettings(0.1, seed=3))
    other = split_holdout(labels, ids, HoldoutSettings(0.1, seed=4))
    assert first == again and first.digest == again.digest
    assert first.holdout != other.holdout and first.digest != other.digest
    assert not set(first.fit) & set(first.holdout) and len(first.fit) + len(first.holdout) == len(labels)
    assert [sum(labels[i] == c for i in first.holdout) for c in range(6)] == [3, 3, 3, 3, 3, 0]
    assert first.holdout_ids == tuple(ids[i] for i in first.holdout)
    assert first.summary()["ids_sha256"] == first.digest and len(first.to_json()["ids"]) == 15


def test_holdout_refuses_repeated_ids_and_a_set_too_small():
    with pytest.raises(ProbeConfigError, match="ids repeat"):
        split_holdout([0, 0, 1], ["a", "a", "b"], HoldoutSettings())
    with pytest.raises(ProbeConfigError, match="nothing to hold out"):
        split_holdout([0, 1, 2], ["a", "b", "c"], HoldoutSettings())


def test_gate_refuses_val_reads_until_the_selection_is_final():
    gate = ValGate()
    val = GatedDataset([10, 11], gate)
    with pytest.raises(ValReadBeforeSelection, match=r"val\[1\]: val is read only after"):
        val[1]
    gate.open({"name": "cls/last1/lr0.001"})
    assert val[1] == 11 and len(val) == 2


def test_the_protocol_vocabulary_knows_the_probes():
    from mae_transfer.classification.protocols import PROBE_PROTOCOLS as VOCABULARY
    from mae_transfer.classification.protocols import Protocol
    from mae_transfer.probes.settings import PROBE_PROTOCOLS

    assert VOCABULARY == PROBE_PROTOCOLS == ("knn", "linear-sweep", "attentive")
    for name in VOCABULARY:
        protocol = Protocol.from_spelling(name)
        assert protocol.is_probe and protocol.spelling == name and Protocol.parse(name) == protocol
    assert not Protocol.from_spelling("linear").is_probe
