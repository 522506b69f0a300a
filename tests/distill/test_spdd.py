
import pytest
import torch
import torch.nn.functional as F

from kdrestore.config import load_config
from kdrestore.distill.methods.spdd import SelfParameterDistillation
from kdrestore.engine import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from runutil import final_weights, losses_of, stop_at


def spdd_config(steps=4, **options):
    return load_config(data={
        "name": "spdd", "task": "dehaze",
        "model": {"name": "unet-tiny", "args": {"width": 4, "levels": 2}},
        "data": {"train": {"kind": "builtin", "crop": 16, "limit": 4}},
        "train": {"steps": steps, "batch_size": 2, "log_every": 1, "ckpt_every": 2},
        "distill": {"method": "spdd", "options": {"identity_steps": 1, "transition_steps": 1,
                                                 "feature_points": ["encoders.0", "middle"], **options}},
    })


def student():
    torch.manual_seed(0)
    return build_model("unet-tiny", width=4, levels=2)


def test_schedule_identity_first_then_dehazing_with_ramped_weights():
    m = SelfParameterDistillation(spdd_config(identity_steps=10, transition_steps=20, identity_floor=0.1))
    assert [m.identity_probability(s) for s in (0, 9, 10)] == [1.0, 1.0, 1.0]
    assert m.identity_probability(20) == pytest.approx(0.55) and m.identity_probability(30) == pytest.approx(0.1)
    assert [m.distill_weight(s) for s in (0, 9, 10)] == [0.0, 0.0, 0.0]
    assert m.distill_weight(20) == pytest.approx(0.5) and m.distill_weight(99) == 1.0
    ps = [m.identity_probability(s) for s in range(40)]
    ws = [m.distill_weight(s) for s in range(40)]
    assert all(a >= b for a, b in zip(ps, ps[1:])) and all(a <= b for a, b in zip(ws, ws[1:]))

    net = student()
    m.setup(net, "cpu", {"input": torch.rand(3, 8, 8)})
    batch = {"input": torch.zeros(64, 3, 4, 4), "target": torch.ones(64, 3, 4, 4)}
    shares = []
    for step in (0, 20, 35):
        m.begin_step(step)
        m.forward(net, batch)
        shares.append(float(m._identity.float().mean()))
    assert shares[0] == 1.0 and 0.3 < shares[1] < 0.8 and shares[2] < 0.3


def test_targets_come_from_the_frozen_snapshot_on_the_clean_image_and_every_term_trains():
    cfg = spdd_config(output_weight=1.0, feature_weight=1.0)
    m, net = SelfParameterDistillation(cfg), student()
    m.setup(net, "cpu", {"input": torch.rand(3, 16, 16)})
    m.begin_step(0)
    m.begin_step(1)  # end of stage 1: the snapshot copies the live weights
    with torch.no_grad():
        for p in net.parameters():  # "training" moves the live network on
            p.add_(0.05 * torch.randn_like(p))
    m.begin_step(2)
    assert m.taken and not m.snapshot.training
    assert all(not p.requires_grad for p in m.snapshot.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(m.snapshot.parameters(), net.parameters()))

    torch.manual_seed(1)
    batch = {"input": torch.rand(2, 3, 16, 16), "target": torch.rand(2, 3, 16, 16)}
    out = m.forward(net, batch)
    assert not m._identity.any()  # after the transition every sample is a dehazing sample
    terms = m.losses(batch, out, 2)
    with torch.no_grad():
        on_clean, on_hazy = m.snapshot(batch["target"]), m.snapshot(batch["input"])
    assert float(terms["spdd_output"].detach()) == pytest.approx(float(F.l1_loss(out.detach(), on_clean)), rel=1e-5)
    assert float(terms["spdd_output"].detach()) != pytest.approx(float(F.l1_loss(out.detach(), on_hazy)), rel=1e-3)
    for name in ("loss_l1", "spdd_output", "spdd_feature"):
        net.zero_grad()
        terms[name].backward(retain_graph=True)
        assert sum(p.grad.abs().sum() for p in net.parameters() if p.grad is not None) > 0, name


def test_stage_one_trains_clean_to_clean_without_distillation():
    m, net = SelfParameterDistillation(spdd_config(identity_steps=5)), student()
    m.setup(net, "cpu", {"input": torch.rand(3, 8, 8)})
    m.begin_step(0)
    batch = {"input": torch.rand(2, 3, 8, 8), "target": torch.rand(2, 3, 8, 8)}
    out = m.forward(net, batch)
    with torch.no_grad():
        assert torch.allclose(out, net(batch["target"]))  # the network saw the clean image
    terms = m.losses(batch, out, 0)
    assert float(terms["spdd_output"]) == 0.0 and float(terms["spdd_feature"]) == 0.0 and not m.taken


def test_options_are_validated():
    with pytest.raises(KdrestoreError, match="teachers empty"):
        cfg = load_config(data={"distill": {"method": "spdd", "teachers": [{"name": "dncnn-s25"}]}})
        SelfParameterDistillation(cfg)
    with pytest.raises(KdrestoreError, match="identity_stpes"):
        SelfParameterDistillation(spdd_config(identity_stpes=3))


def test_a_frozen_snapshot_of_the_initial_weights_is_refused_and_ema_is_not():
    with pytest.raises(KdrestoreError, match="untrained initial weights"):
        SelfParameterDistillation(spdd_config(identity_steps=0))
    SelfParameterDistillation(spdd_config(identity_steps=0, snapshot="ema"))
    with pytest.raises(KdrestoreError, match="output_weight"):
        SelfParameterDistillation(spdd_config(output_weight=-1.0))


def test_output_weight_zero_leaves_the_feature_term_alone():
    m, net = SelfParameterDistillation(spdd_config(identity_steps=1, transition_steps=1, output_weight=0.0)), student()
    m.setup(net, "cpu", {})
    torch.manual_seed(1)
    for p in net.parameters():  # the live network moves away from its snapshot
        p.data += 0.05 * torch.randn_like(p)
    batch = {"input": torch.rand(4, 3, 16, 16), "target": torch.rand(4, 3, 16, 16)}
    m.begin_step(5)
    terms = m.losses(batch, m.forward(net, batch), 5)
    assert float(terms["spdd_output"].detach()) == 0.0 and float(terms["spdd_feature"].detach()) > 0


@pytest.mark.parametrize("snapshot", ["frozen", "ema"])
def test_trainer_run_keeps_a_frozen_snapshot_and_resumes_exactly(tmp_path, snapshot):
    cfg = spdd_config(snapshot=snapshot, ema_decay=0.5)
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full.fit()
    snap = full.method.snapshot
    assert not snap.training and all(not p.requires_grad and p.grad is None for p in snap.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(snap.parameters(), full.model.parameters()))
    assert losses_of(tmp_path / "full", "spdd_output")[-1][2] > 0  # the distillation term is live at the end
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut", method=stop_at(SelfParameterDistillation, cfg, 3), progress=False).fit()
    resumed = Trainer(cfg, tmp_path / "cut", resume=True, progress=False)
    resumed.fit()
    assert losses_of(tmp_path / "cut", "spdd_output") == losses_of(tmp_path / "full", "spdd_output")
    for k, v in final_weights(tmp_path / "full").items():
        assert torch.equal(v, final_weights(tmp_path / "cut")[k]), k
    for a, b in zip(snap.state_dict().values(), resumed.method.snapshot.state_dict().values()):
        assert torch.equal(a, b)
