# Places205 (official layout, see mae_transfer/data/places.py): file lists train_places205.csv and
# val_places205.csv ("path label" per line, space separated), images in images256/; 205 classes.
_base_ = ["./data_224.py"]

num_classes = 205
data_root = "data/places205"
dataset_type = "MAETransferPlacesDataset"

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="train_places205.csv",
        data_prefix=dict(img_path="images256"),
        num_classes=num_classes,
    )
)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="val_places205.csv",
        data_prefix=dict(img_path="images256"),
        num_classes=num_classes,
    )
)
test_dataloader = val_dataloader
