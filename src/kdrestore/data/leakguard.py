"""The leak guard of a recipe: are any of its validation or test scenes in its training data?

``kdrestore train``/``distill``/``bench``/``package`` call :func:`leak_guard` before they train or score;
``kdrestore check-leaks --recipe`` calls :func:`recipe_leak_check`. Each data section is compared on the
files it actually reads (``holdout``, ``limit``, the sources of a ``mixed`` set; paired folders on their
clean side). Sections without folders (``builtin``, ``latent``) and a recipe without validation data are
named in the notes rather than passed over in silence.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..config import DatasetConfig, RunConfig
from ..errors import KdrestoreError
from ..fsutil import atomic_write_json
from ..rundir.layout import LEAK_CHECK_FILE
from .holdout import Part
from .leaks import THRESHOLD, ImageSet, LeakReport, find_leaks, image_set
from .leaks import relative as _label
from .streaks import streak_source
from .thumbs import FEATURE, SCALES, SIDE

# the benchmark test set a task's numbers are reported on, by the recipe's channels
BENCHMARK_TESTS: dict[tuple[str, str], str] = {
    ("denoise", "gray"): "denoise/Set12", ("denoise", "rgb"): "denoise/CBSD68",
    ("derain", "rgb"): "derain/Rain100H", ("derain", "gray"): "derain/Rain100H",
    ("dehaze", "rgb"): "dehaze/SOTS-indoor-50", ("dehaze", "gray"): "dehaze/SOTS-indoor-50",
}
METHOD = (f"{SIDE}x{SIDE} grey thumbnails, band-passed, pooled to {FEATURE}x{FEATURE}; whole image and central "
          f"crops {list(SCALES[1:])}; 8 flips/rotations; normalised correlation >= threshold is a leak")


class LeakError(KdrestoreError):
    """Test or validation scenes found in the training data; the message lists the files."""


@dataclass
class LeakCheck:
    """A comparison and its outcome: ``report`` is None when there was nothing to compare."""

    report: LeakReport | None
    notes: list[str] = field(default_factory=list)
    root: Path | None = None  # file names are shown relative to it

    @property
    def leaked(self) -> int:
        return self.report.leaked if self.report else 0

    def record(self, override: bool = False) -> dict[str, Any]:
        """The ``leak_check`` entry of a run directory or a model card."""
        out: dict[str, Any] = {"threshold": self.report.threshold if self.report else THRESHOLD, "method": METHOD}
        if self.report is None:
            out.update(result="not compared", compared=None)
        else:
            d = self.report.to_dict(self.root)
            out.update(result=d["result"], compared={"train": d["train"], "against": d["tests"]})
        out["notes"] = list(self.notes)
        if self.leaked:
            out["override"] = override
        return out


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """``explicit``, else ``$KDRESTORE_DATA``; None when neither names a folder."""
    if explicit and not Path(explicit).is_dir():
        raise KdrestoreError(f"data root {explicit}: no such folder")
    value = explicit or os.environ.get("KDRESTORE_DATA")
    return Path(value) if value and Path(value).is_dir() else None


def section_sets(ds: DatasetConfig, *, part: Part, where: str, root: Path | None = None
                 ) -> tuple[list[ImageSet], list[str]]:
    """The image sets one data section reads, and notes on what cannot be compared."""
    if ds.kind == "mixed":
        sets, notes = [], []
        for i, src in enumerate(ds.sources):
            s, n = section_sets(src, part=part, where=f"{where}.sources[{i}]", root=root)
            sets += s
            notes += n
        return sets, notes
    if ds.kind == "builtin":
        return [], [f"{where}: built-in images (no folder): not compared"]
    if ds.kind == "latent":
        return [], [f"{where}: latent (data-free: no images): nothing to compare"]
    if ds.path is None:
        return [], [f"{where}: no path: not compared"]
    limit = ds.limit if ds.kind in ("synth", "paired", "tasks") else None
    rule = ds.rule if ds.kind == "paired" else "auto"
    try:
        sets = [image_set(ds.path, label=f"{where}: {_label(ds.path, root)}", rule=rule, holdout=ds.holdout,
                          part=part, limit=limit, where=where, pairs_first=ds.kind == "paired")]
        streaks = streak_source(ds.degradation, ds.params, where) if ds.kind == "synth" else None
        if streaks is not None:  # only their rain is composed in, but their photos are checked all the same
            folder, holdout = streaks
            sets.append(image_set(folder, label=f"{where}.params.streaks: {_label(folder, root)}",
                                  holdout=holdout, part=part, where=where, pairs_first=True))
    except KdrestoreError as exc:
        raise KdrestoreError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from exc
    return sets, []


def recipe_leak_check(cfg: RunConfig, *, tests: Sequence[str | os.PathLike[str]] = (), benchmark: bool = True,
                      root: str | os.PathLike[str] | None = None, threshold: float = THRESHOLD,
                      test_holdout: int | None = None) -> LeakCheck:
    """``cfg``'s training data against its validation data, the folders ``tests`` (only their last
    ``test_holdout`` items when given: the held-out part a card is scored on) and (``benchmark``) the
    task's benchmark test set under the data root (``root`` or ``$KDRESTORE_DATA``)."""
    base = data_root(root)
    train, notes = section_sets(cfg.data.train, part="train", where="data.train", root=base)
    against: list[ImageSet] = []
    if cfg.data.val is None:
        notes.append("the recipe has no validation data (data.val): no validation set to compare")
    else:
        val, more = section_sets(cfg.data.val, part="val", where="data.val", root=base)
        against += val
        notes += more
    for t in tests:
        against.append(image_set(t, label=f"test: {_label(t, base)}", holdout=test_holdout, part="val"))
    if benchmark:
        mode = cfg.data.train.mode or ("gray" if cfg.data.train.kind == "builtin" and cfg.task == "denoise" else "rgb")
        rel = BENCHMARK_TESTS[(cfg.task, mode)]
        if base is None:
            notes.append(f"benchmark test set {rel} not compared: no data root (set KDRESTORE_DATA or give --data)")
        elif not (base / rel).is_dir():
            notes.append(f"benchmark test set {rel} not compared: {base / rel} not found")
        else:
            bench = (base / rel).resolve()
            val = cfg.data.val
            val_paths = [val.path] + [s.path for s in val.sources] if val is not None else []
            if any(p and Path(p).resolve() == bench for p in val_paths):
                notes.append(f"data.val reads the benchmark test set {rel}: choosing checkpoints on a test set "
                             "selects on it (hold out part of the training data: data.*.holdout)")
            elif all(Path(t).resolve() != bench for t in tests):
                against.append(image_set(base / rel, label=f"benchmark: {rel}"))
    if not train:
        notes.append("no training folder to compare: nothing checked")
        return LeakCheck(None, notes, base)
    if not against:
        notes.append("no validation or test images to compare the training data with")
        return LeakCheck(None, notes, base)
    return LeakCheck(find_leaks(train, against, threshold), notes, base)


def format_check(check: LeakCheck, *, matches: int | None = None) -> str:
    """A table of the comparisons, then one line per leaked image (the first ``matches``), then notes."""
    lines: list[str] = []
    if check.report is not None:
        rows = [(r.label, str(r.images), str(len(r.matches)), f"{r.highest:.3f}", str(len(r.unreadable)))
                for r in check.report.results]
        lines += _table(("compared with the training data", "images", "leaked", "best score", "unreadable"), rows)
        train = ", ".join(f"{t['label']} ({t['images']} images: {t['note']})" for t in check.report.train)
        lines.append(f"training data: {train}")
        found = [(m, r.label) for r in check.report.results for m in r.matches]
        if found:
            shown = found if matches is None else found[:matches]
            lines.append(f"{len(found)} image(s) whose scene is in the training data "
                         f"(score >= {check.report.threshold}):")
            lines += _table(("image", "training image", "score", "how"),
                            [(_label(m.test, check.root), _label(m.train, check.root), f"{m.score:.3f}", m.variant)
                             for m, _ in shown])
            if len(shown) < len(found):
                lines.append(f"... and {len(found) - len(shown)} more")
        bad = [(p, why) for r in check.report.results for p, why in r.unreadable]
        bad += [(Path(u["file"]), u["reason"]) for t in check.report.train for u in t["unreadable"]]
        if bad:
            lines.append(f"{len(bad)} unreadable image(s) skipped (not compared):")
            lines += [f"  {_label(p, check.root)}: {why}" for p, why in bad]
    lines += [f"note: {n}" for n in check.notes]
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def leak_guard(cfg: RunConfig, *, tests: Sequence[str | os.PathLike[str]] = (), benchmark: bool = True,
               root: str | os.PathLike[str] | None = None, allow_leaks: bool = False, what: str = "run",
               quiet: bool = False, test_holdout: int | None = None) -> dict[str, Any]:
    """Check ``cfg`` (see :func:`recipe_leak_check`) before a run; returns the ``leak_check`` record.

    A leak raises :class:`LeakError` listing the files, unless ``allow_leaks`` (the record then says
    ``override: true``). Prints one line when clean (the full table when not), unless ``quiet``.
    """
    check = recipe_leak_check(cfg, tests=tests, benchmark=benchmark, root=root, test_holdout=test_holdout)
    return enforce(check, allow_leaks=allow_leaks, what=what, quiet=quiet)


def enforce(check: LeakCheck, *, allow_leaks: bool = False, what: str = "run", quiet: bool = False) -> dict[str, Any]:
    """Stop on a leak (:class:`LeakError`) unless ``allow_leaks``; report; return the record."""
    if check.leaked and not allow_leaks:
        raise LeakError(f"{what} stopped: test or validation scenes are in the training data\n"
                        + format_check(check) + "\n(pass --allow-leaks to run anyway; the override is recorded)")
    if not quiet and os.environ.get("RANK", "0") == "0":  # one report under torchrun
        if check.leaked:
            print(format_check(check) + f"\nleak check: {check.leaked} leaked image(s), allowed by --allow-leaks "
                  "(recorded)", file=sys.stderr)
        else:
            if check.report is None:
                print("leak check: nothing compared")
            else:
                train = ", ".join(f"{t['label']} ({t['images']})" for t in check.report.train)
                against = ", ".join(f"{r.label} ({r.images})" for r in check.report.results)
                print(f"leak check: clean (threshold {check.report.threshold}): {train} vs {against}")
                if check.report.unreadable:  # named, never passed silently
                    print(format_check(check), file=sys.stderr)
            for n in check.notes:
                print(f"leak check note: {n}")
    return check.record(override=allow_leaks)


def write_leak_record(run_dir: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """``run_dir/leak_check.json`` (atomically); an override recorded by an earlier check is kept."""
    path = Path(run_dir) / LEAK_CHECK_FILE
    earlier: dict[str, Any] = {}
    if path.is_file():
        import json

        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = {}
    if earlier.get("override") or earlier.get("earlier_override"):
        record = {**record, "earlier_override": True}
    atomic_write_json(path, record)
    return path
