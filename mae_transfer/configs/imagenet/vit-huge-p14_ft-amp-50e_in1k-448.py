# ViT-H/14 fine-tuned on ImageNet-1k at 448 (MAE Table 3 "ViT-H 448"): 87.8 top-1 (paper; official
# README). The paper gives no separate 448 recipe; this is the ViT-H FINETUNE.md recipe at 448 input.
_base_ = ["./vit-huge-p14_ft-amp-50e_in1k-224.py", "../_base_/imagenet/highres_448.py"]

# pos_embed stored for the 448 grid (32 x 32 patches of 14 pixels); load_pretrained resizes the 224
# checkpoint's 16 x 16 grid bicubically (as MAE's interpolate_pos_embed). Activation checkpointing keeps
# the 1025-token sequence within GPU memory.
model = dict(backbone=dict(img_size=448, grad_checkpointing=True))
# 1024 images per step = 8 per GPU x 32 GPUs x 4 accumulation steps
train_dataloader = dict(batch_size=8, dataset=dict(pipeline={{_base_.train_pipeline_448}}))
val_dataloader = dict(batch_size=16, dataset=dict(pipeline={{_base_.test_pipeline_448}}))
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=4)
