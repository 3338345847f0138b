# MAE linear probing, ViT-L/16: the ViT-B setting (linear_probe.py) with the ViT-L backbone
# (FINETUNE.md "Linear Probing": "set --model vit_large_patch16"; same blr, batch, epochs).
_base_ = ["./linear_probe.py"]

model = dict(backbone=dict(arch="vit_large_patch16"))
