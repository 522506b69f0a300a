"""Distillation losses: gradient reaches the student only, zero at S == T, invariances, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kdrestore.distill.losses import (
    DISTILL_LOSSES, ContrastiveRegularization, DecouplingProjector, HookedFeatures, fakd_loss,
    fitnet_loss, output_distillation, rsd_loss, rsd_terms,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _pair(*shape: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A student leaf tensor and a teacher tensor that tracks grad (to prove it gets none)."""
    student = torch.rand(*shape, requires_grad=True)
    teacher = torch.rand(*shape, requires_grad=True)
    return student, teacher


def _assert_student_only(loss: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor) -> None:
    assert loss.dim() == 0 and loss.requires_grad
    loss.backward()
    assert student.grad is not None and student.grad.norm() > 0
    assert teacher.grad is None


def test_registry_names_and_kinds() -> None:
    kinds = {e.name: e.meta["kind"] for e in DISTILL_LOSSES}
    assert kinds == {"output": "output", "fitnet": "feature", "fakd": "feature",
                     "contrastive": "module", "rsd": "feature"}
    assert DISTILL_LOSSES.get("fakd") is fakd_loss
    with pytest.raises(KeyError, match="did you mean 'fitnet'"):
        DISTILL_LOSSES.get("fitnt")


# --- output -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", ["l1", "charbonnier", "mse"])
def test_output_gradient_and_zero(criterion: str) -> None:
    s, t = _pair(2, 3, 8, 8)
    _assert_student_only(output_distillation(s, t, criterion=criterion), s, t)
    same = output_distillation(t.detach(), t.detach(), criterion=criterion)
    assert same.item() == pytest.approx(0.0, abs=1.1e-3)  # charbonnier's floor is eps = 1e-3
    if criterion != "charbonnier":
        assert same.item() == 0.0


def test_output_mixes_teacher_and_ground_truth() -> None:
    s, t, gt = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), 0.6)
    assert output_distillation(s, t, gt, gt_weight=0.25).item() == pytest.approx(0.75 * 0.2 + 0.25 * 0.6)
    assert output_distillation(s, t).item() == pytest.approx(0.2)
    s.requires_grad_(True)
    _assert_student_only(output_distillation(s, t.requires_grad_(True), gt, gt_weight=1.0), s, t)
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\).*\(1, 3, 2, 2\)"):
        output_distillation(s, torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="gt_weight"):
        output_distillation(s, t, gt, gt_weight=1.5)


# --- fitnet -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", ["mse", "l1"])
def test_fitnet_gradient_zero_and_shapes(criterion: str) -> None:
    s, t = _pair(2, 8, 6, 6)
    _assert_student_only(fitnet_loss(s, t, criterion), s, t)
    assert fitnet_loss(t.detach(), t.detach(), criterion).item() == 0.0
    with pytest.raises(ValueError, match=r"\(2, 4, 6, 6\).*\(2, 8, 6, 6\)"):
        fitnet_loss(torch.rand(2, 4, 6, 6), t)


# --- fakd -------------------------------------------------------------------------------------------
def test_fakd_gradient_and_zero() -> None:
    s, t = _pair(2, 8, 6, 6)
    _assert_student_only(fakd_loss(s, t), s, t)
    assert fakd_loss(t.detach(), t.detach()).item() == pytest.approx(0.0, abs=1e-6)


def test_fakd_channel_invariances_and_pooling() -> None:
    t = torch.randn(2, 8, 6, 6)
    perm = t[:, torch.randperm(8)]
    doubled = torch.cat([t, t], dim=1)            # 16 channels, same cosine affinities
    scaled = 3.0 * t                               # per-position scale drops out too
    for student in (perm, doubled, scaled):
        assert fakd_loss(student, t).item() == pytest.approx(0.0, abs=1e-6)
    assert fakd_loss(torch.randn(2, 8, 6, 6), t).item() > 0.1
    # 64x64 student vs 32x32 teacher: both pooled to 32x32 by max_side=32, so comparable
    big = torch.randn(1, 4, 64, 64, requires_grad=True)
    _assert_student_only(fakd_loss(big, torch.randn(1, 4, 32, 32)), big, torch.zeros(1))


def test_fakd_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(2, 8, 6, 6\).*\(2, 8, 5, 5\)"):
        fakd_loss(torch.rand(2, 8, 6, 6), torch.rand(2, 8, 5, 5))
    with pytest.raises(ValueError, match=r"\(1, 8, 6, 6\).*\(2, 8, 6, 6\)"):
        fakd_loss(torch.rand(1, 8, 6, 6), torch.rand(2, 8, 6, 6))


# --- contrastive ------------------------------------------------------------------------------------
class _TinyEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                                     nn.Dropout(0.5))
        self.decoder = nn.Conv2d(4, 3, 3, padding=1)
        self.decoder_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        self.decoder_calls += 1
        return self.decoder(h)


def _cr() -> tuple[ContrastiveRegularization, _TinyEncoder]:
    teacher = _TinyEncoder()
    return ContrastiveRegularization(HookedFeatures(teacher, ["encoder.1", "encoder.3"]), weights=[0.5, 1.0]), teacher


def test_hooked_features_order_and_early_stop() -> None:
    teacher = _TinyEncoder()
    feats = HookedFeatures(teacher, ["encoder.3", "encoder.0"])(torch.rand(1, 3, 8, 8))
    assert [f.shape[1] for f in feats] == [4, 4] and teacher.decoder_calls == 0
    assert not teacher.encoder[0]._forward_hooks  # hooks are removed after the call
    HookedFeatures(teacher, ["encoder.0"], stop_early=False)(torch.rand(1, 3, 8, 8))
    assert teacher.decoder_calls == 1


def test_hooked_features_typo_suggests_path() -> None:
    with pytest.raises(KeyError, match=r"'encodr\.2'.*nearest: encoder\.2"):
        HookedFeatures(_TinyEncoder(), ["encoder.0", "encodr.2"])


def test_contrastive_gradient_to_anchor_only() -> None:
    cr, teacher = _cr()
    anchor, positive, negative = (torch.rand(2, 3, 8, 8, requires_grad=True) for _ in range(3))
    loss = cr(anchor, positive, negative)
    _assert_student_only(loss, anchor, positive)
    assert negative.grad is None
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())


def test_contrastive_prefers_positive() -> None:
    cr, _ = _cr()
    positive, negative = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mid = 0.5 * (positive + negative)
    at_pos, at_mid, at_neg = (cr(a, positive, negative).item() for a in (positive, mid, negative))
    assert at_pos == pytest.approx(0.0, abs=1e-6) and at_pos < at_mid < at_neg


def test_contrastive_extractor_stays_frozen_in_parent_train() -> None:
    cr, teacher = _cr()
    parent = nn.ModuleDict({"student": nn.Conv2d(3, 3, 1), "cr": cr})
    parent.train()
    assert parent["student"].training and cr.training
    assert not teacher.training and not any(m.training for m in teacher.modules())
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(cr.features(x)[1], cr.features(x)[1])  # dropout off: deterministic
    with pytest.raises(ValueError, match="2 weights given for 1 feature maps"):
        ContrastiveRegularization(HookedFeatures(teacher, ["encoder.1"]), weights=[1, 2])(x, x, x)


# --- rsd --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["pooled", "position"])
def test_rsd_gradient_through_projector(mode: str) -> None:
    proj = DecouplingProjector(4, 6)
    student = torch.rand(4, 4, 8, 8, requires_grad=True)
    teacher = torch.rand(4, 6, 4, 4, requires_grad=True)  # position mode pools the student to 4x4
    _assert_student_only(rsd_loss(proj(student), teacher, mode=mode), student, teacher)
    assert all(p.grad is not None for p in proj.parameters())


def test_rsd_correlated_student_and_kappa() -> None:
    teacher = torch.randn(64, 6, 2, 2)
    affine = 2.5 * teacher + torch.randn(1, 6, 1, 1)      # per-channel affine: perfectly correlated
    inv, red = rsd_terms(affine, teacher, mode="pooled")
    assert inv.item() < 1e-4
    random = torch.randn(64, 6, 2, 2)
    assert rsd_loss(random, teacher).item() > rsd_loss(teacher, teacher).item() + 1.0
    inv_r, red_r = rsd_terms(random, teacher, mode="position")
    assert red_r.item() > 0
    lo, hi = (rsd_loss(random, teacher, kappa=k, mode="position").item() for k in (0.0, 1.0))
    assert lo == pytest.approx(inv_r.item(), rel=1e-5) and hi == pytest.approx(lo + red_r.item(), rel=1e-5)


def test_rsd_layer_norm_projector_and_errors() -> None:
    proj = DecouplingProjector(3, 5, hidden=8, norm="layer")
    assert proj(torch.rand(1, 3, 4, 4)).shape == (1, 5, 4, 4)
    with pytest.raises(ValueError, match=r"\(2, 4, 3, 3\).*\(2, 5, 3, 3\)"):
        rsd_loss(torch.rand(2, 4, 3, 3), torch.rand(2, 5, 3, 3))
    with pytest.raises(ValueError, match="batch > 1"):
        rsd_loss(torch.rand(1, 5, 3, 3), torch.rand(1, 5, 3, 3), mode="pooled")
    assert rsd_loss(torch.rand(1, 5, 3, 3), torch.rand(1, 5, 3, 3), mode="position").item() > 0
