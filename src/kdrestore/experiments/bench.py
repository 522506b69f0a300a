"""``kdrestore bench distill``: a fixed-budget ablation of distillation methods on one task.

Same student, data, steps and seed for every row; only the distillation terms change. Each trained
student and the teacher are scored on the task's real test set under its published convention.
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..config import load_config
from ..errors import KdrestoreError
from ..evaluate.api import load_model
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.profile import count_macs, count_params, measure_latency
from ..evaluate.runner import EvalResult, evaluate
from .bench_common import BenchOptions, apply_budget, check_rows, run_bench, score_entry, teacher_entry


@dataclass
class BenchTask:
    """A task of the ablation: training data (clean images + synthesis), test set, teacher, student."""

    train: dict[str, Any]
    test: str  # folder under the data root
    teacher: str
    student: str
    student_points: list[str]
    teacher_points: list[str]
    student_args: dict[str, Any] = field(default_factory=dict)
    pseudo_label: bool = False


TASKS: dict[str, BenchTask] = {
    "denoise": BenchTask(
        train={"kind": "synth", "path": "train/BSD400-gray", "degradation": "awgn", "params": {"sigma": 25},
               "mode": "gray"},
        test="denoise/Set12", teacher="dncnn-s25", student="mdrn-tiny",
        student_points=["body.1", "body.3"], teacher_points=["dncnn.8", "dncnn.26"]),
    "derain": BenchTask(
        train={"kind": "synth", "path": "train/BSDS500-train-color", "degradation": "rain-heavy", "mode": "rgb"},
        test="derain/Rain100H", teacher="prenet6", student="msresnet-tiny",
        student_points=["body.0", "body.1"], teacher_points=["res_conv2", "res_conv4"]),
    "dehaze": BenchTask(
        train={"kind": "synth", "path": "train/BSDS500-train-color", "degradation": "haze", "mode": "rgb",
               "params": {"beta": [0.6, 1.8], "airlight": [0.7, 1.0]}},
        test="dehaze/SOTS-indoor-50", teacher="gcanet", student="tinydehaze",
        student_points=["conv3", "conv4"], teacher_points=["res3", "res6"]),
}


def method_variants(task: BenchTask) -> dict[str, dict[str, Any] | None]:
    """Ablation rows: ``None`` is the student alone; the others add one kind of distillation."""
    def pairs(loss: str, weight: float, **extra: Any) -> list[dict[str, Any]]:
        return [{"student": s, "teacher": t, "loss": loss, "weight": weight, **extra}
                for s, t in zip(task.student_points, task.teacher_points)]

    return {
        "alone": None,
        "output": {},
        "output+fitnet": {"features": pairs("fitnet", 0.1)},
        "output+fakd": {"features": pairs("fakd", 1.0)},
        "output+rsd": {"features": pairs("rsd", 0.002, rsd_mode="position")},
        "output+contrastive": {"contrastive": {"weight": 0.05, "points": task.teacher_points}},
    }


def bench_recipe(name: str, task_name: str, model: dict[str, Any], train: dict[str, Any], data_root: Path,
                 steps: int, batch: int, crop: int, seed: int) -> dict[str, Any]:
    """The fixed-budget training recipe shared by every bench row (no validation; one final checkpoint)."""
    train = copy.deepcopy(train)
    train["path"] = str(data_root / train["path"])
    train["crop"] = crop
    return {
        "name": name, "task": task_name, "model": copy.deepcopy(model), "data": {"train": train},
        "optim": {"name": "adam", "lr": 1e-3},
        "schedule": {"name": "cosine", "warmup_steps": min(50, steps // 10), "min_lr": 1e-5},
        "train": {"steps": steps, "batch_size": batch, "seed": seed, "log_every": max(steps // 20, 1),
                  "ckpt_every": steps, "val_every": steps + 1, "ema_decay": 0.99, "grad_clip": 1.0},
    }


def _recipe(task_name: str, task: BenchTask, data_root: Path, opts: BenchOptions,
            distill: dict[str, Any] | None) -> dict[str, Any]:
    recipe = bench_recipe(f"bench-{task_name}", task_name, {"name": task.student, "args": dict(task.student_args)},
                          task.train, data_root, opts.steps_for(), opts.batch, opts.crop, opts.seed)
    apply_budget(recipe, opts)
    if distill is not None:
        recipe["distill"] = {"teachers": [{"name": task.teacher}], "peers": opts.peers,
                             "pseudo_label": task.pseudo_label, **distill}
    return recipe


def model_cost(model: nn.Module, shape: tuple[int, ...]) -> dict[str, float]:
    """Parameters, MACs and median CPU milliseconds of ``model`` at ``shape`` (every bench row's cost)."""
    lat = measure_latency(model, shape, repeats=5, warmup=1)
    return {"params": count_params(model), "macs": count_macs(model, shape), "cpu_ms": lat.median_ms}


def train_and_score(recipe: dict[str, Any], run_dir: Path, score: Callable[[nn.Module, str], EvalResult],
                    probe: tuple[int, ...], label: str, progress: bool = False) -> tuple[dict[str, Any], nn.Module]:
    """Train a recipe dict with the one Trainer, then score its (EMA) model: ``(row, model)``.

    The row holds PSNR/SSIM on the test set (``score``), training wall time, image count and the
    model's cost (params, MACs and CPU latency at ``probe``).
    """
    from ..engine import Trainer

    start = time.perf_counter()
    trainer = Trainer(load_config(data=recipe), run_dir, progress=progress)
    trainer.fit()
    wall = time.perf_counter() - start
    model = (trainer.ema.shadow if trainer.ema is not None else trainer.model).eval()
    res = score(model, label)
    row = {"psnr": res.psnr, "ssim": res.ssim, "train_wall_s": wall, "steps": trainer.step,  # time budgets: steps run
           "images": len(res.images), **model_cost(model, probe)}
    return row, model


def run_distill_bench(task_name: str, data_root: str | os.PathLike[str], opts: BenchOptions,
                      methods: list[str] | None = None) -> dict[str, Any]:
    """One seed (``opts.seed``): train the student once per method (same budget), score each and the
    teacher on the real test set. Returns the rows plus ``scores``/``teachers`` for :mod:`.bench_common`."""
    from ..data.tasks import eval_samples

    task, root = TASKS[task_name], Path(data_root)
    peers = opts.peers or os.environ.get("KDRESTORE_PEERS")
    opts = replace(opts, peers=peers)
    variants = method_variants(task)
    chosen = check_rows(methods, task_name, ROWS_BY_TASK, "distill")
    conv = TASK_CONVENTIONS[task_name]
    mode = task.train.get("mode", "rgb")

    def score(model: nn.Module, name: str) -> EvalResult:
        samples, total, desc = eval_samples(task_name, root / task.test, sigma=25.0, mode=mode,
                                            limit=opts.test_limit)
        return evaluate(model, samples, conv, name=name, task=task_name, data=desc, limit=opts.test_limit,
                        progress=opts.progress, total=total)

    table, metric = f"distill {task_name}: {task.student} <- {task.teacher}", Path(task.test).name
    probe = (1, 1 if mode == "gray" else 3, 256, 256)
    rows: list[dict[str, Any]] = []
    scores, teachers = [], []
    if any(variants[m] is not None for m in chosen):  # the teacher's score decides whether a row may count
        teacher = load_model(task.teacher, peers=peers)
        teachers.append(teacher_entry(table, metric, task.teacher, score(teacher, task.teacher).psnr))
    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        for name in chosen:
            recipe = _recipe(task_name, task, root, opts, variants[name])
            row, _ = train_and_score(recipe, Path(tmp) / name.replace("+", "_"), score, probe,
                                     f"{task.student}/{name}", opts.progress)
            rows.append({"method": name, **row})
            scores.append(score_entry(table, name, metric, row["psnr"], row["ssim"], reference="alone",
                                      teacher=None if variants[name] is None else task.teacher))
    return {"task": task_name, "student": task.student, "teacher": task.teacher, "test": task.test,
            "convention": conv.to_dict(), "seed": opts.seed, "rows": rows, "cost_input_shape": list(probe),
            "scores": scores, "teachers": teachers}


ROWS_BY_TASK = {t: tuple(method_variants(TASKS[t])) for t in TASKS}


def distill_bench(tasks: list[str], data_root: str | os.PathLike[str], opts: BenchOptions,
                  methods: list[str] | None = None, command: str | None = None) -> dict[str, Any]:
    """``kdrestore bench distill``: every task's rows for every seed, aggregated (:func:`.bench_common.run_bench`)."""
    plan = [("kdrestore.experiments.bench:run_distill_bench", check_rows(methods, task, ROWS_BY_TASK, "distill"),
             {"task_name": task, "data_root": str(data_root)}) for task in tasks]
    return run_bench("distill", plan, opts, row_key="methods", command=command)


__all__ = ["TASKS", "BenchTask", "bench_recipe", "distill_bench", "method_variants", "run_distill_bench",
           "train_and_score"]
