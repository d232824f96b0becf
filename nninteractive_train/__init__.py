"""nninteractive_train: training nnInteractive-style 3D promptable segmentation models on nnU-Net v2."""

__version__ = "0.1.0"
