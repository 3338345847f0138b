# ViT-L/16 fine-tuned on iNaturalist 2017 at 224 (MAE recipe). MAE Table 6 top-1: 75.7.
_base_ = ["../_base_/classification/inat2017.py", "../_base_/classification/finetune_vit-large.py"]

model = dict(num_classes=5089)  # iNaturalist 2017 categories, as num_classes in inat2017.py
