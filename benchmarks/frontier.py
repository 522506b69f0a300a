"""The gray denoising speed-quality frontier: PSNR against CPU megapixels/s for candidate students, the
peers (DnCNN-S-25, FFDNet-gray) and the shipped gray denoise students, all measured in one run.

    python benchmarks/frontier.py --data ../shared/data --peers ../shared/peers \
        [--candidates RUN_DIR_OR_NAME[::WEIGHTS] ...] [--sweep 64x8 48x8 ...] [--threads 1] \
        [--json OUT.json] [--svg OUT.svg]

Scores: Set12 at --sigma (default 25; AWGN in float, seeded, noisy input not clipped), PSNR/SSIM on
the output clipped to [0, 1] (kdrestore.evaluate.metrics.TASK_CONVENTIONS['denoise']), for the torch
fp32 model and for its static INT8 ONNX Runtime version (calibrated on built-in training crops, as the
ship bench). Speed: one 1 x 1 x 256 x 256 input, every model and its ONNX fp32 / INT8 versions called
in turn (round-robin), median of --repeats (>= 7) calls after --warmup, one thread by default, glibc
told to keep freed memory. ``--sweep WIDTHxDEPTH`` adds untrained ``repdn`` architectures (speed only,
no PSNR): the design measurement. Goals printed: PSNR >= DnCNN-S-25 - 0.3 dB at >= 4x its MP/s; the
moonshot PSNR >= FFDNet's at >= 2x its MP/s (torch fp32 and INT8 ONNX each against the peer's own
backend: torch vs torch, INT8 vs the peer's INT8).
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from torch import nn

from kdrestore.deploy.loader import load_shipped, resolve, shipped_names
from kdrestore.errors import KdrestoreError
from kdrestore.evaluate.profile import count_macs, count_params, measure_latencies
from kdrestore.experiments.ship import ShipTarget, _int8_psnr, _onnx_versions, _score
from kdrestore.experiments.svg import Point, scatter
from kdrestore.fsutil import atomic_write_json, atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ship import add_timing_options, machine, start_timing  # noqa: E402  (benchmarks/ship.py: shared options, machine)

PEERS = ("dncnn-s25", "ffdnet-gray")
SHAPE = (1, 1, 256, 256)


def gather(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rows ``{name, role, model}`` for the candidates, the peers, the shipped gray students and the sweep."""
    from kdrestore.evaluate.api import load_model
    from kdrestore.models.registry import build_model

    rows: list[dict[str, Any]] = []
    for text in args.candidates or []:
        source, _, weights = text.partition("::")
        spec = resolve(source, weights or None, args.peers)
        if spec.channels != 1:
            raise KdrestoreError(f"candidate {source} takes {spec.channels} channels; the frontier is gray")
        label = Path(source).name + (f"[{Path(weights).parent.name}]" if weights else "")
        rows.append({"name": label, "role": "candidate", "model": spec.name, "module": spec.model})
    for peer in args.peer_models:
        rows.append({"name": peer, "role": "peer", "model": peer,
                     "module": load_model(peer, peers=args.peers, sigma=args.sigma)})
    names = shipped_names(args.pretrained_root) if args.shipped is None else args.shipped
    for name in names:
        spec = load_shipped(name, args.pretrained_root)
        if spec.task == "denoise" and spec.channels == 1:
            rows.append({"name": name, "role": "shipped", "model": spec.name, "module": spec.model})
    for item in args.sweep or []:
        width, depth = (int(v) for v in item.lower().split("x"))
        rows.append({"name": f"repdn {width}x{depth}", "role": "sweep (untrained)", "model": "repdn",
                     "module": build_model("repdn", width=width, depth=depth, deploy=True).eval()})
    return rows


def measure(rows: list[dict[str, Any]], args: argparse.Namespace, data: Path) -> None:
    """Scores, cost, ONNX versions and the round-robin timing of every row (in place)."""
    fns: dict[str, Callable[..., Any]] = {}
    with tempfile.TemporaryDirectory(prefix="kdrestore-frontier-") as tmp:
        for i, row in enumerate(rows):
            model: nn.Module = row["module"]
            target = ShipTarget(row["name"], model, "denoise", 1, [], args.test, args.sigma)
            row.update(params=count_params(model), macs=count_macs(model, SHAPE))
            if row["role"] != "sweep (untrained)":
                row.update(_score(model, row["name"], target, data, 1, args.test_limit, sys.stderr.isatty()))
            fns[row["name"]] = model
            if args.no_onnx:
                continue
            folder = Path(tmp) / str(i)
            folder.mkdir()
            try:
                runners, info = _onnx_versions(model, target, folder, args.threads)
                if args.int8_images > 0 and row["role"] != "sweep (untrained)":
                    info["int8_psnr"] = _int8_psnr(folder, target, data, args.int8_images)
                row["onnx"] = info
                fns.update({f"{row['name']} | {k}": fn for k, fn in runners.items()})
            except Exception as exc:  # optional packages, export or quantization: report and go on
                row["onnx"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        lat = measure_latencies(fns, SHAPE, repeats=args.repeats, warmup=args.warmup)
    for row in rows:
        row.pop("module")
        row["torch_fp32"] = {"ms": lat[row["name"]].median_ms, "mp_s": lat[row["name"]].megapixels_per_s}
        for backend in ("onnx fp32", "onnx int8"):
            key = f"{row['name']} | {backend}"
            if key in lat:
                row[backend.replace(" ", "_")] = {"ms": lat[key].median_ms, "mp_s": lat[key].megapixels_per_s}


def goals(rows: list[dict[str, Any]]) -> None:
    """Ratios to the peers on the same backend and the two goals (in place)."""
    peers = {r["name"]: r for r in rows if r["role"] == "peer"}
    rules = {"dncnn-s25": (-0.3, 4.0), "ffdnet-gray": (0.0, 2.0)}
    for row in rows:
        row["vs"] = {}
        if row["role"] == "peer":
            continue
        for pname, peer in peers.items():
            for backend in ("torch_fp32", "onnx_int8"):
                mine, theirs = row.get(backend), peer.get(backend)
                if not mine or not theirs:
                    continue
                ratio = mine["mp_s"] / theirs["mp_s"]
                entry: dict[str, Any] = {"x_throughput": ratio}
                psnr_key = "psnr" if backend == "torch_fp32" else "int8_psnr"
                p_mine = row.get("psnr") if backend == "torch_fp32" else row.get("onnx", {}).get("int8_psnr", {}).get("int8_psnr")
                p_theirs = peer.get("psnr") if backend == "torch_fp32" else peer.get("onnx", {}).get("int8_psnr", {}).get("int8_psnr")
                if p_mine is not None and p_theirs is not None and pname in rules:
                    margin, speed = rules[pname]
                    entry.update(psnr_delta=p_mine - p_theirs, psnr_of=psnr_key,
                                 goal=f"PSNR >= peer {margin:+g} dB at >= {speed:g}x",
                                 met=bool(p_mine >= p_theirs + margin - 1e-9 and ratio >= speed - 1e-9))
                row["vs"][f"{pname} {backend}"] = entry


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"gray denoising frontier: {args.test} sigma {args.sigma:g}; PSNR on clipped [0,1] output; timing "
             f"1x1x256x256, {args.threads} thread(s), median of {args.repeats} after {args.warmup} warm-up, round-robin",
             f"{'model':26} {'role':17} {'PSNR':>6} {'SSIM':>6} {'int8':>6} {'params':>8} {'GMACs':>6} "
             f"{'MP/s':>6} {'xDnCNN':>6} {'xFFD':>6} {'ortfp32':>7} {'ortint8':>7} {'int8xDn':>7} {'int8xFF':>7}"]
    dn = next((r for r in rows if r["name"] == "dncnn-s25"), None)
    ff = next((r for r in rows if r["name"] == "ffdnet-gray"), None)

    def ratio(r: dict[str, Any], p: dict[str, Any] | None, key: str) -> str:
        return f"{r[key]['mp_s'] / p[key]['mp_s']:.2f}" if p and r.get(key) and p.get(key) else "-"

    for r in rows:
        int8 = r.get("onnx", {}).get("int8_psnr", {}).get("int8_psnr")
        lines.append(
            f"{r['name'][:26]:26} {r['role']:17} {r.get('psnr', math.nan):>6.2f} {r.get('ssim', math.nan):>6.3f} "
            f"{int8 if int8 is not None else math.nan:>6.2f} {r['params']:>8,} {r['macs'] / 1e9:>6.2f} "
            f"{r['torch_fp32']['mp_s']:>6.3f} {ratio(r, dn, 'torch_fp32'):>6} {ratio(r, ff, 'torch_fp32'):>6} "
            f"{r.get('onnx_fp32', {}).get('mp_s', math.nan):>7.3f} {r.get('onnx_int8', {}).get('mp_s', math.nan):>7.3f} "
            f"{ratio(r, dn, 'onnx_int8'):>7} {ratio(r, ff, 'onnx_int8'):>7}")
    for r in rows:
        for key, g in r.get("vs", {}).items():
            if "met" in g:
                lines.append(f"goal {r['name']} vs {key} ({g['goal']}): {g['x_throughput']:.2f}x, "
                             f"{g['psnr_of']} {g['psnr_delta']:+.2f} dB -> {'MET' if g['met'] else 'not met'}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    points = []
    for r in rows:
        if r.get("psnr") is None:
            continue
        points.append(Point(r["torch_fp32"]["mp_s"], r["psnr"], r["name"], "torch fp32", r["params"]))
        int8 = r.get("onnx", {}).get("int8_psnr", {}).get("int8_psnr")
        if int8 is not None and r.get("onnx_int8"):
            points.append(Point(r["onnx_int8"]["mp_s"], int8, r["name"], "ONNX Runtime int8", r["params"]))
    return scatter(points, x_label=f"CPU megapixels/s ({args.threads} thread, 256x256)", log_x=True,
                   y_label=f"PSNR dB ({Path(args.test).name}, sigma {args.sigma:g})",
                   title="gray denoising: quality vs CPU speed", width=720, height=460)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", nargs="*", help="run dirs, shipped names or registry names, optionally ::WEIGHTS")
    p.add_argument("--peer-models", nargs="*", default=list(PEERS), help="peers (default: dncnn-s25 ffdnet-gray)")
    p.add_argument("--shipped", nargs="*", help="shipped students (default: every shipped gray denoiser)")
    p.add_argument("--sweep", nargs="*", help="untrained repdn WIDTHxDEPTH rows, speed only (e.g. 64x8 48x10)")
    p.add_argument("--test", default="denoise/Set12", help="test folder under --data (default denoise/Set12)")
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--svg", help="write the PSNR vs MP/s plot here")
    add_timing_options(p, int8_images=12)
    args = p.parse_args(argv)
    start_timing(p, args)
    try:
        rows = gather(args)
        measure(rows, args, Path(args.data))
    except KdrestoreError as exc:
        print(f"frontier: error: {exc}", file=sys.stderr)
        return 2
    goals(rows)
    print(table(rows, args))
    info = machine(args.threads)
    print(f"machine: {info['processor']}, {info['cpus']} CPUs, {args.threads} thread(s), torch {info['torch']}, "
          f"onnxruntime {info['onnxruntime']}")
    if args.svg:
        atomic_write_text(args.svg, plot(rows, args))
        print(f"wrote {args.svg}")
    if args.json:
        atomic_write_json(args.json, {"kind": "kdrestore-frontier", "machine": info, "test": args.test,
                                      "sigma": args.sigma, "test_limit": args.test_limit, "repeats": args.repeats,
                                      "input_shape": list(SHAPE), "rows": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
