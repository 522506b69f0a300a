"""Each shipped student against the peer it competes with: PSNR/SSIM, params, MACs, CPU latency, MP/s.

    python benchmarks/ship.py --data ../shared/data --peers ../shared/peers [--models NAME ...]
        [--threads 1] [--test-limit N] [--json OUT]

Students, peers and the students' ONNX Runtime fp32/int8 versions are timed in one process, called in
turn on one fixed input (256x256 gray, 320x480 RGB), median of --repeats calls after warm-up, with
glibc told to keep freed memory (steadier CPU timings, see DESIGN.md). Ratios are measured in the same
run. Goals: >= 4x the main peer's throughput with PSNR >= its PSNR - 0.3 dB, or the card's own
(bench.speedup, bench.psnr_margin); ahead of the other peers (baselines) on both PSNR and SSIM. Scores
are on each card's test set under the task's published convention
(kdrestore.evaluate.metrics.TASK_CONVENTIONS).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

from kdrestore.models.shipped import PRETRAINED_DIR, shipped_names
from kdrestore.errors import KdrestoreError
from kdrestore.evaluate.profile import keep_freed_memory
from kdrestore.experiments.ship import bench_student, format_ship, format_summary, ship_target
from kdrestore.fsutil import atomic_write_json


def machine(threads: int) -> dict[str, object]:
    """What the numbers were measured on."""
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    return {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": threads,
            "torch": torch.__version__, "onnxruntime": ort, "python": platform.python_version(),
            "malloc": "mallopt M_MMAP_THRESHOLD=1 GiB, M_TRIM_THRESHOLD=2 GiB",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def add_timing_options(parser: argparse.ArgumentParser, int8_images: int) -> None:
    """The options every timing bench shares (this one and frontier.py): data, peers, threads, repeats, ONNX."""
    parser.add_argument("--data", default=os.environ.get("KDRESTORE_DATA"), help="data root (default $KDRESTORE_DATA)")
    parser.add_argument("--peers", default=os.environ.get("KDRESTORE_PEERS"),
                        help="published peer weights (default $KDRESTORE_PEERS)")
    parser.add_argument("--pretrained-root", type=Path, default=PRETRAINED_DIR,
                        help="folder of <name>/card.json (default: the package's pretrained/)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and ONNX Runtime (default 1)")
    parser.add_argument("--test-limit", type=int, help="score on the first N test images only (quick check)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per model (median; default 7)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime fp32/int8 rows")
    parser.add_argument("--int8-images", type=int, default=int8_images, help="test images for the int8 PSNR (0: skip)")
    parser.add_argument("--json", help="write all results to this JSON file")


def start_timing(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the shared options and set the process up for steady CPU timings."""
    if not args.data:
        parser.error("give --data (or set KDRESTORE_DATA)")
    if args.repeats < 7:
        print(f"note: --repeats {args.repeats} is below the 7 calls DESIGN.md asks of quoted numbers", file=sys.stderr)
    keep_freed_memory()
    torch.set_num_threads(args.threads)


def parse_student_args(description: str, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """``--models`` and the shared timing options parsed, the process set up for timing; returns the arguments and
    the students to bench (those named, else every shipped one)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="shipped students to bench (default: all shipped)")
    add_timing_options(parser, int8_images=10)
    args = parser.parse_args(argv)
    start_timing(parser, args)
    return args, args.models or shipped_names(args.pretrained_root)


def main(argv: list[str] | None = None) -> int:
    args, names = parse_student_args(__doc__ or "", argv)
    if not names:
        print(f"no shipped student in {args.pretrained_root} (folders with card.json)", file=sys.stderr)
        return 1
    results, cache = [], {}
    try:
        for name in names:
            target = ship_target(name, args.pretrained_root)
            result = bench_student(target, Path(args.data), peers_dir=args.peers, test_limit=args.test_limit,
                                   repeats=args.repeats, warmup=args.warmup, onnx=not args.no_onnx,
                                   int8_images=args.int8_images, threads=args.threads,
                                   progress=sys.stderr.isatty(), cache=cache)
            results.append(result)
            print(format_ship(result) + "\n", flush=True)
    except KdrestoreError as exc:
        print(f"ship bench: error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(results))
    info = machine(args.threads)
    print(f"machine: {info['processor']}, {info['cpus']} CPUs, {args.threads} thread(s), torch {info['torch']}, "
          f"onnxruntime {info['onnxruntime']}")
    if args.json:
        atomic_write_json(args.json, {"kind": "kdrestore-ship-bench", "machine": info,
                                      "test_limit": args.test_limit, "results": results})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
