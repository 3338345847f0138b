# Mask R-CNN with the MAE paper's detection adapter (He et al. 2021, appendix A.3, following
# Li et al., "Benchmarking Detection Transfer Learning with Vision Transformers", 2021), ViT-B.
#
# Differs from the ViTDet base only in the pyramid and the normalisation:
#   the 12 blocks form 4 equal groups; the outputs of blocks 3, 6, 9, 12 are resampled to
#   strides 4, 8, 16, 32 (deconv x4 / deconv x2 / identity / max pool) and feed a standard
#   FPN; FPN and heads use (synchronised) BatchNorm as in Li et al. The runner turns SyncBN into
#   BN when it runs without a distributed launcher.
# The paper searched lr, drop path and epochs per entry without publishing each value; this
# base keeps the ViTDet optimizer and schedule (AdamW 1e-4, wd 0.1, layer decay, 100 epochs).
#
# Pretrained weights and data root: same keys as in vitdet_mask_rcnn.py
# (--cfg-options model.backbone.pretrained=PATH ...).
_base_ = ['./vitdet_mask_rcnn.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    # taps default to the group ends [2, 5, 8, 11]; BatchNorm inside the x4 deconvolution
    backbone=dict(adapter='multi_level', adapter_norm='syncbn'),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[768, 768, 768, 768],
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),
    roi_head=dict(bbox_head=dict(norm_cfg=norm_cfg), mask_head=dict(norm_cfg=norm_cfg)))
