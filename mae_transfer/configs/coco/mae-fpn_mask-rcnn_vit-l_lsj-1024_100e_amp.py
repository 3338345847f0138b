# ViT-L Mask R-CNN, MAE paper recipe (A.3 = Li et al. 2021, arXiv 2111.11429): 4 groups of 6
# blocks rescaled to strides 4-32 + FPN.
# Reference: MAE ViT-L 53.3 box AP / 47.2 mask AP (MAE paper, Table 4).
# Differs from ViT-B: arch, global blocks (the group ends), drop path 0.3 (Li Sec. 4.2), FPN
# input widths. lr 8e-5 and wd 0.1 as for ViT-B (Li Sec. 4.2).
_base_ = ['../_base_/coco/mae_fpn_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_large.pth'
model = dict(
    backbone=dict(
        arch='vit_large_patch16',
        drop_path_rate=0.3,  # ViT-L (Li Sec. 4.2)
        window=dict(global_blocks=[5, 11, 17, 23]),  # group ends of 24 blocks (Li Sec. 2.1)
        pretrained=pretrained),
    neck=dict(in_channels=[1024, 1024, 1024, 1024]))
