# MAE end-to-end fine-tuning recipe, ViT-H/14: official FINETUNE.md ViT-H command
# (--epochs 50 --blr 1e-3 --layer_decay 0.75 --drop_path 0.3, --batch_size 16 on 8 nodes x 8
# GPUs = 1024), i.e. ViT-L's values with drop path 0.3. MAE paper Table 9 has drop path 0.2 for
# ViT-H; FINETUNE.md's 0.3 is used. Leaves set the per-GPU batch 16 (the dataset base says 32).
_base_ = ["./finetune_vit-large.py"]

model = dict(backbone=dict(arch="vit_huge_patch14", drop_path_rate=0.3))  # FINETUNE.md ViT-H --drop_path 0.3
