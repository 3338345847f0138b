"""The classifier: pooling, soft targets, evaluation without augmentation, metric, pretrained load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)
from mae_transfer.classification.metric import TopKAccuracy
from mae_transfer.classification.model import MAEClassifier
from mae_transfer.classification.transforms import LoadRGBImage, PackClassificationInputs, TimmTransform
from mae_transfer.models import build_vit

TINY = dict(arch="vit_tiny_patch16", img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2)
MIXUP = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch")


def test_global_pool_averages_patch_tokens_without_cls_then_fc_norm() -> None:
    torch.manual_seed(0)
    model = MAEClassifier(TINY, num_classes=5).eval()
    images = torch.randn(3, 3, 32, 32)
    tokens = model.backbone.forward_features(images)  # final norm is Identity: raw last block
    expected = model.fc_norm(tokens[:, 1:].mean(dim=1))
    assert isinstance(model.backbone.norm, torch.nn.Identity)
    torch.testing.assert_close(model.extract_features(images), expected)
    assert not torch.allclose(model.extract_features(images), model.fc_norm(tokens.mean(dim=1)))


def test_head_init_std_follows_mae() -> None:
    torch.manual_seed(0)
    finetune = MAEClassifier({**TINY, "embed_dim": 256, "num_heads": 4}, num_classes=1000)
    linear = MAEClassifier({**TINY, "embed_dim": 256, "num_heads": 4}, num_classes=1000, protocol="linear")
    assert finetune.head.weight.std().item() == pytest.approx(2e-5, rel=0.1)
    assert linear.head.weight.std().item() == pytest.approx(1e-2, rel=0.1)
    assert torch.count_nonzero(finetune.head.bias) == 0


def test_mixup_cutmix_with_label_smoothing_gives_soft_targets_summing_to_one() -> None:
    torch.manual_seed(0)
    model = MAEClassifier(TINY, num_classes=7, mixup=MIXUP, label_smoothing=0.1).train()
    images, labels = torch.randn(8, 3, 32, 32), torch.arange(8) % 7
    mixed, targets = model.training_targets(images.clone(), labels)
    assert targets.shape == (8, 7)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(8))
    assert targets.min() > 0  # label smoothing: every class gets mass
    assert (targets.max(dim=1).values < 1.0).all()
    assert not torch.equal(mixed, images)
    assert torch.isfinite(model(images, labels, mode="loss")["loss"])


def test_label_smoothing_without_mixup_uses_timm_loss() -> None:
    from timm.loss import LabelSmoothingCrossEntropy

    model = MAEClassifier(TINY, num_classes=4, label_smoothing=0.1)
    assert isinstance(model.criterion, LabelSmoothingCrossEntropy)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    assert model.training_targets(images, labels)[1] is labels


def test_mixup_rejects_odd_batch_with_advice() -> None:
    model = MAEClassifier(TINY, num_classes=4, mixup=MIXUP, label_smoothing=0.1)
    with pytest.raises(ValueError, match="even batch size.*drop_last=True"):
        model(torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2]), mode="loss")


def test_validation_step_does_not_mix_batches() -> None:
    torch.manual_seed(0)
    model = MAEClassifier(TINY, num_classes=4, mixup=MIXUP, label_smoothing=0.1)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    outputs = model.val_step({"inputs": images, "data_samples": labels})
    expected = model.eval()(images, mode="tensor").topk(4, dim=-1).indices
    assert [o["pred_topk"].tolist() for o in outputs] == expected.tolist()
    assert [int(o["gt_label"]) for o in outputs] == [0, 1, 2, 3]


def test_eval_pipeline_is_deterministic_resize_and_center_crop(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    pixels = (torch.rand(60, 80, 3, generator=generator) * 255).to(torch.uint8).numpy()
    path = tmp_path / "x.png"
    Image.fromarray(pixels).save(path)
    steps = [LoadRGBImage(), TimmTransform(input_size=32, is_training=False), PackClassificationInputs()]

    def run() -> torch.Tensor:
        results = {"img_path": str(path), "gt_label": 2, "source": "list.txt [line 1]"}
        for step in steps:
            results = step(results)
        return results["inputs"]

    first, second = run(), run()
    assert torch.equal(first, second)
    image = TF.resize(Image.open(path).convert("RGB"), int(32 / (224 / 256)), TF.InterpolationMode.BICUBIC)
    expected = TF.normalize(TF.to_tensor(TF.center_crop(image, 32)), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    torch.testing.assert_close(first, expected)


def test_train_pipeline_is_random_rand_augment_and_erasing() -> None:
    transform = TimmTransform(input_size=32, is_training=True, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25)
    text = repr(transform)
    assert "RandAugment" in text and "RandomErasing" in text and "RandomResizedCrop" in text
    image = Image.new("RGB", (40, 40), (120, 30, 200))
    outputs = [transform({"img": image})["img"] for _ in range(6)]
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


def test_missing_image_names_annotation_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"val2017\.json \[image id 7\]: image file .*gone\.jpg not found"):
        LoadRGBImage()({"img_path": str(tmp_path / "gone.jpg"), "source": "val2017.json [image id 7]"})


def test_topk_metric_in_percent() -> None:
    metric = TopKAccuracy(topk=(1, 5))
    outputs = [
        {"pred_topk": torch.tensor([3, 1, 0, 2, 4]), "gt_label": torch.tensor(3)},
        {"pred_topk": torch.tensor([0, 1, 2, 3, 4]), "gt_label": torch.tensor(4)},
        {"pred_topk": torch.tensor([0, 1, 2, 3, 4]), "gt_label": torch.tensor(9)},
        {"pred_topk": torch.tensor([1, 2]), "gt_label": torch.tensor(2)},
    ]
    metric.process({}, outputs)
    assert metric.compute_metrics(metric.results) == {"top1": 25.0, "top5": 75.0}


def test_pretrained_224_checkpoint_loads_into_448_style_grid(tmp_path: Path) -> None:
    source = build_vit("vit_tiny_patch16", **{k: v for k, v in TINY.items() if k != "arch"})
    checkpoint = tmp_path / "mae_tiny.pth"
    torch.save({"model": source.state_dict()}, checkpoint)
    model = MAEClassifier({**TINY, "img_size": 64}, num_classes=3, pretrained=str(checkpoint))
    model.init_weights()
    assert model.backbone.pos_embed.shape == (1, 1 + 8 * 8, 64)
    torch.testing.assert_close(model.backbone.pos_embed[:, 0], source.pos_embed[:, 0])
    assert torch.equal(model.backbone.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3)


def test_rand_augment_posterize_to_zero_bits_gives_black_not_a_crash() -> None:
    from timm.data import auto_augment

    image = Image.new("RGB", (8, 8), (200, 100, 50))
    black = auto_augment.NAME_TO_OP["PosterizeIncreasing"](image, 0)
    assert black.getextrema() == ((0, 0), (0, 0), (0, 0))
    op = auto_augment.AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10)  # 4 - 4 = 0 bits
    assert op(image).getextrema() == ((0, 0), (0, 0), (0, 0))
