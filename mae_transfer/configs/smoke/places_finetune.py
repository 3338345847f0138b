# Smoke test: the iNaturalist smoke recipe (inat_finetune.py) on a tiny Places365-Standard set.
#
#   mae-transfer data make places365 /tmp/places_smoke   (4 classes, 64 train / 32 val images)
#   python tools/train.py configs/smoke/places_finetune.py --work-dir /tmp/w \
#       --cfg-options train_dataloader.dataset.data_root=/tmp/places_smoke \
#                     val_dataloader.dataset.data_root=/tmp/places_smoke \
#                     test_dataloader.dataset.data_root=/tmp/places_smoke
#
# --cfg-options key paths are those of inat_finetune.py: data root in
# train_dataloader.dataset.data_root, val_dataloader.dataset.data_root and
# test_dataloader.dataset.data_root; the checkpoint in model.pretrained; classes in
# model.num_classes and the three *_dataloader.dataset.num_classes; length in
# train_cfg.max_epochs with param_scheduler.1.end; seed in randomness.seed.
_base_ = ["./inat_finetune.py"]

data_root = "data/smoke/places365"
dataset_type = "MAETransferPlacesDataset"
pretrained = None

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="places365_train_standard.txt",
                 data_prefix=dict(img_path="data_256")),
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="places365_val.txt",
                 data_prefix=dict(img_path="val_256")),
)
test_dataloader = val_dataloader
