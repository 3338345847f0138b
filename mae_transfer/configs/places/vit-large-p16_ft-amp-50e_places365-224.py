# ViT-L/16 fine-tuned on Places365-Standard at 224 (MAE recipe). MAE Table 6 top-1: 59.4.
_base_ = ["../_base_/classification/places365.py", "../_base_/classification/finetune_vit-large.py"]

model = dict(num_classes=365)  # Places365-Standard categories, as num_classes in places365.py
