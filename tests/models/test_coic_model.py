"""CoIC model: identity at start, per-instance modulation, kernel/kv formulas, weights round trip, ONNX."""
import copy

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from kdrestore.errors import KdrestoreError
from kdrestore.models.coic import CoIMConv2d, KVContextConv
from kdrestore.models.registry import build_model
from kdrestore.models.weights import load_weights

SMALL = {"backbone_args": {"channels": 8, "blocks": 1}, "dim": 8}
RESTORMER = {"backbone": "restormer-tiny", "backbone_args": {"dim": 8, "heads": [1, 1, 1, 1]}, "dim": 8}


def coic(args=SMALL, seed=0):
    torch.manual_seed(seed)
    return build_model("coic", **args)


def randomize_modulation(model, scale=0.5):
    """Trained-looking generators (they start at zero, i.e. at the identity)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, CoIMConv2d):
                m.generator[2].weight.copy_(torch.randn(m.generator[2].weight.shape, generator=g) * scale)
            if isinstance(m, KVContextConv):
                m.context.weight.copy_(torch.randn(m.context.weight.shape, generator=g) * scale)


@pytest.mark.parametrize("args", [SMALL, RESTORMER], ids=["msresnet", "restormer"])
def test_off_and_fresh_modulation_equal_the_backbone(args):
    model = coic(args)
    plain = build_model(args.get("backbone", "msresnet-tiny"), **args["backbone_args"])
    missing = plain.load_state_dict({k[len("backbone."):]: v for k, v in model.state_dict().items()
                                     if k.startswith("backbone.") and "generator" not in k and ".context." not in k})
    assert not missing.missing_keys and not missing.unexpected_keys  # backbone keys kept their names
    x = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        ref = plain(x)
        assert torch.allclose(model(x), ref, atol=1e-5)  # zero-initialised generators: the identity
        randomize_modulation(model)
        model.modulate = False
        assert torch.equal(model(x), ref) and model.embedding is None
        model.modulate = True
        assert (model(x) - ref).abs().max() > 1e-3 and model.embedding.shape == (2, 8)


@pytest.mark.parametrize("args", [SMALL, RESTORMER], ids=["msresnet", "restormer"])
def test_modulation_is_per_instance(args):
    model = coic(args)
    randomize_modulation(model)
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(3)])
        assert torch.allclose(out, alone, atol=1e-5)  # each image is modulated by its own embedding only
        twin = copy.deepcopy(model)  # EMA / snapshot copies: their layers share the copy's own context
        assert torch.equal(twin(x), out) and twin._ctx is not model._ctx
        assert all(m.ctx is twin._ctx for m in twin.modules() if isinstance(m, (CoIMConv2d, KVContextConv)))
        z = model.encoder(x)
        model._ctx.z = F.normalize(torch.randn(z.shape, generator=torch.Generator().manual_seed(3)), dim=1)
        swapped = model.backbone(x)
        model._ctx.z = None
    assert (swapped - out).abs().max() > 1e-3  # another embedding, another result
    assert torch.linalg.vector_norm(z, dim=1).sub(1).abs().max() < 1e-5


@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (1, 2, 2), (4, 1, 1)])
def test_grouped_batch_conv_equals_the_unfold_path_and_a_per_sample_conv(groups, stride, dilation):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 12, 3, stride, dilation, dilation, groups)
    m = CoIMConv2d(conv, type("Ctx", (), {"z": None})(), dim=5)
    m.generator[2].weight.data.normal_(0, 0.5)
    x, z = torch.rand(2, 8, 11, 9), torch.randn(2, 5)
    m.ctx.z = z
    att = m.modulation(x, z)
    assert att.shape == (2, 12, 8 // groups, 3, 3) and torch.allclose(att.sum((-1, -2)), torch.full((2, 12, 8 // groups), 9.0))
    out = m(x)
    per_sample = torch.cat([F.conv2d(x[i:i + 1], m.weight * att[i], m.bias, stride, dilation, dilation, groups)
                            for i in range(2)])
    assert torch.allclose(out, per_sample, atol=1e-5)
    assert torch.allclose(m._unfold_conv(x, m.weight.unsqueeze(0) * att), out, atol=1e-5)


def test_kv_context_shifts_keys_and_values_only():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 12, 1, bias=False)
    m = KVContextConv(conv, type("Ctx", (), {"z": None})(), dim=3)
    m.context.weight.data.normal_()
    x, z = torch.rand(2, 4, 5, 5), torch.randn(2, 3)
    m.ctx.z = z
    out = m(x)
    c = m.context(F.silu(z))[:, :, None, None]
    assert torch.allclose(out[:, :4], conv(x)[:, :4], atol=1e-6)  # q from the plain input
    assert torch.allclose(out[:, 4:], conv(x + c)[:, 4:], atol=1e-5)  # k, v from input + context


def test_weights_round_trip_through_build_model(tmp_path):
    model = coic()
    randomize_modulation(model)
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    again = coic(seed=5)
    report = load_weights(again, tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert report.ok and torch.equal(again(x), model(x))


def test_wrap_patterns_and_errors():
    model = coic({**SMALL, "wrap": ["body.*"]})
    assert model.wrapped and all(p.startswith("body.") for p in model.wrapped)
    assert "head" in coic().wrapped and not isinstance(model.backbone.head, CoIMConv2d)
    with pytest.raises(KdrestoreError, match="matches no"):
        coic({**SMALL, "wrap": ["nothing*"]})
    with pytest.raises(KdrestoreError, match="itself"):
        build_model("coic", backbone="coic")


@pytest.mark.parametrize("args", [SMALL, {**RESTORMER, "wrap": ["encoder_level1.*"]}], ids=["msresnet", "restormer"])
def test_onnx_export_keeps_per_instance_modulation_at_any_batch_and_size(tmp_path, args):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from kdrestore.deploy.export import export_onnx, onnx_parity

    model = coic(args).eval()
    randomize_modulation(model)
    path = export_onnx(model, tmp_path / "coic.onnx", channels=3, example_hw=(16, 16))
    report = onnx_parity(model, path, sizes=((13, 21), (24, 16)), batch=2)
    assert report.max_diff < 1e-4, report.describe()


def test_whole_image_context_embeds_the_resized_image_and_pins_it_for_tiles():
    from kdrestore.deploy.restore import Restorer
    from kdrestore.models.coic import context_view

    model = coic({**SMALL, "context_size": 16}).eval()
    randomize_modulation(model)
    x = torch.rand(1, 3, 40, 56)
    x[..., :24, :24] *= 0.2  # a dark corner: its own embedding differs from the whole image's
    with torch.no_grad():
        whole = model(x)
        assert torch.allclose(model.embedding, model.encoder(context_view(x, 16)))
        assert torch.equal(model(x, context=context_view(x, 16)), whole)  # the view the data gives = its own
        crop = x[..., :24, :24]
        alone = model(crop)  # a crop on its own embeds itself ...
        with model.pinned(x):  # ... inside pinned(x) it carries the whole image's embedding, at any batch
            pinned = model(torch.cat([crop, crop]))
        assert torch.allclose(model.embedding, model.encoder(context_view(x, 16)).expand(2, -1))
        # the same up to rounding: a batch of two may take another convolution kernel than one image (1e-7 on some CPUs)
        assert torch.allclose(pinned[0], pinned[1], atol=1e-6)
        assert (pinned[0] - alone[0]).abs().max() > 1e-6  # the whole image's embedding changed it (here 2e-5)
        restorer = Restorer(model, channels=3, tile=32, overlap=8)
        restorer.plan(*x.shape[-2:])  # probes the receptive field first (forwards of their own)
        used = []
        backbone_forward = model.backbone.forward
        model.backbone.forward = lambda t: (used.append((len(t), model._ctx.z.clone())), backbone_forward(t))[1]
        tiled = restorer.restore_tensor(x)
        z_whole = model.encoder(context_view(x, 16))
    assert len(used) > 1 and all(torch.allclose(z, z_whole.expand(n, -1)) for n, z in used)  # every tile: the whole's
    assert model._ctx.pinned is None and tiled.shape == x.shape  # released after the image
    with pytest.raises(KdrestoreError, match="multiple of 8"):
        build_model("coic", **{**SMALL, "context_size": 12})
    with pytest.raises(KdrestoreError, match="context view"):
        model(x, context=torch.rand(1, 3, 8, 8))
