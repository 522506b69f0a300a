"""The handlers behind the ``kdrestore`` sub-commands: each a thin layer over the Python API.

A handler returns the exit code of its outcome (0, or 1 when the command ran and its result is a
failure); a user error raises :class:`KdrestoreError`, which the command line reports with exit code 2.
"""
from __future__ import annotations

from .score import cmd_calibrate, cmd_check_leaks, cmd_degrade, cmd_demo, cmd_eval, cmd_models
from .shipping import cmd_export, cmd_package, cmd_report, cmd_restore
from .training import (bench_coic, bench_datafree, bench_distill, bench_methods, bench_trnr, cmd_bench, cmd_samples,
                       cmd_train)

__all__ = ["bench_coic", "bench_datafree", "bench_distill", "bench_methods", "bench_trnr", "cmd_bench",
           "cmd_calibrate", "cmd_check_leaks", "cmd_degrade", "cmd_demo", "cmd_eval", "cmd_export", "cmd_models",
           "cmd_package", "cmd_report", "cmd_restore", "cmd_samples", "cmd_train"]
