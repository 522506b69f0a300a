"""Training throughput of each zoo model on this machine: samples/s for one optimiser step.

    python benchmarks/train_throughput.py [--batch 16] [--crop 64] [--steps 5] [--models mdrn dnnet ...]

Each step is forward + L1 backward + Adam update on a random batch (data loading excluded); the
median of ``--steps`` timed steps after 2 warm-up steps is reported with params and MACs per sample.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from kdrestore.evaluate.profile import count_macs, count_params, keep_freed_memory
from kdrestore.models.registry import build_model, model_entry

DEFAULT_MODELS = ["mdrn-tiny", "mdrn", "dnnet-tiny", "dnnet", "msresnet-tiny", "msresnet", "tinydehaze-s",
                  "tinydehaze", "unet-tiny", "nafnet-tiny", "restormer-tiny"]


def throughput(name: str, batch: int, crop: int, steps: int) -> dict:
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
    parser.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    keep_freed_memory()
    print(f"{'model':16} {'params':>10} {'MMACs/sample':>13} {'s/step':>7} {'samples/s':>10}")
    for name in args.models:
        r = throughput(name, args.batch, args.crop, args.steps)
        print(f"{r['model']:16} {r['params']:>10,} {r['macs'] / 1e6:>13.1f} {r['step_s']:>7.2f} {r['samples_per_s']:>10.1f}")
    print(f"batch {args.batch} x {args.crop}x{args.crop}, median of {args.steps} steps after 2 warm-up; "
          f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
