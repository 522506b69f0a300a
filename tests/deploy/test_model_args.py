"""Model arguments over a run's or a card's (``--model-arg``, e.g. NAFNet's ``attention_window``): parsed
safely, applied when loading and packaging, kept in the card, and refused by name where they do not apply."""
import numpy as np
import pytest
from torch import nn

from kdrestore.config import load_config
from kdrestore.data.imageio import write_image
from kdrestore.data.tasks import eval_samples
from kdrestore.deploy import loader
from kdrestore.deploy.package import package_run
from kdrestore.engine.trainer import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.evaluate.metrics import TASK_CONVENTIONS
from kdrestore.evaluate.runner import evaluate
from kdrestore.models import shipped
from kdrestore.models.nafnet import WindowMean
from runutil import benchmark_script


@pytest.fixture(scope="module")
def nafnet_run(tmp_path_factory):
    """A 2-step run of a small gray NAFNet, and a tiny clean test folder ``data/denoise/tiny``."""
    root = tmp_path_factory.mktemp("nafnet")
    cfg = load_config(data={
        "name": "n", "task": "denoise",
        "model": {"name": "nafnet-tiny", "args": {"in_channels": 1, "width": 8, "enc_blocks": [1],
                                                  "middle_blocks": 1, "dec_blocks": [1]}},
        "data": {"train": {"kind": "builtin", "crop": 24, "limit": 2}},
        "train": {"steps": 2, "batch_size": 2, "log_every": 1, "val_every": 100, "ckpt_every": 2}})
    Trainer(cfg, root / "run", progress=False).fit()
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(root / "data" / "denoise" / "tiny" / f"{i}.png", rng.random((40, 36, 1)))
    return root


def _windows(model: nn.Module) -> list[int]:
    return [m.window for m in model.modules() if isinstance(m, WindowMean)]


def test_parse_model_args():
    assert loader.parse_model_args(["attention_window=256", "enc_blocks=[1, 2]", "x=null"]) == \
        {"attention_window": 256, "enc_blocks": [1, 2], "x": None}
    assert loader.parse_model_args(None) == {}
    for bad in ("attention_window", "=3", "a b=1", "k=[1,"):
        with pytest.raises(KdrestoreError, match="--model-arg"):
            loader.parse_model_args([bad])


def test_run_loaded_with_an_inference_option(nafnet_run):
    run = nafnet_run / "run"
    assert _windows(loader.resolve(str(run)).model) == []
    assert _windows(loader.resolve(str(run), model_args={"attention_window": 16}).model) == [16, 8, 16]
    with pytest.raises(KdrestoreError, match="has no argument 'nope'"):
        loader.resolve(str(run), model_args={"nope": 1})
    with pytest.raises(KdrestoreError, match="apply to a shipped name or a run directory"):
        loader.resolve("dncnn-s25", model_args={"attention_window": 16})


def test_package_scores_and_keeps_the_option(nafnet_run, tmp_path, monkeypatch):
    root = nafnet_run
    kw = dict(data_root=root / "data", sigmas=[25], dest=tmp_path, force=True)
    plain = package_run(root / "run", "m", ["denoise/tiny"], **kw)
    local = package_run(root / "run", "m", ["denoise/tiny"], model_args={"attention_window": 16}, **kw)
    assert "attention_window" not in plain["args"] and local["args"]["attention_window"] == 16
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    spec = loader.load_shipped("m")
    assert _windows(spec.model) == [16, 8, 16]
    samples, total, _ = eval_samples("denoise", root / "data" / "denoise" / "tiny", sigma=25, mode="gray")
    res = evaluate(spec.model, samples, TASK_CONVENTIONS["denoise"], progress=False, total=total)
    assert res.psnr == pytest.approx(local["scores"][0]["psnr"], abs=2e-3)  # the card scores what loads
    assert _windows(loader.resolve("m", model_args={"attention_window": None}).model) == []
    with pytest.raises(KdrestoreError, match="has no argument 'nope'"):
        package_run(root / "run", "m", ["denoise/tiny"], model_args={"nope": 1}, **kw)
    assert loader.read_card(tmp_path / "m")["args"]["attention_window"] == 16  # the refused call changed nothing


def test_validate_script_applies_the_option(nafnet_run, tmp_path, capsys):
    import json

    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: v\ntask: denoise\nmodel: {name: nafnet-tiny}\n"
                      "data: {train: {kind: builtin, limit: 2}, val: {kind: builtin, limit: 2, mode: gray}}\n")
    run = str(nafnet_run / "run")
    with benchmark_script("validate") as validate:
        assert validate.main([str(recipe), "--model", run, "--model-arg", "attention_window=16",
                              "--json", str(tmp_path / "v.json")]) == 0
        assert "model arguments {'attention_window': 16}" in capsys.readouterr().out
        rows = json.loads((tmp_path / "v.json").read_text())["rows"]
        assert rows[0]["model_args"] == {"attention_window": 16} and rows[0]["images"] == 2
        with pytest.raises(KdrestoreError, match="has no argument 'nope'"):
            validate.main([str(recipe), "--model", run, "--model-arg", "nope=1"])
