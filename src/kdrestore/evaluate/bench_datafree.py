"""``kdrestore bench datafree``: data-free students vs the same student trained on real data vs the teacher.

Per task, the same student (``unet-tiny`` width 8; gray for Set12), steps, batch, crop and seed:

* ``data-free``: ``distill.method: datafree`` with the task's published teacher and no images at all
  (``data.train.kind: latent``; the generator's degradation matches the data-trained row's synthesis);
  GCANet sees 128-px generated images (it needs scene context) while the student trains on ``crop`` windows;
* ``data-trained``: supervised on the real clean training images with the same synthetic degradation as
  :data:`kdrestore.evaluate.bench.TASKS` (BSD400 gray + AWGN 25; BSDS500-train + rain-heavy / haze);
* ``multi-weather``: ONE colour student distilled data-free from the three teachers at once (routed by
  degradation label; DnCNN-S-25 applied per channel, so the generated colour is bounded, ``chroma: 0.5``)
  and scored on every task's test set (Set12 through a gray -> RGB -> gray wrapper); trained once, by
  default for the three single-task budgets together (``multi_steps = steps x tasks``: one model
  replacing three), same batch and crop;
* the teacher itself and the degraded input.

Tasks: denoise (Set12, AWGN sigma 25, teacher DnCNN-S-25), derain (Rain100H, PReNet6), dehaze
(SOTS-indoor-50, GCANet), each under its published metric convention. The goal reported: data-free
within 1 dB of data-trained.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from ..config import load_config
from ..errors import KdrestoreError
from .api import load_model
from .bench import TASKS as DISTILL_TASKS
from .bench import _cost, bench_recipe
from .metrics import TASK_CONVENTIONS
from .runner import EvalResult, evaluate

STUDENT = "unet-tiny"
STUDENT_ARGS = {"width": 8}
ROWS = ("data-free", "data-trained", "multi-weather")
GOAL_DB = 1.0


@dataclass(frozen=True)
class DataFreeTask:
    label: str  # the latent data set's degradation label
    test: str  # folder under the data root
    teacher: str
    mode: str  # the single-task student's channels and the test images
    context: int | None = None  # generated size the teacher sees (the student trains on --crop windows)


TASKS: dict[str, DataFreeTask] = {
    "denoise": DataFreeTask("noise", "denoise/Set12", "dncnn-s25", "gray"),
    "derain": DataFreeTask("rain", "derain/Rain100H", "prenet6", "rgb"),
    "dehaze": DataFreeTask("haze", "dehaze/SOTS-indoor-50", "gcanet", "rgb", context=128),
}


class GrayAsRGB(nn.Module):
    """A colour model on gray images: the channel is repeated three times in, averaged out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True) if x.shape[1] == 1 else self.model(x)


def _student(mode: str) -> dict[str, Any]:
    return {"name": STUDENT, "args": {**STUDENT_ARGS, **({"in_channels": 1} if mode == "gray" else {})}}


def datafree_recipe(name: str, task: str, mode: str, labels: list[str], teachers: list[dict[str, Any]],
                    peers: str | None, steps: int, batch: int, crop: int, seed: int,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data-free row: the bench's fixed-budget recipe with a latent data set and the datafree method."""
    recipe = bench_recipe(name, task, _student(mode), DISTILL_TASKS[task].train, Path("."), steps, batch, crop, seed)
    recipe["data"] = {"train": {"kind": "latent", "crop": crop, "mode": mode, "params": {"degradations": labels}}}
    context = {TASKS[k].label: TASKS[k].context for k in TASKS if TASKS[k].label in labels and TASKS[k].context}
    recipe["distill"] = {"method": "datafree", "teachers": teachers, "peers": peers,
                         "contrastive": {"weight": 0.1}, "options": {"context": context, **(options or {})}}
    return recipe


def _train(recipe: dict[str, Any], run_dir: Path, progress: bool) -> tuple[nn.Module, float]:
    from ..engine import Trainer

    start = time.perf_counter()
    trainer = Trainer(load_config(data=recipe), run_dir, progress=progress)
    trainer.fit()
    model = (trainer.ema.shadow if trainer.ema is not None else trainer.model).eval()
    return model, time.perf_counter() - start


def run_datafree_bench(data_root: str | os.PathLike[str], *, tasks: list[str] | None = None,
                       peers: str | None = None, steps: int = 300, batch: int = 8, crop: int = 48, seed: int = 0,
                       rows: list[str] | None = None, test_limit: int | None = None,
                       multi_steps: int | None = None, options: dict[str, Any] | None = None,
                       workdir: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Train every row at the same budget and score it, the teacher and the input on each task's test set."""
    from ..data.tasks import eval_samples

    chosen_tasks, chosen = list(tasks or TASKS), list(rows or ROWS)
    bad = [t for t in chosen_tasks if t not in TASKS] + [r for r in chosen if r not in ROWS]
    if bad:
        raise KdrestoreError(f"unknown tasks/rows {bad}; tasks: {list(TASKS)}, rows: {list(ROWS)}")
    if crop % 4:
        raise KdrestoreError(f"--crop must be a multiple of 4 for the generator, got {crop}")
    root, peers = Path(data_root), peers or os.environ.get("KDRESTORE_PEERS")
    multi_steps = multi_steps or steps * len(chosen_tasks)

    def scorer(task: str) -> Callable[[nn.Module, str], EvalResult]:
        t = TASKS[task]

        def score(model: nn.Module, name: str) -> EvalResult:
            samples, total, desc = eval_samples(task, root / t.test, sigma=25.0, mode=t.mode,  # type: ignore[arg-type]
                                                limit=test_limit)
            return evaluate(model, samples, TASK_CONVENTIONS[task], name=name, task=task, data=desc,
                            limit=test_limit, progress=progress, total=total)
        return score

    def row(name: str, res: EvalResult, model: nn.Module, probe: tuple[int, ...], wall: float | None) -> dict[str, Any]:
        return {"row": name, "psnr": res.psnr, "ssim": res.ssim, "images": len(res.images), "train_wall_s": wall,
                **_cost(model, probe)}

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for task in chosen_tasks:
            t, score = TASKS[task], scorer(task)
            probe = (1, 1 if t.mode == "gray" else 3, 256, 256)
            teacher = load_model(t.teacher, peers=peers)
            t_res = score(teacher, t.teacher)
            entry: dict[str, Any] = {"task": task, "test": t.test, "teacher": t.teacher, "mode": t.mode,
                                     "convention": TASK_CONVENTIONS[task].to_dict(), "input_psnr": t_res.input_psnr,
                                     "rows": [], "cost_input_shape": list(probe)}
            for name in ("data-free", "data-trained"):
                if name not in chosen:
                    continue
                if name == "data-free":
                    recipe = datafree_recipe(f"bench-datafree-{task}", task, t.mode, [t.label], [{"name": t.teacher}],
                                             peers, steps, batch, crop, seed, options)
                else:
                    recipe = bench_recipe(f"bench-data-{task}", task, _student(t.mode), DISTILL_TASKS[task].train,
                                          root, steps, batch, crop, seed)
                model, wall = _train(recipe, Path(tmp) / f"{task}-{name}", progress)
                entry["rows"].append(row(name, score(model, f"{STUDENT}/{name}"), model, probe, wall))
            entry["teacher_row"] = row(f"teacher {t.teacher}", t_res, teacher, probe, None)
            results[task] = entry
        if "multi-weather" in chosen:
            teachers = [{"name": TASKS[k].teacher, "degradations": [TASKS[k].label],
                         **({"per_channel": True} if TASKS[k].mode == "gray" else {})} for k in chosen_tasks]
            gray_teacher = any(TASKS[k].mode == "gray" for k in chosen_tasks)  # per-channel: bound the colour
            recipe = datafree_recipe("bench-datafree-multi", chosen_tasks[0], "rgb",
                                     [TASKS[k].label for k in chosen_tasks], teachers, peers, multi_steps, batch,
                                     crop, seed, {**({"chroma": 0.5} if gray_teacher else {}), **(options or {})})
            model, wall = _train(recipe, Path(tmp) / "multi", progress)
            for task in chosen_tasks:
                wrapped = GrayAsRGB(model) if TASKS[task].mode == "gray" else model
                probe = tuple(results[task]["cost_input_shape"])
                res = scorer(task)(wrapped, f"{STUDENT}/multi-weather")
                results[task]["rows"].append(row("multi-weather", res, wrapped, probe, wall))
    for entry in results.values():
        by = {r["row"]: r for r in entry["rows"]}
        ref = by.get("data-trained", {}).get("psnr")
        for r in entry["rows"]:
            r["vs_data_trained"] = None if ref is None else r["psnr"] - ref
    return {"bench": "datafree", "student": {"name": STUDENT, "args": STUDENT_ARGS},
            "budget": {"steps": steps, "multi_steps": multi_steps if "multi-weather" in chosen else None,
                       "batch": batch, "crop": crop, "seed": seed, "test_limit": test_limit},
            "options": dict(options or {}), "goal_db": GOAL_DB, "tasks": list(results.values())}


def format_datafree_bench(result: dict[str, Any]) -> str:
    """One text table per task, with the goal (data-free within 1 dB of data-trained)."""
    b = result["budget"]
    limit = "" if b["test_limit"] is None else f"; first {b['test_limit']} test images"
    lines = [f"data-free distillation: student {result['student']['name']} {result['student']['args']}, "
             f"{b['steps']} steps x batch {b['batch']} of {b['crop']}px, seed {b['seed']}{limit}"
             + (f"; multi-weather {b['multi_steps']} steps" if b.get("multi_steps") else "")
             + "".join(f"; {k}: {v}" for k, v in result.get("options", {}).items())]
    for e in result["tasks"]:
        lines += ["", f"{e['task']}: {e['test']} ({e['mode']}), teacher {e['teacher']}; {e['convention']['text']}",
                  f"{'row':22} {'PSNR':>7} {'SSIM':>6} {'vs data':>8} {'params':>9} {'GMACs':>6} {'CPU ms':>7} "
                  f"{'train s':>7}"]
        for r in [*e["rows"], e["teacher_row"]]:
            delta = "" if r.get("vs_data_trained") is None else f"{r['vs_data_trained']:+.2f}"
            wall = "" if r["train_wall_s"] is None else f"{r['train_wall_s']:.0f}"
            lines.append(f"{r['row']:22} {r['psnr']:>7.2f} {r['ssim']:>6.3f} {delta:>8} {r['params']:>9,} "
                         f"{r['macs'] / 1e9:>6.2f} {r['cpu_ms']:>7.1f} {wall:>7}")
        lines.append(f"{'degraded input':22} {e['input_psnr']:>7.2f}")
        gap = next((r["vs_data_trained"] for r in e["rows"] if r["row"] == "data-free"), None)
        if gap is not None:
            verdict = "met" if gap >= -result["goal_db"] else "not met"
            lines.append(f"goal (data-free within {result['goal_db']:g} dB of data-trained): {verdict} ({gap:+.2f} dB)")
    return "\n".join(lines)


__all__ = ["ROWS", "TASKS", "GrayAsRGB", "datafree_recipe", "format_datafree_bench", "run_datafree_bench"]
