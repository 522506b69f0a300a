"""``kdrestore bench trnr``: training from a few clean images, ordinary training against TRNR.

Both rows train the same network from the same first ``images`` clean images of the training folder
(sorted names), with the same patch size, loss (``L1 + 5 (1 - SSIM)``), optimiser, schedule, EMA,
steps and seed (:func:`.bench.bench_recipe`); only the sampler and the step differ:

* ``ordinary``: random patches of the few images, degraded on the fly, ``batch`` tasks' worth of
  patches per step (``tasks x (n_freqs k_shot + query_freqs query_shots)``: the same patches per step);
* ``trnr``: ``batch`` N-frequency-K-shot tasks per step over the clustered patches, first-order MAML
  with learned per-layer inner rates (:mod:`kdrestore.distill.methods.trnr`).

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
from .bench import bench_recipe, train_and_score
from .metrics import TASK_CONVENTIONS
from .runner import EvalResult, evaluate

ROWS = ("ordinary", "trnr")
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


def run_trnr_bench(task_name: str, data_root: str | os.PathLike[str], *, images: int | str = 20, steps: int = 100,
                   batch: int = 4, crop: int = 48, seed: int = 0, inner_steps: int = 2, inner_lr: float = 1e-3,
                   full_size: bool = False, methods: list[str] | None = None, test_limit: int | None = None,
                   workdir: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Train each row at the same budget on the few images and score it on the task's test sets."""
    if task_name not in TASKS:
        raise KdrestoreError(f"bench trnr covers {sorted(TASKS)}, not {task_name!r}")
    chosen = list(methods or ROWS)
    if any(m not in ROWS for m in chosen):
        raise KdrestoreError(f"unknown rows {[m for m in chosen if m not in ROWS]}; choose from {list(ROWS)}")
    task, root = TASKS[task_name], Path(data_root)
    folder = root / task.train["path"]
    n_images = image_count(images, folder)
    per_task = task.tasks["n_freqs"] * task.tasks["k_shot"] + task.tasks["query_freqs"] * task.tasks["query_shots"]
    mode, model = task.train["mode"], {"name": task.full_model if full_size else task.model}
    conv = TASK_CONVENTIONS[task_name]
    inputs: dict[str, float] = {}

    def scorer(test: str, sigma: float | None) -> Callable[[nn.Module, str], EvalResult]:
        def score(net: nn.Module, name: str) -> EvalResult:
            samples, total, desc = eval_samples(task_name, root / test, sigma=sigma or 25.0, mode=mode,
                                                limit=test_limit)
            res = evaluate(net, samples, conv, name=name, task=task_name, data=desc, limit=test_limit,
                           progress=progress, total=total)
            inputs[_label(test, sigma)] = res.input_psnr
            return res
        return score

    probe = (1, 1 if mode == "gray" else 3, 256, 256)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        options = {**task.tasks, "cache_dir": str(Path(tmp) / "patches")}
        bank = TaskDataset(folder, task.train["degradation"], task.train.get("params"), patch=crop, mode=mode,
                           limit=n_images, seed=seed, options=options).bank  # the clustering, cached for the run
        for name in chosen:
            train = {**copy.deepcopy(task.train), "kind": "synth", "limit": n_images}
            recipe = bench_recipe(f"bench-trnr-{task_name}-{name}", task_name, model, train, root, steps,
                                  batch * per_task, crop, seed)
            recipe["train"]["losses"] = copy.deepcopy(LOSSES)
            if name == "trnr":
                recipe["data"]["train"].update(kind="tasks", tasks=options)
                recipe["train"]["batch_size"] = batch
                recipe["distill"] = {"method": "trnr", "options": {"inner_steps": inner_steps, "inner_lr": inner_lr}}
            (first, sigma), *others = task.tests
            row, net = train_and_score(recipe, Path(tmp) / name, scorer(first, sigma), probe,
                                       f"{model['name']}/{name}", progress)
            scores = {_label(first, sigma): {"psnr": row.pop("psnr"), "ssim": row.pop("ssim")}}
            for test, s in others:
                res = scorer(test, s)(net, f"{model['name']}/{name}")
                scores[_label(test, s)] = {"psnr": res.psnr, "ssim": res.ssim}
            rows.append({"method": name, "scores": scores, **row})
    base = next((r for r in rows if r["method"] == "ordinary"), None)
    for r in rows:
        r["delta_vs_ordinary"] = None if base is None else {k: v["psnr"] - base["scores"][k]["psnr"]
                                                            for k, v in r["scores"].items()}
    return {"bench": "trnr", "task": task_name, "model": model["name"], "train": task.train["path"],
            "degradation": task.train["degradation"], "images": n_images, "tests": [_label(*t) for t in task.tests],
            "convention": conv.to_dict(), "input_psnr": inputs, "rows": rows, "cost_input_shape": list(probe),
            "patches": len(bank.labels), "clusters": bank.clusters,
            "budget": {"steps": steps, "tasks_per_step": batch, "patches_per_step": batch * per_task, "crop": crop,
                       "seed": seed, "inner_steps": inner_steps, "inner_lr": inner_lr, **task.tasks}}


def format_trnr_bench(result: dict[str, Any]) -> str:
    """One task's rows as a text table (PSNR/SSIM per test set, then cost and training time)."""
    b = result["budget"]
    lines = [f"trnr {result['task']}: {result['model']} trained on {result['images']} clean images of "
             f"{result['train']} + {result['degradation']}; {result['convention']['text']}",
             f"budget: {b['steps']} steps, seed {b['seed']}, {b['crop']}px patches; ordinary: {b['patches_per_step']} "
             f"patches/step; trnr: {b['tasks_per_step']} tasks/step of {b['n_freqs']} freq x {b['k_shot']} shot + "
             f"{b['query_freqs']} x {b['query_shots']} query, {b['inner_steps']} inner steps (lr {b['inner_lr']:g}); "
             f"{result['patches']} patches in {result['clusters']} clusters",
             f"{'row':16}" + "".join(f" {t + ' PSNR':>15} {'SSIM':>6} {'vs ord':>6}" for t in result["tests"])
             + f" {'params':>9} {'train s':>7}"]
    for r in result["rows"]:
        cells = ""
        for t in result["tests"]:
            d = r["delta_vs_ordinary"]
            delta = "" if d is None or r["method"] == "ordinary" else f"{d[t]:+.2f}"
            cells += f" {r['scores'][t]['psnr']:>15.2f} {r['scores'][t]['ssim']:>6.3f} {delta:>6}"
        lines.append(f"{r['method']:16}{cells} {r['params']:>9,} {r['train_wall_s']:>7.0f}")
    inputs = [result["input_psnr"].get(t, float("nan")) for t in result["tests"]]
    lines.append(f"{'degraded input':16}" + "".join(f" {v:>15.2f} {'':>6} {'':>6}" for v in inputs))
    return "\n".join(lines)
