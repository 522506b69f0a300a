"""``kdrestore bench coic``: one backbone with and without CoIC, trained on mixed rain, scored per source.

Every row trains on the same mixed data (:data:`TRAIN_SOURCES`, sampled by :data:`TRAIN_WEIGHTS`) with the
same steps, batch, crop and seed (:func:`.bench.bench_recipe`); a ``+coic`` row wraps the backbone in the
``coic`` model and trains it with ``distill.method: coic`` (stage 1, the backbone alone, for
``stage1_fraction`` of the steps; then everything with the contrastive term). Test sets, Y-channel
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
from .bench import bench_recipe, train_and_score
from .metrics import TASK_CONVENTIONS
from .runner import EvalResult, evaluate

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


def rows_known() -> list[str]:
    return [f"{b}{s}" for b in BACKBONES for s in ("", "+coic", "+coic-nocl")]


def test_sets(root: Path, limit: int | None) -> dict[str, tuple[Callable[[], Any], int, str]]:
    """name -> (samples factory, count, description)."""
    def paired(path: Path, lo: int = 0, hi: int | None = None) -> tuple[Callable[[], Any], int, str]:
        ds = PairedDataset(path, mode="rgb")
        ds.pairs = ds.pairs[lo:hi][:limit]
        first, last = ds.pairs[0][0].stem, ds.pairs[-1][0].stem
        return (lambda: iter_samples(ds)), len(ds), f"{path} pairs {first}..{last}"

    def synth(preset: str) -> tuple[Callable[[], Any], int, str]:
        ds = SynthDataset(root / CLEAN_TEST, preset, mode="rgb", limit=limit, seed=0, fixed=True)
        return (lambda: iter_samples(ds)), len(ds), f"{root / CLEAN_TEST} + {preset} (seed 0)"

    return {"Rain100H": paired(root / "derain/Rain100H"),
            "R100L-held": paired(root / R100L, -R100L_HELD),
            "R100L-seen": paired(root / R100L, 0, R100L_HELD),
            "syn-light": synth("rain-light"), "syn-heavy": synth("rain-heavy")}


def _recipe(row: str, root: Path, steps: int, batch: int, crop: int, seed: int,
            stage1_fraction: float) -> dict[str, Any]:
    backbone, _, variant = row.partition("+")
    model = {"name": backbone} if not variant else {"name": "coic", "args": {"backbone": backbone}}
    recipe = bench_recipe(f"bench-coic-{row.replace('+', '_')}", "derain", model, dict(TRAIN_SOURCES[0]), root,
                          steps, batch, crop, seed)
    sources = [{**copy.deepcopy(s), "path": str(root / s["path"]), "crop": crop} for s in TRAIN_SOURCES]
    recipe["data"]["train"] = {"kind": "mixed", "sources": sources, "weights": list(TRAIN_WEIGHTS)}
    if variant:
        options: dict[str, Any] = {"stage1_steps": int(steps * stage1_fraction)}
        if variant == "coic-nocl":
            options["contrastive_weight"] = 0.0
        recipe["distill"] = {"method": "coic", "options": options}
    return recipe


def run_coic_bench(data_root: str | os.PathLike[str], *, steps: int = 300, batch: int = 8, crop: int = 48,
                   seed: int = 0, rows: list[str] | None = None, test_limit: int | None = None,
                   stage1_fraction: float = 0.5, workdir: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Train each row on the mixed rain data (same budget) and score it on every test set."""
    root = Path(data_root)
    chosen = list(rows or DEFAULT_ROWS)
    unknown = [r for r in chosen if r not in rows_known()]
    if unknown:
        raise KdrestoreError(f"unknown coic bench rows {unknown}; choose from {rows_known()}")
    if not 0.0 <= stage1_fraction < 1.0:
        raise KdrestoreError(f"stage1_fraction must be in [0, 1), got {stage1_fraction}")
    conv = TASK_CONVENTIONS["derain"]
    tests = test_sets(root, test_limit)
    input_psnr: dict[str, float] = {}

    def score_all(model: nn.Module, name: str) -> EvalResult:
        per_set = {}
        for test, (samples, total, desc) in tests.items():
            res = evaluate(model, samples(), conv, name=name, task="derain", data=desc, limit=test_limit,
                           progress=progress, total=total)
            per_set[test] = {"psnr": res.psnr, "ssim": res.ssim, "images": len(res.images)}
            input_psnr[test] = res.input_psnr
        res.extra["per_set"] = per_set
        return res

    out_rows = []
    probe = (1, 3, 256, 256)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for row in chosen:
            recipe = _recipe(row, root, steps, batch, crop, seed, stage1_fraction)
            found: dict[str, Any] = {}

            def score(model: nn.Module, name: str) -> EvalResult:
                res = score_all(model, name)
                found.update(res.extra["per_set"])
                return res

            summary, _ = train_and_score(recipe, Path(tmp) / row.replace("+", "_"), score, probe, row, progress)
            out_rows.append({"row": row, "scores": found, "params": summary["params"], "macs": summary["macs"],
                             "cpu_ms": summary["cpu_ms"], "train_wall_s": summary["train_wall_s"],
                             "mean_psnr": statistics.fmean(v["psnr"] for v in found.values())})
    for r in out_rows:
        base = next((b for b in out_rows if b["row"] == r["row"].partition("+")[0]), None)
        r["delta_vs_backbone"] = None if base is None or base is r else {
            t: r["scores"][t]["psnr"] - base["scores"][t]["psnr"] for t in r["scores"]}
    return {"bench": "coic", "task": "derain", "convention": conv.to_dict(),
            "train": {"sources": [{k: v for k, v in s.items() if k != "mode"} for s in TRAIN_SOURCES],
                      "weights": TRAIN_WEIGHTS},
            "tests": {t: desc for t, (_, _, desc) in tests.items()}, "input_psnr": input_psnr,
            "budget": {"steps": steps, "batch": batch, "crop": crop, "seed": seed, "stage1_fraction": stage1_fraction,
                       "test_limit": test_limit},
            "rows": out_rows, "cost_input_shape": list(probe)}


def format_coic_bench(result: dict[str, Any]) -> str:
    """The comparison as a text table: PSNR/SSIM per test set, then cost."""
    b, tests = result["budget"], list(result["tests"])
    lines = [f"derain on mixed data (weights {result['train']['weights']} over "
             f"{[s['name'] for s in result['train']['sources']]}); {result['convention']['text']}",
             f"budget: {b['steps']} steps x batch {b['batch']} of {b['crop']}px crops, seed {b['seed']}, CoIC stage 1 "
             f"{b['stage1_fraction']:.0%} of the steps; R100L-seen pairs are in training; cost at input "
             f"{tuple(result['cost_input_shape'])}",
             f"{'row':26}" + "".join(f"{t:>15}" for t in tests)
             + f" {'params':>9} {'GMACs':>6} {'CPU ms':>7} {'train s':>7}"]
    for r in result["rows"]:
        cells = "".join(f"{r['scores'][t]['psnr']:>8.2f}/{r['scores'][t]['ssim']:.3f}" for t in tests)
        lines.append(f"{r['row']:26}{cells} {r['params']:>9,} {r['macs'] / 1e9:>6.2f} {r['cpu_ms']:>7.1f} "
                     f"{r['train_wall_s']:>7.0f}")
        if r["delta_vs_backbone"]:
            lines.append(f"{'  PSNR vs backbone':26}" + "".join(f"{r['delta_vs_backbone'][t]:>+15.2f}" for t in tests))
    lines.append(f"{'degraded input (PSNR)':26}" + "".join(f"{result['input_psnr'][t]:>15.2f}" for t in tests))
    lines.append("images: " + ", ".join(f"{t} {result['rows'][0]['scores'][t]['images']}" for t in tests)
                 if result["rows"] else "no rows")
    return "\n".join(lines)
