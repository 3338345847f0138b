# Multi-scale + flip evaluation of the ViT-L recipe (see the ViT-B `-ms` config).
# Test only: python tools/test.py THIS CHECKPOINT
_base_ = ['./upernet_mae-vit-l_8xb2-amp-160k_ade20k-512x512.py', '../_base_/ade20k/ms_flip_test.py']

# mmseg_tta registers MAETransferMinSizeResize (short side >= 512) and imports the mmseg integration
custom_imports = dict(imports=['mae_transfer.integrations.mmseg_tta'], allow_failed_imports=False)
model = dict(_delete_=True, type='SegTTAModel', module=_base_.model)
test_dataloader = dict(batch_size=1, dataset=dict(pipeline=_base_.ms_flip_pipeline))
