"""The leak guard of ``kdrestore bench``: each bench's training folders against the test sets it reports on.

The folders come from the benches' own tables (``bench.TASKS``, ``bench_methods.DEHAZE_TRAIN`` /
``DENOISE_SETS``, ``bench_trnr.TASKS``, ``bench_coic.TRAIN_SOURCES``), so the check follows them. It runs
before any training: a leak stops the bench (``--allow-leaks``: recorded beside the ``--json`` file).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..config import DatasetConfig, build_section
from ..data.leakguard import LeakCheck, enforce, section_sets
from ..data.leaks import find_leaks, image_set
from ..fsutil import atomic_write_json


def bench_data(what: str, root: Path, tasks: Sequence[str] | None = None, sets: Sequence[str] | None = None
               ) -> list[tuple[str, list[dict[str, Any]], list[str], list[str]]]:
    """``(label, training sections, test folders, notes)`` per task of the bench ``what``."""
    from . import bench, bench_coic, bench_methods, bench_trnr

    out: list[tuple[str, list[dict[str, Any]], list[str], list[str]]] = []
    if what in ("distill", "datafree"):
        for t in tasks or ["denoise", "derain", "dehaze"]:
            note = ["data-free rows train on generated images: only the data-trained rows are checked"] \
                if what == "datafree" else []
            out.append((t, [bench.TASKS[t].train], [bench.TASKS[t].test], note))
    elif what == "methods":
        for t in tasks or ["denoise", "dehaze"]:
            if t == "dehaze":
                out.append((t, [bench_methods.DEHAZE_TRAIN], [bench_methods.DEHAZE_TEST], []))
            elif t == "denoise":
                for name in sets or list(bench_methods.DENOISE_SETS):
                    folder, mode = bench_methods.DENOISE_SETS[name]
                    out.append((f"denoise {name}", [{"kind": "synth", "path": folder, "mode": mode}],
                                [f"denoise/{name}"], []))
    elif what == "trnr":
        for t in tasks or ["derain", "denoise"]:
            task = bench_trnr.TASKS[t]
            out.append((t, [{"kind": "synth", **task.train}], sorted({f for f, _ in task.tests}), []))
    elif what == "coic":
        out.append(("derain", list(bench_coic.TRAIN_SOURCES), ["derain/Rain100H", bench_coic.CLEAN_TEST],
                    [f"R100L-seen (the first {bench_coic.R100L_HELD} training pairs) is scored as seen by design"]))
    return out


def bench_leak_guard(what: str, data_root: str | os.PathLike[str], *, tasks: Sequence[str] | None = None,
                     sets: Sequence[str] | None = None, allow_leaks: bool = False, json: str | None = None,
                     quiet: bool = False) -> list[dict[str, Any]]:
    """Check every task of the bench; raise :class:`~kdrestore.data.leakguard.LeakError` on a leak
    (unless ``allow_leaks``); with ``json``, the records go to ``<json>.leak_check.json``."""
    root = Path(data_root)
    records = []
    for label, sections, tests, notes in bench_data(what, root, tasks, sets):
        train, val = [], []
        for sec in sections:
            cfg = build_section(DatasetConfig, {**sec, "path": str(root / sec["path"])}, f"bench {what} {label}")
            train += section_sets(cfg, part="train", where=f"{label} training data", root=root)[0]
            if cfg.holdout is not None:  # the held-out part is scored: compare it too
                val += section_sets(cfg, part="val", where=f"{label} held-out", root=root)[0]
        against = val + [image_set(root / t, label=f"test: {t}") for t in tests]
        check = LeakCheck(find_leaks(train, against), list(notes), root)
        records.append({"bench": what, "task": label, **enforce(check, allow_leaks=allow_leaks,
                                                                  what=f"kdrestore bench {what} ({label})", quiet=quiet)})
    if json:
        atomic_write_json(f"{json}.leak_check.json", records)
    return records
