# MAE pre-training of ViT-B/16 on ImageNet-1k train/, 800 epochs, per-patch normalised pixel targets.
# Sources: MAE paper Table 8 and A.1 "Pre-training"; official PRETRAIN.md (the command for the released
# checkpoints) and main_pretrain.py / engine_pretrain.py / models_mae.py. Leaf configs in
# configs/pretrain/ change the arch and the schedule length only.
#
#   python tools/train.py configs/pretrain/mae_vit-base-p16_normpix-amp-800e_in1k-224.py \
#       --cfg-options train_dataloader.dataset.data_root=/data/imagenet val_dataloader.dataset.data_root=/data/imagenet
#
# Declared deviations from the official script:
# - autocast dtype bfloat16 (the official ran float16 autocast + GradScaler on V100s, which have no
#   bf16): set optim_wrapper.dtype=float16 for the official precision;
# - the lr warmup starts at 1e-6 x lr, not 0 (mmengine's chained LinearLR needs a positive start);
# - mmengine resume checkpoints every 5 epochs (the official saves every 20 and the last);
#   official-format checkpoint-{epoch}.pth snapshots at epochs 100, 200, 400 and 800 of this one cosine
#   schedule. A snapshot at epoch E of an N-epoch schedule is not a point of the paper's Fig. 7, whose
#   every point is a full schedule of its own (its caption); a matrix stage's sweep: {epochs: [...]}
#   runs those;
# - a held-out masked-patch loss on val/ after the last epoch (the official runs no evaluation).
custom_imports = dict(imports=["mae_transfer.integrations.pretrain"], allow_failed_imports=False)

data_root = "data/imagenet"
image_size = 224  # main_pretrain.py --input_size 224

model = dict(
    type="MAETransferPretrainer",
    arch="vit_base_patch16",
    encoder=dict(img_size=image_size),
    # models_mae.py mae_vit_{base,large}_patch16_dec512d8b / mae_vit_huge_patch14_dec512d8b
    decoder=dict(embed_dim=512, depth=8, num_heads=16, mlp_ratio=4.0),
    mask_ratio=0.75,  # paper §4.1 / Fig. 5; PRETRAIN.md --mask_ratio 0.75
    norm_pix_loss=True,  # PRETRAIN.md --norm_pix_loss (released checkpoints, paper Table 3); Table 1's
    # ablations use unnormalised pixels: --cfg-options model.norm_pix_loss=False
    init_from=None,  # continue an MAE checkpoint with decoder (weights, optimizer state, epoch)
)

# main_pretrain.py transform_train: RandomResizedCrop(224, scale=(0.2, 1.0), interpolation=3 (bicubic)),
# RandomHorizontalFlip, ToTensor, Normalize(ImageNet mean/std); no colour jitter (paper A.1, Table 1e).
# timm's create_transform builds the same ops (RandomResizedCropAndInterpolation, ratio 3/4..4/3).
train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=True, auto_augment=None,
         re_prob=0.0, scale=(0.2, 1.0), hflip=0.5, interpolation="bicubic"),
    dict(type="MAETransferPackClassificationInputs"),
]
val_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=False, crop_pct=224 / 256),
    dict(type="MAETransferPackClassificationInputs"),
]
# 4096 images per step = 64 per GPU x 64 GPUs (PRETRAIN.md: 8 nodes x 8 GPUs, --batch_size 64); with
# fewer GPUs keep 4096 through optim_wrapper.accumulative_counts (8 GPUs: 8).
train_dataloader = dict(
    batch_size=64,
    num_workers=10,  # main_pretrain.py --num_workers 10
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,  # main_pretrain.py DataLoader(drop_last=True)
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="MAETransferImageFolderDataset", data_root=data_root, data_prefix=dict(img_path="train"),
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="MAETransferImageFolderDataset", data_root=data_root, data_prefix=dict(img_path="val"),
                 pipeline=val_pipeline, test_mode=True),
)
val_evaluator = dict(type="MAETransferMaskedPatchLoss")

# lr = blr x batch / 256 = 1.5e-4 x 4096 / 256 = 2.4e-3 (Table 8 base lr 1.5e-4; PRETRAIN.md --blr 1.5e-4)
optim_wrapper = dict(
    type="AmpOptimWrapper",
    dtype="bfloat16",
    loss_scale="dynamic",
    # official add_weight_decay groups: no decay for 1-D params and biases; cls/mask tokens are decayed
    constructor="MAETransferPretrainOptimWrapperConstructor",
    # Table 8: AdamW, betas (0.9, 0.95), weight decay 0.05; no gradient clipping (A.1)
    optimizer=dict(type="AdamW", lr=2.4e-3, betas=(0.9, 0.95), weight_decay=0.05),
    accumulative_counts=1,
)
# engine_pretrain.py / lr_sched.py: per-iteration linear warmup for 40 epochs (Table 8), then half-cycle
# cosine to min_lr 0 (main_pretrain.py --min_lr default 0.)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=True, begin=0, end=40, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=0.0, by_epoch=True, begin=40, end=800, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=800, val_interval=800)  # 800 epochs: paper §4.1
val_cfg = dict(type="ValLoop")

default_hooks = dict(
    runtime_info=dict(type="RuntimeInfoHook"),
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=100),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=5, max_keep_ckpts=2),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
custom_hooks = [
    dict(
        type="MAETransferOfficialCheckpointHook",
        save_epochs=[100, 200, 400, 800],  # snapshots of this 800-epoch schedule (not Fig. 7 points: see above)
        save_last=True,
        args=dict(blr=1.5e-4, min_lr=0.0, warmup_epochs=40),
    )
]
env_cfg = dict(
    cudnn_benchmark=True,  # main_pretrain.py cudnn.benchmark = True
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),
)
log_processor = dict(by_epoch=True, window_size=50)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)  # main_pretrain.py: seed = args.seed (0) + rank
