"""TRNR: first-order MAML with per-layer inner rates, inside the one trainer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from kdrestore.config import load_config
from kdrestore.data import write_image
from kdrestore.distill.methods.trnr import TaskDrivenMetaLearning
from kdrestore.engine import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from runutil import final_weights, losses_of, stop_at


def trnr_config(losses=({"name": "mse"},), **options):
    return load_config(data={"task": "denoise", "train": {"losses": list(losses)},
                             "distill": {"method": "trnr", "options": {"inner_steps": 2, "inner_lr": 0.1, **options}}})


def linear(w=0.6, b=0.1):
    net = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        net.weight.fill_(w)
        net.bias.fill_(b)
    return net


def tasks(n=2, support=3, query=2, side=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, qx = torch.rand(n, support, 1, side, side, generator=g), torch.rand(n, query, 1, side, side, generator=g)
    return {"input": x, "target": 0.5 * x + 0.2, "query_input": qx, "query_target": 0.5 * qx + 0.2}


def hand_fomaml(w, b, x, y, qx, qy, lr, steps):
    """First-order MAML for f(x) = w x + b under the mean squared error, in float64 by hand."""
    def grad(w, b, x, y):
        r = w * x + b - y
        return np.mean(2 * r * x), np.mean(2 * r)

    total_w = total_b = 0.0
    for _ in range(steps):
        gw, gb = grad(w - lr * total_w, b - lr * total_b, x, y)
        total_w, total_b = total_w + gw, total_b + gb
    qw, qb = grad(w - lr * total_w, b - lr * total_b, qx, qy)
    # dL/dw = dL/dw_T (first order); dL/dlog(a) = a * dL/da = -a * <dL/dw_T, sum_t g_t>
    return qw, qb, -lr * qw * total_w, -lr * qb * total_b


def test_outer_gradient_is_the_first_order_maml_gradient_averaged_over_the_tasks():
    method, net = TaskDrivenMetaLearning(trnr_config()), linear()
    batch = tasks(n=2)
    method.setup(net, "cpu", {k: v[0] for k, v in batch.items()})
    out = method.forward(net, batch)
    assert out.shape == batch["query_target"].shape
    sum(method.losses(batch, out, 0).values()).backward()
    expected = np.mean([hand_fomaml(0.6, 0.1, *(batch[k][i].double().numpy() for k in
                                                  ("input", "target", "query_input", "query_target")), 0.1, 2)
                        for i in range(2)], axis=0)
    got = [net.weight.grad.item(), net.bias.grad.item(), method.log_lr["weight"].grad.item(),
           method.log_lr["bias"].grad.item()]
    assert got == pytest.approx(expected.tolist(), rel=1e-4, abs=1e-7)
    assert all(abs(v) > 1e-5 for v in got)


def test_inner_loop_adapts_a_copy_and_lowers_the_support_loss_but_leaves_the_network_alone():
    method, net = TaskDrivenMetaLearning(trnr_config()), linear()
    batch = tasks(n=1)
    method.setup(net, "cpu", {k: v[0] for k, v in batch.items()})
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, y = batch["input"][0], batch["target"][0]
    adapted = method.adapted_parameters(net, x, y)
    for n, p in net.named_parameters():
        assert torch.equal(p, before[n]) and p.grad is None, n
        assert not torch.allclose(adapted[n], p), n
        assert adapted[n].requires_grad and adapted[n].grad_fn is not None  # tied to p and the rates
    loss = lambda w, b: float(((w * x + b - y) ** 2).mean())  # noqa: E731
    assert loss(adapted["weight"].item(), adapted["bias"].item()) < 0.7 * loss(0.6, 0.1)
    assert method.inner_lrs()["weight"].item() == pytest.approx(0.1)


def test_every_parameter_and_every_inner_rate_of_a_real_network_gets_a_gradient():
    cfg = trnr_config(losses=({"name": "l1"}, {"name": "ssim", "weight": 5.0}), inner_lr=1e-3)
    torch.manual_seed(0)
    method, net = TaskDrivenMetaLearning(cfg), build_model("dnnet-tiny", channels=4, blocks=1)
    batch = tasks(n=2, support=2, query=1, side=12)
    method.setup(net, "cpu", {k: v[0] for k, v in batch.items()})
    assert set(method.log_lr) == {n.replace(".", "__") for n, _ in net.named_parameters()}
    sum(method.losses(batch, method.forward(net, batch), 0).values()).backward()
    for n, p in list(net.named_parameters()) + list(method.log_lr.items()):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, n


def test_options_and_data_are_checked():
    with pytest.raises(KdrestoreError, match="teachers empty"):
        TaskDrivenMetaLearning(load_config(data={"distill": {"method": "trnr", "teachers": [{"name": "dncnn-s25"}]}}))
    with pytest.raises(KdrestoreError, match="inner_stpes"):
        TaskDrivenMetaLearning(trnr_config(inner_stpes=1))
    with pytest.raises(KdrestoreError, match="inner_steps must be >= 1"):
        TaskDrivenMetaLearning(trnr_config(inner_steps=0))
    with pytest.raises(KdrestoreError, match="kind: tasks"):
        TaskDrivenMetaLearning(trnr_config()).setup(linear(), "cpu", {"input": torch.rand(1, 4, 4)})


@pytest.fixture
def level_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i, level in enumerate((0.1, 0.35, 0.6, 0.85)):
        write_image(tmp_path / "clean" / f"{i}.png", np.clip(level + rng.uniform(-0.05, 0.05, (24, 24)), 0, 1))
    return tmp_path / "clean"


def run_config(folder, steps=4):
    return load_config(data={
        "name": "trnr", "task": "denoise", "model": {"name": "dnnet-tiny", "args": {"channels": 4, "blocks": 1}},
        "data": {"train": {"kind": "tasks", "path": str(folder), "mode": "gray", "crop": 12, "degradation": "awgn",
                           "params": {"sigma": [0, 55]},
                           "tasks": {"n_freqs": 2, "k_shot": 1, "query_freqs": 1, "query_shots": 1, "threshold": 0.5,
                                     "stride": 6, "tasks_per_epoch": 3}}},
        "optim": {"lr": 1e-2}, "schedule": {"name": "constant"},
        "train": {"steps": steps, "batch_size": 2, "log_every": 1, "ckpt_every": 2,
                  "losses": [{"name": "l1"}, {"name": "ssim", "weight": 5.0}]},
        "distill": {"method": "trnr", "options": {"inner_steps": 2, "inner_lr": 1e-3}},
    })


def test_trainer_learns_the_rates_checkpoints_them_and_resumes_exactly(level_folder, tmp_path):
    cfg = run_config(level_folder)
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full.fit()
    rates = {k: float(v.detach()) for k, v in full.method.log_lr.items()}
    assert all(v != pytest.approx(math.log(1e-3), abs=1e-6) for v in rates.values())  # the outer Adam moved them
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut", method=stop_at(TaskDrivenMetaLearning, cfg, 3), progress=False).fit()
    resumed = Trainer(cfg, tmp_path / "cut", resume=True, progress=False)
    resumed.fit()
    assert losses_of(tmp_path / "cut") == losses_of(tmp_path / "full")
    for k, v in final_weights(tmp_path / "full").items():
        assert torch.equal(v, final_weights(tmp_path / "cut")[k]), k
    assert {k: float(v.detach()) for k, v in resumed.method.log_lr.items()} == rates
    with pytest.raises(KdrestoreError, match="data.val.*for training"):
        bad = run_config(level_folder)
        bad.data.val = bad.data.train
        Trainer(bad, tmp_path / "bad", progress=False)


def test_fixed_inner_rates_the_official_setting_give_the_same_network_gradient_and_never_move():
    method, net = TaskDrivenMetaLearning(trnr_config(learn_inner_lr=False)), linear()
    batch = tasks(n=2)
    method.setup(net, "cpu", {k: v[0] for k, v in batch.items()})
    sum(method.losses(batch, method.forward(net, batch), 0).values()).backward()
    expected = np.mean([hand_fomaml(0.6, 0.1, *(batch[k][i].double().numpy() for k in
                                                  ("input", "target", "query_input", "query_target")), 0.1, 2)
                        for i in range(2)], axis=0)
    assert [net.weight.grad.item(), net.bias.grad.item()] == pytest.approx(expected[:2].tolist(), rel=1e-4)
    assert all(p.grad is None and not p.requires_grad for p in method.log_lr.values())
    assert all(v.item() == pytest.approx(0.1) for v in method.inner_lrs().values())  # one rate, every layer
