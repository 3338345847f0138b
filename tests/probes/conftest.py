"""Fixtures of the probe tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from probe_helpers import IMAGE_SIZE

from mae_transfer.models import build_vit


@pytest.fixture(scope="module")
def backbone() -> torch.nn.Module:
    """A tiny ViT (4 blocks, 32 px: 4 patch tokens), random weights."""
    torch.manual_seed(0)
    return build_vit("vit_tiny_patch16", depth=4, img_size=IMAGE_SIZE).eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: two threads spin against each other on the shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
