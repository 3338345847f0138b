# Multi-scale + flip evaluation of the ViT-B recipe (MMSeg's MAE ViT-B reference: 48.70 ms+flip).
# Test only: python tools/test.py THIS CHECKPOINT   (CHECKPOINT from the single-scale config).
#
# The whole test-time augmentation lives in the config: the segmentor is wrapped in mmseg's
# SegTTAModel and the test pipeline yields 6 scales x 2 flips per image
# (configs/_base_/ade20k/ms_flip_test.py), each segmented by slide inference, softmax scores averaged.
# (MMSeg 1.2.2's `...-512x512-ms.py` repeats the single-scale pipeline; it only does TTA when
# its tools/test.py is given --tta.)
_base_ = ['./upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py', '../_base_/ade20k/ms_flip_test.py']

# mmseg_tta registers MAETransferMinSizeResize (short side >= 512) and imports the mmseg integration
custom_imports = dict(imports=['mae_transfer.integrations.mmseg_tta'], allow_failed_imports=False)
model = dict(_delete_=True, type='SegTTAModel', module=_base_.model)
test_dataloader = dict(batch_size=1, dataset=dict(pipeline=_base_.ms_flip_pipeline))
