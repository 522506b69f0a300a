"""Build the data pack and the peer-weight folder that the GPU training job (device_train.py) carries.

    python benchmarks/pack_data.py --data ../shared/data --peers ../shared/peers --out device_job

Writes ``OUT/pack.npz`` (the clean training images of the shipped recipes as uint8 arrays, see
:mod:`kdrestore.data.pack`) and copies the teachers' published weights the recipes need into
``OUT/peers/`` (same layout as the peers folder), then prints what each part costs in MB. Name OUT in
``.git/info/exclude``: it is data, never committed. What the pack gives up to fit (at most 50 MB):
BSDS500-train-color is packed at half size (its photos lose fine texture; the colour and rain
students then train on smoother content than at full size).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from kdrestore.data.pack import PackSource, build_pack

SOURCES = [PackSource("train/BSD400-gray", mode="gray"),
           PackSource("train/BSDS500-train-color", mode="rgb", scale=0.5)]
PEER_FILES = ["DnCNN/DnCNN-S-15/net.pth", "DnCNN/DnCNN-S-25/net.pth", "DnCNN/DnCNN-S-50/net.pth",
              "FFDNet/net_gray.pth", "FFDNet/net_rgb.pth", "PReNet/Rain100H/PReNet6/net_latest.pth"]
LIMIT_MB = 50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the data root (holds train/...)")
    parser.add_argument("--peers", required=True, help="the peers folder")
    parser.add_argument("--out", default="device_job")
    args = parser.parse_args()
    out = Path(args.out)
    manifest = build_pack(args.data, SOURCES, out / "pack.npz")
    pack_mb = (out / "pack.npz").stat().st_size / 1e6
    for key, entry in manifest["sources"].items():
        print(f"{key:34} {entry['count']:>5} images  mode {entry['mode']:4} scale {entry['scale']}")
    peers_mb = 0.0
    for rel in PEER_FILES:
        src, dst = Path(args.peers) / rel, out / "peers" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        peers_mb += dst.stat().st_size / 1e6
    print(f"pack {pack_mb:.1f} MB (limit {LIMIT_MB}), peers {peers_mb:.1f} MB, together {pack_mb + peers_mb:.1f} MB")
    if pack_mb > LIMIT_MB:
        print(f"the pack is over {LIMIT_MB} MB: pack fewer or smaller images", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
