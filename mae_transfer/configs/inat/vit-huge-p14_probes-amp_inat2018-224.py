# ViT-H/14 frozen-feature probes on iNaturalist 2018 at 224 (k-NN, linear sweep, attentive; the matrix's
# protocol sets probe.protocol). Every value and its source: ../_base_/classification/frozen_probes.py.
_base_ = ["../_base_/classification/inat2018.py", "../_base_/classification/frozen_probes.py"]

model = dict(backbone=dict(arch="vit_huge_patch14"))
# DINOv2 eval/linear.py and CAPI eval_classification.py: batch_size=128 per GPU (x 8 GPUs = 1024,
# the batch the lrs are scaled for: lr x 1024 / 256); features extracted 256 per GPU
train_dataloader = dict(batch_size=128, dataset=dict(pipeline={{_base_.probe_train_pipeline}}))
val_dataloader = dict(batch_size=256)
