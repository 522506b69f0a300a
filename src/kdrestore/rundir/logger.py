"""Training logs: a CSV file per run (always) and TensorBoard event files (when installed)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from .layout import LOG_FILE


class RunLogger:
    """Appends rows ``{step, ...}`` to ``<run>/log.csv``; a resumed run drops rows after its checkpoint."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = run_dir / LOG_FILE
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._fields: list[str] = list(self.rows[0].keys()) if self.rows else ["step"]
        self._flush()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)
            except ImportError:  # tensorboard is an optional extra
                self.tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in values.items()}}
        self.rows.append(row)
        new = [k for k in row if k not in self._fields]
        self._fields += new
        self._flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)

    def _flush(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._fields, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
