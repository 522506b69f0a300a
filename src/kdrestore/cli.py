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
    results = []
    for task in args.task:
        result = run_distill_bench(task, data, peers=args.peers, steps=args.steps, batch=args.batch, crop=args.crop,
                                   seed=args.seed, methods=args.methods, test_limit=args.test_limit,
                                   progress=not args.quiet)
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

    p = sub.add_parser("bench", help="benchmarks; 'distill': fixed-budget ablation of distillation methods")
    p.add_argument("what", choices=["distill"])
    p.add_argument("--task", nargs="+", default=["denoise", "derain", "dehaze"], choices=["denoise", "derain", "dehaze"])
    p.add_argument("--data", help="benchmark data root (default $KDRESTORE_DATA)")
    p.add_argument("--peers", help="published peer weights, the teachers (default $KDRESTORE_PEERS)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="*", help="ablation rows (default: all)")
    p.add_argument("--test-limit", type=int, help="score on the first N test images only")
    p.add_argument("--json")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("demo", help="degrade the built-in images, restore them, print scores, write a picture")
    p.add_argument("-o", "--output", default="kdrestore-demo")
    p.add_argument("--peers", help="folder of published peer weights, to include the peers")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
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
