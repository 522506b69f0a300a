"""Quantisation-aware distillation: fake-quant switches on at qat_start, trains through, matches INT8 rounding."""
from __future__ import annotations

import pytest
import torch

from kdrestore.config import load_config
from kdrestore.engine import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.models.fakequant import ActFakeQuant, fake_quant_weight, set_fake_quant
from kdrestore.models.registry import build_model


def qat_config(model, start, **options):
    return load_config(data={
        "name": "qat", "task": "denoise", "model": model,
        "data": {"train": {"kind": "builtin", "crop": 32, "limit": 4}},
        "train": {"steps": 4, "batch_size": 2, "log_every": 1, "ckpt_every": 4},
        "distill": {"method": "kd-qat", "teachers": [{"name": "repdn", "args": {"width": 8, "depth": 3}}],
                    "options": {"qat_start": start, **options}},
    })


def test_fake_quant_weight_is_int8_per_channel_with_straight_through_gradient():
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    q = fake_quant_weight(w)
    scale = w.detach().abs().flatten(1).amax(1) / 127
    levels = q.detach() / scale[:, None, None, None]
    assert torch.allclose(levels, levels.round(), atol=1e-3) and float(levels.abs().max()) <= 127.001
    assert float((q - w).detach().abs().max()) > 0
    q.sum().backward()
    assert torch.allclose(w.grad, torch.ones_like(w))


def test_activation_fake_quant_observes_a_range_and_holds_zero():
    act = ActFakeQuant()
    x = torch.linspace(0.2, 1.0, 100)
    assert torch.equal(act(x), x)  # off by default
    act.enabled = True
    y = act(x)
    assert float(act.lo) == 0.0 and float(act.hi) == pytest.approx(1.0)
    assert 0 < float((y - x).abs().max()) <= 1.0 / 255 / 2 + 1e-6


def test_kd_qat_switches_fake_quant_on_at_the_start_step(tmp_path):
    trainer = Trainer(qat_config({"name": "repdn", "args": {"width": 8, "depth": 3}}, 0.5), tmp_path, progress=False)
    student, method = trainer.model, trainer.method
    seen = []
    original = method.begin_step

    def spy(step):
        original(step)
        seen.append((step, student.layers[0].fake_quant, student.acts[0].enabled))

    method.begin_step = spy
    trainer.fit()
    assert seen == [(0, False, False), (1, False, False), (2, True, True), (3, True, True)]
    assert student.acts[0].hi is not None  # ranges were observed while training


def test_float_share_spreads_float_steps_evenly_through_the_quantised_phase(tmp_path):
    trainer = Trainer(qat_config({"name": "repdn", "args": {"width": 8, "depth": 3}}, 2, float_share=0.5),
                      tmp_path, progress=False)
    method = trainer.method
    assert [method.quantised(s) for s in range(8)] == [False, False, True, False, True, False, True, False]
    third = Trainer(qat_config({"name": "repdn", "args": {"width": 8, "depth": 3}}, 1, float_share=1 / 3),
                    tmp_path / "b", progress=False).method
    assert [third.quantised(s) for s in range(1, 10)].count(False) == 3  # one float step in three
    with pytest.raises(KdrestoreError, match="float_share"):
        Trainer(qat_config({"name": "repdn", "args": {"width": 8, "depth": 3}}, 1, float_share=1.0),
                tmp_path / "c", progress=False)


def test_activation_fake_quant_keeps_its_range_on_the_device_without_host_reads(monkeypatch):
    act = ActFakeQuant()
    act.enabled = True

    def no_item(self, *a, **k):
        raise AssertionError("host read of a tensor during a training step")

    monkeypatch.setattr(torch.Tensor, "item", no_item)
    monkeypatch.setattr(torch.Tensor, "__float__", no_item)
    out = act(torch.linspace(-0.5, 1.5, 64))
    monkeypatch.undo()
    assert isinstance(act.lo, torch.Tensor) and float(act.lo) == pytest.approx(-0.5)
    levels = out / ((act.hi - act.lo) / 255)  # integers (q - zero point) on the uint8 grid
    assert torch.allclose(levels, levels.round(), atol=1e-3)


def test_kd_qat_refuses_a_student_without_fake_quant_points(tmp_path):
    with pytest.raises(KdrestoreError, match="fake-quantisation"):
        Trainer(qat_config({"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}}, 0.5),
                tmp_path, progress=False)
    with pytest.raises(KdrestoreError, match="qat_start"):
        Trainer(qat_config({"name": "repdn", "args": {"width": 8, "depth": 3}}, 1.5), tmp_path, progress=False)


def test_fake_quantised_repdn_stays_close_and_sends_gradient():
    m = build_model("repdn", width=8, depth=3)
    x = torch.rand(2, 1, 16, 16)
    ref = m.train()(x)
    assert set_fake_quant(m, True) == 3 + 3 + 1  # layers, activations, input
    out = m(x)
    assert 0 < float((out - ref).detach().abs().max()) < 0.05
    out.sum().backward()
    assert m.layers[1].conv1.weight.grad is not None and float(m.layers[1].conv1.weight.grad.abs().sum()) > 0


def test_kd_qat_refuses_a_share_of_steps_under_a_time_budget(tmp_path):
    cfg = qat_config({"name": "repdn", "args": {"width": 8, "depth": 3}}, 0.5)
    cfg.train.time_budget = "5m"
    with pytest.raises(KdrestoreError, match="qat_start.*time_budget"):
        Trainer(cfg, tmp_path, progress=False)
