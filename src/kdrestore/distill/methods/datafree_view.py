"""Looking at what a data-free run's generator makes (``kdrestore samples RUN``)."""
from __future__ import annotations

from pathlib import Path

from ...data.imageio import write_image
from ...errors import KdrestoreError
from ...rundir import RunDir
from . import build_method


def render_run(run_dir: str | Path, output: str | Path | None = None, *, count: int = 4,
               size: int | None = None) -> Path:
    """Render the generator of a data-free run (its latest checkpoint) as a PNG grid; returns the file.

    Default output: ``<run>/generator/view_step_<step>.png``. ``size`` may exceed the training crop (the
    generator is fully convolutional; a multiple of 4).
    """
    run = RunDir(run_dir)
    if not run.is_run():
        raise KdrestoreError(f"{run.path}: no config.yaml (not a run directory)")
    method = build_method(run.config())
    if not hasattr(method, "render"):
        raise KdrestoreError(f"{run.path}: not a data-free run (distill.method is not datafree)")
    latest = run.checkpoints.latest()
    if latest is None:
        raise KdrestoreError(f"{run.path}: no checkpoint yet")
    state = latest.state().get("method") or {}
    if "generator" not in state:
        raise KdrestoreError(f"{latest.folder}/state.pt holds no generator weights")
    method.generator.load_state_dict(state["generator"])  # type: ignore[attr-defined]
    out = Path(output) if output else run.path / "generator" / f"view_step_{latest.step:08d}.png"
    return write_image(out, method.render(count, size))  # type: ignore[attr-defined]
