"""NAFNet's local channel-attention statistics (``attention_window``, TLC): the window mean is the brute-force
mean of a window kept inside the image, a window at least as large as the input is the published global
average, the option loads the same checkpoints, and the ONNX trace serves inputs smaller and larger than
the window."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdrestore.errors import KdrestoreError
from kdrestore.models.nafnet import NAFNet, WindowMean

SMALL = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))


def _brute_window_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    kh, kw = min(k, h), min(k, w)
    out = torch.empty_like(x)
    for i in range(h):
        i0 = min(max(i - kh // 2, 0), h - kh)
        for j in range(w):
            j0 = min(max(j - kw // 2, 0), w - kw)
            out[..., i, j] = x[..., i0:i0 + kh, j0:j0 + kw].mean((-2, -1))
    return out


@pytest.mark.parametrize("k,hw", [(5, (13, 17)), (4, (9, 4)), (1, (6, 7)), (30, (11, 12))])
def test_window_mean_is_the_mean_of_a_window_inside_the_image(k, hw):
    x = torch.randn(2, 3, *hw, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(WindowMean(k)(x), _brute_window_mean(x, k), atol=1e-5)


def _pair(window: int) -> tuple[NAFNet, NAFNet]:
    torch.manual_seed(0)
    plain = NAFNet(**SMALL)
    with torch.no_grad():  # non-zero scales, so every block's attention matters
        for name, p in plain.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.uniform_(0.2, 0.5)
    local = NAFNet(**SMALL, attention_window=window)
    local.load_state_dict(plain.state_dict())  # same keys: the option loads every checkpoint of the model
    return plain.eval(), local.eval()


def test_window_as_large_as_the_input_is_the_global_average_and_smaller_is_local():
    plain, local = _pair(32)
    assert [m.window for m in local.modules() if isinstance(m, WindowMean)] == [32, 16, 8, 16, 32]
    with torch.no_grad():
        x = torch.rand(1, 3, 32, 28)
        assert torch.allclose(plain(x), local(x), atol=1e-5)
        x = torch.rand(1, 3, 96, 80) * 0.2
        x[..., 48:] += 0.8  # a dark and a bright half: local statistics differ from the global ones
        assert (plain(x) - local(x)).abs().max() > 5e-4


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "128"])
def test_bad_window_is_refused(bad):
    with pytest.raises(KdrestoreError, match="attention_window"):
        NAFNet(**SMALL, attention_window=bad)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_onnx_trace_serves_inputs_smaller_and_larger_than_the_window(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from kdrestore.deploy.export import export_onnx, onnx_parity

    _, local = _pair(24)
    path = export_onnx(local, tmp_path / "tlc.onnx", 3, example_hw=(64, 64))
    sizes = [(20, 18), (64, 64), (101, 83)]
    report = onnx_parity(local, path, sizes=sizes)
    assert not report.errors, report.describe()
    assert report.max_diff < 1e-4, report.describe()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_int8_keeps_the_running_sums_in_float(tmp_path):
    """A running sum grows with the image, so no range calibrated on small crops holds for it: the window
    means stay float under INT8, and a model without them has none to keep."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime.quantization")
    from kdrestore.deploy.export import export_onnx, quantize_int8, running_sum_nodes

    plain, local = _pair(24)
    assert running_sum_nodes(export_onnx(plain, tmp_path / "plain.onnx", 3)) == []
    path = export_onnx(local, tmp_path / "tlc.onnx", 3)
    kept = running_sum_nodes(path)
    assert kept and all("/sca/sca.0/" in n for n in kept)
    assert any(n.endswith("CumSum") for n in kept)
    rng = np.random.default_rng(0)
    result = quantize_int8(path, tmp_path / "tlc.int8.onnx", [rng.random((40, 40, 3), dtype=np.float32)])
    assert result.mode == "static QDQ" and "running-sum node(s) kept in float" in result.note
