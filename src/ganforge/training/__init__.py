"""The training engine and checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .loop import GAN, TrainResult, gaussian_fit, train

__all__ = ["GAN", "TrainResult", "gaussian_fit", "load_checkpoint", "save_checkpoint", "train"]
