"""ONNX export with dynamic batch/height/width, parity checks, INT8 quantization and its PSNR cost.

Export uses the TorchScript tracer (``dynamo=False``). Sizes read from ``x.shape`` are traced values
there, and :func:`kdrestore.models.common.pad_to_multiple` pads with tensor arithmetic under
tracing, so one graph serves every input size; :func:`onnx_parity` proves it at several sizes.
``onnx`` and ``onnxruntime`` are optional (``pip install 'kdrestore[export]'``) and imported lazily.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..version import __version__
from ..errors import KdrestoreError
from ..fsutil import atomic_path, current_umask

INPUT, OUTPUT = "input", "output"
PathLike = str | os.PathLike


def _require() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise KdrestoreError("ONNX export needs the optional packages onnx and onnxruntime: "
                             "pip install 'kdrestore[export]'") from exc
    return onnx, onnxruntime


def model_multiple(model: nn.Module) -> int:
    """The padding multiple of a model (``model.multiple`` or that of a wrapped ``body``), else 1."""
    for m in (model, getattr(model, "body", None)):
        if isinstance(getattr(m, "multiple", None), int):
            return int(m.multiple)  # type: ignore[union-attr]
    return 1


def export_onnx(model: nn.Module, path: PathLike, channels: int, opset: int = 17, dynamic: bool = True,
                example_hw: tuple[int, int] = (64, 64), metadata: dict[str, Any] | None = None) -> Path:
    """Export ``model`` (input ``B x channels x H x W``) to ONNX, atomically; returns the path.

    ``dynamic``: batch, height and width are free axes. ``metadata`` (plus channels, multiple and
    the kdrestore version) is stored in the file's ``metadata_props`` for the ONNX backend.
    """
    onnx, _ = _require()
    model = model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    example = torch.rand(1, channels, *example_hw, generator=torch.Generator().manual_seed(0)).to(device)
    axes = {0: "batch", 2: "height", 3: "width"}
    meta = {"channels": channels, "multiple": model_multiple(model), "kdrestore_version": __version__,
            **(metadata or {})}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer/deprecation notes; parity at several sizes is the proof
        try:
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[INPUT], output_names=[OUTPUT], do_constant_folding=True,
                              dynamic_axes={INPUT: axes, OUTPUT: axes} if dynamic else None)
        except Exception as exc:
            raise KdrestoreError(f"ONNX export of {type(model).__name__} failed: {exc}") from exc
        proto = onnx.load(str(tmp))
        if not proto.graph.input:
            raise KdrestoreError(f"{type(model).__name__} cannot be exported: its output does not depend on the "
                                 "traced input (the model computes outside torch, e.g. with numpy)")
        onnx.helper.set_model_props(proto, {f"kdrestore.{k}": str(v) for k, v in meta.items()})
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return Path(path)


def onnx_session(path: PathLike, threads: int | None = None, optimize: bool = True) -> Any:
    """An onnxruntime CPU inference session; ``optimize=False`` runs the graph op by op (no fusion: a QDQ model's
    integer convolutions as dequantize, float convolution, quantize)."""
    _, ort = _require()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise KdrestoreError(f"cannot load ONNX model {path}: {exc}") from exc


class OnnxModel:
    """An ONNX file run with onnxruntime as a ``Tensor -> Tensor`` callable (the Restorer's backend)."""

    def __init__(self, path: PathLike, threads: int | None = None, optimize: bool = True) -> None:
        self.path = Path(path)
        self.session = onnx_session(path, threads, optimize)
        props = self.session.get_modelmeta().custom_metadata_map
        self.meta = {k.removeprefix("kdrestore."): v for k, v in props.items()}
        dim = self.session.get_inputs()[0].shape[1]
        self.channels = int(dim) if isinstance(dim, int) else int(self.meta.get("channels", 3))
        self.multiple = int(self.meta.get("multiple", 1))

    def __call__(self, x: Tensor) -> Tensor:
        out = self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x.detach().cpu().float().numpy())})[0]
        return torch.from_numpy(out).to(x.device)


@dataclass
class ParityReport:
    """Max absolute difference torch vs onnxruntime per input size (``inf`` where a size failed)."""

    diffs: dict[tuple[int, int], float] = field(default_factory=dict)
    errors: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def max_diff(self) -> float:
        return max(self.diffs.values(), default=math.inf)

    def describe(self) -> str:
        parts = [f"{h}x{w}: " + (f"{d:.2e}" if (h, w) not in self.errors else f"FAILED ({self.errors[(h, w)]})")
                 for (h, w), d in self.diffs.items()]
        return "max |torch - onnx| " + ", ".join(parts)


@torch.no_grad()
def onnx_parity(model: nn.Module, onnx_path: PathLike,
                sizes: Sequence[tuple[int, int]] = ((37, 53), (64, 64), (131, 97)),
                batch: int = 1, seed: int = 0) -> ParityReport:
    """Run random ``batch x C x H x W`` inputs at every size through both; report the differences."""
    runner = OnnxModel(onnx_path)
    model = model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    report = ParityReport()
    for h, w in sizes:
        x = torch.rand(batch, runner.channels, h, w, generator=gen)
        try:
            expected = model(x.to(device)).float().cpu()
            got = runner(x)
            if got.shape != expected.shape:
                raise ValueError(f"output shape {tuple(got.shape)} != torch {tuple(expected.shape)}")
            report.diffs[(h, w)] = float((got - expected).abs().max())
        except Exception as exc:  # onnxruntime raises its own error types
            report.diffs[(h, w)] = math.inf
            report.errors[(h, w)] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return report


def _calibration_arrays(images: Iterable[Any], channels: int, crop: int, limit: int) -> list[np.ndarray]:
    """``1 x C x h x w`` float32 center crops of image files, folders or ``H x W x C`` arrays."""
    from ..data.imageio import list_images, read_image
    from ..data.synth import as_mode

    mode = "gray" if channels == 1 else "rgb"
    sources: list[Any] = []
    for item in images:
        if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
            sources += list_images(item)
        else:
            sources.append(item)
    out = []
    for src in sources[:limit]:
        a = read_image(src, mode) if isinstance(src, (str, os.PathLike)) else as_mode(np.asarray(src), mode)
        h, w = min(crop, a.shape[0]), min(crop, a.shape[1])
        y, x = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
        out.append(np.ascontiguousarray(a[y:y + h, x:x + w].transpose(2, 0, 1)[None], np.float32))
    if not out:
        raise KdrestoreError("no calibration images given (or none readable)")
    return out


def running_sum_nodes(onnx_path: PathLike) -> list[str]:
    """Nodes that stay float under INT8: every node in the scope of a cumulative sum (NAFNet's windowed
    attention means). A running sum grows with the image, so no range calibrated on small crops holds for it
    (measured on the windowed dehaze-small: 25.67 dB in fp32, 20.98 with those nodes quantized)."""
    onnx, _ = _require()
    graph = onnx.load(str(onnx_path)).graph
    scopes = {n.name.rsplit("/", 1)[0] + "/" for n in graph.node if n.op_type == "CumSum" and "/" in n.name}
    return [n.name for n in graph.node if any(n.name.startswith(scope) for scope in scopes)]


def _preprocess(q: Any, src: Path, dest: Path) -> None:
    """ONNX shape inference + graph optimization, as onnxruntime recommends before quantizing.

    Symbolic shape inference is skipped: it cannot follow the size-dependent padding gathers, and
    on failure it leaves ``sym_shape_infer_temp.onnx`` and its data files in the working folder.
    """
    try:
        q.quant_pre_process(str(src), str(dest), skip_symbolic_shape=True)
    except Exception:
        shutil.copyfile(src, dest)


@dataclass
class QuantResult:
    path: Path
    mode: str  # "static QDQ" or "dynamic"
    note: str = ""
    bytes_fp32: int = 0
    bytes_int8: int = 0
    weights: str = ""  # "s8" or "u8" (static QDQ)
    kernel_agreement_db: float | None = None  # see kernel_agreement_db()


@dataclass
class ObserverCalibration:
    """Calibration as ``kd-qat``'s fake-quantisation observed its ranges while training
    (:class:`kdrestore.models.fakequant.ActFakeQuant`): batches of training-size crops, each activation's range the
    moving average of the per-batch min/max (onnxruntime's ``CalibMovingAverage``), not the min/max over all data.
    The quantisation-aware weights learned to work within those narrower ranges."""

    batches: list[np.ndarray]  # B x C x h x w float32
    constant: float = 0.05  # moving-average constant (the first batch's weight is (1 - c) ** (n - 1))

    def describe(self) -> str:
        b = self.batches[0].shape
        return (f"moving-average calibration (constant {self.constant:g}) on {len(self.batches)} batches of "
                f"{b[0]} crops of {b[2]} px, as kd-qat observed its ranges")


# Without VNNI, onnxruntime's x86 kernels for uint8 activations x int8 weights add pairs of products in 16 bits
# (VPMADDUBSW) and saturate (:func:`s8_kernels_saturate` detects it). On a Zen 1 CPU (`benchmarks/int8.py`, the
# shipped students) s8 weights then lost 0.3-4.5 dB of PSNR; u8 weights lost at most 0.01 dB. On a Zen 4 CPU (VNNI)
# s8 fused equalled s8 exact for every student, at 42-63 dB of agreement, and ran 1.3-3.7x faster than u8.
# A model whose fused kernels are measured below KERNEL_WARNING_DB (PSNR, data range 1) from its own QDQ arithmetic
# gets a warning, and ``auto`` tries u8 weights for it.
KERNEL_WARNING_DB = 40.0
WEIGHT_FORMATS = ("auto", "s8", "u8")


def _calibration_reader(arrays: Sequence[np.ndarray]) -> Any:
    """An onnxruntime calibration reader that feeds ``arrays`` (each one model input) once, in order."""
    from onnxruntime import quantization as q

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{INPUT: a} for a in arrays])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    return Reader()


def saturation_probe(folder: PathLike) -> tuple[Path, np.ndarray]:
    """The INT8 model and input of :func:`s8_kernels_saturate`, written into ``folder``: one 16-channel 3x3
    convolution quantized as the export quantizes (static QDQ, per-channel s8 weights, u8 activations), with its
    activations at 255 and its weights at 127, so that every pair of products (64,770) overflows 16 bits."""
    onnx, _ = _require()
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime import quantization as q

    channels = 16
    weight = numpy_helper.from_array(np.full((4, channels, 3, 3), 0.01, np.float32), "weight")
    graph = helper.make_graph([helper.make_node("Conv", [INPUT, "weight"], [OUTPUT], pads=[1, 1, 1, 1])], "probe",
                              [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, channels, 6, 6])],
                              [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, 4, 6, 6])], [weight])
    x = np.ones((1, channels, 6, 6), np.float32)
    fp32, int8 = Path(folder) / "probe.onnx", Path(folder) / "probe-int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
    logging.disable(logging.WARNING)
    try:
        q.quantize_static(str(fp32), str(int8), _calibration_reader([x]), quant_format=q.QuantFormat.QDQ,
                          per_channel=True, weight_type=q.QuantType.QInt8, activation_type=q.QuantType.QUInt8)
    finally:
        logging.disable(logging.NOTSET)
    return int8, x


@functools.lru_cache(maxsize=1)
def s8_kernels_saturate() -> bool:
    """Whether this CPU's onnxruntime kernels compute uint8 activations x int8 weights with 16-bit pair sums that
    saturate (x86 without VNNI: VPMADDUBSW): the :func:`saturation_probe` run with the fused kernels differs from
    the same graph run op by op. Seen: no on a Zen 4 (AVX-512 VNNI); yes on the same machine under
    ``qemu-x86_64 -cpu Haswell`` (AVX2), as the shipped models' s8 losses on a Zen 1 said. A probe that cannot run
    says no: the measured agreement of each model (:func:`auto_weight_format`) still guards it."""
    try:
        with tempfile.TemporaryDirectory(prefix="kdrestore-probe-") as tmp:
            int8, x = saturation_probe(tmp)
            fused, exact = (onnx_session(int8, 1, optimize).run([OUTPUT], {INPUT: x})[0] for optimize in (True, False))
    except Exception as exc:  # onnxruntime's own errors have no common base class
        warnings.warn(f"INT8: the u8 x s8 saturation probe failed ({type(exc).__name__}: {exc}); "
                      "the weights follow each model's measured kernel agreement", RuntimeWarning, stacklevel=2)
        return False
    return bool(np.abs(fused - exact).max() > 1e-3 * np.abs(exact).max())


def auto_weight_format(s8_agreement_db: float | None = None) -> str:
    """The weights ``--int8-weights auto`` gives: u8 where this CPU's u8 x s8 kernels saturate
    (:func:`s8_kernels_saturate`) or where an s8 model's fused kernels were measured below :data:`KERNEL_WARNING_DB`
    from its exact arithmetic (``s8_agreement_db``, :func:`kernel_agreement_db`); else s8."""
    if s8_kernels_saturate() or (s8_agreement_db is not None and s8_agreement_db < KERNEL_WARNING_DB):
        return "u8"
    return "s8"


def kernel_agreement_db(int8_onnx: PathLike, x: np.ndarray) -> float:
    """PSNR (dB, data range 1) between ``int8_onnx`` run with this CPU's fused integer kernels and the same graph
    run op by op with graph optimisations off (each QDQ pair as float arithmetic: what the quantized model means),
    at most 99 (agreement to rounding; JSON has no infinity)."""
    feed = {INPUT: np.ascontiguousarray(x, np.float32)}
    fused, exact = (onnx_session(int8_onnx, 1, optimize).run([OUTPUT], feed)[0] for optimize in (True, False))
    mse = float(np.mean((fused.astype(np.float64) - exact) ** 2))
    return 99.0 if mse <= 10 ** -9.9 else 10 * math.log10(1 / mse)


def quantize_int8(onnx_in: PathLike, onnx_out: PathLike,
                  calibration_images: Iterable[Any] | ObserverCalibration, *,
                  crop: int = 128, limit: int = 16, per_channel: bool = True,
                  op_types: Sequence[str] | None = None, weights: str = "auto") -> QuantResult:
    """INT8 quantization: static QDQ (MinMax calibration on ``calibration_images``, the model's
    degraded inputs: files, folders or arrays; or an :class:`ObserverCalibration`; per-channel 8-bit weights, uint8
    activations), falling back to dynamic (weight-only) quantization, with the reason in ``note``, when static fails.
    ``op_types``: quantize only these op types (e.g. ``["Conv"]``); default: all that onnxruntime can.
    ``weights``: ``s8`` (signed, symmetric: what ``kd-qat`` simulates, the fast path of VNNI CPUs), ``u8``, or
    ``auto``: :func:`auto_weight_format`, s8 unless this CPU's u8 x s8 kernels saturate (x86 without VNNI) or
    compute the s8 model more than :data:`KERNEL_WARNING_DB` away from its exact QDQ arithmetic
    (:func:`kernel_agreement_db`), then u8, the reason in ``note``. The file is then made for CPUs like this one;
    ``u8`` is the choice that holds on any.
    """
    if weights not in WEIGHT_FORMATS:
        raise KdrestoreError(f"INT8 weights: one of {', '.join(WEIGHT_FORMATS)} expected, got {weights!r}")
    _require()
    from onnxruntime import quantization as q

    runner = OnnxModel(onnx_in)
    if isinstance(calibration_images, ObserverCalibration):
        observer = calibration_images
        if not observer.batches or any(b.ndim != 4 or b.shape[1] != runner.channels for b in observer.batches):
            raise KdrestoreError(f"observer calibration: batches of N x {runner.channels} x H x W arrays expected")
        data = [np.ascontiguousarray(b, np.float32) for b in observer.batches]
        extra = {"CalibMovingAverage": True, "CalibMovingAverageConstant": observer.constant}
        calib_note = observer.describe()
    else:
        data = _calibration_arrays(calibration_images, runner.channels, crop, limit)
        extra, calib_note = {}, f"MinMax calibration on {len(data)} image(s)"

    dest = Path(onnx_out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".quant-", dir=dest.parent) as tmpdir:
        pre, tmp = Path(tmpdir) / "pre.onnx", Path(tmpdir) / "int8.onnx"
        _preprocess(q, Path(onnx_in), pre)
        mode, note = "static QDQ", f"{calib_note}, per-channel={per_channel}"
        ops = list(op_types) if op_types else None
        keep_float = running_sum_nodes(pre)
        if keep_float:
            note += f", {len(keep_float)} running-sum node(s) kept in float"
        formats: tuple[str, ...] = (weights,)
        if weights == "auto":
            formats = ("s8", "u8") if auto_weight_format() == "s8" else ("u8",)
            if formats == ("u8",):
                note += ", s8 weights not tried (this CPU's u8 x s8 kernels saturate: x86 without VNNI)"
        fmt, agreement = "", None
        logging.disable(logging.WARNING)  # onnxruntime.quantization logs advice on the root logger
        try:
            for fmt in formats:
                q.quantize_static(str(pre), str(tmp), _calibration_reader(data), quant_format=q.QuantFormat.QDQ,
                                  per_channel=per_channel,
                                  weight_type=q.QuantType.QInt8 if fmt == "s8" else q.QuantType.QUInt8,
                                  op_types_to_quantize=ops, activation_type=q.QuantType.QUInt8,
                                  calibration_providers=["CPUExecutionProvider"], nodes_to_exclude=keep_float,
                                  extra_options=extra)
                agreement = kernel_agreement_db(tmp, data[0])  # also the smoke run: raises where the model fails
                if fmt == formats[-1] or auto_weight_format(agreement) == "s8":
                    break
                note += (f", s8 weights refused (this CPU's fused kernels {agreement:.1f} dB from the exact QDQ "
                         "arithmetic)")
            note += f", {fmt} weights (fused kernels {agreement:.1f} dB from exact)"
            if agreement < KERNEL_WARNING_DB:
                note += " WARNING: this CPU's integer kernels do not compute this model faithfully"
        except Exception as exc:
            fmt, agreement = "", None
            mode, note = "dynamic", f"static quantization failed ({type(exc).__name__}: {str(exc)[:200]})"
            q.quantize_dynamic(str(pre), str(tmp), per_channel=per_channel, weight_type=q.QuantType.QUInt8,
                               op_types_to_quantize=ops, nodes_to_exclude=keep_float)
            OnnxModel(tmp)(torch.from_numpy(data[0]))
        finally:
            logging.disable(logging.NOTSET)
        os.chmod(tmp, 0o666 & ~current_umask())  # as a file created by open()
        os.replace(tmp, dest)
    return QuantResult(dest, mode, note, Path(onnx_in).stat().st_size, dest.stat().st_size, fmt, agreement)


def int8_psnr_cost(fp32_onnx: PathLike, int8_onnx: PathLike, samples: Iterable[Any],
                   convention: Any = None) -> dict[str, Any]:
    """Mean PSNR of the fp32 and the int8 model against clean references, and the difference.

    ``samples``: ``(degraded, clean)`` pairs of ``H x W x C`` arrays, or dataset items with
    ``input``/``target`` ``C x H x W`` tensors. ``convention``: a
    :class:`~kdrestore.evaluate.metrics.Convention` (default: RGB, output clipped to [0, 1]).
    """
    from ..evaluate.metrics import Convention, psnr

    conv = convention or Convention()
    fp32, int8 = OnnxModel(fp32_onnx), OnnxModel(int8_onnx)
    scores: list[tuple[float, float]] = []
    for s in samples:
        if isinstance(s, dict):
            x, clean = s["input"][None].float(), s["target"][None].float()
        else:
            x = torch.from_numpy(np.ascontiguousarray(np.asarray(s[0], np.float32).transpose(2, 0, 1)))[None]
            clean = torch.from_numpy(np.ascontiguousarray(np.asarray(s[1], np.float32).transpose(2, 0, 1)))[None]
        scores.append((psnr(fp32(x), clean, conv), psnr(int8(x), clean, conv)))
    if not scores:
        raise KdrestoreError("int8_psnr_cost: no samples")
    a, b = (float(np.mean([s[i] for s in scores])) for i in (0, 1))
    return {"fp32_psnr": a, "int8_psnr": b, "cost_db": a - b, "images": len(scores), "convention": conv.describe()}


def builtin_samples(task: str, channels: int, split: str = "test", limit: int = 4,
                    crop: int = 128, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Degraded/clean crops of the built-in images with ``task``'s default degradation (fixed seed);
    ``params`` update the degradation's defaults (e.g. a blind denoiser's sigma range)."""
    from ..data.builtin import builtin_dataset

    try:
        ds = builtin_dataset(task, split, mode="gray" if channels == 1 else "rgb", crop=crop,  # type: ignore[arg-type]
                             limit=limit, fixed=True, params=params)
    except (ValueError, FileNotFoundError) as exc:
        raise KdrestoreError(f"built-in {task} data unavailable: {exc}") from exc
    return [ds[i] for i in range(len(ds))]


def calibration_inputs(task: str, channels: int, card: dict[str, Any] | None = None,
                       limit: int = 16) -> list[np.ndarray]:
    """Degraded built-in training crops (``H x W x C``) for INT8 calibration.

    The task's default degradation, unless ``card`` (a shipped student's model card) says the student trained on
    the same degradation with other parameters: then those (a blind denoiser's sigma 0-55 rather than 25), so
    the observed activation ranges cover every input the student was made for.
    """
    return [s["input"].numpy().transpose(1, 2, 0)
            for s in builtin_samples(task, channels, "train", limit, params=_training_params(task, card))]


def _training_params(task: str, card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's degradation parameters when it trained on ``task``'s own degradation, else None (defaults)."""
    from ..data.builtin import TASKS

    data = ((card or {}).get("training") or {}).get("data") or {}
    same = task in TASKS and data.get("degradation") == TASKS[task][0] and isinstance(data.get("params"), dict)
    return dict(data["params"]) if same else None


def calibration_for(task: str, channels: int, card: dict[str, Any] | None = None
                    ) -> list[np.ndarray] | ObserverCalibration:
    """The INT8 calibration a shipped student should get: a ``kd-qat`` student (its card's ``training.method``)
    the :class:`ObserverCalibration` of its training (crops of its training size and batch, degraded as it was
    trained), any other the min/max of :func:`calibration_inputs`."""
    training = (card or {}).get("training") or {}
    if training.get("method") != "kd-qat":
        return calibration_inputs(task, channels, card)
    return observer_batches(task, channels, card, crop=int(training.get("crop") or 64),
                            batch_size=int(training.get("batch_size") or 8))


def observer_batches(task: str, channels: int, card: dict[str, Any] | None = None, *, batches: int = 100,
                     batch_size: int = 8, crop: int = 64, seed: int = 0) -> ObserverCalibration:
    """``batches`` batches of random ``crop``-pixel crops of the built-in training images, degraded as
    :func:`calibration_inputs` says (fresh, reproducible draws per batch)."""
    from ..data.builtin import builtin_dataset

    ds = builtin_dataset(task, "train", mode="gray" if channels == 1 else "rgb", crop=crop,  # type: ignore[arg-type]
                         params=_training_params(task, card), fixed=False, seed=seed)
    if len(ds) == 0:
        raise KdrestoreError(f"built-in {task} training images: none to calibrate on")
    crops: list[np.ndarray] = []
    epoch = 0
    while len(crops) < batches * batch_size:
        ds.set_epoch(epoch)
        crops += [item["input"].numpy() for item in (ds[i] for i in range(len(ds))) if item is not None]
        epoch += 1
    return ObserverCalibration([np.stack(crops[i:i + batch_size]).astype(np.float32)
                                for i in range(0, batches * batch_size, batch_size)])
