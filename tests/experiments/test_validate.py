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
