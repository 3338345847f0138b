# Frozen-feature probes (mae_transfer/probes; run by MAETransferProbeRunner, see
# mae_transfer/integrations/probes.py). One config serves the three matrix protocols; the matrix
# sets probe.protocol (knn, linear-sweep, attentive). A leaf combines this with a dataset base:
#   _base_ = ["../_base_/imagenet/imagenet.py", "../_base_/classification/frozen_probes.py"]
#   model = dict(backbone=dict(arch="vit_base_patch16"))
#   train_dataloader = dict(batch_size=128, dataset=dict(pipeline={{_base_.probe_train_pipeline}}))
#   val_dataloader = dict(batch_size=256)
#
# Backbone: frozen, eval mode, normed tokens of the last blocks (MAEViT.forward_last_blocks; the
#   last is forward_features). Forwards under bfloat16 autocast on a GPU (DINOv2 eval: autocast);
#   features in float32.
# Selection (CAPI eval_classification.py): a fixed-seed 10% hold-out of train (val_proportion=0.1,
#   here drawn per class), every grid point scored on it, only the chosen point evaluated on val,
#   after a refit on all of train (DINOv2's logistic regression refits; k-NN's bank is all of train).
# k-NN (DINO eval_knn.py, DINOv2 eval/knn.py): cls token after the final norm, cosine, T 0.07,
#   k 10/20/100/200 from one search (DINOv2 --nb_knn default; 20 the headline).
# Linear sweep (DINOv2 eval/linear.py): 13 lrs 1e-5..0.1 x batch x world / 256, SGD momentum 0.9,
#   wd 0, cosine to 0, 10 epochs at 128 per GPU (epochs=10, epoch_length=1250, batch_size=128 on 8
#   GPUs = 10 ImageNet epochs), last 1 or 4 blocks; sources cls / mean of the patch tokens / both
#   (CAPI's representations) -> 78 heads from one frozen forward per batch.
# Attentive (CAPI eval_classification.py AttnPoolClassifier): one query (heads of 64 channels),
#   kv projection, linear; lrs 1e-5..1e-2 x weight decays 5e-4, 1e-3, 5e-2 (30 heads), AdamW betas
#   (0.9, 0.95), 10% linear warm-up then cosine (1250 of 12500 iterations), 10 epochs.
# Training augmentation: the linear recipe's (MAE main_linprobe.py: RandomResizedCrop bicubic +
#   flip; DINOv2's make_classification_train_transform is the same); evaluation: the dataset base's
#   test pipeline (resize 256, centre crop 224).
_base_ = ["./default_runtime.py"]

custom_imports = dict(
    imports=["mae_transfer.integrations.classification", "mae_transfer.integrations.probes"],
    allow_failed_imports=False,
)
runner_type = "MAETransferProbeRunner"

model = dict(
    type="MAETransferFrozenBackbone",
    backbone=dict(arch="vit_base_patch16", img_size=224),
    pretrained=None,  # the checkpoint: --cfg-options model.pretrained=... (a matrix sets it)
)
probe = dict(
    protocol="knn",  # knn | linear-sweep | attentive (the matrix's protocol:)
    holdout=dict(fraction=0.1, seed=0),
    refit=True,
    amp=True,
    seed=0,
    cache_root=None,  # default WORK_DIR/features; a matrix shares WORK_ROOT/features
    # feature auto: the cls token, or the mean of the patch tokens for a family declaring it (no cls)
    knn=dict(ks=(10, 20, 100, 200), temperature=0.07, feature="auto", query_chunk=1024, bank_chunk=65536),
    linear_sweep=dict(
        learning_rates=(1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1),
        sources=("cls", "avg", "both"),
        blocks=(1, 4),
        epochs=10,
        momentum=0.9,
    ),
    attentive=dict(
        learning_rates=(1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2),
        weight_decays=(5e-4, 1e-3, 5e-2),
        epochs=10,
        warmup_fraction=0.1,
        betas=(0.9, 0.95),
    ),
)
probe_train_pipeline = [
    dict(type="MAETransferLoadRGBImage"),
    dict(type="MAETransferLinearProbeTransform", input_size=224),  # RandomResizedCrop + flip only
    dict(type="MAETransferPackClassificationInputs"),
]
# the probe runner runs no mmengine loop for these to follow, and keeps no checkpoint
default_hooks = dict(logger=None, checkpoint=None, param_scheduler=None, sampler_seed=None)
