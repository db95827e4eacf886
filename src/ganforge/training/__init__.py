"""The training engine: the step (``step``), the loop (``trainer``), ``train()`` (``run``), and the
rooms they use: schedule, health, state, logger, evaluation during training, EMA."""

from ..io import load_checkpoint, save_checkpoint
from .step import GAN, StepStats
from .run import train
from .trainer import TrainingInterrupted, TrainResult

__all__ = ["GAN", "StepStats", "TrainResult", "TrainingInterrupted", "load_checkpoint",
           "save_checkpoint", "train"]
