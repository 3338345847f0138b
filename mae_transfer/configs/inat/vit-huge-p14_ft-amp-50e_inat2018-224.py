# ViT-H/14 fine-tuned on iNaturalist 2018 at 224 (MAE recipe). MAE Table 6 top-1: 83.0.
_base_ = ["../_base_/classification/inat2018.py", "../_base_/classification/finetune_vit-huge.py"]

model = dict(num_classes=8142)  # iNaturalist 2018 categories, as num_classes in inat2018.py
# 1024 images per step = 16 per GPU x 64 GPUs (FINETUNE.md ViT-H: 8 nodes x 8 GPUs x --batch_size 16);
# on 32 GPUs set optim_wrapper.accumulative_counts=2
train_dataloader = dict(batch_size=16)
