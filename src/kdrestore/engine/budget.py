"""Wall-clock training budgets: the schedule's progress as a share of the time, and when to stop.

The budget reserves time for the final validation and the final checkpoint (measured before the
first step), so a run given ``8m`` ends, validated and saved, within about 8 minutes. The time spent
is kept in the checkpoint, so a resumed run continues the same schedule with what is left.
"""
from __future__ import annotations

import time
from typing import Any

from ..errors import KdrestoreError

SAFETY = 1.25  # the reserve is this many times the measured validation + checkpoint time, plus MARGIN_S
MARGIN_S = 1.0


class TimeBudget:
    """``total_s`` seconds of wall-clock time for a run, across resumes."""

    def __init__(self, total_s: float) -> None:
        if total_s <= 0:
            raise KdrestoreError(f"train.time_budget must be positive, got {total_s} s")
        self.total_s = float(total_s)
        self.spent_before = 0.0
        self.reserve_s = 0.0
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def spent(self) -> float:
        return self.spent_before + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def plan(self, validation_s: float, checkpoint_s: float) -> None:
        """Reserve time for the last validation and checkpoint; refuse a budget that cannot hold them."""
        self.reserve_s = SAFETY * (validation_s + checkpoint_s) + MARGIN_S
        need = self.spent() + self.reserve_s
        if self.total_s <= need:
            spent = f" after {self.spent_before:.1f} s already spent" if self.spent_before else ""
            raise KdrestoreError(
                f"train.time_budget of {self.total_s:g} s is too short{spent}: one validation takes "
                f"{validation_s:.1f} s and one checkpoint {checkpoint_s:.1f} s here, so the run needs at least "
                f"{need + 1:.0f} s (give more time, or fewer validation images)")

    @property
    def usable_s(self) -> float:
        return self.total_s - self.reserve_s

    def progress(self) -> float:
        """Share of the usable time spent, in [0, 1] (drives the learning-rate schedule)."""
        return min(max(self.spent() / max(self.usable_s, 1e-9), 0.0), 1.0)

    def out_of_time(self) -> bool:
        return self.spent() >= self.usable_s

    def state_dict(self) -> dict[str, Any]:
        return {"spent_s": self.spent(), "total_s": self.total_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.spent_before = float(state.get("spent_s", 0.0))
