"""benchmarks/int8.py: s8 and u8 INT8 models of a student, exact QDQ arithmetic against this CPU's kernels."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_each_weight_format_is_scored_exact_and_fused_and_auto_follows_the_kernels(tmp_path):
    pytest.importorskip("onnxruntime")
    import int8  # noqa: E402  (benchmarks/int8.py)

    from kdrestore.deploy.export import auto_weight_format
    from kdrestore.experiments.ship import ShipTarget
    from kdrestore.models.registry import build_model

    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "gray"
    folder.mkdir(parents=True)
    for i in range(2):
        smooth = np.linspace(40, 200, 40)[None, :] + rng.normal(0, 5, (40, 40))
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    target = ShipTarget("tiny", build_model("mdrn-tiny").eval(), "denoise", 1, ["dncnn-s25"], "gray")
    result = int8.bench_student(target, tmp_path / "data", images=2, threads=1, repeats=1, warmup=0)
    assert result["images"] == 2 and set(result["formats"]) == {"s8", "u8"}
    for fmt, row in result["formats"].items():
        assert f"{fmt} weights" in row["note"] and row["ms"] > 0
        assert all(np.isfinite(row[k]) for k in ("fused_psnr", "exact_psnr", "kernel_agreement_db"))
    s8 = result["formats"]["s8"]["kernel_agreement_db"]
    assert result["auto"] == auto_weight_format(s8)
    table = int8.format_rows([result])
    assert table.splitlines()[1].startswith("tiny") and table.splitlines()[1].endswith(result["auto"])
