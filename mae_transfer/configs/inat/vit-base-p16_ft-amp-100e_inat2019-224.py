# ViT-B/16 fine-tuned on iNaturalist 2019 at 224 (MAE recipe). MAE Table 6 top-1: 80.5.
_base_ = ["../_base_/classification/inat2019.py", "../_base_/classification/finetune_vit-base.py"]

model = dict(num_classes=1010)  # iNaturalist 2019 categories, as num_classes in inat2019.py
