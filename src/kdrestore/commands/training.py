"""Handlers of the commands that train: train/distill, samples, and bench with one runner per bench."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import KdrestoreError
from .common import benchmark_root


def cmd_train(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..engine import Trainer
    from ..data.leakguard import leak_guard, write_leak_record
    from ..rundir import RunDir

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


def cmd_samples(args: argparse.Namespace) -> int:
    from ..distill.methods.datafree_view import render_run

    out = render_run(args.run_dir, args.output, count=args.count, size=args.size)
    print(f"wrote {out}: one row per degradation, (clean | degraded) pairs; grids saved during training "
          f"(distill.options.sample_every) are in {Path(args.run_dir) / 'generator'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``kdrestore bench NAME``: the leak guard, the shared budget options, then the bench's own runner
    (``args.run_bench``, set by its sub-command), its table and its JSON record."""
    import shlex

    from ..experiments.bench_common import BenchOptions, format_rows
    from ..experiments.bench_leaks import bench_leak_guard
    from ..fsutil import atomic_write_json

    data = benchmark_root(args)
    bench_leak_guard(args.what, data, tasks=args.task, sets=getattr(args, "sets", None), allow_leaks=args.allow_leaks,
                     json=args.json)
    opts = BenchOptions(batch=args.batch, crop=args.crop, steps=args.steps, samples=args.samples,
                        time_budget=args.time_budget, seeds=list(args.seeds), jobs=args.jobs, pipeline=args.pipeline,
                        device=args.device, test_limit=args.test_limit, peers=args.peers, workdir=args.workdir,
                        resume=args.resume,
                        progress=not args.quiet)
    record = args.run_bench(args, data, opts, "kdrestore " + shlex.join(args.argv))
    print(f"bench {args.what}: {opts.describe()}; {record['device']}")
    print(format_rows(record["rows"], record["teachers"]), flush=True)
    if args.json:
        atomic_write_json(args.json, record)
        print(f"wrote {args.json}")
    return 0


def bench_distill(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from ..experiments.bench import distill_bench

    return distill_bench(args.task or ["denoise", "derain", "dehaze"], data, opts, methods=args.methods,
                         command=command)


def bench_methods(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from ..experiments.bench_methods import methods_bench

    return methods_bench(args.task or ["denoise", "dehaze"], data, opts, methods=args.methods, sets=args.sets,
                         sigmas=args.sigma, command=command)


def bench_datafree(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from ..experiments.bench_datafree import datafree_bench

    options = None if args.generator_steps is None else {"generator_steps": args.generator_steps}
    return datafree_bench(data, opts, tasks=args.task, rows=args.methods, multi_steps=args.multi_steps,
                          options=options, command=command)


def bench_trnr(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from ..experiments.bench_trnr import trnr_bench

    return trnr_bench(args.task or ["derain", "denoise"], data, opts, images=args.images, full_size=args.full_size,
                      methods=args.methods, command=command)


def bench_coic(args: argparse.Namespace, data: str, opts: Any, command: str) -> dict[str, Any]:
    from ..experiments.bench_coic import coic_bench

    if args.task and args.task != ["derain"]:
        raise KdrestoreError("bench coic covers derain only (mixed rain data)")
    return coic_bench(data, opts, rows=args.methods, command=command)
