"""The distill section is typed in the config module and checked when the recipe is read."""
from __future__ import annotations

import pytest

from kdrestore.config import ConfigError, DistillConfig, distill_section, load_config
from kdrestore.distill.methods import check_method
from kdrestore.engine import Trainer


def recipe(tmp_path, distill: str):
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: unet-tiny}\ndata: {train: {kind: synth, path: /no/such/folder}}\n"
                    "train: {steps: 1}\ndistill:\n" + distill)
    return path


def test_an_unknown_distill_key_is_reported_when_the_recipe_is_read(tmp_path):
    path = recipe(tmp_path, "  method: kd\n  featurs: []\n")
    with pytest.raises(ConfigError, match=r"r.yaml: unknown key 'distill.featurs'; did you mean 'features'"):
        load_config(path)
    path = recipe(tmp_path, "  teachers: [{nmae: dncnn-s25}]\n")
    with pytest.raises(ConfigError, match=r"r.yaml: unknown key 'distill.teachers\[0\].nmae'; did you mean 'name'"):
        load_config(path)


def test_a_recipe_keeps_its_distill_section_as_written(tmp_path):
    cfg = load_config(recipe(tmp_path, "  method: spdd\n  options: {identity_steps: 5}\n"))
    assert cfg.to_dict()["distill"] == {"method": "spdd", "options": {"identity_steps": 5}}
    typed = distill_section(cfg)
    assert isinstance(typed, DistillConfig) and typed.method == "spdd" and typed.teachers == []


def test_method_options_fail_before_any_data_is_read(tmp_path):
    cfg = load_config(recipe(tmp_path, "  method: spdd\n  options: {identity_stps: 5}\n"))
    with pytest.raises(ConfigError, match=r"r.yaml: unknown key 'distill.options.identity_stps'; "
                                          r"did you mean 'identity_steps'"):
        check_method(cfg)
    with pytest.raises(ConfigError, match="identity_stps"):  # not the missing data folder
        Trainer(cfg, tmp_path / "run", progress=False)
