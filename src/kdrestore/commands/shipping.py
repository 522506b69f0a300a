"""Handlers of the commands that ship and use students: restore, package, export, report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import KdrestoreError
from .common import benchmark_root


def cmd_restore(args: argparse.Namespace) -> int:
    from ..deploy.batch import check_outdir, expand_inputs
    from ..deploy.restore import load, load_default, restore_files

    if not args.model and not args.task:
        raise KdrestoreError("give --task (denoise, derain or dehaze: its shipped student is used) or --model "
                             "(a shipped name, a run directory, a registry model with --weights, or an .onnx file)")
    if args.rain and args.model:
        raise KdrestoreError("--rain picks the shipped deraining student of --task derain; drop it with --model")
    if args.onnx and not args.model:
        raise KdrestoreError("--onnx names the exported file of --model; give --model too")
    files, skipped = expand_inputs(args.input)  # before the model loads: bad inputs are named at once
    if not files:
        raise KdrestoreError("nothing to restore: " + "; ".join(f"{n}: {why}" for n, why in skipped))
    for name, why in skipped:
        print(f"  skipped {name}: {why}", file=sys.stderr)
    check_outdir(files, args.output)
    max_pixels = int(args.max_megapixels * 1e6) if args.max_megapixels else None
    kw = dict(tile=args.tile, overlap=args.overlap, max_pixels=max_pixels, backend=args.backend,
              max_memory_mb=args.max_memory_mb)
    if args.model:
        restorer = load(args.model, args.device, weights=args.weights, peers=args.peers, task=args.task,
                        onnx=args.onnx, allow_color_conversion=args.allow_color_conversion, **kw)
    else:
        restorer = load_default(args.task, args.device, rain=args.rain, **kw)
    print(f"model: {restorer.source} ({restorer.backend}); memory budget {restorer.max_memory_mb:.0f} MB")
    summary = restore_files(restorer, skipped, args.output, progress=not args.quiet, files=files)
    for note in summary.notes:
        print(f"note: {note}")
    for name, err in summary.failed:
        print(f"  failed {name}: {err}", file=sys.stderr)
    print(summary.line(args.output))
    return 0 if summary.written else 1


def cmd_package(args: argparse.Namespace) -> int:
    import shlex

    from ..deploy.loader import parse_model_args
    from ..deploy.package import check_goal, format_card_scores, package_run, run_leak_check

    check_goal("speedup", args.goal_speedup)  # before the leak check's minutes
    check_goal("psnr_margin", args.goal_psnr_margin)
    model_args = parse_model_args(args.model_arg)  # a malformed --model-arg fails before the leak check too
    data = benchmark_root(args)
    leaks = run_leak_check(args.run, args.test, data_root=data, allow_leaks=args.allow_leaks, holdout=args.test_holdout)
    card = package_run(args.run, args.name, args.test, data_root=data, sigmas=args.sigma,
                       half=args.half, dest=args.dest, competes_with=args.competes_with, recipe=args.recipe,
                       force=args.force, command="kdrestore " + shlex.join(args.argv), progress=True,
                       leak_check=leaks, holdout=args.test_holdout, notes=args.notes,
                       speedup=args.goal_speedup, psnr_margin=args.goal_psnr_margin,
                       model_args=model_args)
    print(f"shipped '{args.name}': {card['model']} {card['params']:,} params, {card['dtype']}")
    print(format_card_scores(card))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..deploy import export as ex
    from ..deploy.restore import load
    from ..evaluate.metrics import TASK_CONVENTIONS

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
            raise KdrestoreError("--int8 needs --calibration DIR (degraded images) or a --task")
        # built-in crops by default, degraded as the shipped student's card says it was trained
        calib = [args.calibration] if args.calibration else ex.calibration_for(task, r.channels, r.card)
        int8_path = Path(args.int8_output or out.with_suffix(".int8.onnx"))
        q = ex.quantize_int8(out, int8_path, calib, weights=args.int8_weights)
        print(f"wrote {q.path} ({q.mode}: {q.note}); {q.bytes_fp32:,} -> {q.bytes_int8:,} bytes")
        if task is None:
            print("INT8 PSNR cost not measured: give --task to score on the built-in test images")
            return 0
        cost = ex.int8_psnr_cost(out, int8_path, ex.builtin_samples(task, r.channels, "test", args.samples),
                                 TASK_CONVENTIONS[task])
        print(f"INT8 PSNR cost on {cost['images']} built-in {task} test crops (128 px): fp32 {cost['fp32_psnr']:.2f} dB, "
              f"int8 {cost['int8_psnr']:.2f} dB, cost {cost['cost_db']:+.3f} dB; {cost['convention']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import os

    from ..experiments.report import build_report
    from ..evaluate.profile import keep_freed_memory

    data = {}
    for item in args.data:
        task, sep, folder = item.partition("=")
        if sep and task in ("denoise", "derain", "dehaze"):
            data[task] = folder
        else:
            data[""] = item
    keep_freed_memory()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    photos = {}
    for item in args.photos:
        task, sep, folder = item.partition("=")
        if not sep or task not in ("denoise", "derain", "dehaze"):
            raise KdrestoreError(f"--photos takes TASK=DIR with TASK denoise, derain or dehaze, got {item!r}")
        photos[task] = folder
    out = build_report(args.runs, args.output, data=data, bench=args.bench,
                       peers=args.peers or os.environ.get("KDRESTORE_PEERS"), sigma=args.sigma,
                       images=args.images, crop=args.crop, latency=not args.no_latency, title=args.title,
                       photos=photos, photo_limit=args.photo_limit)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0
