"""Ensemble targets: the 8-fold self-ensemble, means of teachers, and refusing mixed input conventions."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kdrestore.distill.ensemble import MeanEnsemble, SelfEnsemble, dihedral, dihedral_inverse
from kdrestore.distill.teacher import TeacherSpec, load_teacher
from kdrestore.errors import KdrestoreError


def test_dihedral_transforms_are_eight_distinct_invertible_maps():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    seen = set()
    for k in range(8):
        y = dihedral(x, k)
        assert torch.equal(dihedral_inverse(y, k), x)
        seen.add(tuple(y[0, 0].flatten().tolist()) + tuple(y.shape))
    assert len(seen) == 8


def test_self_ensemble_is_exact_for_equivariant_models_and_averages_others():
    x = torch.rand(1, 1, 9, 12)
    identity = SelfEnsemble(nn.Identity())
    assert torch.allclose(identity(x), x)

    class TopRowBias(nn.Module):  # not rotation-equivariant: adds 1 to the top row only
        def forward(self, t):
            out = t.clone()
            out[..., 0, :] += 1.0
            return out

    out = SelfEnsemble(TopRowBias())(torch.zeros(1, 1, 6, 6))
    # the border pixels get the bias from 2 of the 8 transforms per side touching them
    assert 0 < float(out[0, 0, 0, 2]) < 1 and float(out[0, 0, 3, 3]) == 0.0


def test_mean_ensemble_weights():
    x = torch.ones(1, 1, 4, 4)

    class Const(nn.Module):
        def __init__(self, v):
            super().__init__()
            self.v = v

        def forward(self, t):
            return torch.full_like(t, self.v)

    assert torch.allclose(MeanEnsemble([Const(0.0), Const(1.0)], [1, 3])(x), torch.full_like(x, 0.75))
    with pytest.raises(KdrestoreError):
        MeanEnsemble([Const(0.0)], [0.0])


def test_ensemble_of_different_conventions_is_refused_by_name(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from kdrestore.models.registry import build_model

    paths = {}
    for name, kw in (("ffdnet-gray", {}), ("ffdnet-rgb", {}), ("dncnn-s25", {})):
        m = build_model(name, **kw)
        paths[name] = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(paths[name]))
    gray = TeacherSpec(name="ffdnet-gray", weights=str(paths["ffdnet-gray"]), args={"sigma": 25})
    color = TeacherSpec(name="ffdnet-rgb", weights=str(paths["ffdnet-rgb"]), args={"sigma": 25})
    with pytest.raises(KdrestoreError, match="ffdnet-rgb.*colour"):
        load_teacher(TeacherSpec(members=[gray, color]))
    free_map = TeacherSpec(name="ffdnet-gray", weights=str(paths["ffdnet-gray"]))
    dncnn = TeacherSpec(name="dncnn-s25", weights=str(paths["dncnn-s25"]))
    with pytest.raises(KdrestoreError, match="'ffdnet-gray' takes .*noise-level map"):
        load_teacher(TeacherSpec(members=[dncnn, free_map]))
    ok = load_teacher(TeacherSpec(members=[dncnn, gray], self_ensemble=True))
    assert ok.name == "x8(mean(dncnn-s25, ffdnet-gray))"
    x = torch.rand(1, 1, 16, 16)
    d = load_teacher(dncnn)(x)
    f = load_teacher(gray)(x)
    plain = load_teacher(TeacherSpec(members=[dncnn, gray]))(x)
    assert torch.allclose(plain, (d + f) / 2, atol=1e-5)
    assert ok(x).shape == x.shape


def test_recipe_section_parses_members():
    from kdrestore.config import build_section
    from kdrestore.distill.methods.kd import DistillConfig

    d = build_section(DistillConfig, {"teachers": [{"members": [{"name": "dncnn-s25"},
                                                                {"name": "ffdnet-gray", "args": {"sigma": 25}}],
                                                    "self_ensemble": True}]}, "distill")
    assert isinstance(d.teachers[0].members[1], TeacherSpec) and d.teachers[0].members[1].args == {"sigma": 25}


def test_teacher_takes_each_samples_noise_level_from_the_batch(tmp_path):
    from safetensors.torch import save_file

    from kdrestore.models.registry import build_model

    torch.manual_seed(0)
    ffd = build_model("ffdnet-gray")
    with torch.no_grad():
        for p in ffd.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "ffd.safetensors"
    save_file({k: v.contiguous() for k, v in ffd.state_dict().items()}, str(path))
    teacher = load_teacher(TeacherSpec(name="ffdnet-gray", weights=str(path), sigma_from_batch=True))
    x = torch.rand(2, 1, 16, 16)
    out = teacher(x, torch.tensor([10.0, 50.0]))
    with torch.no_grad():
        assert torch.allclose(out[0], ffd.eval()(x[:1], sigma=10.0)[0], atol=1e-6)
        assert torch.allclose(out[1], ffd(x[1:], sigma=50.0)[0], atol=1e-6)
    assert not torch.allclose(out[0], ffd(x[:1], sigma=50.0)[0], atol=1e-3)  # the level matters
    with pytest.raises(KdrestoreError, match="ffdnet-gray takes each sample's noise level"):
        teacher(x, torch.tensor([10.0, float("nan")]))  # a batch without noise levels
    with pytest.raises(KdrestoreError, match="remove args.sigma"):
        load_teacher(TeacherSpec(name="ffdnet-gray", weights=str(path), args={"sigma": 25}, sigma_from_batch=True))
    dncnn = build_model("dncnn-s25")
    save_file({k: v.contiguous() for k, v in dncnn.state_dict().items()}, str(tmp_path / "d.safetensors"))
    with pytest.raises(KdrestoreError, match="dncnn-s25 has no noise-level input"):
        load_teacher(TeacherSpec(name="dncnn-s25", weights=str(tmp_path / "d.safetensors"), sigma_from_batch=True))
