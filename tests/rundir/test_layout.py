"""The run directory is read in one place: recipe, checkpoints (best or latest), EMA or plain weights."""
from __future__ import annotations

import torch
from torch import nn

from kdrestore.engine.checkpoint import CheckpointManager
from kdrestore.rundir import RunDir


def test_a_run_is_read_back_through_rundir(tmp_path):
    run = RunDir(tmp_path)
    assert not run.is_run() and run.checkpoints.best_or_latest() == (None, "latest") and run.lineage() == []
    run.config_file.write_text("name: r\ntask: denoise\ndistill: {method: kd}\n")
    assert run.is_run() and run.config().name == "r" and run.config_dict()["distill"] == {"method": "kd"}

    plain, ema = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        plain.weight.fill_(1.0)
        ema.weight.fill_(2.0)
    manager = CheckpointManager(tmp_path, keep=1)
    manager.save(1, plain, {}, {}, best_metric=30.0)
    manager.save(2, plain, {}, {}, ema=ema)
    ckpt, which = run.checkpoints.best_or_latest()
    assert (which, ckpt.step, ckpt.has_ema) == ("best", 1, False)  # the best is kept past keep=1
    assert float(ckpt.model_weights(ema=True)["weight"].flatten()[0]) == 1.0  # no EMA saved: the plain weights
    latest = run.checkpoints.latest()
    assert latest.has_ema and latest.weights_file(ema=True).name == "ema.safetensors"
    assert float(latest.model_weights(ema=True)["weight"].flatten()[0]) == 2.0
    assert [f.name for f in run.checkpoints.folders()] == ["step_00000001", "step_00000002"]
    assert run.final_metrics() is None
