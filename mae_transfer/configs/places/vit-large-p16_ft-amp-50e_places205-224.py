# ViT-L/16 fine-tuned on Places205 at 224 (MAE recipe). MAE Table 6 top-1: 65.8.
_base_ = ["../_base_/classification/places205.py", "../_base_/classification/finetune_vit-large.py"]

model = dict(num_classes=205)  # Places205 categories, as num_classes in places205.py
