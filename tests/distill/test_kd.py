import csv

import pytest
import torch
from torch import nn

from kdrestore.config import load_config
from kdrestore.distill.adapters import FeatureAdapter, ShapeError, tokens_to_map
from kdrestore.distill.hooks import FeatureHooks
from kdrestore.distill.methods.kd import KnowledgeDistillation
from kdrestore.distill.teacher import FrozenTeacher, TeacherSpec, check_output_range, load_teacher
from kdrestore.engine import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from kdrestore.registry import UnknownNameError


def kd_config(**distill):
    return load_config(data={
        "name": "kd", "task": "denoise",
        "model": {"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}},
        "data": {"train": {"kind": "builtin", "crop": 32, "limit": 4}},
        "train": {"steps": 2, "batch_size": 2, "log_every": 1, "ckpt_every": 2},
        "distill": {"teachers": [{"name": "nafnet-tiny", "args": {"in_channels": 1}}], **distill},
    })


def test_all_terms_train_the_student_and_adapters(tmp_path):
    cfg = kd_config(features=[
        {"student": "encoders.0", "teacher": "encoders.0", "loss": "fitnet"},
        {"student": "middle", "teacher": "encoders.1", "loss": "rsd", "weight": 0.01, "rsd_mode": "position"},
        {"student": "decoders.0", "teacher": "decoders.2", "loss": "fakd"}],
        contrastive={"weight": 0.1})
    trainer = Trainer(cfg, tmp_path, progress=False)
    adapters_before = [p.detach().clone() for p in trainer.extra.parameters()]
    trainer.fit()
    with (tmp_path / "log.csv").open() as f:
        row = next(csv.DictReader(f))
    for key in ("loss_l1", "kd_output", "kd_fitnet_0", "kd_rsd_1", "kd_fakd_2", "kd_contrastive"):
        assert float(row[key]) > 0, key
    assert any(not torch.equal(a, b) for a, b in zip(adapters_before, trainer.extra.parameters()))
    teacher = trainer.method.teachers[0]
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())


def test_each_kd_term_sends_gradient_to_the_student(tmp_path):
    cfg = kd_config(features=[{"student": "middle", "teacher": "encoders.1", "loss": "fitnet"}],
                    contrastive={"weight": 1.0}, task_loss=False)
    student = build_model("unet-tiny", in_channels=1, width=8, levels=2)
    method = KnowledgeDistillation(cfg)
    batch = {"input": torch.rand(2, 1, 32, 32), "target": torch.rand(2, 1, 32, 32)}
    method.setup(student, "cpu", {"input": batch["input"][0]})
    out = method.forward(student, batch)
    terms = method.losses(batch, out, 0)
    for name, value in terms.items():
        student.zero_grad()
        value.backward(retain_graph=True)
        grad = sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None)
        assert grad > 0, name


def test_module_paths_and_shapes_give_clear_errors():
    model = build_model("unet-tiny", in_channels=1, width=8, levels=2)
    with pytest.raises(UnknownNameError, match="nearest: encoders.0"):
        FeatureHooks(model, ["encoder.0"], "student")
    assert tokens_to_map(torch.rand(2, 12, 5), (3, 4)).shape == (2, 5, 3, 4)
    adapter = FeatureAdapter((2, 12, 5), (2, 8, 6, 8), (3, 4))
    assert adapter(torch.rand(2, 12, 5)).shape == (2, 8, 6, 8)
    with pytest.raises(ShapeError, match=r"\(2, 13, 5\)"):
        FeatureAdapter((2, 13, 5), (2, 8, 6, 8), (3, 4))
    with pytest.raises(ShapeError, match="student"):
        FeatureAdapter((2, 4, 3, 3, 1), (2, 8, 6, 8), (3, 4))


class Times255(nn.Module):
    def forward(self, x):
        return x * 255.0


def test_teacher_on_another_scale_is_caught_on_the_first_batch():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(KdrestoreError, match="0-255 vs 0-1"):
        check_output_range(FrozenTeacher(Times255(), "t255"), x, x.clone())
    check_output_range(FrozenTeacher(nn.Identity(), "id"), x, x.clone())


def _dynamic(net: nn.Module) -> torch.export.ExportedProgram:
    dims = {0: torch.export.Dim("b", min=1), 2: torch.export.Dim("h", min=2), 3: torch.export.Dim("w", min=2)}
    return torch.export.export(net.eval(), (torch.rand(2, 1, 8, 8),), dynamic_shapes=(dims,))


def test_teacher_sources_frozen_and_cached(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Dropout(0.5))
    torch.export.save(_dynamic(net), str(tmp_path / "t.pt2"))
    teacher = load_teacher(TeacherSpec(exported=str(tmp_path / "t.pt2")))
    teacher.train()
    x = torch.rand(2, 1, 12, 10)
    assert not teacher.training and torch.equal(teacher(x), teacher(x))  # dropout stays off
    with torch.no_grad():
        assert torch.allclose(teacher(x), net.eval()(x), atol=1e-6)
    calls = {"n": 0}

    class Counting(nn.Module):
        def forward(self, x):
            calls["n"] += 1
            return x

    cached = load_teacher(Counting(), cache=True)
    cached(x), cached(x)
    assert calls["n"] == 1
    with pytest.raises(KdrestoreError, match="not found"):
        load_teacher(TeacherSpec(exported=str(tmp_path / "missing.pt2")))
    with pytest.raises(KdrestoreError, match="not found"):
        load_teacher(TeacherSpec(torchscript=str(tmp_path / "missing.pt")))


def test_torchscript_teacher_files_still_load_and_say_they_are_deprecated(tmp_path):
    """TorchScript teachers are a documented input: they load, and PyTorch's deprecation notice reaches
    the user (asserted here, not hidden)."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)).eval()
    with pytest.warns(DeprecationWarning, match="torch.jit.script"):
        scripted = torch.jit.script(net)
    scripted.save(str(tmp_path / "t.pt"))
    with pytest.warns(DeprecationWarning, match="torch.jit.load"):
        teacher = load_teacher(TeacherSpec(torchscript=str(tmp_path / "t.pt")))
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(teacher(x), net(x), atol=1e-6)


def test_teacher_per_degradation_supervises_only_its_samples():
    cfg = kd_config(task_loss=False)
    class Const(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full_like(x, self.value)

    method = KnowledgeDistillation(cfg, teachers=[Const(0.1), Const(0.9)])
    method.setup(nn.Identity(), "cpu", {"input": torch.rand(1, 8, 8)})
    method.teacher_degradations = [["awgn"], ["haze"]]
    out = torch.full((2, 1, 8, 8), 0.25)
    batch = {"input": out.clone(), "target": out.clone(), "degradation": ["awgn", "awgn"]}
    assert float(method.losses(batch, out, 0)["kd_output"]) == pytest.approx(0.15)  # only the 0.1-teacher
    batch["degradation"] = ["haze", "haze"]
    assert float(method.losses(batch, out, 0)["kd_output"]) == pytest.approx(0.65)  # only the 0.9-teacher
    batch["degradation"] = ["awgn", "haze"]
    assert float(method.losses(batch, out, 0)["kd_output"]) == pytest.approx(0.15 + 0.65)


def test_teacher_with_args_gets_its_published_weights_or_an_error(tmp_path, monkeypatch):
    from kdrestore.models.registry import build_model

    monkeypatch.delenv("KDRESTORE_PEERS", raising=False)
    with pytest.raises(KdrestoreError, match="has no weights"):  # never a silently random teacher
        load_teacher(TeacherSpec(name="ffdnet-rgb", args={"sigma": 15}))
    published = build_model("ffdnet-rgb")
    (tmp_path / "FFDNet").mkdir()
    torch.save(published.state_dict(), tmp_path / "FFDNet" / "net_rgb.pth")
    teacher = load_teacher(TeacherSpec(name="ffdnet-rgb", args={"sigma": 15}), peers=str(tmp_path))
    got = [p.detach() for p in teacher.parameters()]
    assert len(got) == len(list(published.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(got, published.parameters()))
