# Smoke test: frozen-feature probes of a tiny ViT on a real labelled image set that ships inside
# scikit-learn (handwritten digits, upsampled to 64 px; `mae-transfer data make digits ROOT`:
# 10 training images per class, the low-label setting, and the other ~1,700 as val). The matrix
# sets probe.protocol (knn, linear-sweep, attentive). Seconds on 2 CPU cores.
#
#   mae-transfer data make digits /tmp/digits
#   python -m mae_transfer.train configs/smoke/digits_probes.py --work-dir /tmp/w \
#       --cfg-options train_dataloader.dataset.data_root=/tmp/digits val_dataloader.dataset.data_root=/tmp/digits \
#                     probe.protocol=linear-sweep
#
# Deviations from the published probes (frozen_probes.py), for a tiny set on CPU: k = 10 and 20
# only (the 100-image bank holds 90 after the hold-out of one image per class; 100 and 200 exceed
# it); the linear sweep and the attentive grid train 60 epochs at 32 per process (2 steps an epoch
# on the 90, 3 in the refit on the 100); no flip (digits are not mirror-symmetric) and crops of
# 50-100% of the image; float32 (no GPU).
_base_ = ["../_base_/classification/frozen_probes.py"]

data_root = "data/smoke/digits"
image_size = 64
dataset_type = "MAETransferImageFolderDataset"

# the benchmark smoke matrix's backbones: vit_tiny_patch16 with 4 blocks, 64 px
model = dict(backbone=dict(arch="vit_tiny_patch16", img_size=image_size, depth=4))
probe = dict(
    amp=False,
    knn=dict(ks=(10, 20)),
    linear_sweep=dict(epochs=60),
    attentive=dict(learning_rates=(1e-4, 1e-3, 1e-2), weight_decays=(5e-4, 5e-2), epochs=60),
)
train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferLinearProbeTransform", input_size=image_size, scale=(0.5, 1.0), hflip=0.0),
    dict(type="MAETransferPackClassificationInputs"),
]
test_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferTimmTransform", input_size=image_size, is_training=False, crop_pct=1.0),
    dict(type="MAETransferPackClassificationInputs"),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path="train"), num_classes=10,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path="val"), num_classes=10,
                 pipeline=test_pipeline, test_mode=True),
)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
