# Places365-Standard (official layout, see mae_transfer/data/places.py): file lists
# places365_train_standard.txt (images in data_256/) and places365_val.txt (images in val_256/),
# "path label" per line; 365 classes, 36,500 val images.
_base_ = ["./data_224.py"]

num_classes = 365
data_root = "data/places365"
dataset_type = "MAETransferPlacesDataset"

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="places365_train_standard.txt",
        data_prefix=dict(img_path="data_256"),
        num_classes=num_classes,
    )
)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="places365_val.txt",
        data_prefix=dict(img_path="val_256"),
        num_classes=num_classes,
    )
)
test_dataloader = val_dataloader
