# Smoke MAE pre-training: a ViT-Tiny encoder cut to 4 blocks with a small decoder, on 64 px images
# (16 px patches: 4 of 16 stay visible at mask ratio 0.75), on CPU in about a minute (the demo's pre-training stage). The model and the loss are
# the official ones (mask ratio 0.75, norm-pix targets, AdamW betas (0.9, 0.95), wd 0.05, warmup +
# cosine to 0); batch, lr, schedule and decoder are shrunk for 2 CPU cores.
#
#   mae-transfer data make photos /tmp/imagenet_smoke   (crops of scikit-image's photographs: 64 train /
#                                                        16 val; the smoke matrix's pre-training set)
#   mae-transfer data make imagenet /tmp/imagenet_smoke  (or generated stripes: 4 classes, 64 train / 32 val)
#   python tools/train.py configs/pretrain/mae_vit-tiny-d4_smoke-64px.py --work-dir /tmp/mae \
#       --cfg-options train_dataloader.dataset.data_root=/tmp/imagenet_smoke \
#                     val_dataloader.dataset.data_root=/tmp/imagenet_smoke
#   -> /tmp/mae/checkpoint-{24,49,99}.pth (official format; the encoder loads into the smoke transfer
#      configs' backbone build_vit("vit_tiny_patch16", depth=4, img_size=64)), metrics.json with the
#      held-out mae/masked_patch_loss.
#
# The top-level variables below are read when the file is parsed; --cfg-options must set the
# resolved key paths instead:
#   data root:   train_dataloader.dataset.data_root, val_dataloader.dataset.data_root
#   model:       model.mask_ratio, model.norm_pix_loss, model.decoder.depth, model.decoder.embed_dim
#   length:      train_cfg.max_epochs together with param_scheduler.1.end
#   checkpoints: custom_hooks.0.save_epochs
#   seed:        randomness.seed
_base_ = ["../_base_/imagenet/mae_pretrain.py"]

data_root = "data/smoke/imagenet"
image_size = 64
epochs = 100

model = dict(
    arch="vit_tiny_patch16",
    # the benchmark smoke matrix's backbone: vit_tiny_patch16 with 4 blocks at 64 px (4 x 4 patches)
    encoder=dict(img_size=image_size, depth=4),
    decoder=dict(embed_dim=128, depth=2, num_heads=4, mlp_ratio=4.0),
    mask_ratio=0.75,
    norm_pix_loss=True,
)
train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=True, auto_augment=None,
         re_prob=0.0, scale=(0.2, 1.0), hflip=0.5, interpolation="bicubic"),
    dict(type="MAETransferPackClassificationInputs"),
]
val_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=False),
    dict(type="MAETransferPackClassificationInputs"),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(data_root=data_root, pipeline=val_pipeline),
)

# lr 1.5e-3: a tiny MAE trained from scratch for minutes needs more than blr x batch / 256 =
# 1.5e-4 x 16 / 256 ~ 1e-5. Float32 (OptimWrapper): CPU runs; the name says no amp.
optim_wrapper = dict(
    _delete_=True,
    type="OptimWrapper",
    constructor="MAETransferPretrainOptimWrapperConstructor",
    optimizer=dict(type="AdamW", lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=0.0, by_epoch=True, begin=5, end=epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=epochs, val_interval=25)
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=25, max_keep_ckpts=2))
custom_hooks = [
    dict(type="MAETransferOfficialCheckpointHook", save_epochs=[25, 50], save_last=True,
         args=dict(blr=1.5e-3 * 256 / 16, min_lr=0.0, warmup_epochs=5))
]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
