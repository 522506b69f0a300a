"""The run directory: its layout, reading a run's recipe and checkpoints (EMA or plain weights), and
its training log. The engine writes runs; everything else reads them through this package."""
from __future__ import annotations

from .layout import (BEST, CHECKPOINTS, CONFIG_FILE, EMA_WEIGHTS, FINAL_METRICS, LATEST, LEAK_CHECK_FILE, LINEAGE_FILE, LOG_FILE,
                     META_FILE, MODEL_WEIGHTS, STATE_FILE, Checkpoint, CheckpointError, RunCheckpoints, RunDir,
                     step_folder)
from .logger import RunLogger

__all__ = ["BEST", "CHECKPOINTS", "CONFIG_FILE", "EMA_WEIGHTS", "FINAL_METRICS", "LATEST", "LEAK_CHECK_FILE",
           "LINEAGE_FILE", "LOG_FILE", "META_FILE", "MODEL_WEIGHTS", "STATE_FILE",
           "Checkpoint", "CheckpointError", "RunCheckpoints", "RunDir", "RunLogger", "step_folder"]
