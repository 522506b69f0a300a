"""Turning a finished training run into a shipped pretrained student: weights + a scored model card.

``kdrestore package RUN_DIR --name NAME --test denoise/Set12 --sigma 15 25 50`` takes the run's best
checkpoint by validation (held-out training data; its last one when it never validated; EMA weights when
present; never a choice made on a test set), optionally stores it as float16 (half the bytes), scores
exactly the weights it ships on the given test sets under the task's convention, and writes ``<dest>/<NAME>/{model.safetensors,card.json}``
(format: ``kdrestore/pretrained/README.md``). The folder is built beside the destination and renamed
into place, so a failed or interrupted run never leaves a half-written model.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ..config import RunConfig, TeacherSpec, distill_section
from ..data.tasks import eval_samples
from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS
from ..evaluate.profile import count_macs, count_params
from ..evaluate.runner import evaluate
from ..fsutil import current_umask
from ..models.registry import build_model, model_entry
from ..models import shipped
from ..rundir import LEAK_CHECK_FILE, RunDir


def _teacher_label(spec: TeacherSpec) -> str | None:
    """``ffdnet-rgb(sigma=15)``: a recipe's teacher with its factory arguments, for the card; ensembles
    as ``mean(a, b)``, self-ensembles as ``x8(a)``, a batch-level teacher as ``ffdnet-rgb(sigma=batch)``."""
    if spec.members:
        label = "mean(" + ", ".join(str(_teacher_label(m)) for m in spec.members) + ")"
    else:
        name = spec.name or spec.exported or spec.torchscript
        args = {**spec.args, **({"sigma": "batch"} if spec.sigma_from_batch else {})}
        label = f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})" if args else name
    return f"x8({label})" if spec.self_ensemble else label


def run_training_summary(run: Path) -> tuple[RunConfig, dict[str, Any]]:
    """``(config, training summary)`` of a run directory, from its saved config.yaml (validated); the summary is
    a model card's ``training`` section without the budget spent."""
    run_dir = RunDir(run)
    if not run_dir.is_run():
        raise KdrestoreError(f"{run} is not a run directory: no config.yaml")
    cfg = run_dir.config()
    data = cfg.data.train
    distill = distill_section(cfg) if cfg.distill else None
    summary = {
        "run": cfg.name, "steps": cfg.train.steps, "batch_size": cfg.train.batch_size,
        "crop": data.crop, "seed": cfg.train.seed, "ema_decay": cfg.train.ema_decay,
        "data": {"kind": data.kind, "degradation": data.degradation, "params": data.params, "mode": data.mode,
                 "path": Path(data.path).name if data.path else None},
        "initialised_from": Path(cfg.model.weights).name if cfg.model.weights else None,
        "method": distill.method if distill else "supervised",
        "teachers": [_teacher_label(t) for t in distill.teachers] if distill else [],
        # the terms as the recipe wrote them
        "distill_terms": {k: v for k, v in (cfg.distill or {}).items()
                          if k in ("output", "features", "contrastive", "options") and v},
    }
    return cfg, summary


def _budget_spent(run: RunDir) -> dict[str, Any]:
    """What this run itself spent: steps, samples, time and device, from its final metrics."""
    final = run.final_metrics()
    if final is None:
        return {}
    keys = ("steps", "device", "time_budget_s", "time_spent_s", "wall_s_this_session", "samples_per_s", "pipeline")
    return {"final": {k: final[k] for k in keys if k in final}}


def run_leak_check(run_dir: str | os.PathLike[str], tests: list[str], *, data_root: str | os.PathLike[str],
                   allow_leaks: bool = False, holdout: int | None = None) -> dict[str, Any]:
    """The leak guard of ``kdrestore package``: the run's training data against its validation data and the
    test folders (under ``data_root``) it is scored on (their last ``holdout`` items, as ``package_run``). Raises on a leak unless ``allow_leaks``; returns the
    card's ``leak_check`` entry (with the training run's own record, when it has one)."""
    from ..data.leakguard import leak_guard

    run = RunDir(run_dir)
    if not run.is_run():
        raise KdrestoreError(f"{run.path} is not a run directory: no config.yaml")
    cfg = run.config()
    record = leak_guard(cfg, tests=[Path(data_root) / t for t in tests], benchmark=False, root=data_root,
                        allow_leaks=allow_leaks, what="kdrestore package", test_holdout=holdout)
    try:
        trained = json.loads((run.path / LEAK_CHECK_FILE).read_text(encoding="utf-8"))
        record["at_training"] = {k: trained.get(k) for k in ("result", "override", "earlier_override") if k in trained}
    except (OSError, ValueError):
        record["at_training"] = "no record (run trained before the leak guard)"
    return record


HAND_SET_BENCH_KEYS = ("speedup", "psnr_margin", "baselines", "sigma")  # ship-bench fields no run records


def _hand_set_fields(card_file: Path) -> dict[str, Any]:
    """What a person wrote into the card being replaced and no run can regenerate: ``notes`` (the weights'
    history) and the ship-bench goal fields. Empty when there is no card."""
    if not card_file.is_file():
        return {}
    try:
        old = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KdrestoreError(f"{card_file}: the card being replaced is unreadable ({e}); fix or remove it") from e
    bench = old.get("bench") if isinstance(old.get("bench"), dict) else {}
    kept: dict[str, Any] = {"bench": {k: bench[k] for k in HAND_SET_BENCH_KEYS if k in bench}}
    if isinstance(old.get("notes"), str):
        kept["notes"] = old["notes"]
    return kept


def check_goal(field: str, value: float | None) -> None:
    """Refuse a ship-bench goal (``bench.speedup``, ``bench.psnr_margin``) that is not a finite number >= 0."""
    if value is not None and not 0 <= value < float("inf"):
        raise KdrestoreError(f"bench.{field} must be a non-negative finite number, got {value!r}")


def package_run(run_dir: str | os.PathLike[str], name: str, tests: list[str], *, data_root: str | os.PathLike[str],
                sigmas: list[float] | None = None, half: bool = False, dest: str | os.PathLike[str] | None = None,
                competes_with: str | None = None, recipe: str | None = None, force: bool = False,
                command: str | None = None, progress: bool = False,
                leak_check: dict[str, Any] | None = None, holdout: int | None = None,
                notes: str | None = None, speedup: float | None = None,
                psnr_margin: float | None = None, model_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Package ``run_dir``'s best checkpoint by validation (its last one when it validated never) as
    ``dest/name`` (default: the package's pretrained folder), with the run's lineage in the card.

    ``tests``: folders under ``data_root`` to score on (e.g. ``denoise/Set12``); denoising test sets are
    scored once per sigma of ``sigmas``. ``holdout``: score only the last ``holdout`` images (pairs) of each
    (the held-out validation part of a training set without a public test set, e.g. Rain100L-train).
    ``leak_check``: the :func:`run_leak_check` entry for the card.
    Replacing a model keeps what a person wrote into its card: ``notes`` (``notes`` given here is appended as
    a new paragraph) and the ship-bench goal fields (``speedup`` / ``psnr_margin`` given here replace them).
    ``model_args``: constructor arguments over the run's (inference options chosen on validation, such as
    NAFNet's ``attention_window``); the student is scored with them and the card's ``args`` keep them.
    Returns the card that was written.
    """
    run, dest = RunDir(run_dir), Path(dest) if dest else shipped.PRETRAINED_DIR
    cfg, summary = run_training_summary(run.path)
    ckpt, _ = run.checkpoints.best_or_latest()
    if ckpt is None:
        raise KdrestoreError(f"run directory {run.path} has no checkpoint (checkpoints/latest.json)")
    use_ema = ckpt.has_ema
    state = ckpt.model_weights(ema=True)
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    model_args, task = {**cfg.model.args, **(model_args or {})}, cfg.task
    model = build_model(cfg.model.name, **model_args)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.eval()
    channels = int(model_args.get("in_channels", model_entry(cfg.model.name).meta.get("channels", 3)))
    target = dest / name
    if target.exists() and not force:
        raise KdrestoreError(f"{target} exists: pass --force to replace it")
    check_goal("speedup", speedup)
    check_goal("psnr_margin", psnr_margin)
    kept = _hand_set_fields(target / "card.json")

    scores = []
    conv = TASK_CONVENTIONS[task]
    mode = "gray" if channels == 1 else "rgb"
    for test in tests:
        for sigma in (sigmas or [25.0]) if task == "denoise" else [None]:
            samples, total, desc = eval_samples(task, Path(data_root) / test, sigma=sigma or 25.0, mode=mode,
                                                holdout=holdout)
            res = evaluate(model, samples, conv, name=name, task=task, data=desc, progress=progress, total=total)
            if res.failed:
                raise KdrestoreError(f"scoring on {test} failed for {len(res.failed)} image(s): {res.failed[0]}")
            scores.append({"data": Path(test).name + (f" (last {holdout}, held out)" if holdout else ""),
                           "sigma": sigma, "images": len(res.images),
                           "psnr": round(res.psnr, 3), "ssim": round(res.ssim, 4),
                           "input_psnr": round(res.input_psnr, 3), "convention": conv.describe()})
    probe = (1, channels, 256, 256)
    card = {
        "model": cfg.model.name, "args": model_args, "task": task, "channels": channels,
        "weights": "model.safetensors", "dtype": "float16" if half else "float32",
        "params": count_params(model), "macs": count_macs(model, probe), "macs_input_shape": list(probe),
        "competes_with": competes_with,
        "training": {"recipe": recipe, **summary, "checkpoint_step": ckpt.step,
                     "weights_kind": "EMA" if use_ema else "raw", **_budget_spent(run)},
        "lineage": run.lineage(),
        "scores": scores,
        **({"leak_check": leak_check} if leak_check is not None else {}),
        "command": command,
        "license": f"weights: Apache-2.0 (kdrestore); trained on {summary['data']['path'] or 'built-in'} images "
                   "(research use, the data set's terms) with teachers from published peer weights named under "
                   "training.teachers",
    }
    bench = dict(kept.get("bench", {}))
    bench.update({k: v for k, v in (("speedup", speedup), ("psnr_margin", psnr_margin)) if v is not None})
    if holdout:  # benchmarks/ship.py scores the same held-out part
        bench.update({"data": tests[0], "holdout": holdout})
    if bench:
        card["bench"] = bench
    written = [n for n in (kept.get("notes"), notes) if n]
    if written:
        card["notes"] = "\n\n".join(written)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest))
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"))
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        mask = current_umask()  # mkdtemp made the folder 0700: give it (and its files) an ordinary folder's modes
        os.chmod(tmp, 0o777 & ~mask)
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~mask)
        old = target.with_name(f".{name}.replaced") if target.exists() else None
        if old is not None:  # the shipped copy stays whole until the new one is in place
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return card


def format_card_scores(card: dict[str, Any]) -> str:
    """The card's scores as text lines."""
    lines = []
    for s in card["scores"]:
        sigma = f" sigma {s['sigma']:g}" if s.get("sigma") is not None else ""
        lines.append(f"  {s['data']}{sigma}: PSNR {s['psnr']:.2f} dB / SSIM {s['ssim']:.3f} "
                     f"(input {s['input_psnr']:.2f}; {s['images']} images)")
    return "\n".join(lines)
