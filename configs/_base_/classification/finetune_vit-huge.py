# MAE fine-tuning recipe, ViT-H/14 (MAE Table 9): as ViT-L (blr 1e-3, layer decay 0.75,
# 50 epochs) with drop path 0.3.
_base_ = ["./finetune_vit-large.py"]

model = dict(backbone=dict(arch="vit_huge_patch14", drop_path_rate=0.3))
