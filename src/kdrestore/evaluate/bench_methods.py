"""``kdrestore bench methods``: fixed-budget ablations of SPDD, KDDN and HMDS, each on the one trainer.

Every row of a table trains the same student with the same data, steps, batch, crop and seed
(:func:`.bench.bench_recipe`); only the method changes. Teachers that have no published weights are
trained first, inside the bench, for ``teacher_steps`` (default: ``steps``) and reported with the rows.

* ``dehaze``: ``kddn-student-tiny`` trained on synthetic haze over clean BSDS500-train images, scored on
  SOTS-indoor-50 (RGB PSNR/SSIM). Rows: ``alone`` (no method) | ``output`` (output distillation from
  the GCANet peer) | ``spdd`` (frozen snapshot) | ``spdd-ema`` | ``kddn`` (its auto-encoder teacher is
  trained clean -> clean first; its reconstruction PSNR on the clean SOTS ground truths is reported).
* ``denoise``: ``mdrn-tiny`` per test set (``Set12``: gray, BSD400 training images; ``CBSD68``: colour,
  BSDS500-train) and sigma (0-255, AWGN, PSNR on clipped [0, 1]). Rows: ``alone`` (trained at sigma) |
  ``alone-blind`` (sigma in [0, 55], the reference of ``hmds-levels``) | ``hmds-peer`` (published peer
  at sigma, DnCNN-S gray / FFDNet colour, FitNet adapters + output) | ``hmds-restormer-rsd``
  (Restormer-tiny trained first, RSD + output) | ``hmds-levels`` (blind data, three level teachers
  for [0,20], [20,35], [35,55]: DnCNN-S 15/25/50 gray, FFDNet at 15/25/50 colour).
"""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from torch import nn

from ..data.synth import SynthDataset
from ..data.tasks import eval_samples, iter_samples
from ..engine.checkpoint import CheckpointManager
from ..errors import KdrestoreError
from .bench import bench_recipe, train_and_score
from .metrics import TASK_CONVENTIONS
from .runner import EvalResult, evaluate

DEHAZE_TRAIN = {"kind": "synth", "path": "train/BSDS500-train-color", "degradation": "haze", "mode": "rgb",
                "params": {"beta": [0.6, 1.8], "airlight": [0.7, 1.0]}}
DEHAZE_TEST = "dehaze/SOTS-indoor-50"
DEHAZE_ROWS = ("alone", "output", "spdd", "spdd-ema", "kddn")
DENOISE_SETS = {"Set12": ("train/BSD400-gray", "gray"), "CBSD68": ("train/BSDS500-train-color", "rgb")}
DENOISE_ROWS = ("alone", "alone-blind", "hmds-peer", "hmds-restormer-rsd", "hmds-levels")
LEVELS = [[0, 20], [20, 35], [35, 55]]
LEVEL_SIGMAS = (15, 25, 50)


def _pairs(student: list[str], teacher: list[str], loss: str, weight: float, **extra: Any) -> list[dict[str, Any]]:
    return [{"student": s, "teacher": t, "loss": loss, "weight": weight, **extra} for s, t in zip(student, teacher)]


def _weights_of(run_dir: Path) -> str:
    """The (EMA) weights of a finished bench run, to load it as a teacher."""
    latest = CheckpointManager(run_dir).latest()
    if latest is None:
        raise KdrestoreError(f"no checkpoint in {run_dir}")
    ema = latest.folder / "ema.safetensors"
    return str(ema if ema.is_file() else latest.folder / "model.safetensors")


def _select(rows: list[str] | None, known: tuple[str, ...]) -> list[str]:
    chosen = list(rows or known)
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise KdrestoreError(f"unknown ablation rows {unknown}; choose from {list(known)}")
    return chosen


def _finish(rows: list[dict[str, Any]]) -> None:
    base = next((r["psnr"] for r in rows if r["method"] == "alone"), None)
    for r in rows:
        r["delta_vs_alone"] = None if base is None else r["psnr"] - base


def _scorer(task: str, test: Path, mode: str, sigma: float, limit: int | None, progress: bool,
            seen: dict[str, float]) -> Callable[[nn.Module, str], EvalResult]:
    def score(model: nn.Module, name: str) -> EvalResult:
        samples, total, desc = eval_samples(task, test, sigma=sigma, mode=mode, limit=limit)  # type: ignore[arg-type]
        res = evaluate(model, samples, TASK_CONVENTIONS[task], name=name, task=task, data=desc, limit=limit,
                       progress=progress, total=total)
        seen["input_psnr"] = res.input_psnr
        return res
    return score


def run_dehaze_methods(data_root: str | os.PathLike[str], *, peers: str | None = None, steps: int = 300,
                       batch: int = 8, crop: int = 48, seed: int = 0, teacher_steps: int | None = None,
                       methods: list[str] | None = None, test_limit: int | None = None,
                       workdir: str | None = None, progress: bool = False) -> dict[str, Any]:
    """SPDD vs KDDN vs output distillation vs the student alone, on SOTS-indoor-50."""
    root, peers = Path(data_root), peers or os.environ.get("KDRESTORE_PEERS")
    chosen, student = _select(methods, DEHAZE_ROWS), {"name": "kddn-student-tiny"}
    seen: dict[str, float] = {}
    score = _scorer("dehaze", root / DEHAZE_TEST, "rgb", 25.0, test_limit, progress, seen)
    probe, t_steps = (1, 3, 256, 256), teacher_steps or steps
    ramp = max(steps // 5, 1)
    distill: dict[str, dict[str, Any] | None] = {
        "alone": None,
        "output": {"teachers": [{"name": "gcanet"}], "peers": peers},
        "spdd": {"method": "spdd", "options": {"identity_steps": ramp, "transition_steps": ramp}},
        "spdd-ema": {"method": "spdd", "options": {"identity_steps": ramp, "transition_steps": ramp,
                                                   "snapshot": "ema", "ema_decay": 0.99}},
    }
    rows, teachers = [], {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in chosen:
            recipe = bench_recipe(f"bench-dehaze-{name}", "dehaze", student, DEHAZE_TRAIN, root, steps, batch, crop,
                                  seed)
            if name == "kddn":
                teacher_recipe = bench_recipe("bench-kddn-teacher", "dehaze", {"name": "kddn-teacher"},
                                              {**DEHAZE_TRAIN, "degradation": "identity", "params": {}},
                                              root, t_steps, batch, crop, seed)
                recon = _identity_scorer(root / DEHAZE_TEST / "gt", test_limit, progress)
                row, _ = train_and_score(teacher_recipe, Path(tmp) / "kddn-teacher", recon, probe,
                                         "kddn-teacher", progress)
                teachers["kddn-teacher"] = {**row, "steps": t_steps, "scored_on": "clean SOTS gt (reconstruction)"}
                spec = {"name": "kddn-teacher", "weights": _weights_of(Path(tmp) / "kddn-teacher")}
                distill["kddn"] = {"method": "kddn", "output": None, "options": {"feature_weight": 0.5},
                                   "teachers": [spec]}
            if distill[name] is not None:
                recipe["distill"] = distill[name]
            row, _ = train_and_score(recipe, Path(tmp) / name, score, probe, f"kddn-student-tiny/{name}", progress)
            rows.append({"method": name, **row})
    _finish(rows)
    return {"bench": "methods", "task": "dehaze", "student": "kddn-student-tiny", "test": DEHAZE_TEST,
            "sigma": None, "convention": TASK_CONVENTIONS["dehaze"].to_dict(), "input_psnr": seen.get("input_psnr"),
            "budget": {"steps": steps, "teacher_steps": t_steps, "batch": batch, "crop": crop, "seed": seed},
            "rows": rows, "teachers": teachers, "cost_input_shape": list(probe)}


def _identity_scorer(clean: Path, limit: int | None, progress: bool) -> Callable[[nn.Module, str], EvalResult]:
    def score(model: nn.Module, name: str) -> EvalResult:
        ds = SynthDataset(clean, "identity", mode="rgb", limit=limit, fixed=True)
        return evaluate(model, iter_samples(ds), TASK_CONVENTIONS["dehaze"], name=name, task="dehaze",
                        data=f"{clean} (clean -> clean)", limit=limit, progress=progress, total=len(ds))
    return score


def _peer(gray: bool, sigma: float, peers: str | None) -> dict[str, Any]:
    """A published denoiser specialised to ``sigma``: DnCNN-S (gray) or FFDNet with its map at sigma (colour)."""
    if gray:
        if int(sigma) not in LEVEL_SIGMAS:
            raise KdrestoreError(f"no DnCNN-S peer for sigma {sigma:g} (published: {LEVEL_SIGMAS})")
        return {"name": f"dncnn-s{int(sigma)}"}
    if not peers:
        raise KdrestoreError("the colour peer teacher (FFDNet) needs --peers or $KDRESTORE_PEERS")
    return {"name": "ffdnet-rgb", "args": {"sigma": float(sigma)}, "weights": str(Path(peers) / "FFDNet/net_rgb.pth")}


def run_denoise_methods(data_root: str | os.PathLike[str], *, test_set: str = "Set12", sigma: float = 25.0,
                        peers: str | None = None, steps: int = 300, batch: int = 8, crop: int = 48, seed: int = 0,
                        teacher_steps: int | None = None, methods: list[str] | None = None,
                        test_limit: int | None = None, workdir: str | None = None,
                        progress: bool = False) -> dict[str, Any]:
    """HMDS variants vs MDRN-tiny alone on ``test_set`` (Set12 | CBSD68) at ``sigma``."""
    if test_set not in DENOISE_SETS:
        raise KdrestoreError(f"unknown denoising test set {test_set!r}; choose from {sorted(DENOISE_SETS)}")
    root, peers = Path(data_root), peers or os.environ.get("KDRESTORE_PEERS")
    chosen = _select(methods, DENOISE_ROWS)
    train_path, mode = DENOISE_SETS[test_set]
    gray = mode == "gray"
    channels = 1 if gray else 3
    student = {"name": "mdrn-tiny", "args": {"in_channels": channels}}
    fixed = {"kind": "synth", "path": train_path, "degradation": "awgn", "params": {"sigma": sigma}, "mode": mode}
    blind = {**fixed, "params": {"sigma": [0, 55]}}
    seen: dict[str, float] = {}
    score = _scorer("denoise", root / "denoise" / test_set, mode, sigma, test_limit, progress, seen)
    probe, t_steps = (1, channels, 256, 256), teacher_steps or steps
    peer_points = (["dncnn.8", "dncnn.26"] if gray else
                   ["intermediate_dncnn.itermediate_dncnn.8", "intermediate_dncnn.itermediate_dncnn.26"])
    fitnet = _pairs(["body.1", "body.3"], peer_points, "fitnet", 0.1)
    rows, teachers = [], {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in chosen:
            data, distill = (blind if name in ("alone-blind", "hmds-levels") else fixed), None
            if name == "hmds-peer":
                distill = {"teachers": [_peer(gray, sigma, peers)], "peers": peers, "features": fitnet}
            elif name == "hmds-levels":
                distill = {"method": "hmds", "peers": peers, "features": fitnet, "options": {"levels": LEVELS},
                           "teachers": [_peer(gray, s, peers) for s in LEVEL_SIGMAS]}
            elif name == "hmds-restormer-rsd":
                t_recipe = bench_recipe("bench-restormer-teacher", "denoise",
                                        {"name": "restormer-tiny", "args": {"in_channels": channels}},
                                        fixed, root, t_steps, batch, crop, seed)
                row, _ = train_and_score(t_recipe, Path(tmp) / "restormer", score, probe, "restormer-tiny", progress)
                teachers["restormer-tiny"] = {**row, "steps": t_steps}
                spec = {"name": "restormer-tiny", "args": {"in_channels": channels},
                        "weights": _weights_of(Path(tmp) / "restormer")}
                rsd = _pairs(["body.1", "body.3"], ["encoder_level2", "decoder_level1"], "rsd", 0.002,
                             rsd_mode="position")
                distill = {"teachers": [spec], "features": rsd}
            recipe = bench_recipe(f"bench-denoise-{name}", "denoise", student, data, root, steps, batch, crop, seed)
            if distill is not None:
                recipe["distill"] = copy.deepcopy(distill)
            row, _ = train_and_score(recipe, Path(tmp) / name, score, probe, f"mdrn-tiny/{name}", progress)
            rows.append({"method": name, **row})
    _finish(rows)
    return {"bench": "methods", "task": "denoise", "student": "mdrn-tiny", "test": f"denoise/{test_set}",
            "sigma": sigma, "convention": TASK_CONVENTIONS["denoise"].to_dict(), "input_psnr": seen.get("input_psnr"),
            "budget": {"steps": steps, "teacher_steps": t_steps, "batch": batch, "crop": crop, "seed": seed},
            "rows": rows, "teachers": teachers, "cost_input_shape": list(probe)}


def run_methods_bench(task: str, data_root: str | os.PathLike[str], *, sets: list[str] | None = None,
                      sigmas: list[float] | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Tables as they finish: one for dehaze; one per (test set, sigma) for denoise (default Set12 and
    CBSD68 at sigma 25 and 50)."""
    if task not in ("dehaze", "denoise"):
        raise KdrestoreError(f"bench methods covers dehaze (SPDD, KDDN) and denoise (HMDS), not {task!r}")
    if task == "dehaze":
        yield run_dehaze_methods(data_root, **kwargs)
        return
    for test_set in sets or list(DENOISE_SETS):
        for sigma in sigmas or [25.0, 50.0]:
            yield run_denoise_methods(data_root, test_set=test_set, sigma=float(sigma), **kwargs)


def format_methods_bench(result: dict[str, Any]) -> str:
    """One ablation as a text table (rows, then the teachers trained inside the bench)."""
    b = result["budget"]
    sigma = "" if result["sigma"] is None else f" sigma {result['sigma']:g}"
    lines = [f"{result['task']}: student {result['student']} on {result['test']}{sigma} "
             f"({result['convention']['text']})",
             f"budget: {b['steps']} steps (teachers {b['teacher_steps']}) x batch {b['batch']} of {b['crop']}px crops, "
             f"seed {b['seed']}; cost at input {tuple(result['cost_input_shape'])}",
             f"{'row':20} {'PSNR':>7} {'SSIM':>6} {'vs alone':>8} {'params':>9} {'GMACs':>6} {'CPU ms':>7} "
             f"{'train s':>7}"]
    for r in result["rows"]:
        delta = "" if r["delta_vs_alone"] is None else f"{r['delta_vs_alone']:+.2f}"
        lines.append(f"{r['method']:20} {r['psnr']:>7.2f} {r['ssim']:>6.3f} {delta:>8} {r['params']:>9,} "
                     f"{r['macs'] / 1e9:>6.2f} {r['cpu_ms']:>7.1f} {r['train_wall_s']:>7.0f}")
    for name, t in result["teachers"].items():
        lines.append(f"{'teacher ' + name:20} {t['psnr']:>7.2f} {t['ssim']:>6.3f} {'':>8} {t['params']:>9,} "
                     f"{t['macs'] / 1e9:>6.2f} {t['cpu_ms']:>7.1f} {t['train_wall_s']:>7.0f}"
                     + (f"  ({t['scored_on']})" if "scored_on" in t else ""))
    if result.get("input_psnr") is not None:
        lines.append(f"{'degraded input':20} {result['input_psnr']:>7.2f}")
    return "\n".join(lines)
