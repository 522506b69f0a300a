"""bench methods: which row each row is compared with, teachers scored, rows of another task refused."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch import nn

import kdrestore.evaluate.api as api
import kdrestore.experiments.bench_methods as bm
from kdrestore.config import load_config
from kdrestore.errors import KdrestoreError
from kdrestore.experiments.bench_common import BenchOptions, aggregate


@pytest.fixture
def fake_training(monkeypatch):
    """Rows 'train' instantly with a PSNR per row name; teachers score 28 dB; recipes are validated."""
    psnr = {"alone": 30.0, "alone-blind": 29.0, "hmds-levels": 29.5, "hmds-peer": 30.5}
    seen = []

    def train_and_score(recipe, run_dir, score, probe, label, progress=False):
        load_config(data=recipe)
        seen.append(recipe)
        return {"psnr": psnr[label.split("/")[-1]], "ssim": 0.8, "train_wall_s": 0.0}, nn.Identity()

    monkeypatch.setattr(bm, "train_and_score", train_and_score)
    monkeypatch.setattr(bm, "_scorer", lambda *a, **k: lambda model, name: SimpleNamespace(psnr=28.0, ssim=0.7))
    monkeypatch.setattr(api, "load_model", lambda *a, **k: nn.Identity())
    return seen


def test_the_blind_hmds_row_is_compared_with_the_blind_student_and_teachers_are_scored(fake_training):
    res = bm.run_denoise_methods("/data", BenchOptions(samples=800), methods=["alone", "alone-blind", "hmds-levels",
                                                                              "hmds-peer"])
    refs = {s["row"]: s["reference"] for s in res["scores"]}
    assert refs == {"alone": "alone", "alone-blind": "alone-blind", "hmds-levels": "alone-blind", "hmds-peer": "alone"}
    assert {t["teacher"] for t in res["teachers"]} == {"dncnn-s25"}
    assert all(r["train"]["steps"] == 100 for r in fake_training)  # 800 crops / batch 8, every row
    rows = {r["row"]: r for r in aggregate({0: res["scores"]}, res["teachers"])}
    assert rows["hmds-levels"]["gain"] == pytest.approx(0.5)  # vs alone-blind (29.0), not alone (30.0)
    assert rows["hmds-peer"]["verdict"] == "refused: teacher below alone"  # teacher 28 dB < alone 30 dB


def test_dehaze_rows_include_the_spdd_feature_term_alone_and_kddn_perceptual(monkeypatch):
    recipes = []

    def train_and_score(recipe, *args, **kwargs):
        load_config(data=recipe) if recipe["name"] != "bench-dehaze-kddn-perceptual" else None  # weights are fake
        recipes.append(recipe)
        return {"psnr": 20.0, "ssim": 0.8}, nn.Identity()

    monkeypatch.setattr(bm, "train_and_score", train_and_score)
    monkeypatch.setattr(bm, "_scorer", lambda *a, **k: lambda model, name: SimpleNamespace(psnr=28.0, ssim=0.7))
    monkeypatch.setattr(bm, "_identity_scorer", lambda *a, **k: None)
    monkeypatch.setattr(bm, "_weights_of", lambda run_dir: "/nowhere/ema.safetensors")
    bm.run_dehaze_methods("/data", BenchOptions(steps=50), methods=["alone", "spdd", "spdd-feature", "kddn-perceptual"])
    by_name = {r["name"]: r for r in recipes}
    assert by_name["bench-dehaze-spdd-feature"]["distill"]["options"]["output_weight"] == 0.0
    assert by_name["bench-dehaze-spdd"]["distill"]["options"]["identity_steps"] == 10  # a fifth of 50 steps
    assert by_name["bench-dehaze-kddn-perceptual"]["distill"]["options"]["perceptual_weight"] > 0
    assert "bench-kddn-teacher" in by_name and "distill" not in by_name["bench-dehaze-alone"]
    with pytest.raises(KdrestoreError, match="does not apply to denoise"):
        bm.methods_bench(["denoise"], "/data", BenchOptions(), methods=["spdd"])
