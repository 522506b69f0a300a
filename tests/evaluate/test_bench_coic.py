"""bench coic: every row's recipe validates (same budget, mixed data), and the table names each test set."""
from pathlib import Path

import pytest

from kdrestore.config import load_config
from kdrestore.errors import KdrestoreError
from kdrestore.evaluate.bench_coic import _recipe, format_coic_bench, rows_known, run_coic_bench


def test_rows_share_data_and_budget_and_differ_only_by_coic():
    recipes = {r: load_config(data=_recipe(r, Path("/data"), 10, 4, 32, 3, 0.5)) for r in rows_known()}
    base = recipes["msresnet-tiny"]
    for row, cfg in recipes.items():
        assert cfg.data.train == base.data.train and cfg.train == base.train and cfg.optim == base.optim
        assert [s.crop for s in cfg.data.train.sources] == [32, 32, 32]
        assert (cfg.model.name == "coic") == ("+coic" in row)
    assert recipes["msresnet-tiny+coic"].distill["options"] == {"stage1_steps": 5}
    assert recipes["restormer-tiny+coic-nocl"].distill["options"]["contrastive_weight"] == 0.0
    with pytest.raises(KdrestoreError, match="unknown coic bench rows"):
        run_coic_bench("/nowhere", rows=["msresnet-tiny+cioc"])


def test_table_lists_every_test_set_and_the_gain():
    scores = {"Rain100H": {"psnr": 20.0, "ssim": 0.6, "images": 2}, "syn-light": {"psnr": 30.0, "ssim": 0.9, "images": 2}}
    row = {"params": 1000, "macs": 2e9, "cpu_ms": 10.0, "train_wall_s": 5.0, "delta_vs_backbone": None}
    better = {k: {**v, "psnr": v["psnr"] + 0.5} for k, v in scores.items()}
    result = {"train": {"weights": [1, 1], "sources": [{"name": "a"}, {"name": "b"}]},
              "convention": {"text": "Y"}, "tests": {"Rain100H": "", "syn-light": ""},
              "input_psnr": {"Rain100H": 15.0, "syn-light": 25.0}, "cost_input_shape": [1, 3, 8, 8],
              "budget": {"steps": 3, "batch": 2, "crop": 16, "seed": 0, "stage1_fraction": 0.5},
              "rows": [{**row, "row": "msresnet-tiny", "scores": scores},
                       {**row, "row": "msresnet-tiny+coic", "scores": better,
                        "delta_vs_backbone": {"Rain100H": 0.5, "syn-light": 0.5}}]}
    text = format_coic_bench(result)
    assert "Rain100H" in text and "syn-light" in text and "+0.50" in text and "20.50/0.600" in text
