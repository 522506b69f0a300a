"""Training throughput: samples/s and the share of step time spent waiting for data, per recipe and
pipeline, through the real trainer (teachers and all); or per zoo model on random batches.

    python benchmarks/train_throughput.py --recipes configs/ship/denoise-gray-fast.yaml \\
        --pipelines per-sample batched --steps 40 [--threads 1] [--device auto] [--set KEY=VALUE ...] \\
        [--baseline-set distill.teacher_precision=fp32 --baseline-set distill.teacher_channels_last=false]
    python benchmarks/train_throughput.py --recipes R ... --pipelines batched --amps none bf16
    python benchmarks/train_throughput.py --models mdrn dnnet [--batch 16] [--crop 64]

Recipe mode trains each recipe for ``--steps`` steps in a temporary run directory (no validation) and
reads the last half of the steps from its log: samples/s, and the share of wall time the loop spent
waiting for the next batch (the DataLoader's per-sample work when ``num_workers`` is 0, nearly nothing
for the batched pipeline, which draws on the device). Model mode times forward + L1 backward + Adam on
random batches (data excluded). ``--baseline-set`` adds a first row per recipe: the per-sample
pipeline with those overrides (e.g. the teachers as they ran before their speed options), and every
row's ratio is taken against it, in the same run. Prints a table and writes JSON (``--json``, default
``benchmarks/results/train_throughput.json``).
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from kdrestore.config import load_config
from kdrestore.engine import Trainer
from kdrestore.evaluate.profile import count_macs, count_params, keep_freed_memory
from kdrestore.fsutil import atomic_write_json
from kdrestore.models.registry import build_model, model_entry

DEFAULT_RECIPES = ["configs/ship/denoise-gray-fast.yaml"]


def recipe_throughput(recipe: str, pipeline: str, steps: int, device: str, overrides: list[str],
                      label: str) -> dict:
    half = max(steps // 2, 1)
    cfg = load_config(recipe, [*overrides, f"data.train.pipeline={pipeline}", f"train.steps={2 * half}",
                               f"train.log_every={half}", "train.ckpt_every=1000000000", "data.val=null",
                               f"train.device={device}", "train.time_budget=null", "model.init_from=null"])
    with tempfile.TemporaryDirectory() as tmp:
        final = Trainer(cfg, Path(tmp) / "run", progress=False).fit()
        with (Path(tmp) / "run" / "log.csv").open() as f:
            rows = [r for r in csv.DictReader(f) if r.get("samples_per_s")]
    last = rows[-1]
    return {"recipe": recipe, "row": label, "pipeline": pipeline, "overrides": overrides, "device": final["device"], "model": cfg.model.name,
            "teachers": len((cfg.distill or {}).get("teachers", [])), "batch": cfg.train.batch_size,
            "crop": cfg.data.train.crop, "steps_timed": half, "samples_per_s": float(last["samples_per_s"]),
            "data_wait_share": float(last["data_wait_share"]), "num_workers": cfg.data.num_workers}


def model_throughput(name: str, batch: int, crop: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_model(name)
    channels = int(model_entry(name).meta.get("channels", 3))
    x = torch.rand(batch, channels, crop, crop)
    y = torch.rand_like(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.l1_loss(model(x), y).backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    med = statistics.median(times)
    return {"model": name, "params": count_params(model), "macs": count_macs(model, (1, channels, crop, crop)),
            "step_s": med, "samples_per_s": batch / med}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="*", default=None)
    parser.add_argument("--pipelines", nargs="*", default=["per-sample", "batched"])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--batch", type=int, default=16, help="model mode")
    parser.add_argument("--crop", type=int, default=64, help="model mode")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=1, help="recipe mode: repeat the rows, interleaved; medians")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--amps", nargs="*", default=None, choices=["none", "bf16", "fp16"],
                        help="recipe mode: one row per pipeline and train.amp (e.g. none bf16)")
    parser.add_argument("--baseline-set", action="append", default=None, metavar="KEY=VALUE",
                        help="overrides of a per-sample baseline row (ratios are taken against it)")
    parser.add_argument("--json", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    env = {"machine": platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    rows: list[dict] = []
    if args.models:
        print(f"{'model':16} {'params':>10} {'MMACs/sample':>13} {'s/step':>7} {'samples/s':>10}")
        for name in args.models:
            r = model_throughput(name, args.batch, args.crop, args.steps)
            rows.append(r)
            print(f"{r['model']:16} {r['params']:>10,} {r['macs'] / 1e6:>13.1f} {r['step_s']:>7.2f} "
                  f"{r['samples_per_s']:>10.1f}")
    else:
        print(f"{'recipe':38} {'row':16} {'device':7} {'teachers':>8} {'batch':>5} {'samples/s':>10} "
              f"{'data wait':>9} {'vs first':>8}")
        for recipe in args.recipes or DEFAULT_RECIPES:
            plan = [("baseline", "per-sample", [*args.set, *args.baseline_set])] if args.baseline_set else []
            for pipeline in args.pipelines:
                for amp in args.amps or [None]:
                    amp_set = [f"train.amp={amp}"] if amp else []
                    plan.append((f"{pipeline} {amp}" if amp else pipeline, pipeline, [*args.set, *amp_set]))
            runs: dict[str, list[dict]] = {label: [] for label, _, _ in plan}
            for _ in range(args.rounds):  # rows interleaved: a busy machine slows every row alike
                for label, pipeline, overrides in plan:
                    runs[label].append(recipe_throughput(recipe, pipeline, args.steps, args.device, overrides, label))
            first = None
            for label, _, _ in plan:
                r = dict(runs[label][0])
                for key in ("samples_per_s", "data_wait_share"):
                    r[key] = statistics.median(x[key] for x in runs[label])
                r["rounds"] = [x["samples_per_s"] for x in runs[label]]
                first = first or r["samples_per_s"]
                r["ratio_vs_first_row"] = r["samples_per_s"] / first
                rows.append(r)
                print(f"{Path(recipe).name:38} {label:16} {r['device']:7} {r['teachers']:>8} {r['batch']:>5} "
                      f"{r['samples_per_s']:>10.1f} {100 * r['data_wait_share']:>8.1f}% "
                      f"{r['ratio_vs_first_row']:>7.2f}x")
    print(f"last {max(args.steps // 2, 1)} of {2 * max(args.steps // 2, 1)} steps, median of {args.rounds} "
          f"interleaved round(s); {env}")
    atomic_write_json(args.json, {"command": " ".join(sys.argv), "env": env, "rows": rows})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
