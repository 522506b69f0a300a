"""The shipped-student benchmark: each shipped student against the peers it competes with, in one run.

For every student: PSNR/SSIM on its task's test set under the published convention, params, MACs,
and CPU latency / megapixels per second at a fixed input, timed round-robin with its peers and its
own ONNX Runtime fp32 and int8 versions (so ratios are measured in the same run), then the goals:

* the main peer (the card's ``competes_with``): throughput >= ``bench.speedup`` x the peer's (default
  ``SPEEDUP_GOAL``) and PSNR >= the peer's minus ``bench.psnr_margin`` dB (default ``PSNR_MARGIN``): the goal
  the student was set (a colour denoiser at FFDNet-RGB's speed, 1x; heavy rain within 1 dB of PReNet6);
* the baselines (``bench.baselines``; AOD-Net and DCP for dehazing by default): ahead on both,
  higher PSNR and higher SSIM (their throughput ratio is reported too).

``benchmarks/ship.py`` is the command line.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.profile import count_macs, count_params, measure_latencies
from ..evaluate.runner import evaluate

SPEEDUP_GOAL, PSNR_MARGIN = 4.0, 0.3
_EPS = 1e-9  # float slack when a goal is met exactly
# (task, channels) -> the main peer of a card without ``competes_with``
DEFAULT_COMPETITORS: dict[tuple[str, int], list[str]] = {
    ("denoise", 1): ["dncnn-s25"], ("denoise", 3): ["ffdnet-rgb"], ("derain", 3): ["prenet6"], ("dehaze", 3): ["gcanet"],
}
# task -> baselines to beat on both PSNR and SSIM, for a card without ``bench.baselines``
DEFAULT_BASELINES: dict[str, list[str]] = {"dehaze": ["aodnet", "dcp"]}
# (task, channels) -> test folder under the data root, for a card without ``bench.data``
DEFAULT_TEST_SETS: dict[tuple[str, int], str] = {
    ("denoise", 1): "denoise/Set12", ("denoise", 3): "denoise/CBSD68",
    ("derain", 3): "derain/Rain100H", ("dehaze", 3): "dehaze/SOTS-indoor-50",
}


def bench_shape(channels: int) -> tuple[int, int, int, int]:
    """The fixed timing input: 256 x 256 gray, or 320 x 480 (H x W) RGB, the size of Rain100H."""
    return (1, 1, 256, 256) if channels == 1 else (1, 3, 320, 480)


@dataclass
class ShipTarget:
    """A shipped student and what its card says it is compared against."""

    name: str
    model: nn.Module
    task: str
    channels: int
    competes_with: list[str]
    test_set: str  # folder under the data root
    sigma: float = 25.0
    card: dict[str, Any] = field(default_factory=dict)
    holdout: int | None = None  # score only the last N pairs of test_set (a training set's held-out part)
    speedup: float = SPEEDUP_GOAL  # the goal against the main peer: throughput ratio ...
    psnr_margin: float = PSNR_MARGIN  # ... and PSNR at most this many dB below it


def ship_target(name: str, root: Path | None = None) -> ShipTarget:
    """Load a shipped student and read ``competes_with`` / ``bench`` from its card (defaults per task)."""
    from ..deploy.loader import load_shipped

    spec = load_shipped(name, root)
    card, key = spec.card, (str(spec.task), spec.channels)
    where = f"card of '{name}'"
    bench = card.get("bench") or {}
    if not isinstance(bench, dict):
        raise KdrestoreError(f"{where}: bench must be a mapping, got {bench!r}")
    given = card.get("competes_with")
    peers = [given] if isinstance(given, str) else given
    if peers is None:
        peers = DEFAULT_COMPETITORS.get(key, [])[:1]
    baselines = bench.get("baselines", DEFAULT_BASELINES.get(str(spec.task), []))
    peers = list(dict.fromkeys([*peers, *baselines])) if isinstance(peers, list) and isinstance(baselines, list) else None
    if not peers or not all(isinstance(p, str) for p in peers):
        raise KdrestoreError(f"{where}: competes_with must name a peer (a registry name) and bench.baselines "
                             f"be a list of them; got {given!r} and {bench.get('baselines')!r}")
    test_set = bench.get("data", DEFAULT_TEST_SETS.get(key))
    if not test_set:
        raise KdrestoreError(f"{where}: no default test set for task {spec.task!r} with {spec.channels} "
                             "channel(s); give bench.data")
    holdout = bench.get("holdout")
    if holdout is not None and (not isinstance(holdout, int) or isinstance(holdout, bool) or holdout < 1):
        raise KdrestoreError(f"{where}: bench.holdout must be a positive integer, got {holdout!r}")
    goal = {}
    for key, default in (("speedup", SPEEDUP_GOAL), ("psnr_margin", PSNR_MARGIN)):
        value = bench.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise KdrestoreError(f"{where}: bench.{key} must be a non-negative number, got {value!r}")
        goal[key] = float(value)
    return ShipTarget(name, spec.model, str(spec.task), spec.channels, list(peers), str(test_set),
                      float(bench.get("sigma", 25.0)), card, holdout, **goal)


def goal_checks(student: dict[str, Any], peers: list[dict[str, Any]], speedup: float = SPEEDUP_GOAL,
                margin: float = PSNR_MARGIN) -> list[dict[str, Any]]:
    """Goal flags of a student row against peer rows (each with ``name``, ``psnr``, ``mp_s``).

    The first peer is the main one (>= ``speedup`` x throughput, PSNR >= peer - ``margin``); the
    others (baselines) must be beaten on both PSNR and SSIM.
    """
    checks = []
    for i, peer in enumerate(peers):
        ratio = student["mp_s"] / peer["mp_s"] if peer["mp_s"] > 0 else math.inf
        delta = student["psnr"] - peer["psnr"]
        if i == 0:
            speed_ok, psnr_ok = ratio >= speedup - _EPS, delta >= -margin - _EPS  # a goal met exactly counts
            rule = f"throughput >= {speedup:g}x, PSNR >= peer - {margin:g} dB"
        else:  # "ahead on both" read as both quality metrics; the throughput ratio is reported, not required
            speed_ok, psnr_ok = True, delta > 0.0 and student.get("ssim", 0.0) > peer.get("ssim", 0.0)
            rule = "ahead on both: higher PSNR and higher SSIM"
        checks.append({"peer": peer["name"], "kind": "main" if i == 0 else "baseline", "rule": rule,
                       "ssim_delta": student.get("ssim", math.nan) - peer.get("ssim", math.nan),
                       "throughput_ratio": ratio, "psnr_delta": delta, "speed_ok": bool(speed_ok),
                       "psnr_ok": bool(psnr_ok), "met": bool(speed_ok and psnr_ok)})
    return checks


def _score(model: nn.Module, name: str, target: ShipTarget, data_root: Path, channels: int,
           limit: int | None, progress: bool) -> dict[str, Any]:
    from ..data.tasks import eval_samples

    samples, total, desc = eval_samples(target.task, data_root / target.test_set, sigma=target.sigma,
                                        mode="gray" if channels == 1 else "rgb", limit=limit, holdout=target.holdout)
    res = evaluate(model, samples, TASK_CONVENTIONS[target.task], name=name, task=target.task, data=desc,
                   limit=limit, progress=progress, total=total)
    if not res.images:
        raise KdrestoreError(f"{name}: no test image of {data_root / target.test_set} could be scored")
    return {"psnr": res.psnr, "ssim": res.ssim, "input_psnr": res.input_psnr, "images": len(res.images),
            "data": desc, "failed": [f"{n}: {e}" for n, e in res.failed]}


def _onnx_versions(model: nn.Module, target: ShipTarget, folder: Path, threads: int | None
                   ) -> tuple[dict[str, Callable[..., Any]], dict[str, Any]]:
    """fp32 and int8 ONNX Runtime runners of the student (int8 calibrated on built-in training crops degraded as
    the student was trained, :func:`~kdrestore.deploy.export.calibration_for`)."""
    from ..deploy import export as ex

    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    ex.export_onnx(model, fp32, target.channels)
    info: dict[str, Any] = {"parity_max_diff": ex.onnx_parity(model, fp32).max_diff}
    q = ex.quantize_int8(fp32, int8, ex.calibration_for(target.task, target.channels, target.card))
    info.update(int8_mode=q.mode, int8_note=q.note, int8_weights=q.weights,
                int8_kernel_agreement_db=q.kernel_agreement_db, bytes_fp32=q.bytes_fp32, bytes_int8=q.bytes_int8)
    return {"onnx fp32": ex.OnnxModel(fp32, threads), "onnx int8": ex.OnnxModel(int8, threads)}, info


def _int8_psnr(folder: Path, target: ShipTarget, data_root: Path, images: int) -> dict[str, Any]:
    from ..data.tasks import eval_dataset
    from ..deploy.export import int8_psnr_cost

    ds, _ = eval_dataset(target.task, data_root / target.test_set, sigma=target.sigma,
                         mode="gray" if target.channels == 1 else "rgb", limit=images, holdout=target.holdout)
    return int8_psnr_cost(folder / "model.onnx", folder / "model.int8.onnx", [ds[i] for i in range(len(ds))],
                          TASK_CONVENTIONS[target.task])


def bench_student(target: ShipTarget, data_root: Path, *, peers_dir: str | None = None,
                  test_limit: int | None = None, repeats: int = 7, warmup: int = 2, onnx: bool = True,
                  int8_images: int = 10, threads: int | None = None, progress: bool = False,
                  cache: dict[tuple[Any, ...], dict[str, Any]] | None = None) -> dict[str, Any]:
    """One student against its peers: scores, cost, round-robin latency, ONNX Runtime and goals."""
    from ..evaluate.api import load_model
    from ..models.registry import model_entry

    cache = {} if cache is None else cache
    shape = bench_shape(target.channels)
    models: dict[str, nn.Module] = {target.name: target.model}
    rows: list[dict[str, Any]] = [{"name": target.name, "role": "student", "model": target.card.get("model"),
                                   **_score(target.model, target.name, target, data_root, target.channels,
                                            test_limit, progress)}]
    for i, peer in enumerate(target.competes_with):
        channels = int(model_entry(peer).meta.get("channels", 3))
        if channels != target.channels:
            raise KdrestoreError(f"{target.name} takes {target.channels} channel(s) but its peer {peer} takes "
                                 f"{channels}: fix competes_with in its card")
        sigma = target.sigma if target.task == "denoise" else None
        models[peer] = load_model(peer, peers=peers_dir, sigma=sigma)
        key = (peer, target.task, target.test_set, target.sigma, test_limit, target.holdout)
        if key not in cache:
            cache[key] = _score(models[peer], peer, target, data_root, channels, test_limit, progress)
        rows.append({"name": peer, "role": "main peer" if i == 0 else "baseline", "model": peer, **cache[key]})
    for row in rows:
        row.update(params=count_params(models[row["name"]]), macs=count_macs(models[row["name"]], shape))
    fns: dict[str, Callable[..., Any]] = dict(models)
    onnx_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kdrestore-ship-") as tmp:
        if onnx:
            try:
                runners, onnx_info = _onnx_versions(target.model, target, Path(tmp), threads)
                fns.update(runners)
                if int8_images > 0:
                    onnx_info["int8_psnr"] = _int8_psnr(Path(tmp), target, data_root, int8_images)
            except Exception as exc:  # optional packages, export or quantization: report and go on
                onnx_info = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        lat = measure_latencies(fns, shape, repeats=repeats, warmup=warmup)
    for row in rows:
        row.update(ms=lat[row["name"]].median_ms, ms_min=lat[row["name"]].min_ms, mp_s=lat[row["name"]].megapixels_per_s)
    for name in ("onnx fp32", "onnx int8"):
        if name in lat:
            onnx_info[name] = {"ms": lat[name].median_ms, "ms_min": lat[name].min_ms, "mp_s": lat[name].megapixels_per_s}
    main_mp_s = rows[1]["mp_s"]
    for row in rows:
        row["x_main_peer"] = row["mp_s"] / main_mp_s
    for name in ("onnx fp32", "onnx int8"):
        if name in onnx_info:
            onnx_info[name]["x_main_peer"] = onnx_info[name]["mp_s"] / main_mp_s
    goals = goal_checks(rows[0], rows[1:], target.speedup, target.psnr_margin)
    return {"student": target.name, "task": target.task, "channels": target.channels, "test_set": target.test_set,
            "sigma": target.sigma if target.task == "denoise" else None,
            "convention": TASK_CONVENTIONS[target.task].to_dict(), "input_shape": list(shape),
            "repeats": repeats, "warmup": warmup, "rows": rows, "onnx": onnx_info, "goals": goals,
            "all_goals_met": all(g["met"] for g in goals)}


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def format_ship(result: dict[str, Any]) -> str:
    """One student's block of the text report: a row per model, then its goals."""
    rows, onnx = result["rows"], result["onnx"]
    shape = "x".join(str(d) for d in result["input_shape"])
    first = rows[0]
    lines = [f"{result['student']} ({first.get('model')}, {result['task']}) on {first['data']}, "
             f"{first['images']} image(s); {result['convention']['text']}",
             f"timing: input {shape}, median of {result['repeats']} calls after {result['warmup']} warm-up, "
             "models called in turn",
             f"{'model':16} {'role':10} {'PSNR':>7} {'SSIM':>6} {'params':>9} {'GMACs':>7} {'ms':>8} "
             f"{'MP/s':>7} {'x peer':>7}"]
    for r in rows:  # MACs "-": not counted (operations outside torch's FLOP counter, e.g. DCP)
        macs = f"{r['macs'] / 1e9:.2f}" if r["macs"] else "-"
        lines.append(f"{r['name']:16} {r['role']:10} {r['psnr']:>7.2f} {r['ssim']:>6.3f} {r['params']:>9,} "
                     f"{macs:>7} {r['ms']:>8.1f} {r['mp_s']:>7.2f} {r['x_main_peer']:>6.2f}x")
    if "error" in onnx:
        lines.append(f"  ONNX Runtime: not measured ({onnx['error']})")
    for name in ("onnx fp32", "onnx int8"):
        if name in onnx:
            o = onnx[name]
            note = ""
            if name == "onnx int8":
                weights = onnx.get("int8_weights")
                note = f"  ({onnx.get('int8_mode', '')}" + (f", {weights} weights" if weights else "")
                cost = onnx.get("int8_psnr")
                if cost:
                    note += (f"; PSNR fp32 {cost['fp32_psnr']:.2f} -> int8 {cost['int8_psnr']:.2f} dB "
                             f"on {cost['images']} image(s)")
                note += ")"
            lines.append(f"  {name:14} {'student':10} {'':>7} {'':>6} {'':>9} {'':>7} {o['ms']:>8.1f} "
                         f"{o['mp_s']:>7.2f} {o['x_main_peer']:>6.2f}x{note}")
    for g in result["goals"]:
        speed = f"throughput {g['throughput_ratio']:.2f}x" + (f" [{_yes(g['speed_ok'])}]" if g["kind"] == "main" else "")
        quality = (f"PSNR {g['psnr_delta']:+.2f} dB" if g["kind"] == "main" else
                   f"PSNR {g['psnr_delta']:+.2f} dB, SSIM {g.get('ssim_delta', float('nan')):+.3f}")
        lines.append(f"goal vs {g['peer']} ({g['rule']}): {speed}, {quality} [{_yes(g['psnr_ok'])}] -> "
                     f"{'MET' if g['met'] else 'NOT MET'}")
    return "\n".join(lines)


def format_summary(results: list[dict[str, Any]]) -> str:
    """One line per student: every goal met or not."""
    lines = [f"{'student':20} {'main peer':12} {'x thr.':>7} {'dPSNR':>7}  all goals"]
    for r in results:
        main = r["goals"][0]
        lines.append(f"{r['student']:20} {main['peer']:12} {main['throughput_ratio']:>6.2f}x "
                     f"{main['psnr_delta']:>+7.2f}  {'MET' if r['all_goals_met'] else 'NOT MET'}")
    return "\n".join(lines)
