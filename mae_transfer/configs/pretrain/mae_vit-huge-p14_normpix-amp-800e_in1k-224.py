# MAE pre-training, ViT-H/14, 800 epochs, norm-pix targets, on ImageNet-1k (paper Table 8; PRETRAIN.md:
# "To train ViT-Base or ViT-Huge, set --model ...": the same recipe for every size).
_base_ = ["../_base_/imagenet/mae_pretrain.py"]

model = dict(arch="vit_huge_patch14")
