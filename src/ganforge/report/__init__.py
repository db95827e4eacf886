"""Pictures a run leaves behind: sample grids, loss curves, 2-D scatters."""

from .plots import loss_curve, save_grid, scatter_2d, to_uint8

__all__ = ["loss_curve", "save_grid", "scatter_2d", "to_uint8"]
