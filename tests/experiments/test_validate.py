"""benchmarks/validate.py: models scored on a recipe's held-out validation part, with recipe overrides."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from runutil import benchmark_script


@pytest.fixture(scope="module")
def validate() -> Iterator[ModuleType]:
    with benchmark_script("validate") as module:
        yield module


def _recipe(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "gray"
    folder.mkdir()
    for i in range(6):
        smooth = np.linspace(40, 200, 32)[None, :] + rng.normal(0, 5, (32, 32))
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"base: {Path(__file__).parents[2] / 'configs/denoise/repdn-blind-deep.yaml'}\n"
                      f"data: {{train: {{path: {folder}, holdout: 2}}, val: {{path: {folder}, holdout: 2}}}}\n")
    return recipe


def test_an_override_changes_what_is_validated_and_is_recorded(validate, tmp_path, capsys):
    recipe = _recipe(tmp_path)
    scores = {}
    for sigma in (15, 50):
        out = tmp_path / f"s{sigma}.json"
        assert validate.main([str(recipe), "--model", "nlm-denoise", "--set", f"data.val.params.sigma={sigma}",
                              "--json", str(out)]) == 0
        record = json.loads(out.read_text())
        assert record["overrides"] == [f"data.val.params.sigma={sigma}"] and record["val"]["params"]["sigma"] == sigma
        assert record["rows"][0]["images"] == 2  # the held-out part only
        scores[sigma] = record["rows"][0]["input_psnr"]
    assert "overrides ['data.val.params.sigma=50']" in capsys.readouterr().out
    assert scores[15] > scores[50] + 5  # the noisier validation really was noisier


def test_a_bad_override_names_the_key(validate, tmp_path):
    from kdrestore.errors import KdrestoreError

    with pytest.raises(KdrestoreError, match="nonsense"):
        validate.main([str(_recipe(tmp_path)), "--model", "nlm-denoise", "--set", "data.val.nonsense=1"])


def test_int8_scores_the_onnx_versions_on_the_same_validation_samples(validate, tmp_path):
    pytest.importorskip("onnxruntime")
    from safetensors.torch import save_file

    from kdrestore.models.registry import build_model

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    weights = tmp_path / "repdn.safetensors"
    save_file(build_model("repdn").state_dict(), str(weights))
    out = tmp_path / "int8.json"
    assert validate.main([str(_recipe(tmp_path)), "--model", f"repdn={weights}", "--int8", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    q = row["int8"]
    assert q["images"] == row["images"] == 2 and q["mode"] == "static QDQ"
    assert abs(q["fp32_psnr"] - row["psnr"]) < 0.01  # the fp32 ONNX version is the model scored above
    assert q["int8_psnr"] != q["fp32_psnr"] and q["cost_db"] == pytest.approx(q["fp32_psnr"] - q["int8_psnr"])


def test_int8_calibrates_a_kd_qat_run_as_its_observers_saw(validate, tmp_path, monkeypatch):
    import yaml

    from kdrestore.config import load_config
    from kdrestore.deploy import export
    from kdrestore.deploy.loader import ModelSpec
    from kdrestore.models.registry import build_model

    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(str(_recipe(tmp_path)), ["distill.method=kd-qat", "train.batch_size=4", "data.train.crop=48"])
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    seen = {}

    def calibration_for(task, channels, card=None):
        seen.update(task=task, channels=channels, card=card)
        return export.observer_batches(task, channels, card, batches=2, batch_size=2, crop=32)

    monkeypatch.setattr(export, "calibration_for", calibration_for)
    spec = ModelSpec(build_model("repdn", width=8, depth=3).eval(), "repdn", 1, "denoise")
    from kdrestore.data.tasks import eval_dataset

    samples = [s for s in eval_dataset("denoise", tmp_path / "gray", mode="gray")[0]][:1]
    q = validate.int8_cost(spec, str(run), "denoise", samples, None)
    training = seen["card"]["training"]
    assert (training["method"], training["batch_size"], training["crop"]) == ("kd-qat", 4, 48)
    assert training["data"]["params"] == {"sigma": [0, 55]} and q["images"] == 1
    assert "moving-average" in q["note"]
