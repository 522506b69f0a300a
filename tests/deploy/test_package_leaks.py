"""`kdrestore package` checks the run's training data against the test sets it scores on; the card says so."""
import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from kdrestore.cli import main
from kdrestore.config import load_config
from kdrestore.engine import Trainer
from kdrestore.data.leakguard import LeakError
from kdrestore.deploy.package import run_leak_check


def photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = sum(np.asarray(Image.fromarray((rng.random((c, c)) * 255).astype(np.uint8)).resize((40, 40)), float) / c
              for c in (4, 8, 16))
    return Image.fromarray(((img - img.min()) / np.ptp(img) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    """A 1-step gray run on a folder of 3 pictures, and a data root whose test set copies one of them."""
    base = tmp_path_factory.mktemp("leakpkg")
    (base / "train").mkdir()
    for s in (1, 2, 3):
        photo(s).save(base / "train" / f"{s}.png")
    for sub, images in (("denoise/clean", [photo(7)]), ("denoise/leaky", [photo(8), ImageOps.mirror(photo(3))])):
        (base / "data" / sub).mkdir(parents=True)
        for i, im in enumerate(images):
            im.save(base / "data" / sub / f"{i}.png")
    cfg = load_config(data={"name": "p", "task": "denoise",
                            "model": {"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}},
                            "data": {"train": {"kind": "synth", "path": str(base / "train"), "mode": "gray", "crop": 24}},
                            "train": {"steps": 1, "batch_size": 2, "log_every": 1, "val_every": 100, "ckpt_every": 1}})
    Trainer(cfg, base / "run", progress=False).fit()
    return base


def test_package_is_stopped_by_a_leaky_test_set_and_records_the_override(synth_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDRESTORE_CACHE", str(tmp_path / "cache"))
    base = synth_run
    with pytest.raises(LeakError, match=r"denoise/leaky/1\.png"):
        run_leak_check(base / "run", ["denoise/leaky"], data_root=base / "data")
    args = ["package", str(base / "run"), "--name", "m", "--test", "denoise/leaky", "--data", str(base / "data"),
            "--dest", str(tmp_path / "dest")]
    assert main(args) == 2 and not (tmp_path / "dest" / "m").exists()
    assert "kdrestore package stopped" in capsys.readouterr().err
    assert main(args + ["--allow-leaks"]) == 0
    card = json.loads((tmp_path / "dest" / "m" / "card.json").read_text())
    check = card["leak_check"]
    assert check["override"] is True and check["result"] == "1 leaked" and check["threshold"] > 0.5
    assert check["compared"]["against"][0]["matches"][0]["test"] == "denoise/leaky/1.png"
    assert "no validation data" in " ".join(check["notes"]) and "no record" in check["at_training"]
    assert main(args[:5] + ["denoise/clean"] + args[6:] + ["--force"]) == 0
    assert json.loads((tmp_path / "dest" / "m" / "card.json").read_text())["leak_check"]["result"] == "clean"
