"""Peak memory of `kdrestore restore` on one large synthetic photo, per model and memory budget.

Each run is a fresh child process (`kdrestore restore IMAGE -o OUT --model M [--max-memory-mb MB]`,
one thread); its peak resident memory is the child's ``ru_maxrss``. Prints a table, writes JSON.

    python benchmarks/restore_memory.py --models dehaze-small denoise-color --budgets 1000 2000 \\
        --workdir DIR --json restore_memory.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def synthetic_photo(path: Path, h: int, w: int) -> None:
    """A smooth colour picture with mild noise (seed 0)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(xx / 300) * np.cos(yy / 200)
    img = np.stack([base, base * 0.9 + 0.05, base * 0.8 + 0.1], 2) + rng.normal(0, 0.05, (h, w, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


def peak_of_one_run(image: Path, out: Path, model: str, budget: float | None) -> dict:
    code = ("import resource, sys; from kdrestore.cli import main; rc = main(sys.argv[1:]); "
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    args = ["restore", str(image), "-o", str(out), "--model", model, "--quiet"]
    if budget:
        args += ["--max-memory-mb", str(budget)]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    peak = next((int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_KB")), 0)
    tiled = next((line for line in proc.stdout.splitlines() if line.startswith("note: tiled")), "whole image")
    return {"model": model, "budget_mb": budget, "rc": proc.returncode, "peak_rss_mb": peak / 1024,
            "seconds": time.perf_counter() - start, "plan": tiled, "stderr": proc.stderr[-500:] if proc.returncode else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["dehaze-small"])
    ap.add_argument("--budgets", nargs="+", type=float, default=[1000.0], help="MB; 0 = the default budget")
    ap.add_argument("--size", nargs=2, type=int, default=[3000, 4000], metavar=("H", "W"))
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    work = Path(args.workdir)
    image = work / "in" / f"photo{args.size[0]}x{args.size[1]}.png"
    if not image.exists():
        synthetic_photo(image, *args.size)
    rows = [peak_of_one_run(image, work / "out", m, b or None) for m in args.models for b in args.budgets]
    print(f"{'model':20} {'budget MB':>10} {'peak RSS MB':>12} {'s':>7}  plan")
    for r in rows:
        print(f"{r['model']:20} {r['budget_mb'] or 'default':>10} {r['peak_rss_mb']:>12.0f} {r['seconds']:>7.0f}  {r['plan']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"image": list(args.size), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
