"""Rain100H (Y) for each model: all 100 pairs, and the pairs whose backgrounds are no BSDS500 training photo.

75 of Rain100H's backgrounds are BSDS500 training photos (``train/BSDS500-rain100-test-scenes``: the first
``derain-small`` trained on them); the other 25 are CBSD68 photos no recipe trains on, so the 25-pair column
compares models on scenes none of them saw.

    python benchmarks/rain100h_unseen.py derain-small runs/derain-calibrated [--data DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import kdrestore  # noqa: E402
from kdrestore.data.tasks import eval_dataset, iter_samples  # noqa: E402
from kdrestore.evaluate.metrics import TASK_CONVENTIONS  # noqa: E402
from kdrestore.evaluate.runner import evaluate  # noqa: E402
from kdrestore.fsutil import atomic_write_text  # noqa: E402


def leaked_scenes(data: Path) -> set[str]:
    """Rain100H stems whose background is a BSDS500 training photo (``train/BSDS500-rain100-test-scenes``, the photos
    the first ``derain-small`` trained on), found by the toolkit's image search (``kdrestore check-leaks``)."""
    from kdrestore.data.leaks import find_leaks, image_set

    report = find_leaks([image_set(data / "train/BSDS500-rain100-test-scenes")], [image_set(data / "derain/Rain100H")])
    return {Path(m.test).stem for r in report.results for m in r.matches}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped names, run directories or NAME=WEIGHTS")
    parser.add_argument("--data", default=os.environ.get("KDRESTORE_DATA"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    if not args.data:
        parser.error("--data (or KDRESTORE_DATA) is required")
    torch.set_num_threads(args.threads)
    leaked, rows = leaked_scenes(Path(args.data)), []
    print(f"Rain100H, Y (derain convention); unseen = the {100 - len(leaked)} pairs not among the leak matches")
    print(f"{'model':40} {'all PSNR':>8} {'SSIM':>6} {'unseen':>7}")
    for spec in args.models:
        name, _, weights = spec.partition("=")  # NAME=WEIGHTS: a registry model with those weights
        model = kdrestore.load(name, weights=weights or None).model.eval()
        ds, _ = eval_dataset("derain", Path(args.data) / "derain/Rain100H")
        res = evaluate(model, iter_samples(ds), TASK_CONVENTIONS["derain"], name=spec)
        unseen = [s.psnr for s in res.images if s.name not in leaked]
        rows.append({"model": spec, "psnr": res.psnr, "ssim": res.ssim, "unseen_psnr": float(np.mean(unseen)),
                     "unseen_pairs": len(unseen), "pairs": len(res.images)})
        print(f"{spec:40} {res.psnr:8.2f} {res.ssim:6.3f} {np.mean(unseen):7.2f}", flush=True)
    if args.json:
        atomic_write_text(args.json, json.dumps({"leaked": sorted(leaked), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
