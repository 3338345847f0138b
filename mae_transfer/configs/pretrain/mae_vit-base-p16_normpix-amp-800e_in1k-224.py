# MAE pre-training, ViT-B/16, 800 epochs, norm-pix targets, on ImageNet-1k (paper Table 8; PRETRAIN.md).
_base_ = ["../_base_/imagenet/mae_pretrain.py"]
