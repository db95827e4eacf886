"""Optional TensorBoard logging under ``<run>/tensorboard``: scalars, sample grids, scatters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import GanforgeError
from ..io.atomic import WriteError, run_path

_SCALARS = {"loss_D": "loss/D", "loss_G": "loss/G", "acc_D": "D/accuracy", "lr_G": "lr/G",
            "lr_D": "lr/D", "examples_per_sec": "speed/examples_per_sec",
            "diversity": "health/sample_diversity", "augment_p": "augment/p",
            "ada_rt": "augment/r_t", "penalty_D": "loss/D_penalty"}


class TensorBoardLogger:
    """``mode``: ``auto`` logs when the tensorboard package is installed, ``on`` requires it,
    ``off`` never logs. Step axis: images seen, so runs with different batch sizes line up."""

    def __init__(self, run_dir: Path, mode: str = "auto") -> None:
        self.writer = None
        if mode == "off":
            return
        try:  # optional dependency: imported only when a run logs to TensorBoard
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if mode == "on":
                raise GanforgeError(
                    "report.tensorboard=on needs the tensorboard package: "
                    "`pip install tensorboard` (or `pip install 'ganforge[tensorboard]'`), or set "
                    "report.tensorboard=off"
                ) from None
            return
        # TensorBoard appends to event files of its own naming; the folder must be a real folder
        # inside the run, so a planted link cannot send them elsewhere.
        log_dir = Path(run_dir) / "tensorboard"
        if log_dir.is_symlink() or (log_dir.exists() and not log_dir.is_dir()):
            raise WriteError(f"refusing to write TensorBoard files into {log_dir}: it is a "
                             "symbolic link or a file, not a folder of this run; remove it and "
                             "retry (or set report.tensorboard=off)")
        self.writer = SummaryWriter(log_dir=str(run_path(run_dir, "tensorboard")))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def scalars(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        step = record["images_seen"]
        for key, value in record.items():
            tag = (_SCALARS.get(key) or (f"eval/{key[5:]}" if key.startswith("eval_") else None)
                   or (f"loss/D_{key[7:]}" if key.startswith("loss_D_") else None))
            if tag and isinstance(value, (int, float)):
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def image(self, tag: str, png_path: Path, step: int) -> None:
        if not self.writer:
            return
        arr = np.asarray(Image.open(png_path).convert("RGB"))
        self.writer.add_image(tag, arr, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
