"""Speed of the leak check: every training folder of the data root against every test set, cold and warm.

    python benchmarks/check_leaks.py [--data DIR] [--workers 2] [--repeats 3] [--json check_leaks.json]

Cold: an empty thumbnail cache (a fresh temporary ``KDRESTORE_CACHE``), so every image is decoded;
warm: the same check again with the cache filled (the median of ``--repeats`` runs). The goal of issue 20:
< 30 s cold and < 3 s warm for ../shared's ~3,400 training images against its 4 test sets on the 2-core
development machine. Prints a table (per test set: images, leaks, best score) and the timings; writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from kdrestore.data.leaks import THRESHOLD, LeakReport, find_leaks, image_set  # noqa: E402

TESTS = ["denoise/Set12", "denoise/CBSD68", "derain/Rain100H", "dehaze/SOTS-indoor-50"]


def run(root: Path, workers: int) -> tuple[float, LeakReport]:
    start = time.perf_counter()
    train = [image_set(p, label=p.name) for p in sorted((root / "train").iterdir()) if p.is_dir()]
    tests = [image_set(root / t, label=t) for t in TESTS]
    report = find_leaks(train, tests, workers=workers)
    return time.perf_counter() - start, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("KDRESTORE_DATA", "../shared/data"))
    ap.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs (median reported)")
    ap.add_argument("--json", default="check_leaks.json")
    args = ap.parse_args()
    root = Path(args.data)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["KDRESTORE_CACHE"] = cache
        cold, report = run(root, args.workers)
        warm = [run(root, args.workers)[0] for _ in range(args.repeats)]
    train_images = sum(t["images"] for t in report.train)
    rows = [(r.label, r.images, len(r.matches), f"{r.highest:.3f}") for r in report.results]
    print("training folders: " + ", ".join(f"{t['label']} ({t['images']})" for t in report.train)
          + f" = {train_images} images")
    print(f"{'test set':<24} {'images':>6} {'leaked':>6} {'best':>6}")
    for r in rows:
        print(f"{r[0]:<24} {r[1]:>6} {r[2]:>6} {r[3]:>6}")
    print(f"cold cache: {cold:.1f} s   warm cache: {statistics.median(warm):.2f} s (median of {len(warm)})   "
          f"threshold {THRESHOLD}; {os.cpu_count()} CPUs, {args.workers} decoding threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    result = {"data": str(root), "train_images": train_images, "test_images": sum(r[1] for r in rows),
              "cold_s": round(cold, 2), "warm_s": [round(w, 3) for w in warm],
              "warm_median_s": round(statistics.median(warm), 3), "threshold": THRESHOLD,
              "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
              "workers": args.workers, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "goal": {"cold_s": 30, "warm_s": 3}, "report": report.to_dict(root)}
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
