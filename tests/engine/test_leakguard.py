"""The leak guard of recipes: what each section reads is compared; a leak stops `train`; --allow-leaks is
recorded; `check-leaks` exits 1 on a leak; sections without folders are named, not passed silently."""
import json

import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from kdrestore.cli import main
from kdrestore.config import load_config
from kdrestore.data.leakguard import LeakError, leak_guard, recipe_leak_check, write_leak_record
from kdrestore.errors import KdrestoreError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("KDRESTORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KDRESTORE_DATA", raising=False)


def photo(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = sum(np.asarray(Image.fromarray((rng.random((c, c)) * 255).astype(np.uint8)).resize((size, size),
                                                                                           Image.BICUBIC), float) / c
              for c in (4, 8, 16))
    return Image.fromarray(((img - img.min()) / (np.ptp(img) + 1e-9) * 255).astype(np.uint8))


def folder(path, seeds, mirror=()):
    path.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds):
        im = photo(s)
        (ImageOps.mirror(im) if s in mirror else im).save(path / f"{i:02d}.png")
    return path


def recipe(train: dict, val: dict | None = None, task: str = "denoise", **extra) -> dict:
    data = {"train": {"kind": "synth", "mode": "gray", "crop": 24, **train}}
    if val is not None:
        data["val"] = {"kind": "synth", "mode": "gray", "crop": None, **val}
    return {"name": "t", "task": task, "data": data,
            "model": {"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}},
            "train": {"steps": 1, "batch_size": 2, "log_every": 1, "val_every": 100, "ckpt_every": 1}, **extra}


def test_holdout_sections_compare_the_files_they_read(tmp_path):
    # images 4 and 5 show one scene: holding out one of them leaks it, holding out both does not
    f = folder(tmp_path / "f", [1, 2, 3, 4, 0, 0])
    leaky = recipe_leak_check(load_config(data=recipe({"path": str(f), "holdout": 1}, {"path": str(f), "holdout": 1})))
    (m,) = leaky.report.results[0].matches
    assert (m.test.name, m.train.name) == ("05.png", "04.png") and leaky.report.train[0]["images"] == 5
    clean = recipe_leak_check(load_config(data=recipe({"path": str(f), "holdout": 2}, {"path": str(f), "holdout": 2})))
    assert clean.leaked == 0 and [r.images for r in clean.report.results] == [2]
    assert any("benchmark test set denoise/Set12 not compared" in n for n in clean.notes)


def test_mixed_sources_builtin_latent_and_missing_validation_are_named(tmp_path):
    a, b = folder(tmp_path / "a", [1, 2]), folder(tmp_path / "b", [3, 4])
    val = folder(tmp_path / "val", [4, 9])  # 00.png repeats b's 01.png
    mixed = {"kind": "mixed", "sources": [{"kind": "synth", "path": str(a), "crop": 24},
                                          {"kind": "builtin", "crop": 24}, {"kind": "synth", "path": str(b), "crop": 24}]}
    cfg = load_config(data={**recipe({}, {"path": str(val)}), "data": {"train": mixed, "val": {"kind": "synth",
                                                                                               "path": str(val)}}})
    check = recipe_leak_check(cfg)
    assert [t["label"].split(":")[0] for t in check.report.train] == ["data.train.sources[0]", "data.train.sources[2]"]
    assert [m.test.name for m in check.report.results[0].matches] == ["00.png"]
    assert any("data.train.sources[1]: built-in images" in n for n in check.notes)
    latent = recipe_leak_check(load_config(data={"task": "denoise", "data": {"train": {"kind": "latent"}}}))
    assert latent.report is None and any("no validation data" in n for n in latent.notes)
    assert latent.record()["result"] == "not compared"


def test_a_leak_stops_the_guard_unless_allowed_and_the_override_is_recorded(tmp_path):
    train, val = folder(tmp_path / "train", [1, 2, 3]), folder(tmp_path / "val", [2, 7], mirror={2})
    cfg = load_config(data=recipe({"path": str(train)}, {"path": str(val)}))
    with pytest.raises(LeakError, match=r"val/00\.png .*train/01\.png"):
        leak_guard(cfg, quiet=True)
    record = leak_guard(cfg, allow_leaks=True, quiet=True)
    assert record["override"] is True and record["result"] == "1 leaked" and record["threshold"] > 0.5
    path = write_leak_record(tmp_path / "run", record)
    clean = leak_guard(load_config(data=recipe({"path": str(train)}, {"path": str(folder(tmp_path / "v2", [8]))})),
                       quiet=True)
    write_leak_record(tmp_path / "run", clean)
    assert json.loads(path.read_text())["earlier_override"] is True  # a resumed run keeps its history


def test_train_command_is_stopped_by_a_leak_and_runs_with_allow_leaks(tmp_path, capsys):
    train, val = folder(tmp_path / "train", [1, 2, 3]), folder(tmp_path / "val", [3], mirror={3})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe({"path": str(train)}, {"path": str(val)})))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "r.yaml"), "--run-dir", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "kdrestore train stopped" in err and "val/00.png" in err and not run.exists()
    assert main(["train", str(tmp_path / "r.yaml"), "--run-dir", str(run), "--quiet", "--allow-leaks"]) == 0
    record = json.loads((run / "leak_check.json").read_text())
    assert record["override"] is True and record["compared"]["against"][0]["leaked"] == 1


def test_check_leaks_command_exit_status_and_json(tmp_path, capsys):
    train, test = folder(tmp_path / "train", [1, 2, 3]), folder(tmp_path / "test", [4, 2], mirror={2})
    assert main(["check-leaks", "--train", str(train), "--test", str(test), "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "01.png" in out and "result: 1 leaked" in out
    assert json.loads((tmp_path / "r.json").read_text())["compared"]["against"][0]["matches"][0]["variant"] == "mirrored"
    assert main(["check-leaks", "--train", str(train), "--test", str(folder(tmp_path / "new", [5, 6]))]) == 0
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe({"path": str(train)})))
    assert main(["check-leaks", "--recipe", str(tmp_path / "r.yaml"), "--test", str(test)]) == 1
    out = capsys.readouterr().out
    assert "no validation data" in out and "test: " in out
    (tmp_path / "empty").mkdir()
    assert main(["check-leaks", "--train", str(tmp_path / "empty"), "--test", str(test)]) == 2
    assert "no images found in" in capsys.readouterr().err


def test_the_benchmark_set_is_compared_and_validating_on_it_is_named(tmp_path, monkeypatch):
    root = tmp_path / "data"
    train, bench = folder(tmp_path / "train", [1, 2]), folder(root / "denoise" / "Set12", [3, 2])
    monkeypatch.setenv("KDRESTORE_DATA", str(root))
    check = recipe_leak_check(load_config(data=recipe({"path": str(train)})))
    assert [r.label for r in check.report.results] == ["benchmark: denoise/Set12"] and check.leaked == 1
    on_test = recipe_leak_check(load_config(data=recipe({"path": str(train)}, {"path": str(bench)})))
    assert [r.label for r in on_test.report.results] == ["data.val: denoise/Set12"]
    assert any("data.val reads the benchmark test set denoise/Set12" in n for n in on_test.notes)


def test_a_clean_check_still_names_unreadable_images(tmp_path, capsys):
    train, val = folder(tmp_path / "train", [1, 2]), folder(tmp_path / "val", [3])
    (val / "zz-broken.png").write_bytes(b"not an image")
    record = leak_guard(load_config(data=recipe({"path": str(train)}, {"path": str(val)})))
    captured = capsys.readouterr()
    assert record["result"] == "clean" and "leak check: clean" in captured.out
    assert "1 unreadable image(s) skipped" in captured.err and "zz-broken.png" in captured.err
    assert record["compared"]["against"][0]["unreadable"][0]["file"].endswith("zz-broken.png")


def test_a_missing_data_root_is_refused(tmp_path):
    f = folder(tmp_path / "f", [1, 2, 3])
    cfg = load_config(data=recipe({"path": str(f), "holdout": 1}, {"path": str(f), "holdout": 1}))
    with pytest.raises(KdrestoreError, match="no-such-root: no such folder"):
        recipe_leak_check(cfg, root=tmp_path / "no-such-root")


def test_nyu_folders_compare_the_scenes_the_reader_pairs(tmp_path):
    from kdrestore.data.leaks import image_set

    nyu = tmp_path / "nyu"
    folder(nyu / "rgb", [1, 2, 3])
    (nyu / "depth").mkdir()
    for stem in ("00", "02"):  # 01 has no depth map: the reader skips it, so must the guard
        photo(9).save(nyu / "depth" / f"{stem}.png")
    with pytest.warns(UserWarning, match="unpaired"):
        s = image_set(nyu, holdout=1, part="val")
    assert [p.name for p in s.paths] == ["02.png"]


def test_a_held_out_test_part_is_compared_alone(tmp_path):
    f = folder(tmp_path / "f", [1, 2, 3])
    cfg = load_config(data=recipe({"path": str(f), "holdout": 1}, {"path": str(f), "holdout": 1}))
    assert recipe_leak_check(cfg, tests=[f], benchmark=False).leaked == 2  # the whole folder: its training part
    assert recipe_leak_check(cfg, tests=[f], benchmark=False, test_holdout=1).leaked == 0
