"""Every recipe under configs/ passes validation and builds its model (no data needed: the data root is only
named), so a recipe cannot rot unnoticed between the sessions that run it."""
from __future__ import annotations

from pathlib import Path

import pytest

from kdrestore.config import load_config
from kdrestore.models.registry import build_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if "_base" not in p.relative_to(CONFIGS).parts)


def test_there_are_recipes():
    assert len(RECIPES) > 40 and (CONFIGS / "denoise" / "repdn-rgb-blind-deep.yaml") in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(CONFIGS)) for p in RECIPES])
def test_recipe_validates_and_builds_its_model(path, tmp_path, monkeypatch):
    monkeypatch.setenv("KDRESTORE_DATA", str(tmp_path))
    monkeypatch.setenv("KDRESTORE_PEERS", str(tmp_path))
    cfg = load_config(path)
    model = build_model(cfg.model.name, **cfg.model.args)
    assert sum(p.numel() for p in model.parameters()) > 0, path
