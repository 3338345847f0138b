# ViT-B/16 linear probe on ImageNet-1k (MAE Table 10 / FINETUNE.md "Linear Probing"; values in
# ../_base_/classification/linear_probe.py): frozen encoder, cls token after the final norm,
# BatchNorm without affine, LARS, batch 16384, blr 0.1, wd 0, 90 epochs with 10 warmup, RandomResizedCrop
# + flip only. Top-1: 68.0 (MAE Table 12; FINETUNE.md 'paper (TF/TPU)'; this PT/GPU code: 67.8).
# FINETUNE.md: "for ViT-L/H it is sufficient to train 50 epochs" -- keep Table 10's 90 here.
_base_ = ["../_base_/imagenet/imagenet.py", "../_base_/classification/linear_probe.py"]

model = dict(backbone=dict(arch="vit_base_patch16"), num_classes=1000)
# 16384 images per step = 512 per GPU x 32 GPUs (FINETUNE.md: 4 nodes x 8 GPUs, --batch_size 512)
train_dataloader = dict(batch_size=512, dataset=dict(pipeline={{_base_.linear_probe_train_pipeline}}))
