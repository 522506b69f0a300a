"""Calibration by the teacher: the sweep finds the synthesis that matches the real data, or says it cannot."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdrestore.degrade.haze import add_haze
from kdrestore.errors import KdrestoreError
from kdrestore.evaluate.calibrate import CalibrationSetup, calibrate, calibration_setup, format_calibration


class Brighten(nn.Module):
    """A 'teacher' that lifts its input a little: its PSNR tracks the input's."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def _samples(beta: float, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        clean = rng.random((24, 32, 3)).astype(np.float32) * 0.5
        depth = np.tile(np.linspace(0.2, 1.0, 32, dtype=np.float32), (24, 1))
        out = add_haze(clean, i, depth=depth, beta=beta, airlight=0.9)
        yield {"input": torch.from_numpy(out.degraded.transpose(2, 0, 1).copy()),
               "target": torch.from_numpy(clean.transpose(2, 0, 1).copy()), "name": str(i)}


def _setup(betas):
    return CalibrationSetup("dehaze", lambda p, n: _samples(p["beta"], n, seed=1), lambda n: _samples(1.0, n),
                            [{"beta": b} for b in betas], "fake synthetic", "fake real")


def test_sweep_picks_the_setting_closest_to_the_real_data():
    result = calibrate(Brighten(), _setup([0.3, 1.0, 2.5]), images=3, tolerance=1.0)
    assert result["best"]["params"] == {"beta": 1.0}
    assert result["within_reach"] and abs(result["best"]["teacher_gap"]) < 1.0
    gaps = [r["teacher_gap"] for r in result["candidates"]]
    assert gaps[0] > 0 > gaps[2]  # lighter haze scores higher than the real data, denser lower
    text = format_calibration(result)
    assert "<- best" in text and "within reach" in text and "fake real" in text


def test_a_sweep_out_of_reach_says_so_with_the_best_gap():
    result = calibrate(Brighten(), _setup([3.0, 4.0]), images=2, tolerance=0.5)
    assert not result["within_reach"] and result["best"]["params"] == {"beta": 3.0}
    assert "NOT within reach of 0.5 dB: best gaps teacher" in format_calibration(result)


def test_unknown_task_is_refused(tmp_path):
    from kdrestore.errors import KdrestoreError

    with pytest.raises(KdrestoreError, match="task must be dehaze or derain"):
        calibration_setup("denoise", tmp_path)


def test_cli_wires_calibrate():
    from kdrestore.cli import build_parser
    from kdrestore.commands import cmd_calibrate

    args = build_parser().parse_args(["calibrate", "--task", "derain", "--teacher", "prenet6-rain100l", "--rain", "light"])
    assert args.func is cmd_calibrate and args.rain == "light" and args.images == 8 and args.tolerance == 1.0


def test_real_setups_pair_held_out_synthetic_with_the_benchmark(data_dir):
    setup = calibration_setup("dehaze", data_dir)
    hazy = next(iter(setup.synthetic(setup.candidates[0], 1)))
    real = next(iter(setup.real(1)))
    assert hazy["name"] == "1350" and hazy["input"].shape == real["input"].shape == (3, 460, 620)
    light = calibration_setup("derain", data_dir, rain="light")
    assert next(iter(light.real(1)))["name"].endswith("181") and "last 20" in light.real_name


def test_heavy_rain_sweep_can_keep_the_streak_layer_candidates(data_dir):
    setup = calibration_setup("derain", data_dir, rain="heavy", degradation="rain-streaks")
    assert setup.candidates and all(c["degradation"] == "rain-streaks" for c in setup.candidates)
    everything = calibration_setup("derain", data_dir, rain="heavy")
    assert len(everything.candidates) > len(setup.candidates)
    sample = next(iter(setup.synthetic(setup.candidates[0], 1)))
    rain = (sample["input"] - sample["target"]).mean(0)
    photos = sorted(p.stem for p in (data_dir / "train/BSDS500-train-color").iterdir())
    assert sample["name"] in photos and rain.min() > -1e-6 and rain.max() > 0.2  # streaks added, nothing taken
    with pytest.raises(KdrestoreError, match="no heavy-rain candidate uses 'haze'"):
        calibration_setup("derain", data_dir, rain="heavy", degradation="haze")
