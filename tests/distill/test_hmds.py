import math
from pathlib import Path

import pytest
import torch
from torch import nn

from kdrestore.config import load_config
from kdrestore.distill.methods import METHODS
from kdrestore.distill.methods.hmds import MultiLevelDistillation
from kdrestore.engine.datasets import KeyedDataset, build_dataset
from kdrestore.errors import KdrestoreError

LEVELS = [[0, 20], [20, 35], [35, 55]]
RECIPES = ["dehaze/spdd-tinydehaze.yaml", "dehaze/spdd-kddn-student-tiny.yaml", "dehaze/kddn-teacher.yaml",
           "dehaze/kddn.yaml", "denoise/hmds-mdrn-tiny-rsd-restormer.yaml", "denoise/hmds-mdrn-dncnn-adapters.yaml",
           "denoise/hmds-mdrn-dncnn-adapters-s50.yaml", "denoise/hmds-mdrn-levels.yaml",
           "denoise/hmds-mdrn-levels-s50.yaml"]


class Const(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value
        self.body = nn.Conv2d(1, 2, 1)

    def forward(self, x):
        return torch.full_like(x, self.value) + 0 * self.body(x)[:, :1]


def hmds_config(levels=LEVELS, **distill):
    return load_config(data={
        "name": "hmds", "task": "denoise",
        "model": {"name": "mdrn-tiny", "args": {"channels": 4, "blocks": 2}},
        "data": {"train": {"kind": "builtin", "crop": 16, "limit": 4, "params": {"sigma": [0, 55]}}},
        "train": {"steps": 2, "batch_size": 2},
        "distill": {"method": "hmds", "options": {"levels": levels}, **distill},
    })


def method_with(values, **distill):
    m = MultiLevelDistillation(hmds_config(task_loss=False, **distill), teachers=[Const(v) for v in values])
    m.setup(nn.Identity(), "cpu", {"input": torch.rand(1, 8, 8)})
    return m


def test_sigma_routes_each_sample_to_its_level_teacher():
    m = method_with([0.1, 0.5, 0.9])
    out = torch.full((4, 1, 8, 8), 0.3)
    batch = {"input": out.clone(), "target": out.clone(), "sigma": torch.tensor([5.0, 25.0, 50.0, 70.0])}
    w = m.membership(batch["sigma"], 4)
    assert torch.equal(w, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]))  # 70: nearest range
    # |0.3-0.1|, |0.3-0.5|, |0.3-0.9|, |0.3-0.9| averaged over the batch
    assert float(m.losses(batch, out, 0)["kd_output"].detach()) == pytest.approx((0.2 + 0.2 + 0.6 + 0.6) / 4)
    assert torch.allclose(m.membership(torch.tensor([20.0]), 1), torch.tensor([[0.5, 0.5, 0.0]]))  # shared border
    soft_method = method_with([0.1, 0.5, 0.9], options={"levels": LEVELS, "soft": 5.0})
    soft = soft_method.membership(torch.tensor([10.0, 60.0]), 2)
    assert torch.allclose(soft.sum(1), torch.ones(2))  # near a border the neighbour shares a little
    assert soft[0].argmax() == 0 and soft[0, 0] > 0.8 and soft[1].argmax() == 2 and soft[1, 2] > 0.99


def test_missing_sigma_is_an_error_unless_shared_uniformly():
    m = method_with([0.1, 0.5, 0.9])
    out = torch.full((2, 1, 8, 8), 0.3)
    batch = {"input": out.clone(), "target": out.clone(), "sigma": torch.tensor([25.0, math.nan])}
    with pytest.raises(KdrestoreError, match="1 of 2 samples have no sigma"):
        m.losses(batch, out, 0)
    with pytest.raises(KdrestoreError, match="no sigma"):
        m.losses({"input": out, "target": out}, out, 0)
    u = method_with([0.1, 0.5, 0.9], options={"levels": LEVELS, "missing_sigma": "uniform"})
    assert torch.allclose(u.membership(batch["sigma"], 2), torch.tensor([[0, 1.0, 0], [1 / 3, 1 / 3, 1 / 3]]))


def test_levels_and_teachers_must_match():
    with pytest.raises(KdrestoreError, match="3 sigma ranges but there are 2 teachers"):
        MultiLevelDistillation(hmds_config(), teachers=[Const(0.1), Const(0.2)])
    with pytest.raises(KdrestoreError, match="levels is empty"):
        MultiLevelDistillation(hmds_config(levels=[]), teachers=[Const(0.1)])
    with pytest.raises(KdrestoreError, match="lo <= hi"):
        MultiLevelDistillation(hmds_config(levels=[[30, 10]]), teachers=[Const(0.1)])
    with pytest.raises(KdrestoreError, match="fitnet"):
        fakd = [{"student": "a", "teacher": "b", "loss": "fakd"}]
        MultiLevelDistillation(hmds_config(levels=[[0, 55]], features=fakd), teachers=[Const(0.1)])


def test_feature_terms_weighted_by_membership_train_the_student():
    from kdrestore.models.registry import build_model

    torch.manual_seed(0)
    student = build_model("mdrn-tiny", channels=4, blocks=2)
    cfg = hmds_config(features=[{"student": "body.1", "teacher": "body", "loss": "fitnet", "weight": 1.0}])
    m = MultiLevelDistillation(cfg, teachers=[Const(0.1), Const(0.5), Const(0.9)])
    m.setup(student, "cpu", {"input": torch.rand(1, 16, 16)})
    assert len(m.trainable()) == 3  # one adapter per (pair, teacher)
    batch = {"input": torch.rand(2, 1, 16, 16), "target": torch.rand(2, 1, 16, 16), "sigma": torch.tensor([10.0, 12.0])}
    terms = m.losses(batch, m.forward(student, batch), 0)
    assert set(terms) == {"loss_l1", "kd_output", "hmds_feature_0"}
    for name, value in terms.items():
        student.zero_grad()
        value.backward(retain_graph=True)
        assert sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None) > 0, name
    # only the sigma-in-[0, 20] teacher taught: the others' adapters got no gradient
    grads = [sum(p.grad.abs().sum() for p in m.adapters[str(i)].parameters() if p.grad is not None)
             for i in range(3)]
    assert grads[0] > 0 and grads[1] == 0 and grads[2] == 0


def test_the_data_pipeline_keeps_the_per_sample_sigma():
    blind = build_dataset(hmds_config().data.train, "denoise", train=True, seed=0)
    sigmas = [KeyedDataset(blind, 0)[(0, i)]["sigma"] for i in range(3)]
    assert all(0 <= s <= 55 for s in sigmas) and len(set(sigmas)) == 3
    dehaze = build_dataset(load_config(data={"task": "dehaze", "data": {"train": {"crop": 16, "limit": 1}}}).data.train,
                           "dehaze", train=True, seed=0)
    assert math.isnan(KeyedDataset(dehaze, 0)[(0, 0)]["sigma"])


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_validate_and_build_their_data(recipe, data_dir, monkeypatch):
    monkeypatch.setenv("KDRESTORE_DATA", str(data_dir))
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / recipe)
    assert cfg.distill is None or cfg.distill["method"] in METHODS
    assert len(build_dataset(cfg.data.train, cfg.task, train=True, seed=0)) > 0
    assert len(build_dataset(cfg.data.val, cfg.task, train=False, seed=0)) > 0
    if cfg.distill and cfg.distill["method"] == "hmds":
        MultiLevelDistillation(cfg)  # levels match teachers
