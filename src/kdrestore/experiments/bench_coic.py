"""``kdrestore bench coic``: one backbone with and without CoIC, trained on mixed rain, scored per source.

Every row trains on the same mixed data (:data:`TRAIN_SOURCES`, sampled by :data:`TRAIN_WEIGHTS`) with the
same steps, batch, crop and seed (:func:`.bench.bench_recipe`); a ``+coic`` row wraps the backbone in the
``coic`` model and trains it with ``distill.method: coic`` (stage 1, the backbone alone, for
``stage1_fraction`` of the steps; then everything with the contrastive term); ``+coic-nocl`` drops the
contrastive term, ``+coic-whole`` embeds the whole rainy image resized to 64 x 64 instead of the crop
(the authors' encoder input). Test sets, Y-channel
PSNR/SSIM (the derain convention):

* ``Rain100H``: the 100 real Rain100H pairs (no Rain100H-like image is a training pair);
* ``R100L-held``: the last 20 Rain100L-train pairs, held out of training; ``R100L-seen``: its first 20
  pairs, which ARE training pairs (the real source of the mixture), reported to show what seeing a source buys;
* ``syn-light`` / ``syn-heavy``: the two synthetic presets on the 68 CBSD68 clean images (BSDS500 test
  images, disjoint from the BSDS500-train clean images of training), degradation seed 0.
"""
from __future__ import annotations

import copy
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..data.paired import PairedDataset
from ..data.synth import SynthDataset
from ..data.tasks import iter_samples
from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.runner import EvalResult, evaluate
from .bench import bench_recipe, train_and_score
from .bench_common import BenchOptions, apply_budget, check_rows, run_bench, score_entry

R100L = "train/Rain100L-train"
R100L_HELD = 20  # the last pairs, never trained on
TRAIN_SOURCES: list[dict[str, Any]] = [
    {"kind": "synth", "path": "train/BSDS500-train-color", "degradation": "rain-light", "mode": "rgb", "name": "syn-light"},
    {"kind": "synth", "path": "train/BSDS500-train-color", "degradation": "rain-heavy", "mode": "rgb", "name": "syn-heavy"},
    {"kind": "paired", "path": R100L, "mode": "rgb", "holdout": R100L_HELD, "name": "rain100l"},
]
TRAIN_WEIGHTS = [0.4, 0.4, 0.2]
BACKBONES = ("msresnet-tiny", "restormer-tiny")
DEFAULT_ROWS = ("msresnet-tiny", "msresnet-tiny+coic")
CLEAN_TEST = "denoise/CBSD68"
WHOLE_IMAGE_VIEW = 64  # +coic-whole: the encoder embeds the whole rainy image resized to 64 x 64


def rows_known() -> list[str]:
    return [f"{b}{s}" for b in BACKBONES for s in ("", "+coic", "+coic-nocl", "+coic-whole")]


def test_sets(root: Path, limit: int | None) -> dict[str, tuple[Callable[[], Any], int, str]]:
    """name -> (samples factory, count, description: paths relative to the data root, so records name no machine)."""
    def paired(path: Path, lo: int = 0, hi: int | None = None) -> tuple[Callable[[], Any], int, str]:
        ds = PairedDataset(path, mode="rgb")
        ds.pairs = ds.pairs[lo:hi][:limit]
        first, last = ds.pairs[0][0].stem, ds.pairs[-1][0].stem
        return (lambda: iter_samples(ds)), len(ds), f"{path.relative_to(root)} pairs {first}..{last}"

    def synth(preset: str) -> tuple[Callable[[], Any], int, str]:
        ds = SynthDataset(root / CLEAN_TEST, preset, mode="rgb", limit=limit, seed=0, fixed=True)
        return (lambda: iter_samples(ds)), len(ds), f"{CLEAN_TEST} + {preset} (seed 0)"

    return {"Rain100H": paired(root / "derain/Rain100H"),
            "R100L-held": paired(root / R100L, -R100L_HELD),
            "R100L-seen": paired(root / R100L, 0, R100L_HELD),
            "syn-light": synth("rain-light"), "syn-heavy": synth("rain-heavy")}


def _recipe(row: str, root: Path, steps: int, batch: int, crop: int, seed: int,
            stage1_fraction: float) -> dict[str, Any]:
    backbone, _, variant = row.partition("+")
    model: dict[str, Any] = {"name": backbone} if not variant else {"name": "coic", "args": {"backbone": backbone}}
    if variant == "coic-whole":  # the authors' encoder input: the whole rainy image, resized
        model["args"]["context_size"] = WHOLE_IMAGE_VIEW
    recipe = bench_recipe(f"bench-coic-{row.replace('+', '_')}", "derain", model, dict(TRAIN_SOURCES[0]), root,
                          steps, batch, crop, seed)
    sources = [{**copy.deepcopy(s), "path": str(root / s["path"]), "crop": crop} for s in TRAIN_SOURCES]
    recipe["data"]["train"] = {"kind": "mixed", "sources": sources, "weights": list(TRAIN_WEIGHTS)}
    if variant == "coic-whole":
        recipe["data"]["train"]["context"] = WHOLE_IMAGE_VIEW
    if variant:
        options: dict[str, Any] = {"stage1_steps": int(steps * stage1_fraction)}
        if variant == "coic-nocl":
            options["contrastive_weight"] = 0.0
        recipe["distill"] = {"method": "coic", "options": options}
    return recipe


def run_coic_bench(data_root: str | os.PathLike[str], opts: BenchOptions, rows: list[str] | None = None,
                   stage1_fraction: float = 0.5) -> dict[str, Any]:
    """One seed: train each row on the mixed rain data (same budget) and score it on every test set; a
    ``+coic`` row is compared with its backbone alone, per test set."""
    root = Path(data_root)
    chosen = check_rows(rows, "derain", {"derain": tuple(rows_known())}, "coic") if rows else list(DEFAULT_ROWS)
    if not 0.0 <= stage1_fraction < 1.0:
        raise KdrestoreError(f"stage1_fraction must be in [0, 1), got {stage1_fraction}")
    steps = opts.fixed_steps("coic (stage 1)") if any("+" in r for r in chosen) else opts.steps_for()
    conv = TASK_CONVENTIONS["derain"]
    tests = test_sets(root, opts.test_limit)
    input_psnr: dict[str, float] = {}

    def score_all(model: nn.Module, name: str) -> EvalResult:
        per_set = {}
        for test, (samples, total, desc) in tests.items():
            res = evaluate(model, samples(), conv, name=name, task="derain", data=desc, limit=opts.test_limit,
                           progress=opts.progress, total=total)
            per_set[test] = {"psnr": res.psnr, "ssim": res.ssim, "images": len(res.images)}
            input_psnr[test] = res.input_psnr
        res.extra["per_set"] = per_set
        return res

    out_rows, scores = [], []
    probe = (1, 3, 256, 256)
    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        for row in chosen:
            recipe = apply_budget(_recipe(row, root, steps, opts.batch, opts.crop, opts.seed, stage1_fraction), opts)
            found: dict[str, Any] = {}

            def score(model: nn.Module, name: str) -> EvalResult:
                res = score_all(model, name)
                found.update(res.extra["per_set"])
                return res

            summary, _ = train_and_score(recipe, Path(tmp) / row.replace("+", "_"), score, probe, row, opts.progress)
            out_rows.append({"row": row, "scores": found, "params": summary["params"], "macs": summary["macs"],
                             "cpu_ms": summary["cpu_ms"], "train_wall_s": summary["train_wall_s"],
                             "mean_psnr": statistics.fmean(v["psnr"] for v in found.values())})
            for test, v in found.items():
                scores.append(score_entry("coic derain (mixed rain)", row, test, v["psnr"], v["ssim"],
                                          reference=row.partition("+")[0]))
    return {"bench": "coic", "task": "derain", "convention": conv.to_dict(), "seed": opts.seed,
            "train": {"sources": [{k: v for k, v in s.items() if k != "mode"} for s in TRAIN_SOURCES],
                      "weights": TRAIN_WEIGHTS},
            "tests": {t: desc for t, (_, _, desc) in tests.items()}, "input_psnr": input_psnr,
            "stage1_fraction": stage1_fraction, "rows": out_rows, "cost_input_shape": list(probe), "scores": scores}


def coic_bench(data_root: str | os.PathLike[str], opts: BenchOptions, rows: list[str] | None = None,
               stage1_fraction: float = 0.5, command: str | None = None) -> dict[str, Any]:
    """``kdrestore bench coic``: every row for every seed, aggregated per test set."""
    chosen = check_rows(rows, "derain", {"derain": tuple(rows_known())}, "coic") if rows else list(DEFAULT_ROWS)
    if any("+" in r for r in chosen):
        opts.fixed_steps("coic (stage 1)")  # refused under a time budget before anything trains
    plan = [("kdrestore.experiments.bench_coic:run_coic_bench", chosen,
             {"data_root": str(data_root), "stage1_fraction": stage1_fraction})]
    return run_bench("coic", plan, opts, row_key="rows", command=command)


__all__ = ["BACKBONES", "DEFAULT_ROWS", "TRAIN_SOURCES", "coic_bench", "rows_known", "run_coic_bench", "test_sets"]
