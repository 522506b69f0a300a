"""ONNX export with dynamic H/W (parity at several sizes), the ONNX backend, INT8 quantization."""
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from kdrestore.deploy.restore import Restorer
from kdrestore.errors import KdrestoreError
from kdrestore.models.common import _pad_traced, pad_to_multiple
from kdrestore.models.registry import build_model

SIZES = [(37, 53), (64, 64), (101, 83)]




def test_pad_to_multiple_traced_form_matches_eager_bit_for_bit():
    """The traced formulation gives exactly the eager values (which are still plain F.pad)."""
    for mode in ("reflect", "replicate", "constant"):
        for m in (1, 2, 4, 8):
            for h, w in [(1, 1), (2, 7), (3, 8), (5, 13), (8, 8), (11, 3)]:
                x = torch.rand(1, 2, h, w)
                eager, size = pad_to_multiple(x, m, mode)
                assert size == (h, w) and torch.equal(eager, _pad_traced(x, m, mode)), (mode, m, h, w)
                ph, pw = (-h) % m, (-w) % m
                if mode == "reflect" and (ph >= h or pw >= w):
                    mode_used = "replicate"
                else:
                    mode_used = mode
                assert torch.equal(eager, F.pad(x, (0, pw, 0, ph), mode=mode_used) if ph or pw else x)


def randomized(name):
    """A registry model with random (non-trivial) weights and BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_model(name)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return model.eval()


# every exportable architecture family: students, tiny teachers, peers (random weights)
EXPORTABLE = ["unet-tiny", "mdrn-tiny", "mdrn-fast", "msresnet-tiny", "dnnet-tiny", "tinydehaze-s", "nafnet-tiny",
              "restormer-tiny", "dncnn-s25", "ffdnet-rgb", "prn6-r", "gcanet", "aodnet"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("name", EXPORTABLE)
def test_dynamic_height_and_width(name, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from kdrestore.deploy.export import export_onnx, onnx_parity
    from kdrestore.models.registry import model_entry

    model = randomized(name)
    channels = model_entry(name).meta["channels"]
    path = export_onnx(model, tmp_path / f"{name}.onnx", channels, example_hw=(64, 64))
    report = onnx_parity(model, path, sizes=SIZES, batch=2 if name == "unet-tiny" else 1)
    assert not report.errors, report.describe()
    assert set(report.diffs) == set(SIZES) and report.max_diff < 1e-4, report.describe()
    x = torch.rand(1, channels, 40, 40)
    with torch.no_grad():
        assert (model(x) - x).abs().max() > 1e-3  # the parity is not between two identities


def test_onnx_backend_with_tiling_matches_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    model = build_model("unet-tiny", width=4).eval()
    img = np.random.default_rng(0).random((70, 90, 3)).astype(np.float32)
    kw = dict(channels=3, tile=48, overlap=16)
    a = Restorer(model, **kw).restore(img)
    b = Restorer(model, backend="onnx", **kw).restore(img)
    assert b.shape == img.shape and np.abs(a - b).max() < 1e-4


def test_int8_quantization_and_its_psnr_cost(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)  # onnxruntime tools like to leave files in the working folder
    from kdrestore.deploy.export import builtin_samples, export_onnx, int8_psnr_cost, quantize_int8

    model = build_model("mdrn-tiny").eval()
    fp32 = export_onnx(model, tmp_path / "m.onnx", 1)
    calib = [s["input"].numpy().transpose(1, 2, 0) for s in builtin_samples("denoise", 1, "train", 3, 48)]
    result = quantize_int8(fp32, tmp_path / "m.int8.onnx", calib, crop=48)
    assert result.mode == "static QDQ" and result.path.is_file()
    cost = int8_psnr_cost(fp32, result.path, builtin_samples("denoise", 1, "test", 2, 48))
    assert cost["images"] == 2 and math.isfinite(cost["cost_db"]) and abs(cost["cost_db"]) < 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx", "m.onnx"]


def _weight_types(path) -> set[int]:
    """ONNX element types of the quantized convolution weights (the DequantizeLinear inputs that are initializers)."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {i.name: i.data_type for i in graph.initializer}
    return {inits[n.input[0]] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
            and "weight" in n.input[0]}


def test_int8_weight_formats_and_the_kernel_check(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import onnx

    from kdrestore.deploy import export as ex

    monkeypatch.chdir(tmp_path)
    fp32 = ex.export_onnx(build_model("mdrn-tiny").eval(), tmp_path / "m.onnx", 1)
    calib = [np.random.default_rng(0).random((32, 32, 1))]
    u8 = ex.quantize_int8(fp32, tmp_path / "u8.onnx", calib, weights="u8")
    s8 = ex.quantize_int8(fp32, tmp_path / "s8.onnx", calib, weights="s8")
    assert (u8.weights, s8.weights) == ("u8", "s8")
    assert _weight_types(u8.path) == {onnx.TensorProto.UINT8} and _weight_types(s8.path) == {onnx.TensorProto.INT8}
    # u8 weights take kernels without the 16-bit pair sums: faithful on any x86 CPU
    assert u8.kernel_agreement_db >= ex.KERNEL_WARNING_DB and "u8 weights (fused kernels" in u8.note
    with pytest.raises(KdrestoreError, match="INT8 weights: one of auto, s8, u8"):
        ex.quantize_int8(fp32, tmp_path / "x.onnx", calib, weights="int4")

    # auto: u8 without trying s8 where this CPU's u8 x s8 kernels saturate
    monkeypatch.setattr(ex, "s8_kernels_saturate", lambda: True)
    auto = ex.quantize_int8(fp32, tmp_path / "auto.onnx", calib)
    assert auto.weights == "u8" and _weight_types(auto.path) == {onnx.TensorProto.UINT8}
    assert "s8 weights not tried (this CPU's u8 x s8 kernels saturate" in auto.note
    # elsewhere s8, unless the fused kernels are measured far from the exact arithmetic for this model
    monkeypatch.setattr(ex, "s8_kernels_saturate", lambda: False)
    measured = iter([30.0, 60.0])
    monkeypatch.setattr(ex, "kernel_agreement_db", lambda path, x: next(measured))
    auto = ex.quantize_int8(fp32, tmp_path / "auto.onnx", calib)
    assert auto.weights == "u8" and _weight_types(auto.path) == {onnx.TensorProto.UINT8}
    assert "s8 weights refused (this CPU's fused kernels 30.0 dB" in auto.note and auto.kernel_agreement_db == 60.0
    monkeypatch.setattr(ex, "kernel_agreement_db", lambda path, x: 42.0)  # above the 40 dB warning: kept (VNNI: 42-63 dB, exact)
    assert ex.quantize_int8(fp32, tmp_path / "auto2.onnx", calib).weights == "s8"
    monkeypatch.setattr(ex, "kernel_agreement_db", lambda path, x: 20.0)
    forced = ex.quantize_int8(fp32, tmp_path / "s8b.onnx", calib, weights="s8")
    assert forced.weights == "s8" and "WARNING" in forced.note


def test_the_saturation_probe_is_at_full_scale(tmp_path):
    """The probe only tells saturation if every pair of u8 x s8 products overflows 16 bits: activations quantized
    to 255 and weights to 127; its exact arithmetic gives the float convolution."""
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import numpy_helper

    from kdrestore.deploy import export as ex

    int8, x = ex.saturation_probe(tmp_path)
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(int8)).graph.initializer}
    weights = [v for v in inits.values() if v.dtype == np.int8 and v.ndim == 4]
    assert len(weights) == 1 and (weights[0] == 127).all()
    scales = {k: float(v) for k, v in inits.items() if v.ndim == 0 and v.dtype == np.float32 and "input" in k}
    assert scales and all(abs(x.max() / s - 255) < 1e-3 for s in scales.values())
    exact = ex.onnx_session(int8, 1, optimize=False).run([ex.OUTPUT], {ex.INPUT: x})[0]
    assert abs(float(exact[0, 0, 2, 2]) - 16 * 9 * 0.01) < 1e-3  # interior: 144 full-scale products
    assert isinstance(ex.s8_kernels_saturate(), bool)


def test_kernel_agreement_is_high_for_a_graph_that_computes_the_same(tmp_path):
    pytest.importorskip("onnxruntime")
    from kdrestore.deploy import export as ex

    fp32 = ex.export_onnx(build_model("mdrn-tiny").eval(), tmp_path / "m.onnx", 1)
    x = np.random.default_rng(1).random((1, 1, 24, 24)).astype(np.float32)
    assert ex.kernel_agreement_db(fp32, x) > 60  # float graph: optimised and op-by-op agree to rounding


def test_export_command_with_int8(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from kdrestore.cli import main
    from kdrestore.data.imageio import write_image

    weights = tmp_path / "w.safetensors"
    save_file(build_model("mdrn-tiny").state_dict(), str(weights))
    for i in range(2):
        write_image(tmp_path / "calib" / f"{i}.png", np.random.default_rng(i).random((40, 40, 1)))
    out = tmp_path / "m.onnx"
    code = main(["export", "--model", "mdrn-tiny", "--weights", str(weights), "--format", "onnx", "-o", str(out),
                 "--int8", "--calibration", str(tmp_path / "calib"), "--samples", "1"])
    text = capsys.readouterr().out
    assert code == 0 and "37x53" in text and "static QDQ" in text and "INT8 PSNR cost on 1" in text
    assert (tmp_path / "m.int8.onnx").is_file()


def test_missing_onnx_is_a_clear_error(monkeypatch, tmp_path):
    from kdrestore.deploy.export import export_onnx

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(KdrestoreError, match=r"kdrestore\[export\]"):
        export_onnx(build_model("mdrn-tiny"), tmp_path / "m.onnx", 1)


def test_dynamic_quantization_fallback_says_why(monkeypatch, tmp_path):
    q = pytest.importorskip("onnxruntime.quantization")
    from kdrestore.deploy.export import export_onnx, onnx_parity, quantize_int8

    def no_static(*args, **kwargs):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(q, "quantize_static", no_static)
    model = build_model("mdrn-tiny").eval()
    fp32 = export_onnx(model, tmp_path / "m.onnx", 1)
    result = quantize_int8(fp32, tmp_path / "m.int8.onnx", [np.random.default_rng(0).random((32, 32, 1))])
    assert result.mode == "dynamic" and "unsupported op" in result.note
    assert onnx_parity(model, result.path, sizes=[(33, 45)]).max_diff < 0.05


def _noise_levels(inputs: list, clean: list) -> list[float]:
    return [float(np.std(x.astype(np.float64) - c) * 255) for x, c in zip(inputs, clean)]


def test_int8_calibration_follows_the_cards_training_noise():
    """A blind denoiser is calibrated on the noise levels it was trained for, a sigma-25 one on sigma 25, and a
    card trained on another degradation keeps the task's default."""
    from kdrestore.deploy.export import builtin_samples, calibration_inputs

    clean = [s["target"].numpy().transpose(1, 2, 0) for s in builtin_samples("denoise", 1, "train", 8)]
    blind = {"training": {"data": {"degradation": "awgn", "params": {"sigma": [0, 55]}}}}
    other = {"training": {"data": {"degradation": "poisson-gaussian", "params": {"peak": 10}}}}
    spread = _noise_levels(calibration_inputs("denoise", 1, blind, limit=8), clean)
    assert max(spread) - min(spread) > 20  # levels drawn over 0-55, not all 25
    for card in (None, other, {"notes": "no training record"}):
        fixed = _noise_levels(calibration_inputs("denoise", 1, card, limit=8), clean)
        assert all(20 < s < 26 for s in fixed), fixed  # sigma 25 (clipping at 0 and 1 takes a little)


def _output_scale(path) -> float:
    """The scale of the QuantizeLinear that quantizes the last convolution's output."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    inits = {i.name: i for i in g.initializer}
    last_conv = [n for n in g.node if n.op_type == "Conv"][-1]
    q = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == last_conv.output[0])
    return float(numpy_helper.to_array(inits[q.input[1]]))


def test_kd_qat_students_are_calibrated_as_their_observers_saw_training(tmp_path, monkeypatch):
    """A kd-qat card gets batches of training-size crops and moving-average ranges (narrower than the min/max over
    the same crops, as the fake-quantisation observers were); any other card keeps min/max calibration."""
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    from kdrestore.deploy.export import ObserverCalibration, calibration_for, export_onnx, quantize_int8

    qat = {"training": {"method": "kd-qat", "crop": 32, "batch_size": 4,
                        "data": {"degradation": "awgn", "params": {"sigma": [0, 55]}}}}
    plan = calibration_for("denoise", 1, qat)
    assert isinstance(plan, ObserverCalibration) and len(plan.batches) == 100
    assert all(b.shape == (4, 1, 32, 32) for b in plan.batches)
    assert len({round(float(b.std()), 4) for b in plan.batches[:10]}) == 10  # fresh crops and noise per batch
    assert isinstance(calibration_for("denoise", 1, {"training": {"method": "kd"}}), list)

    model = build_model("repdn", width=8, depth=3).eval()
    fp32 = export_onnx(model, tmp_path / "m.onnx", 1)
    observed = quantize_int8(fp32, tmp_path / "obs.onnx", plan)
    assert observed.mode == "static QDQ" and "moving-average" in observed.note
    crops = [c.transpose(1, 2, 0) for b in plan.batches for c in b]
    minmax = quantize_int8(fp32, tmp_path / "mm.onnx", crops, crop=32, limit=len(crops))
    assert _output_scale(observed.path) < _output_scale(minmax.path)
    with pytest.raises(KdrestoreError, match="observer calibration"):
        quantize_int8(fp32, tmp_path / "bad.onnx", ObserverCalibration([np.zeros((2, 3, 8, 8), np.float32)]))
