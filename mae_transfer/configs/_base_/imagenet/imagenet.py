# ImageNet-1k in the ImageFolder layout the official MAE scripts read (see mae_transfer/data/imagenet.py):
# data_root/train/<wnid>/*.JPEG and data_root/val/<wnid>/*.JPEG (val re-organised by class), 1000 classes;
# class index = position of the wnid in sorted order (torchvision ImageFolder).
_base_ = ["../classification/data_224.py"]

num_classes = 1000
data_root = "data/imagenet"
dataset_type = "MAETransferImageFolderDataset"

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path="train"), num_classes=num_classes)
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path="val"), num_classes=num_classes)
)
test_dataloader = val_dataloader
