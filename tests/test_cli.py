"""The command line end to end on the built-in data (no download, no shared folder needed)."""
import json

import numpy as np
import pytest

from kdrestore.cli import main
from kdrestore.data import builtin_images, read_image, write_image


@pytest.fixture
def no_peers(monkeypatch):
    monkeypatch.delenv("KDRESTORE_PEERS", raising=False)


def test_models_lists_the_registry(capsys):
    assert main(["models", "--task", "dehaze"]) == 0
    out = capsys.readouterr().out
    assert "gcanet" in out and "702,818" in out and "dncnn-s25" not in out


def test_models_lists_the_shipped_students_without_slow_imports():
    """The shipped names come first; listing loads no weights and not scipy.stats (seconds of import)."""
    import subprocess
    import sys

    code = ("import sys; from kdrestore.cli import main; main(['models']); "
            "assert 'scipy.stats' not in sys.modules, 'kdrestore models imported scipy.stats'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    shipped, registered = out.split("registered architectures")
    from kdrestore.deploy.loader import shipped_names

    for name in shipped_names():
        assert f"\n{name} " in shipped
    assert "--task dehaze" in shipped and "gcanet" in registered


def test_eval_takes_the_shipped_names(tmp_path, capsys):
    """Every name that works in restore/export/load works in eval, with the card's task as default."""
    from kdrestore.degrade import add_haze

    layout = tmp_path / "pairs"
    for name, img in builtin_images("rgb", ["astronaut"]):
        img = img[:64, :80]
        write_image(layout / "gt" / f"{name}.png", img)
        write_image(layout / "hazy" / f"{name}.png", add_haze(img, 0, beta=1.2).degraded)
    out_json = tmp_path / "r.json"
    assert main(["eval", "--model", "dehaze-small", "--data", str(layout), "--rule", "same", "--quiet",
                 "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["model"] == "dehaze-small" and result["task"] == "dehaze" and result["n_images"] == 1
    assert "pretrained 'dehaze-small'" in result["weights"]
    assert main(["eval", "--model", "dehaze-smal", "--data", str(layout), "--quiet"]) == 2
    assert "Did you mean 'dehaze-small'" in capsys.readouterr().err


def test_degrade_then_eval_a_paired_folder(tmp_path, capsys):
    clean = tmp_path / "clean"
    for name, img in builtin_images("rgb", ["astronaut", "coffee"]):
        write_image(clean / f"{name}.png", img[:96, :128])
    (clean / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["degrade", str(clean), "-o", str(tmp_path / "hazy"), "-d", "haze", "-p", "beta=1.2", "--quiet"]) == 0
    params = json.loads((tmp_path / "hazy" / "params.json").read_text())
    assert params["images"]["astronaut.png"]["beta"] == pytest.approx(1.2)
    assert "broken.png" in capsys.readouterr().err  # named, and the batch went on
    hazy = read_image(tmp_path / "hazy" / "astronaut.png")
    assert hazy.shape == (96, 128, 3) and not np.allclose(hazy, read_image(clean / "astronaut.png"), atol=0.02)
    # a rerun with the same seed writes identical files
    main(["degrade", str(clean), "-o", str(tmp_path / "hazy2"), "-d", "haze", "-p", "beta=1.2", "--quiet"])
    assert np.array_equal(read_image(tmp_path / "hazy2" / "astronaut.png"), hazy)

    (clean / "broken.png").unlink()
    out_json = tmp_path / "dcp.json"
    code = main(["eval", "--model", "dcp", "--task", "dehaze", "--data", str(tmp_path / "hazy"),
                 "--rule", "regex:(.+)=>\\1", "--quiet", "--json", str(out_json)])
    assert code == 2  # the degraded folder alone is no paired layout: a clear error, no traceback
    layout = tmp_path / "pairs"
    (layout / "hazy").mkdir(parents=True)
    for f in (tmp_path / "hazy").glob("*.png"):
        (layout / "hazy" / f.name).write_bytes(f.read_bytes())
    (layout / "gt").mkdir()
    for f in clean.glob("*.png"):
        (layout / "gt" / f.name).write_bytes(f.read_bytes())
    assert main(["eval", "--model", "dcp", "--task", "dehaze", "--data", str(layout), "--rule", "same",
                 "--quiet", "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["n_images"] == 2 and result["convention"]["space"] == "rgb"
    assert result["psnr"] > result["input_psnr"]  # DCP removes synthetic haze
    assert "PSNR/SSIM on RGB" in capsys.readouterr().out


def test_eval_errors_are_clear(tmp_path, capsys, no_peers):
    assert main(["eval", "--model", "dncnn-s52", "--task", "denoise", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'dncnn-s50'" in err.lower() and "dehaze-small" in err  # the shipped names are offered
    assert main(["eval", "--model", "dncnn-s25", "--task", "denoise", "--data", str(tmp_path)]) == 2
    assert "needs weights" in capsys.readouterr().err


def test_demo_runs_on_builtin_data(tmp_path, capsys, no_peers):
    assert main(["demo", "-o", str(tmp_path), "--quiet"]) == 0
    rows = json.loads((tmp_path / "demo.json").read_text())
    from kdrestore.deploy.loader import DEFAULT_COLOR_MODELS, DEFAULT_MODELS, shipped_names

    defaults = [*DEFAULT_MODELS.values(), *DEFAULT_COLOR_MODELS.values()]
    shipped = {name for name in defaults if name in shipped_names()}
    assert {r["model"] for r in rows} == {"nlm-denoise", "dcp"} | shipped
    assert all(r["psnr"] > r["input_psnr"] for r in rows)
    if "denoise-color" in shipped:  # the colour denoiser has its own row, on colour images
        row = next(r for r in rows if r["model"] == "denoise-color")
        assert row["task"] == "denoise-rgb"
    for task in ("denoise", "denoise-rgb", "derain", "dehaze"):  # the degraded inputs, for `kdrestore restore`
        assert len(list((tmp_path / "inputs" / task).glob("*.png"))) >= 1
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "PSNR" in out and "PSNR of the whole first test image" in out
    assert all(abs(r["first_image_psnr"] - r["psnr"]) < 10 for r in rows)


def test_demo_table_columns_line_up_for_long_names():
    from kdrestore.demo import format_demo_table

    rows = [{"task": t, "model": m, "images": 5, "input_psnr": 20.5, "psnr": 29.25, "ssim": 0.8, "ms_per_image": 12.0}
            for t, m in (("denoise", "denoise-gray-blind-with-a-long-name"), ("dehaze", "dcp"))]
    lines = format_demo_table(rows).splitlines()
    assert len({len(line) for line in lines}) == 1  # every line as wide as the header
    assert len({line.index("29.25") for line in lines[2:]}) == 1
