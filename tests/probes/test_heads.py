"""The sweep's heads train independently: each equals its own torch.optim.SGD run; the attention
pooling head is the attention it says it is."""

import pytest
import torch
import torch.nn.functional as F
from probe_helpers import NUM_CLASSES, PatternImages
from torch.utils.data import DataLoader

from mae_transfer.probes.features import FrozenBackbone, feature_dim, pooled
from mae_transfer.probes.heads import AttentionPoolHead, AttentiveGrid, HeadPoint, LinearSweep, cosine_factor, scaled_lr
from mae_transfer.probes.loops import GlobalBatchSampler, SeededItems, fit_heads

POINTS = [HeadPoint("cls", 1, 0.5), HeadPoint("cls", 1, 2.0), HeadPoint("avg", 2, 1.0), HeadPoint("both", 4, 4.0)]
BATCH, EPOCHS, SEED = 16, 2, 5


def test_each_sweep_head_equals_a_single_head_sgd_run(backbone):
    data = PatternImages(per_class=10, seed=1, flip=True)  # 40 images: 2 steps per epoch at 16
    indices = list(range(2, 40))
    frozen = FrozenBackbone(backbone, blocks=4)
    sweep = LinearSweep(POINTS, 192, NUM_CLASSES, backbone.num_prefix_tokens, seed=SEED)
    optimizer = sweep.make_optimizer(BATCH, 1, momentum=0.9)
    steps = fit_heads(sweep, frozen, data, indices, epochs=EPOCHS, batch_size=BATCH, optimizer=optimizer,
                      schedule=cosine_factor, device=torch.device("cpu"), seed=SEED)
    assert steps == EPOCHS * 2
    for index, point in enumerate(POINTS):
        head = torch.nn.Linear(feature_dim(192, point.source, point.blocks), NUM_CLASSES)
        with torch.no_grad():
            head.weight.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(SEED))
            head.bias.zero_()
        sgd = torch.optim.SGD(head.parameters(), lr=scaled_lr(point.lr, BATCH, 1), momentum=0.9)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, T_max=steps, eta_min=0)
        for epoch in range(EPOCHS):
            batches = DataLoader(SeededItems(data, SEED), batch_sampler=GlobalBatchSampler(indices, BATCH, SEED, epoch))
            for images, labels in batches:
                loss = F.cross_entropy(head(pooled(frozen(images), point.source, point.blocks, 1)), labels)
                sgd.zero_grad()
                loss.backward()
                sgd.step()
                cosine.step()
        single = sweep.extract(index)
        torch.testing.assert_close(single.weights[0][0], head.weight, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(single.biases[0][0], head.bias, rtol=1e-4, atol=1e-6)
        assert not torch.equal(head.weight, torch.zeros_like(head.weight).normal_(
            0.0, 0.01, generator=torch.Generator().manual_seed(SEED)))  # it did train


def test_attention_pool_head_is_one_query_attending_to_the_tokens():
    torch.manual_seed(0)
    head = AttentionPoolHead(128, 5)  # 2 heads of 64 channels
    tokens = torch.randn(3, 7, 128)
    keys, values = head.kv(tokens).split(128, dim=-1)
    pooled_heads = []
    for h in range(2):
        part = slice(64 * h, 64 * (h + 1))
        weights = (keys[..., part] @ head.query[part] / 8.0).softmax(dim=1)  # (B, N), scale 1/sqrt(64)
        pooled_heads.append((weights.unsqueeze(-1) * values[..., part]).sum(dim=1))
    expected = head.linear(torch.cat(pooled_heads, dim=-1))
    torch.testing.assert_close(head(tokens), expected, rtol=1e-5, atol=1e-6)


def test_attentive_grid_extract_and_refusals(backbone):
    grid = AttentiveGrid([HeadPoint("patch", 1, 1e-3, 0.05), HeadPoint("patch", 1, 1e-2, 0.0)], 192, NUM_CLASSES, 1)
    tokens = FrozenBackbone(backbone)(torch.randn(2, 3, 32, 32))
    single = grid.extract(1)
    torch.testing.assert_close(single.logits(tokens)[0], grid.logits(tokens)[1])
    groups = grid.make_optimizer(64, 2, (0.9, 0.95)).param_groups
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0, 0.0, 0.0]
    assert groups[2]["lr"] == pytest.approx(1e-2 * 64 * 2 / 256)
    with pytest.raises(ValueError, match="empty grid"):
        LinearSweep([], 192, NUM_CLASSES, 1)


def test_registers_are_never_patch_tokens_and_a_family_without_cls_reads_its_mean():
    from mae_transfer.models import build_vit
    from mae_transfer.probes.features import knn_feature

    torch.manual_seed(0)
    registers = build_vit("vit_tiny_patch16", family="dinov2_reg", depth=2, img_size=32).eval()  # 4 patch tokens
    assert registers.num_prefix_tokens == 5  # cls + 4 registers
    tokens = FrozenBackbone(registers, blocks=2)(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(pooled(tokens, "avg", 1, 5), tokens[-1][:, 5:].mean(dim=1))
    torch.testing.assert_close(pooled(tokens, "cls", 2, 5), torch.cat([tokens[0][:, 0], tokens[1][:, 0]], dim=1))
    assert pooled(tokens, "both", 2, 5).shape == (2, 4 * 192)
    assert knn_feature(registers, "auto") == "cls"
    ijepa = build_vit("vit_tiny_patch16", family="ijepa", depth=2, img_size=32)
    assert ijepa.num_prefix_tokens == 0 and knn_feature(ijepa, "auto") == "avg"
