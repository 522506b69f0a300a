"""RepDN: folding the training branches into one 3x3 conv keeps the output; checkpoints of either form load."""
from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file

from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from kdrestore.models.weights import load_weights


def _randomised(**kw):
    torch.manual_seed(0)
    m = build_model("repdn", width=16, depth=5, **kw)
    with torch.no_grad():  # non-trivial 1x1 branches, biases and identity scales
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("shape", [(2, 1, 37, 51), (1, 1, 64, 64)])
def test_folded_network_matches_training_form(shape):
    m = _randomised()
    x = torch.rand(*shape)
    m.train()
    with torch.no_grad():
        branches = m(x)
        fused = copy.deepcopy(m).fuse().eval()
        assert all(layer.deployed for layer in fused.layers)
        assert not any(hasattr(layer, "conv1") for layer in fused.layers)
        out = fused(x)
    assert out.shape == x.shape
    assert torch.allclose(out, branches, atol=1e-5)
    m.eval()
    with torch.no_grad():
        assert torch.allclose(m(x), branches, atol=1e-5)  # eval mode runs the folded kernel


def test_deployed_model_has_one_conv_per_layer_and_fewer_params():
    train, deploy = build_model("repdn", width=16, depth=5), build_model("repdn", width=16, depth=5, deploy=True)
    assert sum(p.numel() for p in deploy.parameters()) < sum(p.numel() for p in train.parameters())
    assert sum(isinstance(mod, torch.nn.Conv2d) for mod in deploy.modules()) == 5


def test_training_checkpoint_loads_into_deployed_form_and_back(tmp_path):
    m = _randomised()
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        ref = m.eval()(x)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "train.safetensors"))
    deployed = build_model("repdn", width=16, depth=5, deploy=True)
    assert load_weights(deployed, tmp_path / "train.safetensors").ok
    with torch.no_grad():
        assert torch.allclose(deployed.eval()(x), ref, atol=1e-5)
    save_file({k: v.contiguous() for k, v in deployed.state_dict().items()}, str(tmp_path / "folded.safetensors"))
    back = build_model("repdn", width=16, depth=5)
    assert load_weights(back, tmp_path / "folded.safetensors").ok
    with torch.no_grad():
        assert torch.allclose(back.train()(x), ref, atol=1e-5)  # the branch form computes the same function
    assert float(back.layers[1].conv1.weight.detach().abs().sum()) == 0.0


def test_checkpoint_of_another_size_is_refused_by_name(tmp_path):
    m = _randomised()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "w.safetensors"))
    other = build_model("repdn", width=24, depth=5, deploy=True)
    with pytest.raises(KdrestoreError, match="layers.0.fused.weight"):
        load_weights(other, tmp_path / "w.safetensors")


def test_ffdnet_checkpoint_initialises_the_student(tmp_path):
    torch.manual_seed(1)
    ffd = build_model("ffdnet-gray", sigma=25.0)
    with torch.no_grad():
        for mod in ffd.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    save_file({"module." + k: v.contiguous() for k, v in ffd.state_dict().items()}, str(tmp_path / "ffd.safetensors"))
    student = build_model("repdn", depth=15)
    load_weights(student, tmp_path / "ffd.safetensors")
    # the first 14 folded layers equal FFDNet's (BatchNorm folded); compare the features of layer 1
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        body = ffd.intermediate_dncnn.itermediate_dncnn.eval()
        down = torch.nn.functional.pixel_unshuffle(x, 2)
        t = body[:5](torch.cat([torch.full_like(down[:, :1], 25 / 255), down], 1))  # conv relu conv bn relu
        s = torch.relu(student.eval().layers[1](torch.relu(student.layers[0](down))))
    assert torch.allclose(s[..., 2:-2, 2:-2], t[..., 2:-2, 2:-2], atol=1e-4)  # the map folds exactly inside
    with torch.no_grad():  # zero tail: the student starts as the identity
        assert torch.allclose(student(x), x, atol=1e-6)
    with pytest.raises(KdrestoreError, match="width 64"):
        load_weights(build_model("repdn", width=32, depth=8), tmp_path / "ffd.safetensors")


def test_onnx_export_folds_to_plain_convs(tmp_path):
    pytest.importorskip("onnxruntime")
    from kdrestore.deploy.export import export_onnx, onnx_parity

    m = _randomised()
    path = export_onnx(m.eval(), tmp_path / "m.onnx", 1)
    assert onnx_parity(m, path).max_diff < 1e-4
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("Conv") == 5


def test_shallower_checkpoint_grows_into_a_deeper_model_with_the_same_output(tmp_path):
    m = _randomised()  # depth 5, branch form
    x = torch.rand(2, 1, 36, 44)
    with torch.no_grad():
        ref = m.eval()(x)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "w5.safetensors"))
    with pytest.raises(KdrestoreError, match="5 layers but the model has depth 8.*init_grow"):
        load_weights(build_model("repdn", width=16, depth=8), tmp_path / "w5.safetensors")
    with pytest.raises(KdrestoreError, match="5 layers but the model has depth 3"):
        load_weights(build_model("repdn", width=16, depth=3, init_grow=True), tmp_path / "w5.safetensors")
    for deploy in (False, True):
        grown = build_model("repdn", width=16, depth=8, init_grow=True, deploy=deploy)
        assert load_weights(grown, tmp_path / "w5.safetensors").ok
        with torch.no_grad():
            assert torch.allclose(grown.eval()(x), ref, atol=1e-5)
    # the three new layers are spread over the body (not stacked before the tail) and train like any other
    grown = build_model("repdn", width=16, depth=8, init_grow=True)
    load_weights(grown, tmp_path / "w5.safetensors")
    w, _ = grown.layers[7].folded()
    assert torch.allclose(w, m.layers[4].folded()[0], atol=1e-6)  # the tail stays the tail
    is_identity = [bool(torch.allclose(grown.layers[i].folded()[0][:, :, 1, 1], torch.eye(16))) for i in range(1, 7)]
    assert sum(is_identity) == 3 and is_identity != [False, False, False, True, True, True]
    grown.train()(x).square().mean().backward()
    assert all(layer.conv3.weight.grad is not None and layer.conv3.weight.grad.abs().sum() > 0 for layer in grown.layers)
