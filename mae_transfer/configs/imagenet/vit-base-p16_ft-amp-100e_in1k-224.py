# ViT-B/16 fine-tuned on ImageNet-1k at 224 with the official FINETUNE.md recipe (values in
# ../_base_/classification/finetune_vit-base.py). Top-1: 83.6 (MAE Table 3; official README).
_base_ = ["../_base_/imagenet/imagenet.py", "../_base_/classification/finetune_vit-base.py"]

model = dict(num_classes=1000)  # ImageNet-1k classes, as num_classes in imagenet.py
