import json
import warnings

import pytest
import torch

from kdrestore.config import ConfigError, load_config
from kdrestore.engine import Trainer, TrainingDiverged
from kdrestore.engine import checkpoint as checkpoint_module
from kdrestore.distill.method import Supervised
from kdrestore.errors import KdrestoreError
from runutil import final_weights, losses_of, stop_at


def tiny_config(**train):
    return {
        "name": "t", "task": "denoise",
        "model": {"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}},
        "data": {"train": {"kind": "builtin", "crop": 24, "limit": 4},
                 "val": {"kind": "builtin", "crop": 32, "limit": 1}},
        "train": {"steps": 4, "batch_size": 2, "log_every": 1, "val_every": 100, "ckpt_every": 2, **train},
    }


def test_interrupted_run_resumes_exactly(tmp_path):
    cfg = load_config(data=tiny_config(ema_decay=0.9))
    Trainer(cfg, tmp_path / "full", progress=False).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut", method=stop_at(Supervised, cfg, 3), progress=False).fit()
    assert json.loads((tmp_path / "cut/checkpoints/latest.json").read_text())["step"] == 2
    Trainer(cfg, tmp_path / "cut", resume=True, progress=False).fit()
    assert losses_of(tmp_path / "cut") == losses_of(tmp_path / "full")
    for k, v in final_weights(tmp_path / "full").items():
        assert torch.equal(v, final_weights(tmp_path / "cut")[k]), k


def test_gradient_accumulation_matches_full_batch(tmp_path):
    a = Trainer(load_config(data=tiny_config(steps=2, batch_size=4)), tmp_path / "a", progress=False)
    b = Trainer(load_config(data=tiny_config(steps=2, batch_size=4, accum_steps=2)), tmp_path / "b", progress=False)
    a.fit(), b.fit()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-5), k


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = load_config(data=tiny_config(ckpt_every=1))

    class NaNAt2(Supervised):
        def losses(self, batch, output, step):
            out = super().losses(batch, output, step)
            return {k: v * float("nan") for k, v in out.items()} if step == 2 else out

    with pytest.raises(TrainingDiverged, match="not finite at step 3"):
        Trainer(cfg, tmp_path, method=NaNAt2(cfg), progress=False).fit()
    latest = json.loads((tmp_path / "checkpoints/latest.json").read_text())
    assert latest["step"] == 2
    assert all(torch.isfinite(v).all() for v in final_weights(tmp_path).values())


def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    cfg = load_config(data=tiny_config())
    calls = {"n": 0}
    real = checkpoint_module.save_file

    def flaky(tensors, path):
        calls["n"] += 1
        if calls["n"] == 2:  # the model file of the second checkpoint
            raise OSError("disk full")
        real(tensors, path)

    monkeypatch.setattr(checkpoint_module, "save_file", flaky)
    with pytest.raises(OSError, match="disk full"):
        Trainer(cfg, tmp_path, progress=False).fit()
    ckpts = tmp_path / "checkpoints"
    assert json.loads((ckpts / "latest.json").read_text())["step"] == 2
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest.json", "step_00000002"]


def test_resume_with_other_config_lists_differences(tmp_path):
    Trainer(load_config(data=tiny_config(steps=2)), tmp_path, progress=False).fit()
    changed = load_config(data=tiny_config(steps=2), overrides=["optim.lr=0.1", "train.steps=3"])
    with pytest.raises(KdrestoreError, match=r"optim.lr: 0.0002 -> 0.1") as info:
        Trainer(changed, tmp_path, resume=True, progress=False)
    assert "train.steps" not in str(info.value)  # extending a run is allowed
    with pytest.raises(KdrestoreError, match="already holds a run"):
        Trainer(load_config(data=tiny_config(steps=2)), tmp_path, progress=False)


def test_config_and_data_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'train.stpes'; did you mean 'steps'"):
        load_config(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = load_config(data={**tiny_config(), "data": {"train": {"kind": "synth", "path": str(empty)}}})
    with pytest.raises(KdrestoreError, match="data.train.path: no images found"):
        Trainer(cfg, tmp_path / "run", progress=False)


def test_bf16_on_a_cpu_without_bf16_kernels_warns(tmp_path, monkeypatch):
    from kdrestore.engine import trainer

    monkeypatch.setattr(trainer, "cpu_has_bf16_kernels", lambda: False)
    with pytest.warns(RuntimeWarning, match="train.amp: bf16 on a CPU without oneDNN's bf16 kernels"):
        trainer.Trainer(load_config(data=tiny_config(steps=1, amp="bf16")), tmp_path / "a", progress=False)
    monkeypatch.setattr(trainer, "cpu_has_bf16_kernels", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        trainer.Trainer(load_config(data=tiny_config(steps=1, amp="bf16")), tmp_path / "b", progress=False)


def test_bf16_autocast_and_validation_metrics(tmp_path):
    final = Trainer(load_config(data=tiny_config(steps=2, amp="bf16", val_every=2)), tmp_path,
                    progress=False).fit()
    assert final["steps"] == 2 and final["val_images"] == 1
    assert 5 < final["val_psnr"] < 60 and (tmp_path / "final_metrics.json").is_file()
