# iNaturalist 2017 (official layout, see mae_transfer/data/annotations.py):
# train2017.json / val2017.json under data_root, image paths in the JSON relative to data_root.
# 5089 categories; class index = position of the category id in the sorted id list.
_base_ = ["./data_224.py"]

num_classes = 5089
data_root = "data/inat2017"
dataset_type = "MAETransferINaturalistDataset"

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="train2017.json", num_classes=num_classes)
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="val2017.json", num_classes=num_classes)
)
test_dataloader = val_dataloader
