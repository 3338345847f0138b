# ViT-B Mask R-CNN, MAE paper recipe (A.3 = Li et al. 2021, arXiv 2111.11429): 4 block groups
# rescaled to strides 4-32 + FPN. All settings, with their sources, live in the base.
# Reference: MAE ViT-B 50.3 box AP / 44.9 mask AP (MAE paper, Table 4).
_base_ = ['../_base_/coco/mae_fpn_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_base.pth'
model = dict(backbone=dict(pretrained=pretrained))
