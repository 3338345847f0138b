"""Fixtures for the layer-decay tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from layer_decay_models import TinyClassifier


@pytest.fixture
def make_classifier() -> Callable[..., TinyClassifier]:
    """Factory: ``make_classifier(**vit_overrides)`` builds a seeded :class:`TinyClassifier`."""

    def make(**vit_overrides) -> TinyClassifier:
        torch.manual_seed(0)
        return TinyClassifier(**vit_overrides)

    return make


@pytest.fixture
def classifier(make_classifier: Callable[..., TinyClassifier]) -> TinyClassifier:
    return make_classifier()
