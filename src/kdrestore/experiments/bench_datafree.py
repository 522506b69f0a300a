"""``kdrestore bench datafree``: data-free students vs the same student trained on real data vs the teacher.

Per task, the same student (``unet-tiny`` width 8; gray for Set12), steps, batch, crop and seed:

* ``data-free``: ``distill.method: datafree`` with the task's published teacher and no images at all
  (``data.train.kind: latent``; the generator's degradation matches the data-trained row's synthesis);
  GCANet sees 128-px generated images (it needs scene context) while the student trains on ``crop`` windows;
* ``data-trained``: supervised on the real clean training images with the same synthetic degradation as
  :data:`kdrestore.experiments.bench.TASKS` (BSD400 gray + AWGN 25; BSDS500-train + rain-heavy / haze);
* ``multi-weather``: ONE colour student distilled data-free from the three teachers at once (routed by
  degradation label; DnCNN-S-25 applied per channel, so the generated colour is bounded, ``chroma: 0.5``)
  and scored on every task's test set (Set12 through a gray -> RGB -> gray wrapper); trained once, by
  default for the three single-task budgets together (``multi_steps = steps x tasks``: one model
  replacing three), same batch and crop;
* ablations of ``data-free``: ``data-free-noadv`` (no adversarial phase: ``generator_steps 0``, samples
  of the initial generator), ``data-free-nocr`` (no contrastive regularisation), ``data-free-advdeg``
  (the adversarial phase also moves the degradation parameters within their ranges:
  ``adversarial_degradation``; haze and rain, whose parameters are ranges);
* the teacher itself and the degraded input.

Tasks: denoise (Set12, AWGN sigma 25, teacher DnCNN-S-25), derain (Rain100H, PReNet6), dehaze
(SOTS-indoor-50, GCANet), each under its published metric convention. The goal reported: data-free
within 1 dB of data-trained; every row is compared with ``data-trained`` (a teacher below it refuses its rows).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from ..config import load_config, parse_duration
from ..errors import KdrestoreError
from ..evaluate.api import load_model
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.runner import EvalResult, evaluate
from .bench import TASKS as DISTILL_TASKS
from .bench import bench_recipe
from .bench import model_cost as _cost  # the one cost measure of the benches (params, MACs, CPU ms)
from .bench_common import BenchOptions, apply_budget, check_rows, run_bench, score_entry, teacher_entry

STUDENT = "unet-tiny"
STUDENT_ARGS = {"width": 8}
DATAFREE_ROWS: dict[str, dict[str, Any]] = {
    "data-free": {}, "data-free-noadv": {"generator_steps": 0}, "data-free-nocr": {"contrastive": None},
    "data-free-advdeg": {"adversarial_degradation": True}}
ROWS = ("data-trained", *DATAFREE_ROWS, "multi-weather")
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
ROWS_BY_TASK = {t: tuple(r for r in ROWS if not (r == "data-free-advdeg" and t == "denoise")) for t in TASKS}


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
    """The data-free row: the bench's fixed-budget recipe with a latent data set and the datafree method
    (``options["contrastive"] = None`` drops the contrastive regularisation; the rest are method options)."""
    recipe = bench_recipe(name, task, _student(mode), DISTILL_TASKS[task].train, Path("."), steps, batch, crop, seed)
    recipe["data"] = {"train": {"kind": "latent", "crop": crop, "mode": mode, "params": {"degradations": labels}}}
    context = {TASKS[k].label: TASKS[k].context for k in TASKS if TASKS[k].label in labels and TASKS[k].context}
    options = dict(options or {})
    contrastive = options.pop("contrastive", {"weight": 0.1})
    recipe["distill"] = {"method": "datafree", "teachers": teachers, "peers": peers,
                         "options": {"context": context, **options}}
    if contrastive is not None:
        recipe["distill"]["contrastive"] = contrastive
    return recipe


def _train(recipe: dict[str, Any], run_dir: Path, opts: BenchOptions) -> tuple[nn.Module, float]:
    from ..engine import Trainer

    start = time.perf_counter()
    trainer = Trainer(load_config(data=recipe), run_dir, progress=opts.progress)
    trainer.fit()
    model = (trainer.ema.shadow if trainer.ema is not None else trainer.model).eval()
    return model, time.perf_counter() - start


def _single_rows(rows: list[str] | None, task: str) -> list[str]:
    """The single-task rows of ``task`` asked for (all by default); a row of another task is refused."""
    if rows is None:
        return [r for r in ROWS_BY_TASK[task] if r != "multi-weather"]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        check_rows(bad, task, ROWS_BY_TASK, "datafree")
    if task == "denoise" and "data-free-advdeg" in rows and len(rows) > 0:
        check_rows(["data-free-advdeg"], task, ROWS_BY_TASK, "datafree")  # a fixed sigma has no range to move in
    return [r for r in rows if r != "multi-weather"]


def run_datafree_bench(data_root: str | os.PathLike[str], opts: BenchOptions, tasks: list[str] | None = None,
                       rows: list[str] | None = None, multi_steps: int | None = None,
                       options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One seed: train the rows at the same budget and score them, the teacher and the input on each task's
    test set (``options``: extra datafree options of every data-free row)."""
    from ..data.tasks import eval_samples

    chosen_tasks, chosen = list(tasks or TASKS), list(rows or ROWS)
    for task in chosen_tasks:
        _single_rows(rows, task)
    if opts.crop % 4:
        raise KdrestoreError(f"--crop must be a multiple of 4 for the generator, got {opts.crop}")
    root = Path(data_root)
    opts = replace(opts, peers=opts.peers or os.environ.get("KDRESTORE_PEERS"))
    steps = opts.steps_for()
    multi_steps = multi_steps or steps * len(chosen_tasks)

    def scorer(task: str) -> Callable[[nn.Module, str], EvalResult]:
        t = TASKS[task]

        def score(model: nn.Module, name: str) -> EvalResult:
            samples, total, desc = eval_samples(task, root / t.test, sigma=25.0, mode=t.mode,  # type: ignore[arg-type]
                                                limit=opts.test_limit)
            return evaluate(model, samples, TASK_CONVENTIONS[task], name=name, task=task, data=desc,
                            limit=opts.test_limit, progress=opts.progress, total=total)
        return score

    def row(name: str, res: EvalResult, model: nn.Module, probe: tuple[int, ...], wall: float | None) -> dict[str, Any]:
        return {"row": name, "psnr": res.psnr, "ssim": res.ssim, "images": len(res.images), "train_wall_s": wall,
                **_cost(model, probe)}

    def table(task: str) -> str:
        return f"datafree {task}: {STUDENT} <- {TASKS[task].teacher}"

    results: dict[str, dict[str, Any]] = {}
    scores, teachers = [], []
    with tempfile.TemporaryDirectory(dir=opts.workdir) as tmp:
        for task in chosen_tasks:
            t, score = TASKS[task], scorer(task)
            probe = (1, 1 if t.mode == "gray" else 3, 256, 256)
            entry: dict[str, Any] = {"task": task, "test": t.test, "teacher": t.teacher, "mode": t.mode,
                                     "convention": TASK_CONVENTIONS[task].to_dict(), "rows": [],
                                     "cost_input_shape": list(probe)}
            if any(r != "data-trained" for r in chosen):
                teacher = load_model(t.teacher, peers=opts.peers)
                t_res = score(teacher, t.teacher)
                entry["input_psnr"] = t_res.input_psnr
                entry["teacher_row"] = row(f"teacher {t.teacher}", t_res, teacher, probe, None)
                teachers.append(teacher_entry(table(task), Path(t.test).name, t.teacher, t_res.psnr))
            for name in [r for r in chosen if r in ROWS_BY_TASK[task] and r != "multi-weather"]:
                if name == "data-trained":
                    recipe = bench_recipe(f"bench-data-{task}", task, _student(t.mode), DISTILL_TASKS[task].train,
                                          root, steps, opts.batch, opts.crop, opts.seed)
                else:
                    recipe = datafree_recipe(f"bench-{name}-{task}", task, t.mode, [t.label], [{"name": t.teacher}],
                                             opts.peers, steps, opts.batch, opts.crop, opts.seed,
                                             {**(options or {}), **DATAFREE_ROWS[name]})
                model, wall = _train(apply_budget(recipe, opts), Path(tmp) / f"{task}-{name}", opts)
                res = score(model, f"{STUDENT}/{name}")
                entry["input_psnr"] = res.input_psnr
                entry["rows"].append(row(name, res, model, probe, wall))
                scores.append(score_entry(table(task), name, Path(t.test).name, res.psnr, res.ssim,
                                          reference="data-trained", teacher=None if name == "data-trained" else t.teacher))
            results[task] = entry
        if "multi-weather" in chosen:
            multi = [{"name": TASKS[k].teacher, "degradations": [TASKS[k].label],
                      **({"per_channel": True} if TASKS[k].mode == "gray" else {})} for k in chosen_tasks]
            gray_teacher = any(TASKS[k].mode == "gray" for k in chosen_tasks)  # per-channel: bound the colour
            recipe = datafree_recipe("bench-datafree-multi", chosen_tasks[0], "rgb",
                                     [TASKS[k].label for k in chosen_tasks], multi, opts.peers, multi_steps,
                                     opts.batch, opts.crop, opts.seed,
                                     {**({"chroma": 0.5} if gray_teacher else {}), **(options or {})})
            recipe = apply_budget(recipe, opts)
            if opts.time_budget is None:
                recipe["train"]["steps"] = recipe["train"]["ckpt_every"] = multi_steps
                recipe["train"]["val_every"] = multi_steps + 1
            else:  # one student for every task: the budget of one row per task, as with steps
                seconds = parse_duration(opts.time_budget, "--time-budget") * len(chosen_tasks)
                recipe["train"]["time_budget"] = f"{seconds:.0f}s"
            model, wall = _train(recipe, Path(tmp) / "multi", opts)
            for task in chosen_tasks:
                wrapped = GrayAsRGB(model) if TASKS[task].mode == "gray" else model
                probe = tuple(results[task]["cost_input_shape"])
                res = scorer(task)(wrapped, f"{STUDENT}/multi-weather")
                results[task]["rows"].append(row("multi-weather", res, wrapped, probe, wall))
                scores.append(score_entry(table(task), "multi-weather", Path(TASKS[task].test).name, res.psnr,
                                          res.ssim, reference="data-trained", teacher=TASKS[task].teacher))
    return {"bench": "datafree", "student": {"name": STUDENT, "args": STUDENT_ARGS}, "seed": opts.seed,
            "steps": steps, "multi_steps": multi_steps if "multi-weather" in chosen else None,
            "options": dict(options or {}), "goal_db": GOAL_DB, "tasks": list(results.values()),
            "scores": scores, "teachers": teachers}


def datafree_bench(data_root: str | os.PathLike[str], opts: BenchOptions, tasks: list[str] | None = None,
                   rows: list[str] | None = None, multi_steps: int | None = None,
                   options: dict[str, Any] | None = None, command: str | None = None) -> dict[str, Any]:
    """``kdrestore bench datafree``: per task its single-task rows, plus one multi-weather student over all
    the tasks, every seed; every row compared with ``data-trained``."""
    chosen_tasks = list(tasks or TASKS)
    chosen = list(rows or ROWS)
    unit, kw = "kdrestore.experiments.bench_datafree:run_datafree_bench", {"data_root": str(data_root),
                                                                        "multi_steps": multi_steps, "options": options}
    plan = []
    for task in chosen_tasks:
        single = _single_rows(rows, task)
        if single:
            plan.append((unit, single, {**kw, "tasks": [task]}))
    if "multi-weather" in chosen:
        plan.append((unit, ["multi-weather"], {**kw, "tasks": chosen_tasks}))
    record = run_bench("datafree", plan, opts, row_key="rows", command=command)
    record["goal_db"] = GOAL_DB
    return record


__all__ = ["ROWS", "ROWS_BY_TASK", "TASKS", "GrayAsRGB", "datafree_bench", "datafree_recipe", "run_datafree_bench"]
