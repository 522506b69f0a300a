"""Reproduce the published scores of the peer models from their published weights.

    python benchmarks/peers.py --data ../shared/data --peers ../shared/peers [--limit N] [--json OUT]

Each row scores one peer on its benchmark under the convention its authors used and prints it beside
the published number. A gap means the re-implementation, the data reader or the metric is off.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass

import torch

from kdrestore.evaluate.api import evaluate_named
from kdrestore.evaluate.profile import keep_freed_memory
from kdrestore.fsutil import atomic_write_json
from kdrestore.models.registry import model_entry


@dataclass(frozen=True)
class PeerRun:
    model: str
    task: str
    data: str  # folder under the data root
    psnr: float  # published
    ssim: float | None
    source: str
    sigma: float = 25.0


RUNS = [
    PeerRun("dncnn-s15", "denoise", "denoise/Set12", 32.86, None, "DnCNN paper, Table 3", 15),
    PeerRun("dncnn-s25", "denoise", "denoise/Set12", 30.44, None, "DnCNN paper (weights' authors: 30.40)", 25),
    PeerRun("dncnn-s50", "denoise", "denoise/Set12", 27.18, None, "DnCNN paper, Table 3", 50),
    PeerRun("dncnn-s25-folded", "denoise", "denoise/Set12", 30.44, None, "DnCNN paper (BN folded)", 25),
    PeerRun("dncnn-b", "denoise", "denoise/Set12", 30.36, None, "DnCNN paper, DnCNN-B", 25),
    PeerRun("ffdnet-gray", "denoise", "denoise/Set12", 30.43, None, "FFDNet paper, Table 2", 25),
    PeerRun("ffdnet-rgb", "denoise", "denoise/CBSD68", 31.21, None, "FFDNet paper, Table 5", 25),
    PeerRun("prenet6", "derain", "derain/Rain100H", 29.46, 0.899, "PReNet paper, Table 3"),
    PeerRun("gcanet", "dehaze", "dehaze/SOTS-indoor-50", 30.23, 0.980, "GCANet paper (full SOTS-indoor)"),
    PeerRun("aodnet", "dehaze", "dehaze/SOTS-indoor-50", 19.06, 0.850, "AOD-Net as reported by GCANet"),
    PeerRun("dcp", "dehaze", "dehaze/SOTS-indoor-50", 16.62, 0.818, "DCP as reported by GCANet"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("KDRESTORE_DATA"), help="data root (default $KDRESTORE_DATA)")
    parser.add_argument("--peers", default=os.environ.get("KDRESTORE_PEERS"), help="peer weights (default $KDRESTORE_PEERS)")
    parser.add_argument("--only", nargs="*", help="run only these models")
    parser.add_argument("--limit", type=int, help="at most N images per data set (quick check)")
    parser.add_argument("--json", help="write all results to this JSON file")
    args = parser.parse_args()
    if not args.data or not args.peers:
        parser.error("give --data and --peers (or set KDRESTORE_DATA and KDRESTORE_PEERS)")
    keep_freed_memory()

    results, rows = [], []
    for run in RUNS:
        if args.only and run.model not in args.only:
            continue
        start = time.perf_counter()
        r = evaluate_named(run.model, os.path.join(args.data, run.data), run.task, peers=args.peers,
                           sigma=run.sigma, limit=args.limit, progress=sys.stderr.isatty())
        wall = time.perf_counter() - start
        entry = {**r.to_dict(), "published_psnr": run.psnr, "published_ssim": run.ssim, "source": run.source,
                 "wall_s": wall}
        entry.pop("per_image")
        results.append(entry)
        data = run.data.split("/")[-1] + (f" s={run.sigma:g}" if run.task == "denoise" else "")
        space = "gray" if model_entry(run.model).meta.get("channels") == 1 else r.convention.space.upper()
        rows.append((run.model, data, str(len(r.images)), space, f"{r.psnr:.2f}",
                     f"{run.psnr:.2f}", f"{r.psnr - run.psnr:+.2f}", f"{r.ssim:.3f}",
                     f"{run.ssim:.3f}" if run.ssim else "-", f"{r.params:,}",
                     f"{r.macs / 1e9:.1f}@{r.macs_shape[-2]}x{r.macs_shape[-1]}", f"{r.ms_per_image:.0f}"))
        print(f"done {run.model}: {r.psnr:.3f} dB in {wall:.0f}s", file=sys.stderr)

    header = ("model", "data", "n", "space", "PSNR", "publ.", "diff", "SSIM", "publ.", "params", "GMACs", "CPU ms")
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("conventions: denoise RGB/gray [0,1], float noise not clipped (seeded per image), output clipped; "
          "derain Y BT.601, output rounded to 8 bit; dehaze RGB, output rounded to 8 bit; SSIM 11x11 Gaussian")
    if args.json:
        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
