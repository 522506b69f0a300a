"""``kdrestore bench distill``: a fixed-budget ablation of distillation methods on one task.

Same student, data, steps and seed for every row; only the distillation terms change. Each trained
student and the teacher are scored on the task's real test set under its published convention.
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..config import load_config
from ..errors import KdrestoreError
from .api import load_model
from .metrics import TASK_CONVENTIONS
from .profile import count_macs, count_params, measure_latency
from .runner import EvalResult, evaluate


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


def _recipe(task_name: str, task: BenchTask, data_root: Path, steps: int, batch: int, crop: int, seed: int,
            distill: dict[str, Any] | None, peers: str | None) -> dict[str, Any]:
    recipe = bench_recipe(f"bench-{task_name}", task_name, {"name": task.student, "args": dict(task.student_args)},
                          task.train, data_root, steps, batch, crop, seed)
    if distill is not None:
        recipe["distill"] = {"teachers": [{"name": task.teacher}], "peers": peers,
                             "pseudo_label": task.pseudo_label, **distill}
    return recipe


def _cost(model: nn.Module, shape: tuple[int, ...]) -> dict[str, float]:
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
    row = {"psnr": res.psnr, "ssim": res.ssim, "train_wall_s": wall, "images": len(res.images), **_cost(model, probe)}
    return row, model


def run_distill_bench(task_name: str, data_root: str | os.PathLike[str], *, peers: str | None = None,
                      steps: int = 300, batch: int = 8, crop: int = 48, seed: int = 0,
                      methods: list[str] | None = None, test_limit: int | None = None,
                      workdir: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Train the student once per method (same budget) and score each on the real test set."""
    if task_name not in TASKS:
        raise KdrestoreError(f"unknown bench task {task_name!r}; choose from {sorted(TASKS)}")
    from ..data.tasks import eval_samples

    task, root = TASKS[task_name], Path(data_root)
    peers = peers or os.environ.get("KDRESTORE_PEERS")
    variants = method_variants(task)
    chosen = methods or list(variants)
    unknown = [m for m in chosen if m not in variants]
    if unknown:
        raise KdrestoreError(f"unknown ablation rows {unknown}; choose from {list(variants)}")
    conv = TASK_CONVENTIONS[task_name]
    mode = task.train.get("mode", "rgb")

    def score(model: nn.Module, name: str) -> EvalResult:
        samples, total, desc = eval_samples(task_name, root / task.test, sigma=25.0, mode=mode, limit=test_limit)
        return evaluate(model, samples, conv, name=name, task=task_name, data=desc, limit=test_limit,
                        progress=progress, total=total)

    teacher = load_model(task.teacher, peers=peers)
    t_res = score(teacher, task.teacher)
    probe = (1, 1 if mode == "gray" else 3, 256, 256)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in chosen:
            recipe = _recipe(task_name, task, root, steps, batch, crop, seed, variants[name], peers)
            row, _ = train_and_score(recipe, Path(tmp) / name.replace("+", "_"), score, probe,
                                     f"{task.student}/{name}", progress)
            rows.append({"method": name, **row})
    base = next((r["psnr"] for r in rows if r["method"] == "alone"), None)
    for r in rows:
        r["delta_vs_alone"] = None if base is None else r["psnr"] - base
        gain_t = t_res.psnr - t_res.input_psnr
        r["teacher_gain_kept"] = (r["psnr"] - t_res.input_psnr) / gain_t if gain_t > 0 else None
    return {"task": task_name, "student": task.student, "teacher": task.teacher, "test": task.test,
            "convention": conv.to_dict(), "budget": {"steps": steps, "batch": batch, "crop": crop, "seed": seed},
            "input_psnr": t_res.input_psnr, "teacher_psnr": t_res.psnr, "teacher_ssim": t_res.ssim,
            "teacher_cost": _cost(teacher, probe), "rows": rows, "cost_input_shape": list(probe)}


def format_distill_bench(result: dict[str, Any]) -> str:
    """The ablation as a text table."""
    t = result["teacher_cost"]
    lines = [f"task {result['task']}: student {result['student']} vs teacher {result['teacher']} on "
             f"{result['test']} ({result['convention']['text']})",
             f"budget: {result['budget']['steps']} steps x batch {result['budget']['batch']} of "
             f"{result['budget']['crop']}px crops, seed {result['budget']['seed']}; cost at input "
             f"{tuple(result['cost_input_shape'])}",
             f"{'row':20} {'PSNR':>7} {'SSIM':>6} {'vs alone':>8} {'gain kept':>9} {'params':>9} {'GMACs':>6} "
             f"{'CPU ms':>7} {'train s':>7}"]
    for r in result["rows"]:
        delta = "" if r["delta_vs_alone"] is None else f"{r['delta_vs_alone']:+.2f}"
        kept = "" if r["teacher_gain_kept"] is None else f"{100 * r['teacher_gain_kept']:.0f}%"
        lines.append(f"{r['method']:20} {r['psnr']:>7.2f} {r['ssim']:>6.3f} {delta:>8} {kept:>9} "
                     f"{r['params']:>9,} {r['macs'] / 1e9:>6.2f} {r['cpu_ms']:>7.1f} {r['train_wall_s']:>7.0f}")
    lines.append(f"{'teacher ' + result['teacher']:20} {result['teacher_psnr']:>7.2f} {result['teacher_ssim']:>6.3f} "
                 f"{'':>8} {'100%':>9} {t['params']:>9,} {t['macs'] / 1e9:>6.2f} {t['cpu_ms']:>7.1f}")
    lines.append(f"{'degraded input':20} {result['input_psnr']:>7.2f}")
    return "\n".join(lines)
