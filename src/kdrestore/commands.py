"""The handlers behind the ``kdrestore`` sub-commands: each a thin layer over the Python API.

A handler returns the exit code of its outcome (0, or 1 when the command ran and its result is a
failure); a user error raises :class:`KdrestoreError`, which the command line reports with exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import KdrestoreError

def cmd_models(args: argparse.Namespace) -> int:
    import torch

    from .deploy.loader import DEFAULT_COLOR_MODELS, DEFAULT_MODELS
    from .models.shipped import PRETRAINED_DIR, read_card, shipped_names
    from .evaluate.profile import count_params
    from .models.registry import build_model, list_models

    defaults = {n: t for t, n in DEFAULT_MODELS.items()} | {n: f"{t} (colour)" for t, n in DEFAULT_COLOR_MODELS.items()}
    shipped = []
    for name in shipped_names():
        card = read_card(PRETRAINED_DIR / name)
        if args.task and card["task"] != args.task:
            continue
        score = next(iter(card.get("scores") or []), {})
        text = (f"{score.get('data')}" + (f" sigma {score['sigma']:g}" if score.get("sigma") else "")
                + f": PSNR {score['psnr']:.2f} dB" if "psnr" in score else "")
        shipped.append((name, card["task"], card["model"], "gray" if int(card["channels"]) == 1 else "RGB",
                        f"{card['params']:,}" if isinstance(card.get("params"), int) else "?",
                        f"--task {defaults[name]}" if name in defaults else "", text))
    print("shipped pretrained students (kdrestore restore/eval/export --model NAME, kdrestore.load(NAME)):")
    _print_table(("name", "task", "architecture", "channels", "params", "default for", "score (model card)"), shipped)
    rows = []
    for entry in list_models():
        if args.task and entry.meta.get("task") not in (args.task, "any"):
            continue
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            params = count_params(build_model(entry.name))
        pub = entry.meta.get("published", {})
        text = str(pub.get("text", ""))
        rows.append((entry.name, entry.meta.get("family", ""), entry.meta.get("task", ""),
                     f"{params:,}", text if len(text) <= 70 else text[:67] + "..."))
    print("\nregistered architectures (--model NAME with --weights FILE; peers with --peers DIR):")
    _print_table(("model", "family", "task", "params", "published"), rows)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .deploy.loader import resolve, shipped_names, unknown_name_error
    from .evaluate.api import evaluate_model, evaluate_named
    from .fsutil import atomic_write_json
    from .models.registry import MODELS, model_entry

    common = dict(sigma=args.sigma, space=args.metric_space, limit=args.limit, seed=args.seed, rule=args.rule,
                  progress=not args.quiet)
    if not Path(args.data).is_dir():
        raise KdrestoreError(f"--data {args.data}: no such folder")
    if args.model in shipped_names() or Path(args.model).is_dir():  # a shipped student or a run directory
        spec = resolve(args.model, args.weights, args.peers, args.device)
        task = args.task or spec.task
        if not task:
            raise KdrestoreError(f"{args.model} does not say its task: give --task")
        result = evaluate_model(spec.model, spec.channels, args.data, task, name=args.model, **common)
        result.extra["weights"] = spec.source
    else:
        model_entry("dcp")  # loads the registry
        if args.model not in MODELS:
            raise unknown_name_error(args.model)
        task = args.task or model_entry(args.model).meta.get("task")
        if task not in ("denoise", "derain", "dehaze"):
            raise KdrestoreError(f"model '{args.model}' serves any task: give --task")
        result = evaluate_named(args.model, args.data, task, weights=args.weights, peers=args.peers,
                                device=args.device, **common)
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    import os

    from .evaluate.api import load_model
    from .evaluate.calibrate import calibrate, calibration_setup, format_calibration
    from .fsutil import atomic_write_json

    data = args.data or os.environ.get("KDRESTORE_DATA")
    if not data:
        raise KdrestoreError("give --data or set KDRESTORE_DATA")
    teacher = load_model(args.teacher, args.weights, args.peers)
    result = calibrate(teacher, calibration_setup(args.task, data, rain=args.rain, seed=args.seed),
                       images=args.images, tolerance=args.tolerance, teacher_name=args.teacher,
                       progress=not args.quiet)
    print(format_calibration(result))
    if args.json:
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def cmd_degrade(args: argparse.Namespace) -> int:
    from .data.degrade_folder import degrade_folder

    params = dict(_parse_kv(kv) for kv in args.param)
    report = degrade_folder(args.input, args.output, args.degradation, seed=args.seed, params=params,
                            mode=args.mode, progress=not args.quiet)
    print(f"wrote {report['written']} degraded image(s) and params.json to {args.output}")
    for name, err in report["failed"]:
        print(f"  skipped {name}: {err}", file=sys.stderr)
    return 0 if report["written"] else 1


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .engine import Trainer
    from .data.leakguard import leak_guard, write_leak_record
    from .rundir import RunDir

    if args.config is None and args.resume is None:
        raise KdrestoreError("give a CONFIG file, or --resume RUN_DIR")
    config = args.config or str(RunDir(args.resume).config_file)
    overrides = list(args.set)
    if args.init_from:
        if args.resume:
            raise KdrestoreError("--init-from starts a new run; it cannot be combined with --resume")
        overrides.append(f"model.init_from={args.init_from}")
    if args.time_budget:
        overrides.append(f"train.time_budget={args.time_budget}")
    cfg = load_config(config, overrides)
    if args.command == "distill" and not cfg.distill:
        raise KdrestoreError(f"{config} has no 'distill' section (use 'kdrestore train')")
    run_dir = Path(args.resume or args.run_dir or Path(cfg.output_dir) / cfg.name)
    leaks = leak_guard(cfg, allow_leaks=args.allow_leaks, what=f"kdrestore {args.command}", quiet=args.quiet)
    trainer = Trainer(cfg, run_dir, resume=args.resume is not None, progress=not args.quiet)
    write_leak_record(run_dir, leaks)
    final = trainer.fit()
    if "val_psnr" in final:
        print(f"{cfg.name}: step {final['steps']}, val PSNR {final['val_psnr']:.3f} dB, "
              f"SSIM {final['val_ssim']:.4f} ({final['convention']['text']})")
    print(f"run directory: {run_dir}")
    return 0


def _data_root(args: argparse.Namespace) -> str:
    """``--data``, else ``$KDRESTORE_DATA``: the benchmark data root."""
    import os

    data = args.data or os.environ.get("KDRESTORE_DATA")
    if not data:
        raise KdrestoreError("give --data (the benchmark data root) or set KDRESTORE_DATA")
    return data


def cmd_bench(args: argparse.Namespace) -> int:
    """``kdrestore bench NAME``: the leak guard, the shared budget options, then the bench's own runner
    (``args.run_bench``, set by its sub-command), its table and its JSON record."""
    import shlex

    from .experiments.bench_common import BenchOptions, format_rows
    from .experiments.bench_leaks import bench_leak_guard
    from .fsutil import atomic_write_json

    data = _data_root(args)
    bench_leak_guard(args.what, data, tasks=args.task, sets=getattr(args, "sets", None), allow_leaks=args.allow_leaks,
                     json=args.json)
    opts = BenchOptions(batch=args.batch, crop=args.crop, steps=args.steps, samples=args.samples,
                        time_budget=args.time_budget, seeds=list(args.seeds), jobs=args.jobs, pipeline=args.pipeline,
                        device=args.device, test_limit=args.test_limit, peers=args.peers, workdir=args.workdir,
                        progress=not args.quiet)
    record = args.run_bench(args, data, opts, "kdrestore " + shlex.join(args.argv))
    print(f"bench {args.what}: {opts.describe()}; {record['device']}")
    print(format_rows(record["rows"], record["teachers"]), flush=True)
    if args.json:
        atomic_write_json(args.json, record)
        print(f"wrote {args.json}")
    return 0


def bench_distill(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from .experiments.bench import distill_bench

    return distill_bench(args.task or ["denoise", "derain", "dehaze"], data, opts, methods=args.methods,
                         command=command)


def bench_methods(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from .experiments.bench_methods import methods_bench

    return methods_bench(args.task or ["denoise", "dehaze"], data, opts, methods=args.methods, sets=args.sets,
                         sigmas=args.sigma, command=command)


def bench_datafree(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from .experiments.bench_datafree import datafree_bench

    options = None if args.generator_steps is None else {"generator_steps": args.generator_steps}
    return datafree_bench(data, opts, tasks=args.task, rows=args.methods, multi_steps=args.multi_steps,
                          options=options, command=command)


def bench_trnr(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from .experiments.bench_trnr import trnr_bench

    return trnr_bench(args.task or ["derain", "denoise"], data, opts, images=args.images, full_size=args.full_size,
                      methods=args.methods, command=command)


def bench_coic(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from .experiments.bench_coic import coic_bench

    if args.task and args.task != ["derain"]:
        raise KdrestoreError("bench coic covers derain only (mixed rain data)")
    return coic_bench(data, opts, rows=args.methods, command=command)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.output), peers=args.peers, progress=not args.quiet)
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from .distill.methods.datafree_view import render_run

    out = render_run(args.run_dir, args.output, count=args.count, size=args.size)
    print(f"wrote {out}: one row per degradation, (clean | degraded) pairs; grids saved during training "
          f"(distill.options.sample_every) are in {Path(args.run_dir) / 'generator'}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .deploy.batch import check_outdir, expand_inputs
    from .deploy.restore import load, load_default, restore_files

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

    from .deploy.package import format_card_scores, package_run, run_leak_check

    data = _data_root(args)
    leaks = run_leak_check(args.run, args.test, data_root=data, allow_leaks=args.allow_leaks)
    card = package_run(args.run, args.name, args.test, data_root=data, sigmas=args.sigma,
                       half=args.half, dest=args.dest, competes_with=args.competes_with, recipe=args.recipe,
                       force=args.force, command="kdrestore " + shlex.join(args.argv), progress=True,
                       leak_check=leaks, holdout=args.test_holdout)
    print(f"shipped '{args.name}': {card['model']} {card['params']:,} params, {card['dtype']}")
    print(format_card_scores(card))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
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
            raise KdrestoreError("--int8 needs --calibration DIR (degraded images) or a --task")
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


def cmd_report(args: argparse.Namespace) -> int:
    import os

    from .experiments.report import build_report
    from .evaluate.profile import keep_freed_memory

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


def cmd_check_leaks(args: argparse.Namespace) -> int:
    from .data.leaks import THRESHOLD, find_leaks, image_set, relative
    from .data.leakguard import LeakCheck, data_root, format_check, recipe_leak_check
    from .fsutil import atomic_write_json

    threshold = THRESHOLD if args.threshold is None else args.threshold
    root = data_root(args.data)
    if args.recipe:
        if args.train:
            raise KdrestoreError("give --recipe or --train, not both")
        from .config import load_config

        check = recipe_leak_check(load_config(args.recipe, args.set), tests=args.test, root=root, threshold=threshold)
    else:
        if not args.train or not args.test:
            raise KdrestoreError("give --train DIR... and --test DIR..., or --recipe RECIPE.yaml")
        check = LeakCheck(find_leaks([image_set(d, label=relative(d, root)) for d in args.train],
                                     [image_set(d, label=relative(d, root)) for d in args.test], threshold), [], root)
    print(format_check(check, matches=args.matches))
    if args.json:
        atomic_write_json(args.json, check.record())
        print(f"wrote {args.json}")
    if check.report is not None:
        print(f"result: {check.report.to_dict()['result']} (threshold {threshold})")
    return 1 if check.leaked else 0


def _parse_kv(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as a YAML scalar/list (never evaluated as code)."""
    import yaml

    if "=" not in text:
        raise KdrestoreError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(header))
    print(line("-" * w for w in widths))
    for row in rows:
        print(line(row))
