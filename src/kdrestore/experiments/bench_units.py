"""Finished bench units kept on disk, so a killed bench resumes (``kdrestore bench ... --resume DIR``).

A bench at the real budget runs for hours on a CPU, longer than a session; without this, a kill loses
every row. Each unit (one seed's row or rows) is written to ``DIR`` as JSON the moment it finishes --
atomically, never a partial file -- under a name derived from everything that decides its result: the
unit's function, its keyword arguments (task, rows, data root...), its seed and budget, and the package
version. Rerunning the same command with the same ``DIR`` reads the finished units back instead of
training them again; a changed budget, seed, row or task is a different unit and trains. Only JSON is
read: nothing is unpickled.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import KdrestoreError
from ..fsutil import atomic_write_json, to_json_types
from ..version import __version__

# options that change how a unit runs or reports, not what it computes
_NOT_IN_KEY = ("progress", "jobs", "workdir", "resume")


def unit_key(target: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What decides a unit's result, as plain JSON: the function, its arguments, the budget, the version."""
    args = {}
    for name, value in kwargs.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {k: v for k, v in dataclasses.asdict(value).items() if k not in _NOT_IN_KEY}
        args[name] = value
    return to_json_types({"target": target, "kwargs": args, "version": __version__})


def ensure_folder(path: str | Path, option: str) -> Path:
    """``path`` as a folder, made when missing; a file there is refused, naming the ``option`` that gave it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise KdrestoreError(f"{option} {folder} is a file; give a folder (made when missing)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class UnitStore:
    """A folder of finished units: :meth:`load` one by its key, :meth:`save` one when it ends."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = ensure_folder(folder, "--resume")

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.folder / f"unit-{digest}.json"

    def load(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The finished unit's result, or None when it has not finished (or the file is another unit's)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise KdrestoreError(f"--resume: cannot read the finished unit {path}: {e}; remove it to train the "
                                 f"unit again") from e
        if not isinstance(stored, dict) or stored.get("key") != key or not isinstance(stored.get("result"), dict):
            return None  # a hash collision or an older layout: train it again (the save replaces the file)
        return stored["result"]

    def save(self, key: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Write the unit atomically; returns the result as read back (JSON types), as :meth:`load` gives it."""
        plain = to_json_types(result)
        atomic_write_json(self.path(key), {"key": key, "result": plain})
        return plain


__all__ = ["UnitStore", "ensure_folder", "unit_key"]
