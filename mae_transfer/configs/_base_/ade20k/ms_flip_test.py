# Multi-scale + flip test-time augmentation for ADE20K, shared by the `-ms` configs: the 48.70
# MMSeg MAE ViT-B reference (mmseg 0.x configs/mae/upernet_mae-base_fp16_512x512_160k_ade20k_ms.py):
# MultiScaleFlipAug(img_scale=(2048, 512), img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], flip=True)
# around Resize(keep_ratio=True, min_size=512). 6 scales x 2 flips per image; each scale's short
# side is clamped to at least 512 (the relative position tables hold 512 x 512 slide windows), so
# the short sides are 512, 512, 512, 640, 768, 896 (MAETransferMinSizeResize,
# mae_transfer/integrations/mmseg_tta.py: mmseg 1.x's Resize has no min_size). The `-ms` leaves
# name that module in custom_imports. The names differ from mmseg's `img_ratios`/`tta_pipeline`
# so this file can sit beside mmseg's ADE20K base.
ms_flip_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
ms_flip_min_size = 512
ms_flip_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='MAETransferMinSizeResize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True,
                  min_size=ms_flip_min_size) for r in ms_flip_ratios],
            [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
             dict(type='RandomFlip', prob=1.0, direction='horizontal')],
            [dict(type='LoadAnnotations')],  # reduce_zero_label comes from ADE20KDataset (True)
            [dict(type='PackSegInputs')],
        ]),
]
