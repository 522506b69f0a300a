"""The shipped-student bench: goal flags on given numbers, card reading, one tiny run end to end."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from kdrestore.errors import KdrestoreError
from kdrestore.evaluate.profile import measure_latencies
from kdrestore.experiments.ship import bench_student, format_ship, goal_checks, ship_target
from kdrestore.models.registry import build_model
from runutil import benchmark_script


def test_goal_flags_on_given_numbers():
    student = {"name": "s", "psnr": 30.14, "ssim": 0.90, "mp_s": 4.0}
    main_peer = {"name": "gcanet", "psnr": 30.44, "ssim": 0.95, "mp_s": 1.0}
    g = goal_checks(student, [main_peer, {"name": "aodnet", "psnr": 19.0, "ssim": 0.91, "mp_s": 8.0},
                              {"name": "dcp", "psnr": 16.6, "ssim": 0.80, "mp_s": 2.0}])
    assert [x["kind"] for x in g] == ["main", "baseline", "baseline"]
    assert g[0]["throughput_ratio"] == pytest.approx(4.0) and g[0]["speed_ok"]  # exactly 4x counts
    assert g[0]["psnr_delta"] == pytest.approx(-0.30) and g[0]["psnr_ok"] and g[0]["met"]  # exactly -0.3 dB too
    # baselines: ahead on PSNR and SSIM (the throughput ratio is reported, not required)
    assert g[1]["throughput_ratio"] == pytest.approx(0.5) and not g[1]["psnr_ok"] and not g[1]["met"]
    assert g[2]["met"]
    worse = goal_checks({"name": "s", "psnr": 30.13, "mp_s": 3.9}, [main_peer])[0]
    assert not worse["speed_ok"] and not worse["psnr_ok"] and not worse["met"]


def test_latencies_are_taken_in_turn():
    calls = []
    fns = {k: (lambda x, k=k: calls.append(k)) for k in "abc"}
    lat = measure_latencies(fns, (1, 1, 8, 8), repeats=3, warmup=1)
    assert calls == list("abc") * 4 and set(lat) == set("abc") and lat["a"].repeats == 3


def _ship_root(tmp_path, card_extra):
    folder = tmp_path / "pretrained" / "tiny-gray"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model = build_model("dnnet-tiny", channels=4, blocks=1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    card = {"model": "dnnet-tiny", "args": {"channels": 4, "blocks": 1}, "task": "denoise", "channels": 1,
            **card_extra}
    (folder / "card.json").write_text(json.dumps(card))
    return folder.parent


def test_card_fields_and_their_errors(tmp_path):
    root = _ship_root(tmp_path, {"competes_with": "dncnn-s25"})
    t = ship_target("tiny-gray", root)
    assert t.competes_with == ["dncnn-s25"] and t.test_set == "denoise/Set12" and t.sigma == 25.0
    card = json.loads((root / "tiny-gray" / "card.json").read_text())
    (root / "tiny-gray" / "card.json").write_text(json.dumps({**card, "task": "dehaze", "channels": 3,
                                                              "competes_with": None}))
    t = ship_target("tiny-gray", root)  # dehazing: GCANet by default, AOD-Net and DCP as baselines
    assert t.competes_with == ["gcanet", "aodnet", "dcp"] and t.test_set == "dehaze/SOTS-indoor-50"
    (root / "tiny-gray" / "card.json").write_text(json.dumps({**json.loads((root / "tiny-gray" / "card.json").read_text()),
                                                              "competes_with": [3]}))
    with pytest.raises(KdrestoreError, match="card of 'tiny-gray': competes_with"):
        ship_target("tiny-gray", root)
    with pytest.raises(KdrestoreError, match="no shipped model 'nope'"):
        ship_target("nope", root)


def test_card_sets_its_own_goal(tmp_path, tiny_data):
    """bench.speedup / bench.psnr_margin replace the default goal (4x, -0.3 dB) for that student only."""
    root = _ship_root(tmp_path, {"competes_with": ["nlm-denoise"], "bench": {"data": "denoise/tiny"}})
    assert (ship_target("tiny-gray", root).speedup, ship_target("tiny-gray", root).psnr_margin) == (4.0, 0.3)
    card = json.loads((root / "tiny-gray" / "card.json").read_text())
    (root / "tiny-gray" / "card.json").write_text(json.dumps(
        {**card, "bench": {"data": "denoise/tiny", "speedup": 0.0, "psnr_margin": 100.0}}))
    res = bench_student(ship_target("tiny-gray", root), tiny_data, repeats=1, warmup=0, onnx=False)
    assert res["goals"][0]["met"] and "throughput >= 0x, PSNR >= peer - 100 dB" in format_ship(res)
    for bad in ({"speedup": "4x"}, {"psnr_margin": -1}, {"speedup": True}):
        (root / "tiny-gray" / "card.json").write_text(json.dumps({**card, "bench": bad}))
        with pytest.raises(KdrestoreError, match=f"card of 'tiny-gray': bench.{next(iter(bad))} must be"):
            ship_target("tiny-gray", root)


@pytest.fixture
def tiny_data(tmp_path):
    folder = tmp_path / "data" / "denoise" / "tiny"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / f"{i}.png")
    return tmp_path / "data"


def test_bench_student_end_to_end(tmp_path, tiny_data):
    # a classical peer needs no weights: the whole path runs without the shared folder
    root = _ship_root(tmp_path, {"competes_with": ["nlm-denoise"], "bench": {"data": "denoise/tiny", "sigma": 15}})
    res = bench_student(ship_target("tiny-gray", root), tiny_data, repeats=1, warmup=0, onnx=False)
    student, peer = res["rows"]
    assert (student["role"], peer["role"]) == ("student", "main peer") and student["images"] == 2
    assert res["input_shape"] == [1, 1, 256, 256] and "sigma=15" in student["data"]
    assert peer["x_main_peer"] == pytest.approx(1.0)
    assert student["x_main_peer"] == pytest.approx(student["mp_s"] / peer["mp_s"])
    assert res["goals"][0]["throughput_ratio"] == pytest.approx(student["x_main_peer"])
    text = format_ship(res)
    assert "tiny-gray" in text and "nlm-denoise" in text and "goal vs nlm-denoise" in text


def test_bench_holdout_scores_the_last_images_only(tmp_path, tiny_data):
    root = _ship_root(tmp_path, {"competes_with": ["nlm-denoise"], "bench": {"data": "denoise/tiny", "holdout": 1}})
    target = ship_target("tiny-gray", root)
    assert target.holdout == 1
    res = bench_student(target, tiny_data, repeats=1, warmup=0, onnx=False)
    assert [r["images"] for r in res["rows"]] == [1, 1] and "held out" in res["rows"][0]["data"]
    card = json.loads((root / "tiny-gray" / "card.json").read_text())
    (root / "tiny-gray" / "card.json").write_text(json.dumps({**card, "bench": {"holdout": 0}}))
    with pytest.raises(KdrestoreError, match="bench.holdout must be a positive integer"):
        ship_target("tiny-gray", root)


def test_bench_script_writes_json(tmp_path, tiny_data, capsys):
    root = _ship_root(tmp_path, {"competes_with": ["nlm-denoise"], "bench": {"data": "denoise/tiny"}})
    out = tmp_path / "ship.json"
    with benchmark_script("ship") as script:
        assert script.main(["--data", str(tiny_data), "--pretrained-root", str(root), "--no-onnx", "--repeats", "1",
                            "--warmup", "0", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "kdrestore-ship-bench" and doc["machine"]["threads"] == 1
    assert [r["name"] for r in doc["results"][0]["rows"]] == ["tiny-gray", "nlm-denoise"]
    assert "all goals" in capsys.readouterr().out
    torch.set_num_threads(1)
