"""``kdrestore package``: a finished run becomes a shipped student whose card scores the weights it ships."""
import json

import numpy as np
import pytest
from safetensors import safe_open

from kdrestore.cli import main
from kdrestore.data.imageio import write_image
from kdrestore.deploy import loader
from kdrestore.models import shipped
from kdrestore.deploy.package import run_training_summary, package_run
from kdrestore.errors import KdrestoreError
from kdrestore.data.tasks import eval_samples
from kdrestore.evaluate.metrics import TASK_CONVENTIONS
from kdrestore.evaluate.runner import evaluate
from kdrestore.fsutil import current_umask


@pytest.fixture(scope="module")
def finished_run(run_dir, tmp_path_factory):
    """The shared 2-step run, plus a tiny clean test folder ``data/denoise/tiny``."""
    root, run = tmp_path_factory.mktemp("pkg"), run_dir
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(root / "data" / "denoise" / "tiny" / f"{i}.png", rng.random((28, 24, 1)))
    return root, run


def test_package_scores_the_shipped_weights(finished_run, tmp_path, monkeypatch):
    root, run = finished_run
    card = package_run(run, "gray-tiny", ["denoise/tiny"], data_root=root / "data", sigmas=[15, 50], half=True,
                       dest=tmp_path, competes_with="dncnn-s25")
    folder = tmp_path / "gray-tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray-tiny"]  # no temporary folder left behind
    mask = current_umask()  # an ordinary folder's modes, not mkdtemp's 0700 / 0600
    assert folder.stat().st_mode & 0o777 == 0o777 & ~mask
    assert all(f.stat().st_mode & 0o777 == 0o666 & ~mask for f in folder.iterdir())
    saved = json.loads((folder / "card.json").read_text())
    assert saved == card and card["dtype"] == "float16" and card["channels"] == 1
    assert card["training"]["weights_kind"] == "EMA" and card["training"]["checkpoint_step"] == 2
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert all(str(f.get_tensor(k).dtype) == "torch.float16" for k in f.keys())
    assert [s["sigma"] for s in card["scores"]] == [15, 50]
    assert card["scores"][0]["psnr"] > card["scores"][1]["psnr"]  # less noise, higher PSNR
    # the card's number is what the shipped (float16) file scores when loaded by name
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    spec = loader.load_shipped("gray-tiny")
    samples, total, _ = eval_samples("denoise", root / "data" / "denoise" / "tiny", sigma=15, mode="gray")
    res = evaluate(spec.model, samples, TASK_CONVENTIONS["denoise"], progress=False, total=total)
    assert res.psnr == pytest.approx(card["scores"][0]["psnr"], abs=2e-3)

def test_card_names_each_teacher_with_its_arguments(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "name: r\ndistill:\n  method: hmds\n  teachers:\n    - {name: ffdnet-rgb, args: {sigma: 15}}\n"
        "    - {name: dncnn-s25}\n    - {members: [{name: dncnn-s25}, {name: ffdnet-gray}], self_ensemble: true}\n"
        "    - {exported: teachers/big.pt2}\n    - {name: ffdnet-rgb, sigma_from_batch: true}\n")
    _, summary = run_training_summary(tmp_path)
    assert summary["teachers"] == ["ffdnet-rgb(sigma=15)", "dncnn-s25", "x8(mean(dncnn-s25, ffdnet-gray))",
                                   "teachers/big.pt2", "ffdnet-rgb(sigma=batch)"] and summary["method"] == "hmds"


def test_package_refuses_to_replace_without_force(finished_run, tmp_path):
    root, run = finished_run
    package_run(run, "m", ["denoise/tiny"], data_root=root / "data", dest=tmp_path)
    with pytest.raises(KdrestoreError, match="exists: pass --force"):
        package_run(run, "m", ["denoise/tiny"], data_root=root / "data", dest=tmp_path)
    package_run(run, "m", ["denoise/tiny"], data_root=root / "data", dest=tmp_path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the replaced copy is gone too


def test_replacing_keeps_the_cards_notes_and_goals(finished_run, tmp_path):
    root, run = finished_run
    kw = dict(data_root=root / "data", dest=tmp_path, force=True)
    first = package_run(run, "m", ["denoise/tiny"], notes="step 1: L1.", speedup=1.0, **kw)
    assert first["notes"] == "step 1: L1." and first["bench"] == {"speedup": 1.0}
    card_file = tmp_path / "m" / "card.json"
    old = json.loads(card_file.read_text())
    old["bench"]["baselines"] = ["bm3d"]
    card_file.write_text(json.dumps(old))
    second = package_run(run, "m", ["denoise/tiny"], notes="step 2: kd.", psnr_margin=1.0, **kw)
    assert second["notes"] == "step 1: L1.\n\nstep 2: kd."
    assert second["bench"] == {"speedup": 1.0, "psnr_margin": 1.0, "baselines": ["bm3d"]}
    third = package_run(run, "m", ["denoise/tiny"], speedup=2.5, **kw)  # a goal given replaces the kept one
    assert third["bench"]["speedup"] == 2.5 and third["notes"] == second["notes"]
    with pytest.raises(KdrestoreError, match="bench.psnr_margin must be a non-negative"):
        package_run(run, "m", ["denoise/tiny"], psnr_margin=-0.5, **kw)
    assert json.loads(card_file.read_text()) == third  # a refused call leaves the shipped card as it was
    card_file.write_text("{not json")
    with pytest.raises(KdrestoreError, match="card being replaced is unreadable"):
        package_run(run, "m", ["denoise/tiny"], **kw)


def test_package_command_and_bad_run(finished_run, tmp_path, capsys):
    root, run = finished_run
    code = main(["package", str(run), "--name", "cli", "--test", "denoise/tiny", "--data", str(root / "data"),
                 "--dest", str(tmp_path)])
    assert code == 0 and "shipped 'cli'" in capsys.readouterr().out
    card = json.loads((tmp_path / "cli" / "card.json").read_text())
    assert card["command"].startswith("kdrestore package") and "--name cli" in card["command"]
    code = main(["package", str(run), "--name", "cli", "--test", "denoise/tiny", "--data", str(root / "data"),
                 "--dest", str(tmp_path), "--force", "--goal-speedup", "-1"])
    assert code != 0 and "bench.speedup must be" in capsys.readouterr().err
    assert json.loads((tmp_path / "cli" / "card.json").read_text()) == card  # the shipped card is untouched
    with pytest.raises(KdrestoreError, match="not a run directory"):
        package_run(tmp_path, "x", ["denoise/tiny"], data_root=root / "data", dest=tmp_path)


def test_card_carries_the_runs_lineage_and_budget(finished_run, tmp_path):
    root, run = finished_run
    (run / "lineage.json").write_text(json.dumps([{"kind": "shipped", "source": "old-student", "sha256": "ab"}]))
    try:
        card = package_run(run, "gray-lineage", ["denoise/tiny"], data_root=root / "data", dest=tmp_path)
    finally:
        (run / "lineage.json").unlink()
    assert card["lineage"] == [{"kind": "shipped", "source": "old-student", "sha256": "ab"}]
    assert card["training"]["final"]["device"] == "cpu" and card["training"]["final"]["pipeline"] == "per-sample"
    assert card["training"]["final"]["steps"] == json.loads((run / "final_metrics.json").read_text())["steps"]


def test_package_scores_only_the_held_out_part(finished_run, tmp_path):
    _, run = finished_run
    for i in range(5):
        write_image(tmp_path / "data" / "denoise" / "five" / f"{i}.png", np.random.default_rng(i).random((28, 24, 1)))
    dest = tmp_path / "shipped"
    card = package_run(run, "gray-held", ["denoise/five"], data_root=tmp_path / "data", dest=dest, holdout=2)
    assert card["scores"][0]["images"] == 2 and "held out" in card["scores"][0]["data"]
    assert card["bench"] == {"data": "denoise/five", "holdout": 2}
    full = package_run(run, "gray-all", ["denoise/five"], data_root=tmp_path / "data", dest=dest)
    assert full["scores"][0]["images"] == 5 and "bench" not in full
