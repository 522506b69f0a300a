"""Shared fixtures of the deploy tests."""
import pytest

from kdrestore.config import load_config
from kdrestore.engine import Trainer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real 2-step training run of a gray unet-tiny (with EMA)."""
    run = tmp_path_factory.mktemp("run")
    cfg = load_config(data={
        "name": "t", "task": "denoise",
        "model": {"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}},
        "data": {"train": {"kind": "builtin", "crop": 24, "limit": 2}},
        "train": {"steps": 2, "batch_size": 2, "log_every": 1, "val_every": 100, "ckpt_every": 2,
                  "ema_decay": 0.9}})
    Trainer(cfg, run, progress=False).fit()
    return run
