# ViT-L/16 fine-tuned on iNaturalist 2018 at 224 (MAE recipe). MAE Table 6 top-1: 80.1.
_base_ = ["../_base_/classification/inat2018.py", "../_base_/classification/finetune_vit-large.py"]

model = dict(num_classes=8142)  # iNaturalist 2018 categories, as num_classes in inat2018.py
