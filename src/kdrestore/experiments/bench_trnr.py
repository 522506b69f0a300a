"""``kdrestore bench trnr``: training from a few clean images, ordinary training against TRNR.

Both rows train the same network from the same first ``images`` clean images of the training folder
(sorted names), with the same patch size, loss (``L1 + 5 (1 - SSIM)``), optimiser, schedule, EMA,
steps and seed (:func:`.bench.bench_recipe`); only the sampler and the step differ:

* ``ordinary``: random patches of the few images, degraded on the fly, ``batch`` tasks' worth of
  patches per step (``tasks x (n_freqs k_shot + query_freqs query_shots)``: the same patches per step);
* ``trnr``: ``batch`` N-frequency-K-shot tasks per step over the clustered patches, first-order MAML
  with learned per-layer inner rates (:mod:`kdrestore.distill.methods.trnr`), queries from unseen clusters;
* ``trnr-official``: the authors' setting: one fixed inner rate for every layer and the official query
  composition (new patches of n-1 support clusters plus one unseen cluster, ``tasks.query: official``).

A TRNR step also runs ``inner_steps`` passes over every support set, so it costs more than an
ordinary step: the table reports each row's training time. Tasks:

* ``derain``: ``msresnet-tiny`` (``msresnet`` with ``full_size``) on BSDS500-train + Rain100H-like
  synthetic rain, scored on ``derain/Rain100H`` (Y-channel PSNR/SSIM, the published convention);
* ``denoise``: ``dnnet-tiny`` (``dnnet``) on BSD400-gray + blind AWGN (sigma in [0, 55] per patch),
  scored on ``denoise/Set12`` at sigma 25 and 50 (one blind model, two noise levels).
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..data.episodes import TaskDataset
from ..data.imageio import list_images
from ..data.tasks import eval_samples
from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.runner import EvalResult, evaluate
from .bench import bench_recipe, train_and_score
from .bench_common import BenchOptions, apply_budget, check_rows, run_bench, score_entry

ROWS = ("ordinary", "trnr", "trnr-official")
LOSSES = [{"name": "l1", "weight": 1.0}, {"name": "ssim", "weight": 5.0}]


@dataclass
class FewShotTask:
    train: dict[str, Any]  # a synth data section; path relative to the data root
    tests: list[tuple[str, float | None]]  # (test folder, AWGN sigma for denoise)
    model: str
    full_model: str
    tasks: dict[str, Any] = field(default_factory=lambda: {"n_freqs": 8, "k_shot": 2, "query_freqs": 1,
                                                           "query_shots": 4})


TASKS: dict[str, FewShotTask] = {
    "derain": FewShotTask(train={"path": "train/BSDS500-train-color", "degradation": "rain-heavy", "mode": "rgb"},
                          tests=[("derain/Rain100H", None)], model="msresnet-tiny", full_model="msresnet"),
    "denoise": FewShotTask(train={"path": "train/BSD400-gray", "degradation": "awgn", "params": {"sigma": [0, 55]},
                                  "mode": "gray"},
                           tests=[("denoise/Set12", 25.0), ("denoise/Set12", 50.0)], model="dnnet-tiny",
                           full_model="dnnet"),
}


def image_count(spec: int | str, folder: Path) -> int:
    """``20`` -> 20 images; ``"20%"`` -> 20 percent of the folder's images (at least one)."""
    total = len(list_images(folder))
    if total == 0:
        raise KdrestoreError(f"no training images found in {folder}")
    text = str(spec).strip()
    try:
        n = max(round(total * float(text[:-1]) / 100), 1) if text.endswith("%") else int(text)
    except ValueError:
        raise KdrestoreError(f"--images: expected a count or a percentage such as 20%, got {spec!r}") from None
    if not 1 <= n <= total:
        raise KdrestoreError(f"--images: {spec} asks for {n} of the {total} images in {folder}")
    return n


def _label(test: str, sigma: float | None) -> str:
    name = Path(test).name
    return name if sigma is None else f"{name} s{sigma:g}"


OFFICIAL = {"trnr-official": {"query": "official"}}  # + fixed inner rates (learn_inner_lr false)
ROWS_BY_TASK = {t: ROWS for t in TASKS}


def run_trnr_bench(task_name: str, data_root: str | os.PathLike[str], opts: BenchOptions, images: int | str = 20,
                   inner_steps: int = 2, inner_lr: float = 1e-3, full_size: bool = False,
                   methods: list[str] | None = None) -> dict[str, Any]:
    """One seed: train each row at the same budget (patches per step) on the few images and score it on
    the task's test sets; ``trnr`` rows are compared with ``ordinary``. ``opts.batch`` is tasks per step."""
    chosen = check_rows(methods, task_name, ROWS_BY_TASK, "trnr")
    task, root = TASKS[task_name], Path(data_root)
    folder = root / task.train["path"]
    n_images = image_count(images, folder)
    mode, model = task.train["mode"], {"name": task.full_model if full_size else task.model}
    conv = TASK_CONVENTIONS[task_name]
    inputs: dict[str, float] = {}

    def scorer(test: str, sigma: float | None) -> Callable[[nn.Module, str], EvalResult]:
        def score(net: nn.Module, name: str) -> EvalResult:
            samples, total, desc = eval_samples(task_name, root / test, sigma=sigma or 25.0, mode=mode,
                                                limit=opts.test_limit)
            res = evaluate(net, samples, conv, name=name, task=task_name, data=desc, limit=opts.test_limit,
                           progress=opts.progress, total=total)
            inputs[_label(test, sigma)] = res.input_psnr
            return res
        return score

    probe = (1, 1 if mode == "gray" else 3, 256, 256)
    table = f"trnr {task_name}: {model['name']} on {n_images} images"
    rows: list[dict[str, Any]] = []
    scores = []
    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        options = {**task.tasks, "cache_dir": str(Path(tmp) / "patches")}
        bank = TaskDataset(folder, task.train["degradation"], task.train.get("params"), patch=opts.crop, mode=mode,
                           limit=n_images, seed=opts.seed, options=options).bank  # the clustering, cached for the run
        for name in chosen:
            row_options = {**options, **OFFICIAL.get(name, {})}
            probe_set = TaskDataset(folder, task.train["degradation"], task.train.get("params"), patch=opts.crop,
                                    mode=mode, limit=n_images, seed=opts.seed, options=row_options)
            per_task = task.tasks["n_freqs"] * task.tasks["k_shot"] + probe_set.query_size
            train = {**copy.deepcopy(task.train), "kind": "synth", "limit": n_images}
            recipe = bench_recipe(f"bench-trnr-{task_name}-{name}", task_name, model, train, root, 1,
                                  opts.batch * per_task, opts.crop, opts.seed)
            apply_budget(recipe, opts, crops_per_step=opts.batch * per_task)
            recipe["train"]["losses"] = copy.deepcopy(LOSSES)
            if name != "ordinary":
                recipe["data"]["train"].update(kind="tasks", tasks=row_options)
                recipe["data"]["train"].pop("pipeline", None)
                recipe["train"]["batch_size"] = opts.batch
                recipe["distill"] = {"method": "trnr", "options": {"inner_steps": inner_steps, "inner_lr": inner_lr,
                                                                   "learn_inner_lr": name == "trnr"}}
            (first, sigma), *others = task.tests
            row, net = train_and_score(recipe, Path(tmp) / name, scorer(first, sigma), probe,
                                       f"{model['name']}/{name}", opts.progress)
            row_scores = {_label(first, sigma): {"psnr": row.pop("psnr"), "ssim": row.pop("ssim")}}
            for test, s in others:
                res = scorer(test, s)(net, f"{model['name']}/{name}")
                row_scores[_label(test, s)] = {"psnr": res.psnr, "ssim": res.ssim}
            rows.append({"method": name, "scores": row_scores, "patches_per_step": opts.batch * per_task, **row})
            for metric, v in row_scores.items():
                scores.append(score_entry(table, name, metric, v["psnr"], v["ssim"], reference="ordinary"))
    return {"bench": "trnr", "task": task_name, "model": model["name"], "train": task.train["path"],
            "degradation": task.train["degradation"], "images": n_images, "tests": [_label(*t) for t in task.tests],
            "convention": conv.to_dict(), "input_psnr": inputs, "rows": rows, "cost_input_shape": list(probe),
            "patches": len(bank.labels), "clusters": bank.clusters, "seed": opts.seed,
            "inner_steps": inner_steps, "inner_lr": inner_lr, "tasks": task.tasks, "scores": scores}


def trnr_bench(tasks: list[str], data_root: str | os.PathLike[str], opts: BenchOptions, images: int | str = 20,
               full_size: bool = False, methods: list[str] | None = None,
               command: str | None = None) -> dict[str, Any]:
    """``kdrestore bench trnr``: per task, ordinary training vs TRNR (ours and the official setting)."""
    plan = [("kdrestore.experiments.bench_trnr:run_trnr_bench", check_rows(methods, t, ROWS_BY_TASK, "trnr"),
             {"task_name": t, "data_root": str(data_root), "images": images, "full_size": full_size})
            for t in tasks]
    return run_bench("trnr", plan, opts, row_key="methods", command=command)


__all__ = ["ROWS", "TASKS", "image_count", "run_trnr_bench", "trnr_bench"]
