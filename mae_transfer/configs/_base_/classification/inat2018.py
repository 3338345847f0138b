# iNaturalist 2018 (official layout, see mae_transfer/data/annotations.py):
# train2018.json / val2018.json under data_root, image paths in the JSON relative to data_root.
# 8142 categories; class index = position of the category id in the sorted id list.
_base_ = ["./data_224.py"]

num_classes = 8142
data_root = "data/inat2018"
dataset_type = "MAETransferINaturalistDataset"

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="train2018.json", num_classes=num_classes)
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="val2018.json", num_classes=num_classes)
)
test_dataloader = val_dataloader
