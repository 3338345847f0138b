# MAE linear probing, ViT-H/14: the ViT-B setting (linear_probe.py) with the ViT-H backbone
# (FINETUNE.md "Linear Probing": "set --model vit_huge_patch14"; same blr, batch, epochs).
_base_ = ["./linear_probe.py"]

model = dict(backbone=dict(arch="vit_huge_patch14"))
