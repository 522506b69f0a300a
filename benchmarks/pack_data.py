"""Build the folder that the GPU training job (device_train.py) carries: a subset of the data root, original
files in the same layout, and the teachers' published weights.

    python benchmarks/pack_data.py --data ../shared/data --peers ../shared/peers --out device_job \
        [--rain100l-pairs 16] [--nyu-scenes 200] [--whole FOLDER ...] [--peer-files REL ...]

Writes ``OUT/data/<folder>/...`` (the files themselves: lossless WebP, JPEG and PNG as they are in the data
root, so nothing is re-encoded) and ``OUT/peers/<file>``, then prints what each part costs in MB. On the
device, ``KDRESTORE_DATA=OUT/data`` and the recipes read these folders as they read the data root here.
Name OUT in ``.git/info/exclude``: it is data, never committed.

What fits (a device call carries at most 64 MiB, the checkout's 9 MB included: the default limit is what is left;
the peers take 16 MB, ``--peer-files`` copies only those the job's recipes read): BSD400-gray and BSDS500-train-color
whole (18 MB; ``--whole`` with no folder leaves them out for a rain and haze job); of Rain100L-train and
NYUv2-indoor, every held-out validation item (the last 20 pairs, the last 50 scenes: the recipes' ``holdout``
then picks exactly the validation part they pick here) and only the first ``--rain100l-pairs`` (0.36 MB each)
/ ``--nyu-scenes`` (0.05 MB each) training items. A run on the subset sees fewer training pairs and scenes
than the same recipe here (the counts are printed); its validation is the same. For a rain and haze job:
``--whole --rain100l-pairs 40 --nyu-scenes 350`` (58 MB, over the limit with every peer: name the peers).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator, Sequence, TypeVar

from kdrestore.config import RunConfig, load_config
from kdrestore.data import find_pairs, list_images
from kdrestore.data.nyu import find_nyu_scenes

ROOT = Path(__file__).resolve().parents[1]
PEER_FILES = ["DnCNN/DnCNN-S-15/net.pth", "DnCNN/DnCNN-S-25/net.pth", "DnCNN/DnCNN-S-50/net.pth",
              "FFDNet/net_gray.pth", "FFDNet/net_rgb.pth", "PReNet/Rain100H/PReNet6/net_latest.pth",
              "PReNet/Rain100L/PReNet6/net_latest.pth", "GCANet/wacv_gcanet_dehaze.pth"]
WHOLE = ["train/BSD400-gray", "train/BSDS500-train-color"]
RAIN100L, NYU = "train/Rain100L-train", "train/NYUv2-indoor"
# the recipes whose held-out part the subset keeps whole (their data.val.holdout, read, never copied)
HOLDOUT_FROM = {RAIN100L: "configs/derain/nafnet-tiny-rain100l.yaml", NYU: "configs/dehaze/nafnet-tiny-nyu.yaml"}
CALL_LIMIT_MB = 64 * 1024 * 1024 / 1e6  # what one device call carries: the checkout and the job folder together
T = TypeVar("T")


def checkout_mb() -> float:
    """MB of the checkout that travels with every device call (tracked and untracked, not ignored, files)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")
    paths = [ROOT / os.fsdecode(f) for f in listed if f]
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1e6  # a deleted, still tracked file is not sent


@contextmanager
def data_root(data: Path) -> Iterator[None]:
    """``${KDRESTORE_DATA}`` set to ``data`` inside the block (the environment is left as it was)."""
    before = os.environ.get("KDRESTORE_DATA")
    os.environ["KDRESTORE_DATA"] = str(data)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KDRESTORE_DATA")
        else:
            os.environ["KDRESTORE_DATA"] = before


def recipe_on(recipe: Path, data: Path) -> RunConfig:
    """The recipe read with its ``${KDRESTORE_DATA}`` paths under ``data``."""
    with data_root(data):
        return load_config(recipe)


def held_out(folder: str, data: Path) -> int:
    """How many last items of ``folder`` its recipe validates on (``data.val.holdout``)."""
    val = recipe_on(ROOT / HOLDOUT_FROM[folder], data).data.val
    if val is None or val.holdout is None or Path(val.path or "").name != Path(folder).name:
        raise SystemExit(f"{HOLDOUT_FROM[folder]}: data.val no longer holds out part of {folder}")
    return val.holdout


def first_and_last(items: Sequence[T], first: int, last: int, what: str) -> list[T]:
    """The first ``first`` training items and the last ``last`` (held out), in order."""
    if first < 1 or first + last > len(items):
        raise SystemExit(f"{what}: {first} training items beside the {last} held out: give 1 to "
                         f"{len(items) - last} ({len(items)} in the folder)")
    return [*items[:first], *items[len(items) - last:]]


def files_to_copy(data: Path, whole: list[str], rain_pairs: int, nyu_scenes: int) -> dict[str, list[Path]]:
    """Each folder of the subset and the files it takes (paths under ``data``)."""
    chosen = {folder: list_images(data / folder) for folder in whole}
    pairs = first_and_last(find_pairs(data / RAIN100L), rain_pairs, held_out(RAIN100L, data),
                           f"{RAIN100L} (--rain100l-pairs)")
    chosen[RAIN100L] = [p for pair in pairs for p in pair]
    scenes = first_and_last(find_nyu_scenes(data / NYU).scenes, nyu_scenes, held_out(NYU, data),
                            f"{NYU} (--nyu-scenes)")
    chosen[NYU] = [p for s in scenes for p in (s.rgb, s.depth)]
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the data root (holds train/...)")
    parser.add_argument("--peers", required=True, help="the peers folder")
    parser.add_argument("--out", default="device_job")
    parser.add_argument("--whole", nargs="*", default=WHOLE, help=f"folders copied whole (default {WHOLE})")
    parser.add_argument("--rain100l-pairs", type=int, default=16, help="Rain100L training pairs (the first ones)")
    parser.add_argument("--nyu-scenes", type=int, default=200, help="NYU training scenes (the first ones)")
    parser.add_argument("--peer-files", nargs="*", default=PEER_FILES, metavar="REL",
                        help="peer weights to copy, relative to --peers (default: every teacher a recipe names)")
    parser.add_argument("--limit-mb", type=float, default=None,
                        help="refuse a job folder larger than this (default: 64 MiB less the checkout that travels)")
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    for part in ("data", "peers"):
        if (out / part).exists():
            shutil.rmtree(out / part)  # a subset of another size leaves no stray files behind
    if args.limit_mb is None:  # measured once the old subset is gone: a job folder inside the checkout counts once
        args.limit_mb = CALL_LIMIT_MB - checkout_mb()
    total = 0.0
    for folder, files in files_to_copy(data, args.whole, args.rain100l_pairs, args.nyu_scenes).items():
        mb = 0.0
        for src in files:
            dst = out / "data" / src.relative_to(data)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            mb += dst.stat().st_size / 1e6
        print(f"{folder:30} {len(files):>5} files  {mb:6.1f} MB")
        total += mb
    for rel in args.peer_files:
        src, dst = Path(args.peers) / rel, out / "peers" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        total += dst.stat().st_size / 1e6
    print(f"data and peers {total:.1f} MB (limit {args.limit_mb:.1f}); the first {args.rain100l_pairs} Rain100L training "
          f"pairs and {args.nyu_scenes} NYU training scenes, validation parts whole")
    if total > args.limit_mb:
        print(f"over {args.limit_mb:.1f} MB: take fewer Rain100L pairs or NYU scenes, or fewer --peer-files",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
