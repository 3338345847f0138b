# ViT-H/14 fine-tuned on Places205 at 448 (MAE recipe). MAE Table 6 top-1 (ViT-H 448): 66.8.
# The paper publishes no 448 recipe. Used here: the ViT-H fine-tuning values of FINETUNE.md
# (blr 1e-3 -> lr 4e-3 at batch 1024, layer decay 0.75, drop path 0.3, 50 epochs, 5 warmup) at
# input 448 (main_finetune.py --input_size 448), with MAE's 448 evaluation: resize 448, centre
# crop 448 (util/datasets.py: crop_pct 1.0 above 224; _base_/classification/highres_448.py).
# Same per-GPU 8 and 50 epochs as MMPretrain's vit-huge-p14_32xb8-coslr-50e_in1k-448px.
_base_ = ["./vit-huge-p14_ft-amp-50e_places205-224.py", "../_base_/classification/highres_448.py"]

# pos_embed stored for the 448 grid (32 x 32 patches of 14 pixels); load_pretrained resizes the
# 224 checkpoint's 16 x 16 grid bicubically (as MAE's interpolate_pos_embed). Activation
# checkpointing keeps the 1025-token sequence within GPU memory.
model = dict(backbone=dict(img_size=448, grad_checkpointing=True))
# 1024 images per step = 8 per GPU x 32 GPUs x 4 accumulation steps
train_dataloader = dict(batch_size=8, dataset=dict(pipeline={{_base_.train_pipeline_448}}))
val_dataloader = dict(batch_size=16, dataset=dict(pipeline={{_base_.test_pipeline_448}}))
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=4)
