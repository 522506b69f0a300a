"""The leak guard on the real data (skipped without it): the known overlaps of the standard benchmarks are
found, the shipped recipes and the dehazing training data are clean."""
import os
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from kdrestore.config import load_config
from kdrestore.data.leaks import THRESHOLD, find_leaks, image_set
from kdrestore.data.leakguard import LeakError, leak_guard, recipe_leak_check

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs" / "ship").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def one_cache(tmp_path_factory):
    """One thumbnail cache for the module: each real folder is decoded once."""
    before = os.environ.get("KDRESTORE_CACHE")
    os.environ["KDRESTORE_CACHE"] = str(tmp_path_factory.mktemp("thumbs"))
    yield
    if before is None:
        os.environ.pop("KDRESTORE_CACHE", None)
    else:
        os.environ["KDRESTORE_CACHE"] = before


@pytest.fixture()
def data(data_dir, monkeypatch):
    monkeypatch.setenv("KDRESTORE_DATA", str(data_dir))
    return data_dir


def test_deraining_on_the_rain100_test_scenes_is_stopped_naming_the_matches(data):
    scenes = data / "train" / "BSDS500-rain100-test-scenes"
    cfg = load_config(REPO / "configs" / "derain" / "nafnet-tiny-streaks.yaml",
                      [f"data.train.path={scenes}", "data.train.holdout=null"])
    with pytest.raises(LeakError) as err:
        leak_guard(cfg, what="kdrestore train", quiet=True)
    lines = [ln for ln in str(err.value).splitlines() if ln.startswith("derain/Rain100H/cleancrop/")]
    assert len(lines) >= 67, str(err.value)[:2000]
    named = {ln.split()[1] for ln in lines}
    assert len(named) == 67 and all(n.startswith("train/BSDS500-rain100-test-scenes/") for n in named)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_recipe_is_clean(data, path):
    check = recipe_leak_check(load_config(path))
    assert check.report is not None and check.leaked == 0, check.report.to_dict()
    labels = [r.label for r in check.report.results]
    assert labels[0].startswith("data.val: ") and labels[-1].startswith("benchmark: ")
    assert max(r.highest for r in check.report.results) < THRESHOLD


def test_nyu_training_scenes_are_not_sots_test_scenes_but_mirrored_copies_are_found(data, tmp_path):
    nyu, sots = image_set(data / "train" / "NYUv2-indoor"), image_set(data / "dehaze" / "SOTS-indoor-50")
    assert len(nyu.paths) == 1399 and len(sots.paths) == 50
    clean = find_leaks([nyu], [sots])
    assert clean.leaked == 0 and clean.results[0].highest < THRESHOLD
    chosen = sots.paths[5:8]
    for gt in chosen:  # the way NYU stores them: mirrored, 640 x 480, JPEG
        with Image.open(gt) as im:
            ImageOps.mirror(im.convert("RGB")).resize((640, 480), Image.BICUBIC).save(tmp_path / f"{gt.stem}.jpg",
                                                                                     quality=90)
    report = find_leaks([nyu, image_set(tmp_path)], [sots])
    found = {m.test.name: m.train.name for m in report.results[0].matches}
    assert found == {gt.name: f"{gt.stem}.jpg" for gt in chosen}
