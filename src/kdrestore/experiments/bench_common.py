"""What every ``kdrestore bench`` shares: the per-row budget, the seeds, concurrent rows, mean and
spread over the seeds, the "helps" rule, the teacher check and the results record.

A bench is written as a *unit* function that trains and scores some of its rows for ONE seed and
returns a result dict with a ``"scores"`` list (:func:`score_entry`) and ``"teachers"`` list
(:func:`teacher_entry`). :func:`run_bench` calls it once per (seed, row) -- in worker processes when
``jobs > 1``, so several rows share the device -- and :func:`aggregate` turns the scores into rows of
mean +- spread (sample standard deviation over the seeds) with a verdict against the row's reference
(the student alone, or the bench's own baseline):

* ``helps``: mean gain over the reference larger than the spread (the larger of the two rows' spreads);
* ``hurts``: mean loss larger than the spread; ``within spread`` otherwise; ``one seed`` when there is
  no spread to compare with (a single seed never "helps");
* ``refused: teacher below alone``: the row's teacher scored below the reference on the same test set,
  so the row cannot show distillation (the teacher's score is printed with the table).
"""
from __future__ import annotations

import copy
import math
import os
import platform
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import import_module
from typing import Any, cast

from ..config import parse_duration
from ..errors import KdrestoreError
from .bench_units import UnitStore, ensure_folder, unit_key

MIN_STEPS = 4  # a row shorter than this cannot warm up, train and checkpoint: refused
MIN_TIME_S = 15.0  # a per-row time budget under this cannot hold the set-up, one step and the checkpoint
DEFAULT_STEPS = 300
UNBOUNDED_STEPS = 10 ** 9  # with a time budget the clock ends the run


@dataclass
class BenchOptions:
    """The options every bench takes; exactly one of ``steps``, ``samples`` or ``time_budget`` sets the
    per-row budget (none: :data:`DEFAULT_STEPS` steps)."""

    batch: int = 8
    crop: int = 48
    steps: int | None = None
    samples: int | None = None  # training crops per row; steps = ceil(samples / crops per step)
    time_budget: str | None = None  # wall-clock per row ("90s", "8m"); the schedule follows the clock
    seeds: list[int] = field(default_factory=lambda: [0])
    jobs: int = 1  # rows trained at once (worker processes sharing the device)
    pipeline: str | None = None  # data.train.pipeline for synthetic rows ("batched" on a GPU)
    device: str | None = None  # train.device of every row (default: the recipe's, "auto")
    test_limit: int | None = None
    peers: str | None = None
    workdir: str | None = None
    resume: str | None = None  # folder of finished units: a rerun of the same command reuses them
    progress: bool = False

    def __post_init__(self) -> None:
        given = [k for k in ("steps", "samples", "time_budget") if getattr(self, k) is not None]
        if len(given) > 1:
            raise KdrestoreError(f"give one per-row budget (--steps, --samples or --time-budget), not {given}")
        if self.batch < 1 or self.crop < 8 or self.jobs < 1:
            raise KdrestoreError(f"--batch and --jobs must be >= 1 and --crop >= 8, got {self.batch}, {self.jobs}, "
                                 f"{self.crop}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise KdrestoreError(f"--seeds: give one or more different seeds, got {self.seeds}")
        if self.pipeline not in (None, "per-sample", "batched"):
            raise KdrestoreError(f"--pipeline must be per-sample or batched, got {self.pipeline!r}")
        if self.steps is not None and self.steps < MIN_STEPS:
            raise KdrestoreError(f"--steps {self.steps} is too small for one row: at least {MIN_STEPS} steps")
        if self.samples is not None and self.samples < MIN_STEPS * self.batch:
            raise KdrestoreError(f"--samples {self.samples} is too small for one row: at least {MIN_STEPS} steps "
                                 f"of batch {self.batch}, {MIN_STEPS * self.batch} crops")
        if self.time_budget is not None and parse_duration(self.time_budget, "--time-budget") < MIN_TIME_S:
            raise KdrestoreError(f"--time-budget {self.time_budget} is too short for one row: at least "
                                 f"{MIN_TIME_S:g}s (set-up, training and the final checkpoint; the trainer then "
                                 f"refuses budgets that cannot hold them with the minimum it measured)")
        if self.workdir is not None:  # rows train in temporary folders under it: made here, not after a row
            ensure_folder(self.workdir, "--workdir")

    def steps_for(self, crops_per_step: int | None = None) -> int:
        """Optimiser steps of a row taking ``crops_per_step`` crops per step (default ``batch``)."""
        if self.time_budget is not None:
            return UNBOUNDED_STEPS
        if self.samples is not None:
            return max(math.ceil(self.samples / (crops_per_step or self.batch)), MIN_STEPS)
        return self.steps if self.steps is not None else DEFAULT_STEPS

    def fixed_steps(self, what: str, crops_per_step: int | None = None) -> int:
        """Steps of a row whose schedule is counted in steps (SPDD stages, CoIC stage 1): refused under a
        time budget, where the step count is not known in advance."""
        if self.time_budget is not None:
            raise KdrestoreError(f"{what} schedules its stages in steps: give --samples or --steps, not --time-budget")
        return self.steps_for(crops_per_step)

    def record(self) -> dict[str, Any]:
        """The budget as written in results: what bounds a row, batch, crop, seeds, jobs."""
        kind = "time" if self.time_budget else "samples" if self.samples else "steps"
        # under a sample budget a row's steps depend on its crops per step (a TRNR step takes tasks x patches):
        # each unit's rows record the steps they ran
        return {"kind": kind, "time_budget": self.time_budget, "samples": self.samples,
                "steps": self.steps if kind == "steps" else None, "batch": self.batch, "crop": self.crop,
                "seeds": list(self.seeds), "jobs": self.jobs, "pipeline": self.pipeline,
                "test_limit": self.test_limit}

    def describe(self) -> str:
        bound = (f"{self.time_budget} per row" if self.time_budget else
                 f"{self.samples:,} crops per row (steps: crops / the row's crops per step)" if self.samples else
                 f"{self.steps_for()} steps per row")
        return (f"{bound}, batch {self.batch} of {self.crop}px crops, seeds {self.seeds}"
                + (f", {self.jobs} rows at once" if self.jobs > 1 else "")
                + (f", first {self.test_limit} test images" if self.test_limit else ""))

    def one_seed(self, seed: int) -> "BenchOptions":
        return replace(self, seeds=[seed], jobs=1)

    @property
    def seed(self) -> int:
        return self.seeds[0]


def apply_budget(recipe: dict[str, Any], opts: BenchOptions, crops_per_step: int | None = None) -> dict[str, Any]:
    """Set a bench recipe's steps (or time budget), logging, checkpoint, warm-up, pipeline and device."""
    train = recipe["train"]
    steps = opts.steps_for(crops_per_step)
    timed = opts.time_budget is not None
    train.update(steps=steps, log_every=50 if timed else max(steps // 20, 1), ckpt_every=steps,
                 val_every=steps + 1)
    if timed:
        train["time_budget"] = opts.time_budget
    if opts.device:
        train["device"] = opts.device
    recipe["schedule"]["warmup_steps"] = 50 if timed else min(50, steps // 10)
    data = recipe["data"]["train"]
    if opts.pipeline and data.get("kind") == "synth":
        data["pipeline"] = opts.pipeline
    return recipe


def check_rows(chosen: list[str] | None, task: str, by_task: dict[str, tuple[str, ...]], bench: str) -> list[str]:
    """The rows asked for, in order; a row of another task (SPDD on denoising) or unknown is refused with the
    rows that do apply."""
    if task not in by_task:
        raise KdrestoreError(f"bench {bench} does not cover {task!r}; it covers {sorted(by_task)}")
    known = by_task[task]
    rows = list(chosen or known)
    for row in rows:
        if row in known:
            continue
        other = [t for t, names in by_task.items() if row in names]
        where = f"it is a row for {other}" if other else "unknown row"
        raise KdrestoreError(f"bench {bench}: {row!r} does not apply to {task} ({where}); rows for {task}: "
                             f"{list(known)}")
    return rows


def score_entry(table: str, row: str, metric: str, psnr: float, ssim: float | None, *, reference: str | None,
                teacher: str | None = None) -> dict[str, Any]:
    """One score of one row for one seed: compared with ``reference`` (a row of the same table)."""
    return {"table": table, "row": row, "metric": metric, "psnr": float(psnr),
            "ssim": None if ssim is None else float(ssim), "reference": reference, "teacher": teacher}


def teacher_entry(table: str, metric: str, name: str, psnr: float, note: str = "") -> dict[str, Any]:
    return {"table": table, "metric": metric, "teacher": name, "psnr": float(psnr), "note": note}


def _spread(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def verdict(gain: float, spread: float | None) -> str:
    if spread is None:
        return "one seed"
    if gain > spread:
        return "helps"
    return "hurts" if gain < -spread else "within spread"


def aggregate(per_seed: dict[int, list[dict[str, Any]]], teachers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of mean +- spread over the seeds, the gain over each row's reference and the verdict."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for seed, entries in per_seed.items():
        for e in entries:
            g = groups.setdefault((e["table"], e["row"], e["metric"]), {**e, "psnr": {}, "ssim": {}})
            g["psnr"][seed], g["ssim"][seed] = e["psnr"], e["ssim"]
    t_all: dict[tuple[str, str, str], list[float]] = {}
    for t in teachers:  # a teacher trained in the bench has one score per seed: their mean
        t_all.setdefault((t["table"], t["metric"], t["teacher"]), []).append(t["psnr"])
    t_mean = {k: statistics.fmean(v) for k, v in t_all.items()}
    out = []
    for (table, row, metric), g in groups.items():
        psnr = [g["psnr"][s] for s in sorted(g["psnr"])]
        ssim = [v for v in g["ssim"].values() if v is not None]
        r = {"table": table, "row": row, "metric": metric, "seeds": sorted(g["psnr"]), "psnr_mean": statistics.fmean(psnr),
             "psnr_spread": _spread(psnr), "ssim_mean": statistics.fmean(ssim) if ssim else None,
             "per_seed": {str(s): g["psnr"][s] for s in sorted(g["psnr"])}, "reference": g["reference"],
             "teacher": g["teacher"], "gain": None, "gain_spread": None, "verdict": "reference"}
        ref = groups.get((table, g["reference"], metric)) if g["reference"] and g["reference"] != row else None
        if ref is not None:
            ref_psnr = list(ref["psnr"].values())
            spreads = [s for s in (_spread(psnr), _spread(ref_psnr)) if s is not None]
            r["gain"] = r["psnr_mean"] - statistics.fmean(ref_psnr)
            r["gain_spread"] = max(spreads) if spreads else None
            r["verdict"] = verdict(r["gain"], r["gain_spread"])
            t_psnr = t_mean.get((table, metric, g["teacher"])) if g["teacher"] else None
            if t_psnr is not None and t_psnr < statistics.fmean(ref_psnr):
                r["verdict"] = "refused: teacher below alone"
        elif g["reference"] and g["reference"] != row:
            r["verdict"] = f"no {g['reference']} row"
        out.append(r)
    return out


def format_rows(rows: list[dict[str, Any]], teachers: list[dict[str, Any]]) -> str:
    """The aggregated rows as text: one block per table, PSNR mean +- sd, gain, verdict; then the teachers."""
    lines: list[str] = []
    for table in dict.fromkeys(r["table"] for r in rows):
        lines += ["", f"{table}",
                  f"  {'row':24} {'metric':14} {'PSNR mean':>9} {'± sd':>6} {'SSIM':>6} {'vs ref':>7} {'± sd':>6}  "
                  f"{'reference':14} verdict"]
        for r in (r for r in rows if r["table"] == table):
            sd = "" if r["psnr_spread"] is None else f"{r['psnr_spread']:.2f}"
            gain = "" if r["gain"] is None else f"{r['gain']:+.2f}"
            gsd = "" if r["gain_spread"] is None else f"{r['gain_spread']:.2f}"
            ssim = "" if r["ssim_mean"] is None else f"{r['ssim_mean']:.3f}"
            lines.append(f"  {r['row']:24} {r['metric']:14} {r['psnr_mean']:>9.2f} {sd:>6} {ssim:>6} {gain:>7} "
                         f"{gsd:>6}  {r['reference'] or '':14} {r['verdict']}")
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for t in (t for t in teachers if t["table"] == table):  # a teacher trained in the bench: one per seed
            grouped.setdefault((t["teacher"], t["metric"]), []).append(t)
        for (name, metric), ts in grouped.items():
            values = [t["psnr"] for t in ts]
            sd = _spread(values)
            note = f"  ({ts[0]['note']})" if ts[0]["note"] else ""
            line = (f"  {'teacher ' + name:24} {metric:14} {statistics.fmean(values):>9.2f} "
                    f"{'' if sd is None else f'{sd:.2f}':>6}{note}")
            lines.append(line.rstrip())
    return "\n".join(lines).lstrip("\n")


def device_description(device: str | None = None) -> str:
    """The machine the rows trained on, for the record."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def _call_unit(target: str, kwargs: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """Run one unit (``module:function``) in this process; the worker entry point (picklable)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)(**kwargs)


def run_units(targets: list[str], units: list[dict[str, Any]], jobs: int,
              store: UnitStore | None = None) -> list[dict[str, Any]]:
    """Call ``targets[i](**units[i])`` for every unit: in order here when ``jobs == 1``, else in ``jobs``
    spawned worker processes (each given ``cpu_count / jobs`` threads); results in the order of ``units``.

    With a ``store``, units it holds are read back instead of run, and each unit that runs is saved the
    moment it ends (so a kill loses only the units in flight)."""
    keys = [unit_key(t, u) for t, u in zip(targets, units)] if store else [None] * len(units)
    results: list[dict[str, Any] | None] = [store.load(k) if store else None for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    if store and len(todo) < len(units):
        print(f"bench: {len(units) - len(todo)} of {len(units)} units finished before, read from {store.folder}; "
              f"{len(todo)} to run", flush=True)

    def finished(i: int, result: dict[str, Any]) -> None:
        results[i] = store.save(keys[i], result) if store else result

    if jobs <= 1 or len(todo) <= 1:
        for i in todo:
            finished(i, _call_unit(targets[i], units[i], None))
    else:
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                 mp_context=multiprocessing.get_context("spawn")) as ex:
            futures = {ex.submit(_call_unit, targets[i], units[i], threads): i for i in todo}
            failed: BaseException | None = None
            for future in as_completed(futures):  # a failed unit does not lose the others' results
                try:
                    finished(futures[future], future.result())
                except Exception as e:  # noqa: BLE001 -- raised once every unit has ended
                    failed = failed or e
            if failed is not None:
                raise failed
    return cast(list[dict[str, Any]], results)  # every unit has its result by now


def run_bench(bench: str, plan: list[tuple[str, list[str], dict[str, Any]]], opts: BenchOptions, *,
              row_key: str = "rows", split_rows: bool = True, command: str | None = None) -> dict[str, Any]:
    """Run every part of ``plan`` -- (unit ``module:function``, rows, keyword arguments): a task, a test
    set... -- for every seed, with ``jobs > 1`` (or ``opts.resume``) every row apart, all in one pool, and
    aggregate. With ``opts.resume`` each finished row is kept in that folder and a rerun reuses it.

    Returns the results record: bench, command, budget, seeds, device, when it finished (UTC), rows
    (aggregated), teachers and the per-unit results.
    """
    units: list[dict[str, Any]] = []
    targets: list[str] = []
    for target, rows, kwargs in plan:
        for seed in opts.seeds:
            for group in ([[r] for r in rows] if split_rows and (opts.jobs > 1 or opts.resume) else [rows]):
                units.append({**copy.deepcopy(kwargs), "opts": opts.one_seed(seed), row_key: group})
                targets.append(target)
    results = run_units(targets, units, opts.jobs, UnitStore(opts.resume) if opts.resume else None)
    per_seed: dict[int, list[dict[str, Any]]] = {}
    teachers: list[dict[str, Any]] = []
    for unit, res in zip(units, results):
        per_seed.setdefault(unit["opts"].seed, []).extend(res["scores"])
        teachers += [t for t in res.get("teachers", []) if t not in teachers]
    return {"bench": bench, "command": command, "budget": opts.record(), "seeds": list(opts.seeds),
            "device": device_description(opts.device),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # orders records of one bench
            "rows": aggregate(per_seed, teachers), "teachers": teachers,
            "units": [{"seed": u["opts"].seed, "rows": u[row_key], "result": _strip(r)} for u, r in zip(units, results)]}


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("scores", "teachers")}
