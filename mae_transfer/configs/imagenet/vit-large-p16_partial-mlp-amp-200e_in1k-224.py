# ViT-L/16 partial fine-tuning of the last block's MLP sub-block on ImageNet-1k (MAE §4.3, Fig. 9:
# "fine-tune only half of the last block (i.e., its MLP sub-block)": 79.1 top-1 after 800-epoch
# pre-training on unnormalised pixels). Schedule as partial-1blk (A.1: epochs from {50, 100, 200},
# unpublished; 200 here).
# Trainable: the last block's norm2 and mlp, fc_norm and the head (mae_transfer/classification/protocols.py).
_base_ = ["./vit-large-p16_partial-1blk-amp-200e_in1k-224.py"]

model = dict(protocol=dict(name="partial-mlp", num_blocks=0))
