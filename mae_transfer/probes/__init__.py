"""Frozen-feature evaluation of a ViT: k-NN, a linear sweep and an attentive probe.

Pure PyTorch (no mm* import; the mmengine runner that drives a probe from a config is
:mod:`mae_transfer.integrations.probes`):

- :mod:`~mae_transfer.probes.settings`: the typed ``probe`` settings and their published defaults;
- :mod:`~mae_transfer.probes.features`: the frozen backbone and the feature sources (cls, mean of
  the patch tokens, both; last 1 or n blocks); registers never count as patch tokens;
- :mod:`~mae_transfer.probes.knn`: weighted k-NN in bounded memory;
- :mod:`~mae_transfer.probes.heads`: the linear sweep and the attention-pooling heads;
- :mod:`~mae_transfer.probes.holdout`: the fixed-seed train hold-out and the val gate;
- :mod:`~mae_transfer.probes.cache`: the content-addressed feature cache;
- :mod:`~mae_transfer.probes.loops`: extraction, training and scoring on one or many processes;
- :mod:`~mae_transfer.probes.run`: :func:`run_probe`, one probe from split to val.
"""

from mae_transfer.probes.cache import FeatureCache, FeatureCacheError, FeatureKey, weights_digest
from mae_transfer.probes.run import ProbeData, ProbeResult, run_probe
from mae_transfer.probes.settings import PROBE_PROTOCOLS, ProbeConfigError, ProbeSettings

__all__ = [
    "PROBE_PROTOCOLS",
    "FeatureCache",
    "FeatureCacheError",
    "FeatureKey",
    "ProbeConfigError",
    "ProbeData",
    "ProbeResult",
    "ProbeSettings",
    "run_probe",
    "weights_digest",
]
