"""``kdrestore bench methods``: fixed-budget ablations of SPDD, KDDN and HMDS, each on the one trainer.

Every row of a table trains the same student with the same data, budget, batch, crop and seed
(:func:`.bench.bench_recipe`, :class:`.bench_common.BenchOptions`); only the method changes. Teachers
that have no published weights are trained first, inside the bench, at the rows' budget, and every
teacher is scored on the rows' test set (a teacher below the student alone refuses its rows).

* ``dehaze``: ``kddn-student-tiny`` trained on synthetic haze over clean BSDS500-train images, scored on
  SOTS-indoor-50 (RGB PSNR/SSIM). Rows: ``alone`` (no method) | ``output`` (output distillation from
  the GCANet peer) | ``spdd`` (frozen snapshot) | ``spdd-ema`` | ``spdd-feature`` (frozen snapshot, the
  feature term alone: ``output_weight 0``) | ``kddn`` (its auto-encoder teacher is trained clean -> clean
  first; its reconstruction PSNR on the clean SOTS ground truths is reported) | ``kddn-perceptual``
  (``kddn`` plus the perceptual loss in the teacher's encoder space, ``perceptual_weight``).
* ``denoise``: ``mdrn-tiny`` per test set (``Set12``: gray, BSD400 training images; ``CBSD68``: colour,
  BSDS500-train) and sigma (0-255, AWGN, PSNR on clipped [0, 1]). Rows: ``alone`` (trained at sigma) |
  ``alone-blind`` (sigma in [0, 55], the reference of ``hmds-levels``) | ``hmds-peer`` (published peer
  at sigma, DnCNN-S gray / FFDNet colour, FitNet adapters + output) | ``restormer-output`` (plain
  output distillation from the Restormer-tiny teacher, the reference of RSD's claim) |
  ``hmds-restormer-rsd`` (Restormer-tiny trained first, RSD + output) | ``hmds-levels`` (blind data, three level teachers
  for [0,20], [20,35], [35,55]: DnCNN-S 15/25/50 gray, FFDNet at 15/25/50 colour).
"""
from __future__ import annotations

import copy
import os
from dataclasses import replace
import tempfile
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..data.synth import SynthDataset
from ..data.tasks import eval_samples, iter_samples
from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.runner import EvalResult, evaluate
from ..rundir import RunDir
from .bench import bench_recipe, train_and_score
from .bench_common import BenchOptions, apply_budget, check_rows, run_bench, score_entry, teacher_entry

DEHAZE_TRAIN = {"kind": "synth", "path": "train/BSDS500-train-color", "degradation": "haze", "mode": "rgb",
                "params": {"beta": [0.6, 1.8], "airlight": [0.7, 1.0]}}
DEHAZE_TEST = "dehaze/SOTS-indoor-50"
DEHAZE_ROWS = ("alone", "output", "spdd", "spdd-ema", "spdd-feature", "kddn", "kddn-perceptual")
DENOISE_SETS = {"Set12": ("train/BSD400-gray", "gray"), "CBSD68": ("train/BSDS500-train-color", "rgb")}
DENOISE_ROWS = ("alone", "alone-blind", "hmds-peer", "restormer-output", "hmds-restormer-rsd", "hmds-levels")
LEVELS = [[0, 20], [20, 35], [35, 55]]
LEVEL_SIGMAS = (15, 25, 50)


def _pairs(student: list[str], teacher: list[str], loss: str, weight: float, **extra: Any) -> list[dict[str, Any]]:
    return [{"student": s, "teacher": t, "loss": loss, "weight": weight, **extra} for s, t in zip(student, teacher)]


def _weights_of(run_dir: Path) -> str:
    """The (EMA) weights of a finished bench run, to load it as a teacher."""
    latest = RunDir(run_dir).checkpoints.latest()
    if latest is None:
        raise KdrestoreError(f"no checkpoint in {run_dir}")
    return str(latest.weights_file(ema=True))


def _scorer(task: str, test: Path, mode: str, sigma: float, limit: int | None, progress: bool,
            seen: dict[str, float]) -> Callable[[nn.Module, str], EvalResult]:
    def score(model: nn.Module, name: str) -> EvalResult:
        samples, total, desc = eval_samples(task, test, sigma=sigma, mode=mode, limit=limit)  # type: ignore[arg-type]
        res = evaluate(model, samples, TASK_CONVENTIONS[task], name=name, task=task, data=desc, limit=limit,
                       progress=progress, total=total)
        seen["input_psnr"] = res.input_psnr
        return res
    return score


ROWS_BY_TASK = {"dehaze": DEHAZE_ROWS, "denoise": DENOISE_ROWS}
PERCEPTUAL_WEIGHT = 0.1


def _row(recipe: dict[str, Any], opts: BenchOptions, run_dir: Path, score: Callable[[nn.Module, str], EvalResult],
         probe: tuple[int, ...], label: str) -> tuple[dict[str, Any], nn.Module]:
    return train_and_score(apply_budget(recipe, opts), run_dir, score, probe, label, opts.progress)


def run_dehaze_methods(data_root: str | os.PathLike[str], opts: BenchOptions,
                       methods: list[str] | None = None) -> dict[str, Any]:
    """One seed: SPDD vs KDDN vs output distillation vs the student alone, on SOTS-indoor-50."""
    root = Path(data_root)
    opts = replace(opts, peers=opts.peers or os.environ.get("KDRESTORE_PEERS"))
    chosen, student = check_rows(methods, "dehaze", ROWS_BY_TASK, "methods"), {"name": "kddn-student-tiny"}
    seen: dict[str, float] = {}
    score = _scorer("dehaze", root / DEHAZE_TEST, "rgb", 25.0, opts.test_limit, opts.progress, seen)
    probe, table, metric = (1, 3, 256, 256), "methods dehaze: kddn-student-tiny", "SOTS-indoor-50"
    spdd = {"identity_steps": 0, "transition_steps": 0}
    if any(r.startswith("spdd") for r in chosen):
        ramp = max(opts.fixed_steps("spdd") // 5, 1)
        spdd = {"identity_steps": ramp, "transition_steps": ramp}
    distill: dict[str, dict[str, Any] | None] = {
        "alone": None,
        "output": {"teachers": [{"name": "gcanet"}], "peers": opts.peers},
        "spdd": {"method": "spdd", "options": dict(spdd)},
        "spdd-ema": {"method": "spdd", "options": {**spdd, "snapshot": "ema", "ema_decay": 0.99}},
        "spdd-feature": {"method": "spdd", "options": {**spdd, "output_weight": 0.0}},
    }
    rows, teachers, scores, t_scores = [], {}, [], []
    if "output" in chosen:
        from ..evaluate.api import load_model

        t_res = score(load_model("gcanet", peers=opts.peers), "gcanet")
        t_scores.append(teacher_entry(table, metric, "gcanet", t_res.psnr))
    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        for name in chosen:
            recipe = bench_recipe(f"bench-dehaze-{name}", "dehaze", student, DEHAZE_TRAIN, root, 1, opts.batch,
                                  opts.crop, opts.seed)
            if name.startswith("kddn"):
                if "kddn-teacher" not in teachers:
                    teacher_recipe = bench_recipe("bench-kddn-teacher", "dehaze", {"name": "kddn-teacher"},
                                                  {**DEHAZE_TRAIN, "degradation": "identity", "params": {}},
                                                  root, 1, opts.batch, opts.crop, opts.seed)
                    recon = _identity_scorer(root / DEHAZE_TEST / "gt", opts.test_limit, opts.progress)
                    row, _ = _row(teacher_recipe, opts, Path(tmp) / "kddn-teacher", recon, probe, "kddn-teacher")
                    teachers["kddn-teacher"] = {**row, "scored_on": "clean SOTS gt (reconstruction)"}
                    t_scores.append(teacher_entry(table, "clean->clean", "kddn-teacher", row["psnr"],
                                                  "reconstruction of the clean ground truths, not dehazing"))
                spec = {"name": "kddn-teacher", "weights": _weights_of(Path(tmp) / "kddn-teacher")}
                options: dict[str, Any] = {"feature_weight": 0.5}
                if name == "kddn-perceptual":
                    options["perceptual_weight"] = PERCEPTUAL_WEIGHT
                distill[name] = {"method": "kddn", "output": None, "options": options, "teachers": [spec]}
            if distill[name] is not None:
                recipe["distill"] = distill[name]
            row, _ = _row(recipe, opts, Path(tmp) / name, score, probe, f"kddn-student-tiny/{name}")
            rows.append({"method": name, **row})
            scores.append(score_entry(table, name, metric, row["psnr"], row["ssim"], reference="alone",
                                      teacher="gcanet" if name == "output" else None))
    return {"bench": "methods", "task": "dehaze", "student": "kddn-student-tiny", "test": DEHAZE_TEST,
            "sigma": None, "convention": TASK_CONVENTIONS["dehaze"].to_dict(), "input_psnr": seen.get("input_psnr"),
            "seed": opts.seed, "rows": rows, "trained_teachers": teachers, "cost_input_shape": list(probe),
            "scores": scores, "teachers": t_scores}


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


def _level_of(sigma: float) -> int:
    """The level teacher covering ``sigma`` (HMDS routes a sample to the level of its noise)."""
    for (lo, hi), level_sigma in zip(LEVELS, LEVEL_SIGMAS):
        if lo <= sigma <= hi:
            return level_sigma
    return LEVEL_SIGMAS[-1]


def run_denoise_methods(data_root: str | os.PathLike[str], opts: BenchOptions, test_set: str = "Set12",
                        sigma: float = 25.0, methods: list[str] | None = None) -> dict[str, Any]:
    """One seed: HMDS variants vs MDRN-tiny alone on ``test_set`` (Set12 | CBSD68) at ``sigma``; the blind
    ``hmds-levels`` row is compared with ``alone-blind``, the others with ``alone``."""
    if test_set not in DENOISE_SETS:
        raise KdrestoreError(f"unknown denoising test set {test_set!r}; choose from {sorted(DENOISE_SETS)}")
    root = Path(data_root)
    opts = replace(opts, peers=opts.peers or os.environ.get("KDRESTORE_PEERS"))
    peers = opts.peers
    chosen = check_rows(methods, "denoise", ROWS_BY_TASK, "methods")
    train_path, mode = DENOISE_SETS[test_set]
    gray = mode == "gray"
    channels = 1 if gray else 3
    student = {"name": "mdrn-tiny", "args": {"in_channels": channels}}
    fixed = {"kind": "synth", "path": train_path, "degradation": "awgn", "params": {"sigma": sigma}, "mode": mode}
    blind = {**fixed, "params": {"sigma": [0, 55]}}
    seen: dict[str, float] = {}
    score = _scorer("denoise", root / "denoise" / test_set, mode, sigma, opts.test_limit, opts.progress, seen)
    probe = (1, channels, 256, 256)
    table, metric = f"methods denoise: mdrn-tiny, {test_set} sigma {sigma:g}", f"{test_set} s{sigma:g}"
    peer_points = (["dncnn.8", "dncnn.26"] if gray else
                   ["intermediate_dncnn.itermediate_dncnn.8", "intermediate_dncnn.itermediate_dncnn.26"])
    fitnet = _pairs(["body.1", "body.3"], peer_points, "fitnet", 0.1)
    rows, teachers, scores, t_scores = [], {}, [], []

    def peer_name(s: float) -> str:
        return _peer(gray, s, peers)["name"] + ("" if gray else f"@{s:g}")

    def score_peer(s: float) -> str:
        from ..evaluate.api import load_model

        spec, name = _peer(gray, s, peers), peer_name(s)
        if not any(t["teacher"] == name for t in t_scores):
            model = load_model(spec["name"], weights=spec.get("weights"), peers=peers,
                               sigma=spec.get("args", {}).get("sigma"))
            t_scores.append(teacher_entry(table, metric, name, score(model, name).psnr))
        return name

    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        for name in chosen:
            data, distill, teacher = (blind if name in ("alone-blind", "hmds-levels") else fixed), None, None
            if name == "hmds-peer":
                distill = {"teachers": [_peer(gray, sigma, peers)], "peers": peers, "features": fitnet}
                teacher = score_peer(sigma)
            elif name == "hmds-levels":
                distill = {"method": "hmds", "peers": peers, "features": fitnet, "options": {"levels": LEVELS},
                           "teachers": [_peer(gray, s, peers) for s in LEVEL_SIGMAS]}
                teacher = score_peer(_level_of(sigma))
            elif name in ("hmds-restormer-rsd", "restormer-output"):
                if "restormer-tiny" not in teachers:  # trained once per unit, at the rows' budget
                    t_recipe = bench_recipe("bench-restormer-teacher", "denoise",
                                            {"name": "restormer-tiny", "args": {"in_channels": channels}},
                                            fixed, root, 1, opts.batch, opts.crop, opts.seed)
                    row, _ = _row(t_recipe, opts, Path(tmp) / "restormer", score, probe, "restormer-tiny")
                    teachers["restormer-tiny"] = row
                    t_scores.append(teacher_entry(table, metric, "restormer-tiny", row["psnr"], "trained in the bench"))
                teacher = "restormer-tiny"
                spec = {"name": "restormer-tiny", "args": {"in_channels": channels},
                        "weights": _weights_of(Path(tmp) / "restormer")}
                rsd = _pairs(["body.1", "body.3"], ["encoder_level2", "decoder_level1"], "rsd", 0.002,
                             rsd_mode="position")
                distill = {"teachers": [spec], **({"features": rsd} if name == "hmds-restormer-rsd" else {})}
            recipe = bench_recipe(f"bench-denoise-{name}", "denoise", student, data, root, 1, opts.batch, opts.crop,
                                  opts.seed)
            if distill is not None:
                recipe["distill"] = copy.deepcopy(distill)
            row, _ = _row(recipe, opts, Path(tmp) / name, score, probe, f"mdrn-tiny/{name}")
            rows.append({"method": name, **row})
            # the blind hmds-levels row is compared with the blind student alone; alone rows are references
            reference = {"hmds-levels": "alone-blind", "alone-blind": "alone-blind"}.get(name, "alone")
            scores.append(score_entry(table, name, metric, row["psnr"], row["ssim"], reference=reference,
                                      teacher=teacher))
    return {"bench": "methods", "task": "denoise", "student": "mdrn-tiny", "test": f"denoise/{test_set}",
            "sigma": sigma, "convention": TASK_CONVENTIONS["denoise"].to_dict(), "input_psnr": seen.get("input_psnr"),
            "seed": opts.seed, "rows": rows, "trained_teachers": teachers, "cost_input_shape": list(probe),
            "scores": scores, "teachers": t_scores}


def methods_bench(tasks: list[str], data_root: str | os.PathLike[str], opts: BenchOptions,
                  methods: list[str] | None = None, sets: list[str] | None = None,
                  sigmas: list[float] | None = None, command: str | None = None) -> dict[str, Any]:
    """``kdrestore bench methods``: dehaze (one table) and denoise (one per test set and sigma, default
    Set12 and CBSD68 at 25 and 50), every seed, aggregated."""
    plan: list[tuple[str, list[str], dict[str, Any]]] = []
    unit = "kdrestore.experiments.bench_methods:"
    for task in tasks:
        rows = check_rows(methods, task, ROWS_BY_TASK, "methods")
        if task == "dehaze":
            if any(r.startswith("spdd") for r in rows):
                opts.fixed_steps("spdd")  # refused under a time budget before anything trains
            plan.append((unit + "run_dehaze_methods", rows, {"data_root": str(data_root)}))
            continue
        for test_set in sets or list(DENOISE_SETS):
            for sigma in sigmas or [25.0, 50.0]:
                plan.append((unit + "run_denoise_methods", rows,
                             {"data_root": str(data_root), "test_set": test_set, "sigma": float(sigma)}))
    return run_bench("methods", plan, opts, row_key="methods", command=command)


__all__ = ["DEHAZE_ROWS", "DENOISE_ROWS", "ROWS_BY_TASK", "methods_bench", "run_dehaze_methods",
           "run_denoise_methods"]
