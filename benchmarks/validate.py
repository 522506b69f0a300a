"""Score models on a recipe's validation set (its data.val: a held-out part of the training data).

    python benchmarks/validate.py configs/dehaze/nafnet-tiny-nyu-norm.yaml --model dehaze-small \
        --model runs/dh-naf-norm --model gcanet [--limit N] [--json OUT]
    python benchmarks/validate.py configs/denoise/repdn-blind-deep.yaml --set data.val.params.sigma=50 \
        --model denoise-gray-blind --model runs/RUN

--set KEY=VALUE overrides the recipe as ``kdrestore train --set`` does (a blind denoiser is validated at each
noise level this way).

--int8 also scores each model's static INT8 ONNX Runtime version on the same samples, next to its fp32 ONNX
version: the INT8 cost that decides what ships is then measured on validation, not on a test set. Each is
calibrated as the ship bench calibrates it (``kdrestore.deploy.export.calibration_for``: from its model card, or
for a run directory from the run's config, so a ``kd-qat`` run gets the calibration its observers saw).

Each --model is a shipped name, a run directory (its last checkpoint, EMA weights when present), a registry
name with its published peer weights, or NAME=WEIGHTS_FILE. --model-arg KEY=VALUE gives every (shipped or
run) model an argument over its own, e.g. NAFNet's inference option attention_window=256. All are scored on
the same validation samples under the task's published convention, so the rows compare directly: this is
what decides whether a newly trained student replaces a shipped one (test sets are for the final report only).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from kdrestore.config import load_config
from kdrestore.data.tasks import iter_samples
from kdrestore.deploy.loader import ModelSpec, parse_model_args, resolve
from kdrestore.engine.datasets import build_dataset
from kdrestore.evaluate.metrics import TASK_CONVENTIONS
from kdrestore.evaluate.runner import evaluate
from kdrestore.fsutil import atomic_write_json


def int8_cost(spec: ModelSpec, name: str, task: str, samples: list[Any], conv: Any) -> dict[str, Any]:
    """fp32 and INT8 ONNX Runtime PSNR of ``spec`` on ``samples``, calibrated as the ship bench calibrates it."""
    from kdrestore.deploy import export as ex
    from kdrestore.deploy.package import run_training_summary

    card = spec.card or ({"training": run_training_summary(Path(name))[1]} if Path(name).is_dir() else None)
    with tempfile.TemporaryDirectory(prefix="kdrestore-validate-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        ex.export_onnx(spec.model, fp32, spec.channels)
        q = ex.quantize_int8(fp32, int8, ex.calibration_for(task, spec.channels, card))
        return {**ex.int8_psnr_cost(fp32, int8, samples, conv), "mode": q.mode, "note": q.note}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", help="the recipe whose data.val is scored")
    ap.add_argument("--model", action="append", required=True, help="shipped name, run dir, peer, or NAME=WEIGHTS")
    ap.add_argument("--peers", default=os.environ.get("KDRESTORE_PEERS"))
    ap.add_argument("--limit", type=int, help="score only the first N validation samples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                    help="a model argument over each model's own (shipped names and run directories); repeatable")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a recipe override, as kdrestore train --set (e.g. data.val.params.sigma=50); repeatable")
    ap.add_argument("--int8", action="store_true",
                    help="also score each model's fp32 and static INT8 ONNX versions (the INT8 cost on validation)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_args = parse_model_args(args.model_arg)
    cfg = load_config(args.recipe, args.set)
    if cfg.data.val is None:
        print(f"{args.recipe} has no data.val", file=sys.stderr)
        return 2
    val = build_dataset(cfg.data.val, cfg.task, train=False, seed=cfg.train.seed)
    conv = TASK_CONVENTIONS[cfg.task]
    rows = []
    print(f"{args.recipe}: data.val = {cfg.data.val.kind} {cfg.data.val.path} (holdout {cfg.data.val.holdout}), "
          f"{args.limit or len(val)} sample(s); {conv.describe()}"
          + (f"; model arguments {model_args}" if model_args else "")
          + (f"; overrides {args.set}" if args.set else ""))
    print(f"{'model':34} {'PSNR':>7} {'SSIM':>7} {'input':>7} {'ms/img':>7}"
          + (f" {'onnx32':>7} {'int8':>7} {'cost':>6}" if args.int8 else ""))
    int8_samples = [val[i] for i in range(min(len(val), args.limit or len(val)))] if args.int8 else []
    for spec_text in args.model:
        name, _, weights = spec_text.partition("=")
        spec = resolve(name, weights or None, args.peers, model_args=model_args)
        start = time.perf_counter()
        res = evaluate(spec.model, iter_samples(val), conv, name=spec_text, task=cfg.task, limit=args.limit,
                       progress=False)
        rows.append({"model": spec_text, "source": spec.source, "model_args": model_args,
                     "psnr": res.psnr, "ssim": res.ssim,
                     "input_psnr": res.input_psnr, "images": len(res.images), "ms_per_image": res.ms_per_image,
                     "wall_s": time.perf_counter() - start})
        line = f"{spec_text:34} {res.psnr:>7.3f} {res.ssim:>7.4f} {res.input_psnr:>7.2f} {res.ms_per_image:>7.0f}"
        if args.int8:
            rows[-1]["int8"] = q = int8_cost(spec, name, cfg.task, int8_samples, conv)
            line += f" {q['fp32_psnr']:>7.3f} {q['int8_psnr']:>7.3f} {q['cost_db']:>6.3f}"
        print(line)
    if args.json:
        atomic_write_json(args.json, {"recipe": args.recipe, "overrides": args.set,
                                      "val": cfg.to_dict()["data"]["val"], "convention": conv.to_dict(),
                                      "threads": args.threads,
                                      "machine": platform.processor() or platform.machine(), "rows": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
