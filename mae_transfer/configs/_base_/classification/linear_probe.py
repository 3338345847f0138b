# MAE linear probing, ViT-B/16 (MAE paper A.1 "Linear probing" + Table 10; official
# main_linprobe.py and FINETUNE.md "Linear Probing"). Per-arch bases override the arch:
# linear_probe_vit-large.py, linear_probe_vit-huge.py.
#
# Model: frozen backbone; the cls token after the encoder's final norm (main_linprobe.py
#   --cls_token, FINETUNE.md; A.1 "This token will be treated as the class token"); BatchNorm1d
#   without affine, eps 1e-6, before the linear head (main_linprobe.py; A.1, following [15]);
#   head trunc_normal std 0.01 (main_linprobe.py, following MoCo v3); no drop path, no mixup,
#   no cutmix, no label smoothing (A.1: "we do not use mixup, cutmix, drop path, or color
#   jittering"; main_linprobe.py uses plain CrossEntropyLoss).
# Optimizer: LARS (Table 10) with MAE's semantics (mae_transfer/optim/lars.py: trust ratio
#   0.001 x ||w|| / ||g + wd w|| on every ndim > 1 parameter, also at wd 0; none on 1-D),
#   momentum 0.9 (Table 10), wd 0 (Table 10; main_linprobe.py --weight_decay 0).
#   lr = blr x batch / 256 = 0.1 x 16384 / 256 = 6.4 (Table 10 base lr 0.1, batch 16384).
# Schedule: 10 warmup epochs (Table 10; main_linprobe.py --warmup_epochs 10), then half-cycle
#   cosine to 0 (main_linprobe.py --min_lr 0), 90 epochs (Table 10; main_linprobe.py --epochs 90;
#   FINETUNE.md notes 50 epochs suffice for ViT-L/H, Table 10's 90 is kept for all sizes).
#   Declared deviation: MAE's warmup starts at lr 0, LinearLR at 1e-3 x lr.
# Data: RandomResizedCrop 224 (MAE util/crop.py single-draw variant, bicubic) + horizontal flip
#   only (Table 10; main_linprobe.py transform_train): no RandAugment, no random erasing. Eval as
#   fine-tuning: resize 256 (bicubic), centre crop 224 (main_linprobe.py transform_val).
# Batch: 512 per GPU x 32 GPUs = 16384 (FINETUNE.md: 4 nodes x 8 GPUs x --batch_size 512);
#   with fewer GPUs keep 16384 through optim_wrapper.accumulative_counts (8 GPUs: 4). BatchNorm
#   statistics are per GPU (plain BatchNorm1d under DDP, as main_linprobe.py).
# Mixed precision: main_linprobe.py trains in engine_finetune.train_one_epoch under
#   torch.cuda.amp.autocast, hence AmpOptimWrapper ("amp" in the leaf names).
#
# iNaturalist / Places: the paper reports no linear probe on them (Table 6 is fine-tuning) and
# publishes no per-dataset setting; the ImageNet setting above is used unchanged.
#
# A leaf combines this with a dataset base and swaps in the weak pipeline:
#   _base_ = ["../_base_/classification/inat2017.py", "../_base_/classification/linear_probe.py"]
#   model = dict(num_classes=5089)
#   train_dataloader = dict(batch_size=512, dataset=dict(pipeline={{_base_.linear_probe_train_pipeline}}))
_base_ = ["./default_runtime.py"]

model = dict(
    type="MAETransferClassifier",
    backbone=dict(arch="vit_base_patch16", img_size=224, drop_path_rate=0.0),  # A.1: no drop path
    num_classes=1000,  # set by the leaf from its dataset base
    protocol=dict(name="linear", num_blocks=0),  # cls token + final norm, BatchNorm1d(affine=False), head
    pretrained=None,  # the MAE checkpoint: --cfg-options model.pretrained=...
    mixup=None,  # A.1: no mixup / cutmix
    label_smoothing=0.0,  # main_linprobe.py: torch.nn.CrossEntropyLoss()
)
linear_probe_train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferLinearProbeTransform", input_size=224),  # RandomResizedCrop + flip only
    dict(type="MAETransferPackClassificationInputs"),
]

# lr = blr x batch / 256 = 0.1 x 16384 / 256 = 6.4
optim_wrapper = dict(
    type="AmpOptimWrapper",
    loss_scale="dynamic",
    optimizer=dict(type="MAETransferLars", lr=6.4, weight_decay=0.0, momentum=0.9, trust_coefficient=0.001),
    accumulative_counts=1,  # 16384 = 512 per GPU x 32 GPUs; on 8 GPUs use 4
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=0.0, by_epoch=True, begin=10, end=90, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=90, val_interval=10)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
