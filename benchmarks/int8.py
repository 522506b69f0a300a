"""INT8 on this CPU: each shipped student's static INT8 ONNX with signed (s8) and unsigned (u8) weights, what the
quantized graph means against what this CPU's integer kernels compute, and their speed, in one run.

    python benchmarks/int8.py [--models NAME ...] [--int8-images 10] [--threads 1] [--json OUT.json]

For each student (calibrated as the ship bench calibrates it, ``kdrestore.deploy.export.calibration_for``) and each
weight format: PSNR of the fp32 ONNX model, of the INT8 model run with onnxruntime's fused integer kernels
("fused"), and of the same INT8 graph run op by op ("exact": each quantize / dequantize pair as float arithmetic,
the arithmetic kd-qat simulates), on the first --int8-images images of the ship bench's test set; the kernels' agreement
with the exact arithmetic (``kernel_agreement_db``); and the median time of one call on the ship bench's timing
input. Without VNNI, x86 u8 x s8 kernels add pairs of products in 16 bits and saturate: "fused" falls below "exact"
for s8 weights; u8 weights take kernels without that. The format ``kdrestore export --int8`` picks by default
(``auto``) is printed for each student, and whether this CPU's kernels saturate
(``kdrestore.deploy.export.s8_kernels_saturate``).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kdrestore.data.tasks import eval_dataset
from kdrestore.deploy import export as ex
from kdrestore.evaluate.metrics import TASK_CONVENTIONS, psnr
from kdrestore.evaluate.profile import measure_latencies
from kdrestore.experiments.ship import ShipTarget, bench_shape, ship_target
from kdrestore.fsutil import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ship import machine, parse_student_args  # noqa: E402  (benchmarks/ship.py: shared options)


def cpu_flags() -> list[str]:
    """The integer dot-product extensions this CPU reports (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})


def mean_psnr(model: Any, samples: list[dict[str, Any]], task: str) -> float:
    """Mean PSNR of ``model`` (a ``Tensor -> Tensor`` callable) on dataset items, under ``task``'s convention."""
    return float(np.mean([psnr(model(s["input"][None].float()), s["target"][None].float(), TASK_CONVENTIONS[task])
                          for s in samples]))


def bench_student(target: ShipTarget, data_root: Path, images: int, threads: int, repeats: int,
                  warmup: int) -> dict[str, Any]:
    ds, _ = eval_dataset(target.task, data_root / target.test_set, sigma=target.sigma,
                         mode="gray" if target.channels == 1 else "rgb", limit=images, holdout=target.holdout)
    samples = [ds[i] for i in range(len(ds))]
    calibration = ex.calibration_for(target.task, target.channels, target.card)
    with tempfile.TemporaryDirectory(prefix="kdrestore-int8-") as tmp:
        fp32 = ex.export_onnx(target.model, Path(tmp) / "model.onnx", target.channels)
        runners = {"fp32": ex.OnnxModel(fp32, threads)}
        rows: dict[str, Any] = {}
        for fmt in ("s8", "u8"):
            q = ex.quantize_int8(fp32, Path(tmp) / f"{fmt}.onnx", calibration, weights=fmt)
            runners[fmt] = ex.OnnxModel(q.path, threads)
            rows[fmt] = {"kernel_agreement_db": q.kernel_agreement_db, "note": q.note,
                         "fused_psnr": mean_psnr(runners[fmt], samples, target.task),
                         "exact_psnr": mean_psnr(ex.OnnxModel(q.path, threads, optimize=False), samples, target.task)}
        fp32_psnr = mean_psnr(runners["fp32"], samples, target.task)
        latency = measure_latencies(runners, bench_shape(target.channels), repeats=repeats, warmup=warmup)
    ms = {name: lat.median_ms for name, lat in latency.items()}
    for fmt in ("s8", "u8"):
        rows[fmt].update(ms=ms[fmt], x_fp32=ms["fp32"] / ms[fmt])
    return {"name": target.name, "task": target.task, "test_set": target.test_set, "images": len(samples),
            "fp32_psnr": fp32_psnr, "fp32_ms": ms["fp32"], "formats": rows,
            "auto": ex.auto_weight_format(rows["s8"]["kernel_agreement_db"]),
            "timing_input": list(bench_shape(target.channels))}


def format_rows(results: list[dict[str, Any]]) -> str:
    lines = [f"{'student':20} {'fp32':>6} {'s8 exact':>8} {'s8 fused':>8} {'agree':>6} {'u8 exact':>8} "
             f"{'u8 fused':>8} {'agree':>6} {'fp32 ms':>8} {'s8 ms':>7} {'u8 ms':>7} auto"]
    for r in results:
        s8, u8 = r["formats"]["s8"], r["formats"]["u8"]
        lines.append(f"{r['name']:20} {r['fp32_psnr']:>6.2f} {s8['exact_psnr']:>8.2f} {s8['fused_psnr']:>8.2f} "
                     f"{s8['kernel_agreement_db']:>6.1f} {u8['exact_psnr']:>8.2f} {u8['fused_psnr']:>8.2f} "
                     f"{u8['kernel_agreement_db']:>6.1f} {r['fp32_ms']:>8.1f} {s8['ms']:>7.1f} {u8['ms']:>7.1f} "
                     f"{r['auto']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args, names = parse_student_args(__doc__ or "", argv)
    results = []
    for name in names:
        result = bench_student(ship_target(name, args.pretrained_root), Path(args.data), args.int8_images,
                               args.threads, args.repeats, args.warmup)
        results.append(result)
        print(format_rows([result]).splitlines()[-1] if results[:-1] else format_rows([result]), flush=True)
    info = {**machine(args.threads), "int_dot_product_flags": cpu_flags(),
            "u8_s8_kernels_saturate": ex.s8_kernels_saturate()}
    print(f"PSNR (dB) on the first {args.int8_images} images of each ship-bench test set; agree: fused kernels vs "
          f"exact QDQ arithmetic (dB); ms: one call on the ship bench's timing input, median of {args.repeats}")
    print(f"machine: {info['processor']}, {info['cpus']} CPUs, {args.threads} thread(s), onnxruntime "
          f"{info['onnxruntime']}, integer dot-product flags: {' '.join(info['int_dot_product_flags']) or 'none'}, "
          f"u8 x s8 kernels saturate: {'yes' if info['u8_s8_kernels_saturate'] else 'no'}")
    if args.json:
        atomic_write_json(args.json, {"kind": "kdrestore-int8-bench", "machine": info, "images": args.int8_images,
                                      "results": results})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
