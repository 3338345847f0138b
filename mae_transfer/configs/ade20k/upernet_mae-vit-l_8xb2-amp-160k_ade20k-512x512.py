# UperNet on an MAE-pretrained ViT-L, ADE20K, 512x512 (MAE paper Table 5: 53.6 mIoU).
# Same recipe as the ViT-B config; only what differs is set here.
#
# Layer decay for ViT-L: the MAE paper (A.4) searched only the lr per entry and published
# neither the lr nor the layer decay for ADE20K, and MMSegmentation ships no ViT-L MAE config.
# 0.75 is the official MAE repository's ViT-L fine-tuning value (FINETUNE.md: ViT-B 0.65,
# ViT-L 0.75), which matches the ViT-B segmentation value 0.65 = its ViT-B fine-tuning value.
# Drop path 0.2: the official MAE ViT-L fine-tuning value (FINETUNE.md) and BEiT's ViT-L ADE20K
# config (ViT-B uses 0.1 in both settings).
# lr 1e-4 (from the ViT-B config): unpublished for ViT-L (A.4 searched it per entry); declared
# deviation.
# Decoder channels 1024: BEiT's ViT-L UperNet config (the code the paper used).
# Taps: blocks [7, 11, 15, 23] (BEiT-L / MAE-L segmentation).
_base_ = './upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py'

pretrained = 'pretrain/mae_pretrain_vit_large.pth'
embed_dim = 1024

model = dict(
    backbone=dict(arch='vit_large_patch16', out_indices=[7, 11, 15, 23], drop_path_rate=0.2, pretrained=pretrained),
    neck=dict(embed_dim=embed_dim),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=1024),
    auxiliary_head=dict(in_channels=embed_dim))

# 25 layers (depth 24 + 1): block i gets 0.75 ** (24 - i); embeddings 0.75 ** 25 = 7.5e-4.
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
