# iNaturalist 2019 (official layout, see mae_transfer/data/annotations.py):
# train2019.json / val2019.json under data_root, image paths in the JSON relative to data_root.
# 1010 categories; class index = position of the category id in the sorted id list.
_base_ = ["./data_224.py"]

num_classes = 1010
data_root = "data/inat2019"
dataset_type = "MAETransferINaturalistDataset"

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="train2019.json", num_classes=num_classes)
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="val2019.json", num_classes=num_classes)
)
test_dataloader = val_dataloader
