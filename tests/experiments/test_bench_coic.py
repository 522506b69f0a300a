"""bench coic: every row's recipe validates (same budget, mixed data), and the table names each test set."""
import dataclasses
from pathlib import Path

import pytest

from kdrestore.config import load_config
from kdrestore.errors import KdrestoreError
from kdrestore.experiments.bench_coic import _recipe, coic_bench, rows_known
from kdrestore.experiments.bench_common import BenchOptions


def test_rows_share_data_and_budget_and_differ_only_by_coic():
    recipes = {r: load_config(data=_recipe(r, Path("/data"), 10, 4, 32, 3, 0.5)) for r in rows_known()}
    base = recipes["msresnet-tiny"]
    for row, cfg in recipes.items():
        whole = row.endswith("+coic-whole")  # the same data plus the whole image's 64 x 64 view
        assert cfg.data.train.context == (64 if whole else None)
        assert cfg.model.args.get("context_size", 0) == (64 if whole else 0)
        assert dataclasses.replace(cfg.data.train, context=None) == base.data.train
        assert cfg.train == base.train and cfg.optim == base.optim
        assert [s.crop for s in cfg.data.train.sources] == [32, 32, 32]
        assert (cfg.model.name == "coic") == ("+coic" in row)
    assert recipes["msresnet-tiny+coic"].distill["options"] == {"stage1_steps": 5}
    assert recipes["restormer-tiny+coic-nocl"].distill["options"]["contrastive_weight"] == 0.0
    with pytest.raises(KdrestoreError, match=r"'msresnet-tiny\+cioc' does not apply to derain \(unknown row\)"):
        coic_bench("/nowhere", BenchOptions(), rows=["msresnet-tiny+cioc"])
    with pytest.raises(KdrestoreError, match="stages in steps"):
        coic_bench("/nowhere", BenchOptions(time_budget="1m"), rows=["msresnet-tiny+coic"])


def test_the_test_sets_are_described_relative_to_the_data_root(data_dir):
    from kdrestore.experiments.bench_coic import test_sets as coic_test_sets

    sets = coic_test_sets(Path(data_dir), limit=1)
    assert sorted(sets) == ["R100L-held", "R100L-seen", "Rain100H", "syn-heavy", "syn-light"]
    for name, (_, count, desc) in sets.items():
        assert count == 1 and str(data_dir) not in desc, (name, desc)  # a record names no machine's folders
    assert sets["Rain100H"][2].startswith("derain/Rain100H pairs ")
