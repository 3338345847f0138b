"""mae-transfer: transfer benchmarks for MAE-pretrained Vision Transformers."""

__version__ = "0.1.0"
