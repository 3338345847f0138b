# ViT-B/16 linear probe on Places365-Standard at 224: MAE's linear-probing recipe (Table 10,
# main_linprobe.py); values and their sources in _base_/classification/linear_probe.py.
# The paper reports no linear-probe number for this dataset (Table 6 is fine-tuning).
_base_ = ["../_base_/classification/places365.py", "../_base_/classification/linear_probe.py"]

model = dict(num_classes=365)  # Places365-Standard categories, as num_classes in places365.py
# 16384 images per step = 512 per GPU x 32 GPUs (FINETUNE.md linear probing); weak augmentation only
train_dataloader = dict(batch_size=512, dataset=dict(pipeline={{_base_.linear_probe_train_pipeline}}))
