"""CoIC training: the contrastive loss and its exemplars, the two stages, exact resume, loading the run back."""
import pytest
import torch

from kdrestore.config import load_config
from kdrestore.deploy.loader import resolve
from kdrestore.distill.methods.coic import CoICTraining, gaussian_blur, rain_detail_infonce
from kdrestore.engine import Trainer
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from runutil import final_weights, losses_of, stop_at

MODEL = {"name": "coic", "args": {"backbone_args": {"channels": 8, "blocks": 1}, "dim": 8}}


def coic_config(steps=4, **options):
    return load_config(data={
        "name": "coic", "task": "derain", "model": MODEL,
        "data": {"train": {"kind": "mixed", "sources": [
            {"kind": "builtin", "task": "derain", "crop": 16, "limit": 2, "name": "a"},
            {"kind": "builtin", "task": "derain", "crop": 16, "limit": 2, "name": "b", "params": {"n_layers": 1}}]}},
        "train": {"steps": steps, "batch_size": 2, "log_every": 1, "ckpt_every": 2},
        "distill": {"method": "coic", "options": {"stage1_steps": 2, "bank_size": 3, **options}},
    })


def method_and_model(**options):
    torch.manual_seed(0)
    model = build_model(MODEL["name"], **MODEL["args"])
    m = CoICTraining(coic_config(**options))
    m.setup(model, "cpu", {"input": torch.rand(3, 16, 16)})
    return m, model


def test_infonce_prefers_the_positive():
    g = torch.Generator().manual_seed(0)
    unit = lambda *s: torch.nn.functional.normalize(torch.randn(*s, generator=g), dim=-1)  # noqa: E731
    pos, neg = unit(4, 8), unit(4, 3, 8)
    at_pos = rain_detail_infonce(pos, pos, neg, 0.2)
    at_neg = rain_detail_infonce(neg[:, 0], pos, neg, 0.2)
    assert float(at_pos) < 0.1 < float(at_neg)
    maps = torch.nn.functional.normalize(torch.randn(2, 4, 5, 3, 3, generator=g), dim=2)  # per-position unit
    assert float(rain_detail_infonce(maps[:, 0], maps[:, 0], maps[:, 1:], 0.2)) < 0.1 < \
        float(rain_detail_infonce(maps[:, 1], maps[:, 0], maps[:, 1:], 0.2))


def test_negatives_are_blurred_clean_images_and_clean_plus_other_rain():
    m, _ = method_and_model(blur_negatives=1, rain_negatives=2)
    m.begin_step(2)
    y = torch.rand(3, 3, 16, 16)
    rain = torch.rand(3, 3, 16, 16) * 0.3
    negs = m.negatives(y, rain)  # empty bank: the other samples' rain layers
    assert len(negs) == 3 and torch.allclose(negs[0].mean((2, 3)), y.mean((2, 3)), atol=0.05)
    assert negs[0].std() < y.std()  # details removed
    assert torch.allclose(negs[1], (y + rain.roll(1, 0)).clamp(0, 1)) and torch.allclose(negs[2], (y + rain.roll(2, 0)).clamp(0, 1))
    m._push(rain)
    m._push(rain[:1] + 1)  # bank keeps the last 3 layers
    assert len(m.bank) == 3 and torch.equal(m.bank[-1], rain[0] + 1)
    for n in m.negatives(y, rain)[1:]:  # each sample: its clean image plus one layer of the bank
        assert all(any(torch.allclose(n[b], (y[b] + layer).clamp(0, 1)) for layer in m.bank) for b in range(3))
    assert gaussian_blur(torch.ones(1, 1, 4, 4), 2.0).allclose(torch.ones(1, 1, 4, 4))


def test_stage_one_trains_the_backbone_alone_then_the_contrastive_term_trains_the_encoder():
    m, model = method_and_model(contrastive_weight=1.0)
    y = torch.rand(2, 3, 16, 16)
    batch = {"input": (y + 0.3 * torch.rand(2, 1, 16, 16)).clamp(0, 1), "target": y}
    m.begin_step(1)
    out = m.forward(model, batch)
    terms = m.losses(batch, out, 1)
    assert not model.modulate and model.embedding is None and float(terms["coic_contrastive"]) == 0.0
    sum(terms.values()).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    model.zero_grad()
    m.begin_step(2)
    out = m.forward(model, batch)
    terms = m.losses(batch, out, 2)
    assert model.modulate and float(terms["coic_contrastive"].detach()) > 0
    terms["coic_contrastive"].backward()
    grad = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    assert grad > 0 and all(not p.requires_grad for p in m.key_encoder.parameters())
    with pytest.raises(KdrestoreError, match="CoIC model"):
        CoICTraining(coic_config()).setup(build_model("msresnet-tiny"), "cpu", {})
    with pytest.raises(KdrestoreError, match="at least one negative"):
        CoICTraining(coic_config(blur_negatives=0, rain_negatives=0))


def test_two_stage_run_resumes_exactly_and_loads_back(tmp_path):
    cfg = coic_config()
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full.fit()
    logged = losses_of(tmp_path / "full", "coic_contrastive")
    assert [row[2] > 0 for row in logged] == [False, False, True, True]  # stage 2 from step 3
    assert any(not torch.equal(a, b) for a, b in zip(full.method.key_encoder.parameters(),
                                                       full.model.encoder.parameters()))
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut", method=stop_at(CoICTraining, cfg, 3), progress=False).fit()
    resumed = Trainer(cfg, tmp_path / "cut", resume=True, progress=False)
    resumed.fit()
    assert losses_of(tmp_path / "cut", "coic_contrastive") == logged
    for k, v in final_weights(tmp_path / "full").items():
        assert torch.equal(v, final_weights(tmp_path / "cut")[k]), k
    assert torch.equal(resumed.method.bank, full.method.bank)
    spec = resolve(tmp_path / "full")  # eval / restore / export path: build_model + the saved weights
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert spec.name == "coic" and torch.equal(spec.model(x), full.model.eval()(x))


@pytest.mark.parametrize("recipe", ["coic-msresnet-tiny", "coic-restormer-tiny", "mixed-msresnet-tiny"])
def test_recipes_validate(recipe, monkeypatch):
    from pathlib import Path

    from kdrestore.distill.methods import build_method

    monkeypatch.setenv("KDRESTORE_DATA", "/data")
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "derain" / f"{recipe}.yaml")
    assert cfg.data.train.kind == "mixed" and cfg.data.train.sources[2].path == "/data/train/Rain100L-train"
    assert type(build_method(cfg)).__name__ == ("Supervised" if recipe.startswith("mixed") else "CoICTraining")


def whole_image_config(steps=3, context=16, size=16):
    return load_config(data={
        "name": "coic-whole", "task": "derain",
        "model": {"name": "coic", "args": {**MODEL["args"], "context_size": size}},
        "data": {"train": {"kind": "mixed", "context": context, "sources": [
            {"kind": "builtin", "task": "derain", "crop": 16, "limit": 2, "name": "a"},
            {"kind": "builtin", "task": "derain", "crop": 16, "limit": 2, "name": "b", "params": {"n_layers": 1}}]}},
        "train": {"steps": steps, "batch_size": 2, "log_every": 1, "ckpt_every": 3},
        "distill": {"method": "coic", "options": {"stage1_steps": 1, "bank_size": 3}},
    })


def test_whole_image_embedding_trains_on_the_views_the_data_gives(tmp_path):
    trainer = Trainer(whole_image_config(), tmp_path, progress=False)
    seen = []
    encoder_forward = trainer.model.encoder.features

    def spy(x):
        seen.append(tuple(x.shape[-2:]))
        return encoder_forward(x)

    trainer.model.encoder.features = spy
    trainer.fit()
    assert seen and set(seen) == {(16, 16)}  # the 16 x 16 views of the whole images, never the crops
    assert trainer.method.bank.shape[-2:] == (16, 16)
    assert losses_of(tmp_path, "coic_contrastive")[-1][2] > 0


def test_whole_image_embedding_needs_model_and_data_to_agree(tmp_path):
    with pytest.raises(KdrestoreError, match="context_size .* data.train.context"):
        Trainer(whole_image_config(size=0), tmp_path / "a", progress=False)
    with pytest.raises(KdrestoreError, match="context_size .* data.train.context"):
        Trainer(whole_image_config(context=None), tmp_path / "b", progress=False)
    with pytest.raises(KdrestoreError, match="context_size .* data.train.context"):
        Trainer(whole_image_config(context=24), tmp_path / "c", progress=False)
