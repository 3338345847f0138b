# ViT-B Mask R-CNN, ViTDet recipe: simple feature pyramid, LSJ 1024, 100 epochs, AMP.
# Reference: MAE ViT-B 51.6 box AP / 45.9 mask AP (detectron2), 51.6 / 45.7 (mmdet ViTDet).
# All settings live in the base; here only the checkpoint. At run time:
#   tools/train.py configs/coco/vitdet_mask-rcnn_vit-b_lsj-1024_100e_amp.py \
#       --cfg-options model.backbone.pretrained=/path/to/mae_pretrain_vit_base.pth
_base_ = ['../_base_/coco/vitdet_mask_rcnn.py']

pretrained = 'checkpoints/mae_pretrain_vit_base.pth'
model = dict(backbone=dict(pretrained=pretrained))
