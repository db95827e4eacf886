"""The bottom room: files a command writes (atomically, never through a symlink), checkpoints,
JSONL logs and the run directory's own files. Imports nothing above ``errors``."""

from .atomic import atomic_write, run_path, write_json, write_text
from .checkpoint import (BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, file_sha256, load_checkpoint,
                         resolve_checkpoint, save_checkpoint)
from .jsonl import JsonlWriter, read_jsonl

__all__ = ["BEST_CHECKPOINT_NAME", "CHECKPOINT_NAME", "JsonlWriter", "atomic_write", "file_sha256",
           "load_checkpoint", "read_jsonl", "resolve_checkpoint", "run_path", "save_checkpoint",
           "write_json", "write_text"]
