import csv

import numpy as np
import pytest
import torch
from torch import nn

from kdrestore.config import load_config
from kdrestore.data.synth import SynthDataset
from kdrestore.distill.methods.kddn import HeterogeneousTaskImitation
from kdrestore.engine import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model


def kddn_config(**distill):
    return load_config(data={
        "name": "kddn", "task": "dehaze",
        "model": {"name": "kddn-student-tiny", "args": {"width": 4, "blocks": 1}},
        "data": {"train": {"kind": "builtin", "crop": 16, "limit": 4}},
        "train": {"steps": 2, "batch_size": 2, "log_every": 1, "ckpt_every": 2},
        "distill": {"method": "kddn", "output": None,
                    "teachers": [{"name": "kddn-teacher", "args": {"width": 4, "blocks": 1}}], **distill},
    })


def tiny(name, **kw):
    torch.manual_seed(0)
    return build_model(name, width=4, blocks=1, **kw)


@pytest.mark.parametrize("name", ["kddn-student-tiny", "kddn-teacher"])
def test_kddn_models_take_odd_sizes_and_train_every_parameter(name):
    model = tiny(name)
    for h, w in [(17, 23), (5, 3)]:
        x = torch.rand(2, 3, h, w)
        assert model(x).shape == x.shape
    model(torch.rand(2, 3, 12, 10)).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    modules = dict(model.named_modules())
    assert model.feature_points == ["down1", "down2", "body", "up1"] and all(p in modules for p in model.feature_points)


class RecordingAE(nn.Module):
    """An identity 'auto-encoder' with one hooked conv; remembers every input it sees."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 6, 3, padding=1)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x + 0 * self.enc(x)[:, :3]


def test_teacher_runs_on_the_clean_image_and_student_features_on_the_hazy_one():
    teacher = RecordingAE()
    cfg = kddn_config(features=[{"student": "down1", "teacher": "enc", "loss": "fitnet", "criterion": "l1"}])
    method, student = HeterogeneousTaskImitation(cfg, teachers=[teacher]), tiny("kddn-student-tiny")
    method.setup(student, "cpu", {"input": torch.rand(3, 16, 16)})
    teacher.seen.clear()
    batch = {"input": torch.rand(2, 3, 16, 16), "target": torch.rand(2, 3, 16, 16)}
    out = method.forward(student, batch)
    terms = method.losses(batch, out, 0)
    assert teacher.seen and all(torch.equal(x, batch["target"][: len(x)]) for x in teacher.seen)
    assert set(terms) == {"loss_l1", "kd_fitnet_0"}
    for name, value in terms.items():
        student.zero_grad()
        value.backward(retain_graph=True)
        assert sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None) > 0, name


def test_student_features_move_toward_the_teachers_on_a_fixed_batch():
    cfg = kddn_config(task_loss=False)  # default pairs: the shared feature_points, L1
    method, student = HeterogeneousTaskImitation(cfg), tiny("kddn-student-tiny")
    method.setup(student, "cpu", {"input": torch.rand(3, 16, 16)})
    assert [p.student for p in method.dcfg.features] == ["down1", "down2", "body", "up1"]
    opt = torch.optim.Adam(list(student.parameters()) + list(method.trainable().parameters()), lr=3e-3)
    torch.manual_seed(0)
    batch = {"input": torch.rand(2, 3, 16, 16), "target": torch.rand(2, 3, 16, 16)}
    history = []
    for _ in range(8):
        opt.zero_grad()
        loss = sum(method.losses(batch, method.forward(student, batch), 0).values())
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    assert history[-1] < 0.8 * history[0], history


def test_through_the_trainer_and_clear_errors(tmp_path):
    trainer = Trainer(kddn_config(), tmp_path, progress=False)
    trainer.fit()
    with (tmp_path / "log.csv").open() as f:
        row = next(csv.DictReader(f))
    assert all(float(row[f"kd_fitnet_{i}"]) > 0 for i in range(4)) and float(row["loss_l1"]) > 0
    with pytest.raises(KdrestoreError, match="unknown key"):
        HeterogeneousTaskImitation(kddn_config(options={"feature_wieght": 1})).setup(
            tiny("kddn-student-tiny"), "cpu", {"input": torch.rand(3, 16, 16)})


def test_identity_degradation_gives_clean_to_clean_pairs():
    img = np.random.default_rng(0).random((20, 24, 3)).astype(np.float32)
    item = SynthDataset([img], "identity", crop=16, augment=True, fixed=False)[0]
    assert torch.equal(item["input"], item["target"]) and item["params"]["degradation"] == "identity"


def test_perceptual_option_compares_the_output_with_the_clean_image_in_the_teachers_encoder():
    cfg = kddn_config(options={"perceptual_weight": 2.0})
    method, student = HeterogeneousTaskImitation(cfg), tiny("kddn-student-tiny")
    method.setup(student, "cpu", {"input": torch.rand(3, 16, 16)})
    assert method.perceptual is not None and method.perceptual.points == ["down1", "down2"]
    batch = {"input": torch.rand(2, 3, 16, 16), "target": torch.rand(2, 3, 16, 16)}
    terms = method.losses(batch, method.forward(student, batch), 0)
    assert float(terms["kddn_perceptual"].detach()) > 0
    # zero when the output is the clean image itself; the weight scales it
    assert float(method.perceptual_term(batch["target"], batch["target"])) == 0.0
    direct = method.perceptual_term(student(batch["input"]), batch["target"])
    assert torch.isclose(terms["kddn_perceptual"], 2.0 * direct, rtol=1e-4)
    student.zero_grad()
    terms["kddn_perceptual"].backward()
    assert sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in method.teachers[0].model.parameters())
    with pytest.raises(KdrestoreError, match="perceptual_weight"):
        HeterogeneousTaskImitation(kddn_config(options={"perceptual_weight": -1})).setup(
            tiny("kddn-student-tiny"), "cpu", {"input": torch.rand(3, 16, 16)})
