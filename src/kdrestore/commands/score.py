"""Handlers of the commands that list, score and inspect: models, eval, calibrate, degrade, demo, check-leaks."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import KdrestoreError
from .common import parse_key_value, print_table


def cmd_models(args: argparse.Namespace) -> int:
    import torch

    from ..deploy.loader import DEFAULT_COLOR_MODELS, DEFAULT_MODELS
    from ..models.shipped import PRETRAINED_DIR, read_card, shipped_names
    from ..evaluate.profile import count_params
    from ..models.registry import build_model, list_models

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
    print_table(("name", "task", "architecture", "channels", "params", "default for", "score (model card)"), shipped)
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
    print_table(("model", "family", "task", "params", "published"), rows)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..deploy.loader import resolve, shipped_names, unknown_name_error
    from ..evaluate.api import evaluate_model, evaluate_named
    from ..fsutil import atomic_write_json
    from ..models.registry import MODELS, model_entry

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
    print_table(
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

    from ..evaluate.api import load_model
    from ..evaluate.calibrate import calibrate, calibration_setup, format_calibration
    from ..fsutil import atomic_write_json

    data = args.data or os.environ.get("KDRESTORE_DATA")
    if not data:
        raise KdrestoreError("give --data or set KDRESTORE_DATA")
    teacher = load_model(args.teacher, args.weights, args.peers)
    setup = calibration_setup(args.task, data, rain=args.rain, seed=args.seed, degradation=args.degradation)
    result = calibrate(teacher, setup,
                       images=args.images, tolerance=args.tolerance, teacher_name=args.teacher,
                       progress=not args.quiet)
    print(format_calibration(result))
    if args.json:
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def cmd_degrade(args: argparse.Namespace) -> int:
    from ..data.degrade_folder import degrade_folder

    params = dict(parse_key_value(kv) for kv in args.param)
    report = degrade_folder(args.input, args.output, args.degradation, seed=args.seed, params=params,
                            mode=args.mode, progress=not args.quiet)
    print(f"wrote {report['written']} degraded image(s) and params.json to {args.output}")
    for name, err in report["failed"]:
        print(f"  skipped {name}: {err}", file=sys.stderr)
    return 0 if report["written"] else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(Path(args.output), peers=args.peers, progress=not args.quiet)
    return 0


def cmd_check_leaks(args: argparse.Namespace) -> int:
    from ..data.leaks import THRESHOLD, find_leaks, image_set, relative
    from ..data.leakguard import LeakCheck, data_root, format_check, recipe_leak_check
    from ..fsutil import atomic_write_json

    threshold = THRESHOLD if args.threshold is None else args.threshold
    root = data_root(args.data)
    if args.recipe:
        if args.train:
            raise KdrestoreError("give --recipe or --train, not both")
        from ..config import load_config

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
