"""benchmarks/device_train.py: every student of the GPU job's table starts from weights that fit its recipe."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

from kdrestore.config import load_config
from kdrestore.engine.init_from import init_model
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from kdrestore.models.shipped import shipped_names
from runutil import benchmark_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def device_train() -> Iterator[ModuleType]:
    with benchmark_script("device_train") as module:
        yield module


def _recipe_model(recipe: str, extra: list[str]):
    cfg = load_config(ROOT / recipe, overrides=extra)
    return build_model(cfg.model.name, **cfg.model.args), cfg


def test_every_warm_start_is_shipped_and_fits_its_recipe(device_train, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KDRESTORE_DATA", str(tmp_path))  # recipes only name their folders here
    checked = 0
    for name, (recipe, warm, extra) in device_train.STUDENTS.items():
        assert (ROOT / recipe).is_file(), f"{name}: {recipe} is not a recipe"
        model, _ = _recipe_model(recipe, extra)
        if warm is None:
            continue
        assert warm in shipped_names(), f"{name}: warm start '{warm}' is not a shipped student"
        init_model(model, warm, tmp_path, write=False)  # raises, naming the keys, where the weights do not fit
        checked += 1
    assert checked >= 6


def test_a_warm_start_of_another_architecture_is_refused(tmp_path, monkeypatch) -> None:
    """The check above can fail: the 96 x 11 colour student does not load into the 96 x 8 recipe."""
    monkeypatch.setenv("KDRESTORE_DATA", str(tmp_path))
    model, _ = _recipe_model("configs/denoise/repdn-rgb-blind.yaml", [])
    with pytest.raises(KdrestoreError, match="11 layers but the model has depth 8"):
        init_model(model, "denoise-color", tmp_path, write=False)


def test_extra_settings_reach_the_recipe(device_train, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KDRESTORE_DATA", str(tmp_path))
    recipe, _, extra = device_train.STUDENTS["derain-light"]
    _, cfg = _recipe_model(recipe, extra)
    assert cfg.data.train.crop == 128 and cfg.model.args["init_grow"] is True
    cmd = device_train.train_command("derain-light", tmp_path, tmp_path, "1m", 8, "cpu")
    assert "data.train.crop=128" in cmd and cmd[cmd.index("--init-from") + 1] == "derain-light"


def test_a_job_without_a_teachers_weights_is_refused_before_training(device_train, tmp_path) -> None:
    job = tmp_path / "job"
    (job / "data/train/BSD400-gray").mkdir(parents=True)  # the recipe's folder is there, its teacher is not
    missing = device_train.missing_inputs(["denoise-gray-s25"], job)
    assert missing == [f"denoise-gray-s25: teacher weights {job / 'peers/FFDNet/net_gray.pth'}"]
    (job / "peers/FFDNet").mkdir(parents=True)
    (job / "peers/FFDNet/net_gray.pth").write_bytes(b"")
    assert device_train.missing_inputs(["denoise-gray-s25"], job) == []
