"""ganforge: train, sample and evaluate GANs on PyTorch."""

__version__ = "0.3.0"
