# Multi-scale + flip test-time augmentation for ADE20K, shared by the `-ms` configs.
# 6 scales x 2 flips per image: the single-scale test scale (2048, 512) times 0.5 ... 1.75,
# aspect ratio kept, as in the MMSeg/BEiT reference's MultiScaleFlipAug. The names differ from
# mmseg's `img_ratios`/`tta_pipeline` so this file can sit beside mmseg's ADE20K base.
ms_flip_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
ms_flip_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True) for r in ms_flip_ratios],
            [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
             dict(type='RandomFlip', prob=1.0, direction='horizontal')],
            [dict(type='LoadAnnotations')],  # reduce_zero_label comes from ADE20KDataset (True)
            [dict(type='PackSegInputs')],
        ]),
]
