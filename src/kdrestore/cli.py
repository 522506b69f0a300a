"""The ``kdrestore`` command line: one sub-command per job, each a thin layer over the Python API."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__

Handler = Callable[[argparse.Namespace], int]


def _cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import build_model, list_models
    from .evaluate.profile import count_params

    rows = []
    for entry in list_models():
        if args.task and entry.meta.get("task") not in (args.task, "any"):
            continue
        params = count_params(build_model(entry.name))
        pub = entry.meta.get("published", {})
        rows.append((entry.name, entry.meta.get("family", ""), entry.meta.get("task", ""),
                     f"{params:,}", pub.get("text", "")))
    _print_table(("model", "family", "task", "params", "published"), rows)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate.api import evaluate_named
    from .fsutil import atomic_write_json

    result = evaluate_named(
        args.model, args.data, args.task, weights=args.weights, peers=args.peers, sigma=args.sigma,
        space=args.metric_space, limit=args.limit, seed=args.seed, rule=args.rule,
        device=args.device, progress=not args.quiet,
    )
    _print_table(
        ("model", "task", "images", "PSNR", "SSIM", "input PSNR", "params", "GMACs", "ms/img"),
        [(result.model, result.task, str(len(result.images)), f"{result.psnr:.3f}", f"{result.ssim:.4f}",
          f"{result.input_psnr:.2f}", f"{result.params:,}", f"{result.macs / 1e9:.2f}",
          f"{result.ms_per_image:.0f}")],
    )
    print(f"convention: {result.convention.describe()}")
    if result.macs_shape:
        print(f"MACs measured at input {tuple(result.macs_shape)}; ms = median wall time per image on {args.device}")
    if result.failed:
        print(f"{len(result.failed)} image(s) could not be read and were skipped:", file=sys.stderr)
        for name, err in result.failed:
            print(f"  {name}: {err}", file=sys.stderr)
    if args.json:
        atomic_write_json(args.json, result.to_dict())
        print(f"wrote {args.json}")
    return 0 if result.images else 1


def _cmd_degrade(args: argparse.Namespace) -> int:
    from .degrade.folder import degrade_folder

    params = dict(_parse_kv(kv) for kv in args.param)
    report = degrade_folder(args.input, args.output, args.degradation, seed=args.seed, params=params,
                            mode=args.mode, progress=not args.quiet)
    print(f"wrote {report['written']} degraded image(s) and params.json to {args.output}")
    for name, err in report["failed"]:
        print(f"  skipped {name}: {err}", file=sys.stderr)
    return 0 if report["written"] else 1


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .engine import Trainer

    if args.config is None and args.resume is None:
        raise SystemExit("kdrestore train: give a CONFIG file, or --resume RUN_DIR")
    config = args.config or str(Path(args.resume) / "config.yaml")
    cfg = load_config(config, args.set)
    if args.command == "distill" and not cfg.distill:
        raise SystemExit(f"kdrestore distill: {config} has no 'distill' section (use 'kdrestore train')")
    run_dir = Path(args.resume or args.run_dir or Path(cfg.output_dir) / cfg.name)
    final = Trainer(cfg, run_dir, resume=args.resume is not None, progress=not args.quiet).fit()
    if "val_psnr" in final:
        print(f"{cfg.name}: step {final['steps']}, val PSNR {final['val_psnr']:.3f} dB, "
              f"SSIM {final['val_ssim']:.4f} ({final['convention']['text']})")
    print(f"run directory: {run_dir}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import os

    from .evaluate.bench import format_distill_bench, run_distill_bench
    from .fsutil import atomic_write_json

    data = args.data or os.environ.get("KDRESTORE_DATA")
    if not data:
        raise SystemExit("kdrestore bench: give --data (the benchmark data root) or set KDRESTORE_DATA")
    methods = args.what == "methods"
    tasks = args.task or (["denoise", "dehaze"] if methods else ["denoise", "derain", "dehaze"])
    if methods and "derain" in tasks:
        raise SystemExit("kdrestore bench methods: covers dehaze (SPDD, KDDN) and denoise (HMDS), not derain")
    results = []
    common = dict(peers=args.peers, steps=args.steps, batch=args.batch, crop=args.crop, seed=args.seed,
                  methods=args.methods, test_limit=args.test_limit, progress=not args.quiet)
    for task in tasks:
        if methods:  # SPDD / KDDN (dehaze), HMDS (denoise)
            from .evaluate.bench_methods import format_methods_bench, run_methods_bench

            for result in run_methods_bench(task, data, sets=args.sets, sigmas=args.sigma,
                                            teacher_steps=args.teacher_steps, **common):
                results.append(result)
                print(format_methods_bench(result) + "\n", flush=True)
            continue
        result = run_distill_bench(task, data, **common)
        results.append(result)
        print(format_distill_bench(result) + "\n", flush=True)
    if args.json:
        atomic_write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.output), peers=args.peers, progress=not args.quiet)
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from .deploy.restore import load, restore_files
    from .errors import KdrestoreError

    if not args.model:
        raise KdrestoreError("give --model: a run directory, a registry model with --weights, or an .onnx file "
                             "(default models per task come with the shipped pretrained students)")
    restorer = load(args.model, args.device, weights=args.weights, peers=args.peers, task=args.task,
                    tile=args.tile, overlap=args.overlap, max_pixels=_budget(args.max_megapixels),
                    backend=args.backend, onnx=args.onnx, allow_color_conversion=args.allow_color_conversion)
    print(f"model: {restorer.source} ({restorer.backend})")
    summary = restore_files(restorer, args.input, args.output, progress=not args.quiet)
    print(f"wrote {len(summary.written)} image(s) to {args.output}")
    for name, err in summary.failed:
        print(f"  failed {name}: {err}", file=sys.stderr)
    return 1 if summary.failed else 0


def _budget(megapixels: float | None) -> int | None:
    from .deploy.restore import DEFAULT_MAX_PIXELS

    if megapixels is None:
        return DEFAULT_MAX_PIXELS
    return int(megapixels * 1e6) if megapixels > 0 else None


def _cmd_export(args: argparse.Namespace) -> int:
    from .deploy import export as ex
    from .deploy.restore import load
    from .evaluate.metrics import TASK_CONVENTIONS

    r = load(args.model, weights=args.weights, peers=args.peers, task=args.task)
    out = Path(args.output)
    ex.export_onnx(r.model, out, r.channels, opset=args.opset,
                   metadata={"model": r.name, "task": r.task or "", "source": r.source})
    parity = ex.onnx_parity(r.model, out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes) from {r.source}")
    print(parity.describe())
    if parity.max_diff > 1e-3:
        print("parity check FAILED: the ONNX graph does not match the model", file=sys.stderr)
        return 1
    if args.int8:
        task = r.task if r.task in TASK_CONVENTIONS else None
        if not args.calibration and task is None:
            raise SystemExit("kdrestore export: --int8 needs --calibration DIR (degraded images) or a --task")
        calib = [args.calibration] if args.calibration else \
            [s["input"].numpy().transpose(1, 2, 0) for s in ex.builtin_samples(task, r.channels, "train", 16)]
        int8_path = Path(args.int8_output or out.with_suffix(".int8.onnx"))
        q = ex.quantize_int8(out, int8_path, calib)
        print(f"wrote {q.path} ({q.mode}: {q.note}); {q.bytes_fp32:,} -> {q.bytes_int8:,} bytes")
        if task is None:
            print("INT8 PSNR cost not measured: give --task to score on the built-in test images")
            return 0
        cost = ex.int8_psnr_cost(out, int8_path, ex.builtin_samples(task, r.channels, "test", args.samples),
                                 TASK_CONVENTIONS[task])
        print(f"INT8 PSNR cost on {cost['images']} built-in {task} test crops (128 px): fp32 {cost['fp32_psnr']:.2f} dB, "
              f"int8 {cost['int8_psnr']:.2f} dB, cost {cost['cost_db']:+.3f} dB; {cost['convention']}")
    return 0


def _parse_kv(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as a YAML scalar/list (never evaluated as code)."""
    import yaml

    if "=" not in text:
        raise SystemExit(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(header))
    print(line("-" * w for w in widths))
    for row in rows:
        print(line(row))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdrestore", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kdrestore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered models with their parameter counts")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"])
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("eval", help="score a model on a data set (PSNR/SSIM, params, MACs, ms)")
    p.add_argument("--model", required=True)
    p.add_argument("--weights", help="weights file (.pth/.safetensors); default: the peer's published file")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--data", required=True, help="data folder (paired layout, or clean images for denoise)")
    p.add_argument("--task", required=True, choices=["denoise", "derain", "dehaze"])
    p.add_argument("--sigma", type=float, default=25.0, help="AWGN sigma on the 0-255 scale (denoise)")
    p.add_argument("--metric-space", choices=["rgb", "y"], help="default: the task's published convention")
    p.add_argument("--rule", default="auto", help="pairing rule: auto, same, sots, rain100l, rain100h, regex:P=>T")
    p.add_argument("--limit", type=int)
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradation (denoise)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="write the full result (per image too) to this JSON file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("degrade", help="write a synthetically degraded copy of a folder of clean images")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--degradation", "-d", required=True, help="e.g. awgn, awgn-blind, haze, rain-heavy")
    p.add_argument("--param", "-p", action="append", default=[], help="key=value passed to the degradation")
    p.add_argument("--mode", choices=["rgb", "gray"], default="rgb")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_degrade)

    for name, text in (("train", "train a model from a YAML recipe (also under torchrun)"),
                       ("distill", "distill a student from teachers with a recipe's 'distill' section")):
        p = sub.add_parser(name, help=text)
        p.add_argument("config", nargs="?", help="YAML recipe (optional with --resume: the run's own config)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
        p.add_argument("--run-dir", help="where to write the run (default: OUTPUT_DIR/NAME of the recipe)")
        p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=_cmd_train)

    p = sub.add_parser("bench", help="benchmarks; 'distill': fixed-budget ablation of distillation methods; "
                                     "'methods': SPDD/KDDN (dehaze) and HMDS (denoise) ablations")
    p.add_argument("what", choices=["distill", "methods"])
    p.add_argument("--task", nargs="+", choices=["denoise", "derain", "dehaze"],
                   help="default: all three (distill); denoise and dehaze (methods)")
    p.add_argument("--data", help="benchmark data root (default $KDRESTORE_DATA)")
    p.add_argument("--peers", help="published peer weights, the teachers (default $KDRESTORE_PEERS)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="*", help="ablation rows (default: all)")
    p.add_argument("--test-limit", type=int, help="score on the first N test images only")
    p.add_argument("--teacher-steps", type=int, help="methods: steps of the teachers trained in the bench (default --steps)")
    p.add_argument("--sets", nargs="+", choices=["Set12", "CBSD68"], help="methods, denoise: test sets (default both)")
    p.add_argument("--sigma", nargs="+", type=float, help="methods, denoise: noise levels (default 25 50)")
    p.add_argument("--json")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("demo", help="degrade the built-in images, restore them, print scores, write a picture")
    p.add_argument("-o", "--output", default="kdrestore-demo")
    p.add_argument("--peers", help="folder of published peer weights, to include the peers")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("restore", help="restore images (files, folders, globs) with a trained model")
    p.add_argument("input", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, help="output folder (never an input's folder)")
    p.add_argument("--model", help="run directory, shipped pretrained name, registry name (+ --weights) or .onnx file")
    p.add_argument("--weights", help="weights file (.safetensors/.pth) for a registry model")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"])
    p.add_argument("--tile", type=int, help="tile side in pixels (default: from --max-megapixels)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels")
    p.add_argument("--max-megapixels", type=float, help="pixels per model call before tiling (default 1.05; 0: no limit)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    p.add_argument("--onnx", help="ONNX file for --backend onnx (default: export the model on the fly)")
    p.add_argument("--allow-color-conversion", action="store_true",
                   help="let a gray model restore the luminance of RGB images (chroma kept)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_restore)

    p = sub.add_parser("export", help="export a model to ONNX (dynamic size), check parity, optionally INT8")
    p.add_argument("--model", required=True, help="run directory, shipped pretrained name or registry name")
    p.add_argument("--weights")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"], help="for the INT8 PSNR cost (default: the model's)")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--int8", action="store_true", help="also write a static INT8 (QDQ) quantized model")
    p.add_argument("--calibration", help="folder of degraded images for INT8 calibration (default: built-in data)")
    p.add_argument("--int8-output", help="default: OUTPUT with .int8.onnx")
    p.add_argument("--samples", type=int, default=4, help="built-in test crops for the INT8 PSNR cost")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import KdrestoreError

    try:
        return int(args.func(args))
    except KdrestoreError as exc:
        print(f"kdrestore {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
