"""Score distributions behind the leak threshold (kdrestore.data.leaks.THRESHOLD), measured on ../shared/data.

Same scene: pairs known to show one scene (a rainy/hazy image and its clean image, matched by file name;
Rain100H's clean backgrounds against the BSDS500 photos they were rendered on, and against CBSD68). Distinct:
the best match of every test image (clean side) in the training folders that hold none of its scenes.
Usage: python benchmarks/leak_scores.py [--data DIR] [--json FILE]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from kdrestore.data.leaks import THRESHOLD, best_matches, folder_items  # noqa: E402
from kdrestore.data.pairing import find_pairs  # noqa: E402
from kdrestore.data.thumbs import thumbnails  # noqa: E402

TESTS = ["denoise/Set12", "denoise/CBSD68", "derain/Rain100H", "dehaze/SOTS-indoor-50"]
TRAIN = ["train/BSD400-gray", "train/BSDS500-train-color", "train/BSDS500-rain100-test-scenes",
         "train/Rain100L-train", "train/NYUv2-indoor"]
# (test, training folder) that share scenes by construction (shared/README.md): not "distinct"
SHARED = {("derain/Rain100H", "train/BSDS500-rain100-test-scenes")}


def stats(x: np.ndarray) -> dict[str, float]:
    return {"n": int(len(x)), "min": float(x.min()), "p1": float(np.percentile(x, 1)),
            "median": float(np.median(x)), "p99": float(np.percentile(x, 99)), "max": float(x.max())}


def paired_scores(root: Path, folder: str) -> tuple[np.ndarray, np.ndarray]:
    """(score of each degraded image with its own clean image, best score with a clean image of another
    scene: clean images scoring >= 0.99 with its own are the same scene (Rain100H repeats backgrounds))."""
    pairs = find_pairs(root / folder)
    deg = thumbnails([d for d, _ in pairs])
    clean = thumbnails(list(dict.fromkeys(c for _, c in pairs)))
    index = {p: i for i, p in enumerate(clean.paths)}
    own_idx = np.array([index[c] for _, c in pairs])
    own = np.einsum("ij,ij->i", deg.full, clean.full[own_idx])
    s = deg.full @ clean.full.T
    s[(clean.full[own_idx] @ clean.full.T) >= 0.99] = -1
    return own, s.max(axis=1)


COPIES = {  # name -> how a copy is made (Pillow image -> image)
    "JPEG q50": lambda im: _reencode(im, "JPEG", 50),
    "WebP q50": lambda im: _reencode(im, "WEBP", 50),
    "mirrored + JPEG q75": lambda im: _reencode(ImageOps.mirror(im), "JPEG", 75),
    "10-px border cut, mirrored": lambda im: ImageOps.mirror(im.crop((10, 10, im.width - 10, im.height - 10))),
    "half size": lambda im: im.resize((im.width // 2, im.height // 2), Image.BICUBIC),
    "rotated 90": lambda im: im.transpose(Image.ROTATE_90),
    "central 80% crop": lambda im: im.crop((im.width // 10, im.height // 10, im.width - im.width // 10,
                                            im.height - im.height // 10)),
    "central 90% crop": lambda im: im.crop((im.width // 20, im.height // 20, im.width - im.width // 20,
                                            im.height - im.height // 20)),
}


def _reencode(im: "Image.Image", fmt: str, quality: int) -> "Image.Image":
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format=fmt, quality=quality)
    buf.seek(0)
    return Image.open(buf)


def copy_scores(originals: list[Path]) -> dict[str, np.ndarray]:
    """Best score of each transformed copy among the originals, per transform."""
    ref = thumbnails(originals)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in COPIES.items():
            paths = []
            for i, p in enumerate(originals):
                with Image.open(p) as im:
                    q = Path(tmp) / f"{len(out)}-{i}.png"
                    make(im.convert("RGB")).save(q)
                    paths.append(q)
            best, where, _ = best_matches(thumbnails(paths, cache=False), ref)
            out[name] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("KDRESTORE_DATA", "../shared/data"))
    ap.add_argument("--json", default="leak_scores.json")
    args = ap.parse_args()
    root = Path(args.data)
    rows, same, distinct = [], {}, []
    for folder, what in (("derain/Rain100H", "rain (Rain100H)"), ("dehaze/SOTS-indoor-50", "haze (SOTS)"),
                         ("train/Rain100L-train", "light rain (Rain100L-train)")):
        own, other = paired_scores(root, folder)
        same[what] = stats(own)
        rows.append((f"same scene: {what} vs its clean image", stats(own)))
        rows.append((f"distinct: {what} vs other clean images of the set", stats(other)))
    originals = folder_items(root / "dehaze/SOTS-indoor-50")[0] + folder_items(root / "denoise/CBSD68")[0]
    for name, best in copy_scores(originals).items():
        same[f"copy: {name}"] = stats(best)
        rows.append((f"same scene: SOTS GT + CBSD68, {name}, best among originals", stats(best)))
    tests = {t: thumbnails(folder_items(root / t)[0]) for t in TESTS}
    trains = {t: thumbnails(folder_items(root / t)[0]) for t in TRAIN}
    for t, tt in tests.items():
        for g, gt in trains.items():
            best, _, _ = best_matches(tt, gt)
            key = f"{t} best in {g}"
            if (t, g) in SHARED:
                rows.append((f"shared scenes: {key}", stats(best)))
                same["Rain100H backgrounds in BSDS500 (top 75)"] = stats(np.sort(best)[-75:])
            else:
                distinct.append(best)
                rows.append((f"distinct: {key}", stats(best)))
    cb, _, _ = best_matches(tests["derain/Rain100H"], tests["denoise/CBSD68"])
    same["Rain100H backgrounds in CBSD68 (top 25)"] = stats(np.sort(cb)[-25:])
    rows.append(("shared scenes: derain/Rain100H best in denoise/CBSD68", stats(cb)))
    all_distinct = np.concatenate(distinct)
    rows.append(("distinct: every test image's best in a disjoint training folder", stats(all_distinct)))
    width = max(len(r[0]) for r in rows)
    print(f"{'comparison'.ljust(width)}  {'n':>5} {'min':>6} {'p1':>6} {'median':>6} {'p99':>6} {'max':>6}")
    for name, s in rows:
        print(f"{name.ljust(width)}  {s['n']:>5} {s['min']:6.3f} {s['p1']:6.3f} {s['median']:6.3f} {s['p99']:6.3f} "
              f"{s['max']:6.3f}")
    clean_same = {k: v for k, v in same.items() if not k.startswith(("rain", "haze", "light rain"))}
    print(f"threshold in use: {THRESHOLD}; highest distinct score {all_distinct.max():.3f}; lowest same-scene "
          f"score of a clean copy {min(s['min'] for s in clean_same.values()):.3f} (degraded inputs are not matched: "
          "paired sets are compared on their clean side)")
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump({"threshold": THRESHOLD, "data": str(root), "rows": dict(rows), "same_scene": same}, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
