"""``kdrestore report``: one grid per run with decodable PNGs, plot points, clear errors, atomic output."""
import base64
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
import torch
import yaml
from PIL import Image

from kdrestore.cli import main
from kdrestore.engine.checkpoint import CheckpointManager
from kdrestore.errors import KdrestoreError
from kdrestore.experiments.report import build_report, read_bench
from kdrestore.models.registry import build_model


def make_run(path, name="tiny", teacher=True, val_psnr=21.5):
    """A finished run directory by hand: config, one checkpoint with EMA, final metrics, log."""
    cfg = {"name": name, "task": "denoise", "model": {"name": "dnnet-tiny", "args": {"channels": 4, "blocks": 1}},
           "data": {"train": {"kind": "builtin", "params": {"sigma": 15}},
                    "val": {"kind": "builtin", "mode": "gray", "crop": 48, "limit": 2}},
           "train": {"seed": 0}}
    if teacher:  # a registry teacher with explicit args and no weights: random, but a real teacher column
        cfg["distill"] = {"method": "kd", "teachers": [{"name": "dnnet-tiny", "args": {"channels": 8, "blocks": 1}}]}
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    model = build_model("dnnet-tiny", channels=4, blocks=1)
    CheckpointManager(path).save(4, model, {}, {}, ema=model)
    (path / "final_metrics.json").write_text(json.dumps({"val_psnr": val_psnr, "steps": 4}))
    (path / "log.csv").write_text("step,loss,loss_l1,lr,val_psnr\n1,0.5,0.5,1e-3,\n2,0.3,0.3,1e-3,18.0\n"
                                  "4,0.2,0.2,1e-3,21.5\n")
    return path


SHIP_JSON = {"kind": "kdrestore-ship-bench", "results": [{
    "task": "denoise", "test_set": "denoise/Set12", "rows": [
        {"name": "denoise-gray-blind", "role": "student", "psnr": 30.3, "params": 90000, "mp_s": 4.0, "data": "Set12"},
        {"name": "dncnn-s25", "role": "main peer", "psnr": 30.44, "params": 556032, "mp_s": 0.5, "data": "Set12"}]}]}


def _pngs(section_html):
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", section_html)]


def test_report_has_one_grid_per_run_and_a_point_per_model(tmp_path):
    runs = [make_run(tmp_path / "a", "run-a"), make_run(tmp_path / "b", "run-b", teacher=False, val_psnr=25.0)]
    bench = tmp_path / "ship.json"
    bench.write_text(json.dumps(SHIP_JSON))
    out = build_report([str(r) for r in runs], tmp_path / "report.html", bench=[str(bench)], crop=32,
                       latency=False)
    html = out.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    sections = re.findall(r"<section class='run'.*?</section>", html, re.S)
    assert len(sections) == 2
    grid_a, grid_b = _pngs(sections[0]), _pngs(sections[1])
    assert len(grid_a) == 2 * 4 and len(grid_b) == 2 * 3  # 2 images x (input, [teacher,] student, truth)
    assert all(im.size == (32, 32) and im.mode == "L" for im in grid_a + grid_b)
    assert "teacher" in sections[0] and sections[0].count(" dB</div>") == 2 * 3  # PSNR under all but the truth
    assert "sigma=15" not in html  # validation set used, not --data
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)  # PSNR vs latency of the denoise task
    pts = {g.get("data-label"): g for g in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g")
           if g.get("class") == "point"}
    assert set(pts) == {"denoise-gray-blind", "dncnn-s25"}  # runs without latency sit on the params plot only
    cy = {k: float(g[0].get("cy")) for k, g in pts.items()}
    cx = {k: float(g[0].get("cx")) for k, g in pts.items()}
    assert cy["dncnn-s25"] < cy["denoise-gray-blind"] and cx["denoise-gray-blind"] < cx["dncnn-s25"]
    params_svg = re.findall(r"<svg.*?</svg>", html, re.S)[1]
    assert params_svg.count("class=\"point\"") == 4  # two runs + two bench rows
    assert "training loss" in html and "validation PSNR" in html


def test_cli_report_with_latency_and_data_folder(tmp_path, capsys):
    run = make_run(tmp_path / "run", teacher=False)
    data = tmp_path / "clean"
    data.mkdir()
    for i in range(2):
        Image.fromarray((torch.rand(40, 40) * 255).byte().numpy()).save(data / f"{i}.png")
    out = tmp_path / "r.html"
    assert main(["report", str(run), "-o", str(out), "--data", f"denoise={data}", "--images", "1",
                 "--crop", "24", "--threads", "1"]) == 0
    html = out.read_text()
    assert "sigma=15" in html  # the run's training sigma is used for --data images
    assert "CPU latency at input 1x1x256x256" in html and len(_pngs(html)) == 3
    assert out.stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_a_broken_run_is_named_and_the_old_report_kept(tmp_path):
    good = make_run(tmp_path / "good", teacher=False)
    no_ckpt = tmp_path / "no-ckpt"
    no_ckpt.mkdir()
    (no_ckpt / "config.yaml").write_text((good / "config.yaml").read_text())
    not_a_run = tmp_path / "photos"
    not_a_run.mkdir()
    out = tmp_path / "report.html"
    out.write_text("previous report")
    for bad, words in ((no_ckpt, "no checkpoint"), (not_a_run, "config.yaml"), (tmp_path / "missing", "no such")):
        with pytest.raises(KdrestoreError, match=re.escape(str(bad))) as info:
            build_report([str(good), str(bad)], out, latency=False)
        assert words in str(info.value)
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good", "no-ckpt", "photos", "report.html"]


def test_bench_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(KdrestoreError, match="other.json"):
        read_bench(bad)
    peers = tmp_path / "peers.json"  # benchmarks/peers.py output: latency per image at the image size
    peers.write_text(json.dumps([{"model": "gcanet", "task": "dehaze", "psnr": 26.0, "params": 702818,
                                  "macs_input_shape": [1, 3, 460, 620], "ms_per_image_median": 2852.0,
                                  "data": "SOTS"}]))
    (entry,) = read_bench(peers)
    assert entry.kind == "peer" and entry.ms_per_mp == pytest.approx(2852.0 / (460 * 620 / 1e6))


def test_a_shipped_name_uses_its_card_and_the_data_folder(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from kdrestore.models import shipped

    folder = tmp_path / "pretrained" / "tiny-gray"
    folder.mkdir(parents=True)
    model = build_model("dnnet-tiny", channels=4, blocks=1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "card.json").write_text(json.dumps({"model": "dnnet-tiny", "args": {"channels": 4, "blocks": 1},
                                                  "task": "denoise", "channels": 1}))
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", folder.parent)
    monkeypatch.delenv("KDRESTORE_DATA", raising=False)
    with pytest.raises(KdrestoreError, match="tiny-gray: a shipped model needs --data"):
        build_report(["tiny-gray"], tmp_path / "r.html", latency=False)
    data = tmp_path / "clean"
    data.mkdir()
    Image.fromarray((torch.rand(30, 30) * 255).byte().numpy()).save(data / "a.png")
    html = build_report(["tiny-gray"], tmp_path / "r.html", data={"": str(data)}, latency=False).read_text()
    assert "pretrained &#x27;tiny-gray&#x27;" in html and "sigma=25" in html
    assert len(_pngs(html)) == 3 and "1 report image(s)" in html  # its PSNR on the plots: the report's images
