# ViT-L/16 fine-tuned on iNaturalist 2019 at 224 (MAE recipe). MAE Table 6 top-1: 83.4.
_base_ = ["../_base_/classification/inat2019.py", "../_base_/classification/finetune_vit-large.py"]

model = dict(num_classes=1010)  # iNaturalist 2019 categories, as num_classes in inat2019.py
