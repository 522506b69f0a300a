"""benchmarks/frontier.py: goals against the peers on the same backend, the table and the plot."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import frontier  # noqa: E402


def _row(name, role, psnr, mp_s, int8_psnr, int8_mp_s):
    return {"name": name, "role": role, "model": name, "psnr": psnr, "ssim": 0.8, "params": 1000, "macs": 2e9,
            "torch_fp32": {"ms": 1.0, "mp_s": mp_s}, "onnx_fp32": {"ms": 1.0, "mp_s": mp_s * 1.2},
            "onnx_int8": {"ms": 1.0, "mp_s": int8_mp_s},
            "onnx": {"int8_psnr": {"fp32_psnr": psnr, "int8_psnr": int8_psnr}}}


def test_goals_compare_each_backend_with_the_peer_on_that_backend():
    rows = [_row("student", "candidate", 30.2, 0.5, 30.0, 1.0), _row("dncnn-s25", "peer", 30.4, 0.1, 30.35, 0.4),
            _row("ffdnet-gray", "peer", 30.5, 0.2, 29.9, 0.6)]
    frontier.goals(rows)
    vs = rows[0]["vs"]
    assert vs["dncnn-s25 torch_fp32"]["met"] and abs(vs["dncnn-s25 torch_fp32"]["x_throughput"] - 5.0) < 1e-9
    assert not vs["dncnn-s25 onnx_int8"]["met"]  # 2.5x the peer's INT8 only, and -0.35 dB
    assert not vs["ffdnet-gray torch_fp32"]["met"]  # -0.3 dB: the moonshot wants the peer's PSNR
    assert vs["ffdnet-gray onnx_int8"]["psnr_delta"] > 0 and not vs["ffdnet-gray onnx_int8"]["met"]  # 1.67x < 2x
    assert rows[1]["vs"] == {}  # a peer is not scored against itself
    args = argparse.Namespace(test="denoise/Set12", sigma=25.0, threads=1, repeats=7, warmup=2)
    text = frontier.table(rows, args)
    assert "student" in text and "MET" in text and "not met" in text
    svg = frontier.plot(rows, args)
    assert svg.count('class="point"') == 6  # torch fp32 + INT8 per model
