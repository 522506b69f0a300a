"""Kill a training run with SIGKILL mid-way, resume it with --resume, compare with an uninterrupted run.

    python benchmarks/resume_sigkill.py [--config configs/builtin/denoise-unet-tiny.yaml] [--steps 60]

Prints the per-step losses of both runs and whether they are identical, and the max weight difference.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file


def train_cmd(config: str, run_dir: Path, overrides: list[str], resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "kdrestore.cli", "train", "--quiet", "--run-dir", str(run_dir)]
    cmd += ["--resume", str(run_dir)] if resume else []
    cmd += [config] + [a for o in overrides for a in ("--set", o)]
    return cmd


def losses(run_dir: Path) -> list[tuple[int, float]]:
    with (run_dir / "log.csv").open() as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f) if r.get("loss")]


def final_weights(run_dir: Path) -> dict:
    pointer = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    return load_file(str(run_dir / "checkpoints" / pointer["dir"] / "model.safetensors"))


def kill_after_checkpoint(cmd: list[str], run_dir: Path, min_step: int, timeout: float = 600) -> int:
    """Start ``cmd``, SIGKILL it once a checkpoint of step >= ``min_step`` exists; return that step."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pointer = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        if pointer.is_file() and json.loads(pointer.read_text())["step"] >= min_step:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return json.loads(pointer.read_text())["step"]
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError("no checkpoint appeared in time")


def run(config: str, steps: int, workdir: Path) -> dict:
    overrides = [f"train.steps={steps}", f"train.ckpt_every={max(steps // 6, 1)}", "train.log_every=1",
                 f"train.val_every={steps}"]
    full, cut = workdir / "full", workdir / "killed"
    subprocess.run(train_cmd(config, full, overrides), check=True, stdout=subprocess.DEVNULL)
    killed_at = kill_after_checkpoint(train_cmd(config, cut, overrides), cut, min_step=steps // 3)
    subprocess.run(train_cmd(config, cut, overrides, resume=True), check=True, stdout=subprocess.DEVNULL)
    a, b = final_weights(full), final_weights(cut)
    return {"killed_after_checkpoint_step": killed_at, "losses_full": losses(full), "losses_resumed": losses(cut),
            "identical_losses": losses(full) == losses(cut),
            "max_weight_diff": max(float((a[k] - b[k]).abs().max()) for k in a)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/builtin/denoise-unet-tiny.yaml")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.config, args.steps, Path(tmp))
    print(f"{'step':>5} {'uninterrupted':>14} {'killed+resumed':>15}")
    for (s, la), (_, lb) in zip(r["losses_full"], r["losses_resumed"]):
        print(f"{s:>5} {la:>14.6f} {lb:>15.6f}")
    print(f"SIGKILL after the checkpoint of step {r['killed_after_checkpoint_step']}; "
          f"identical losses: {r['identical_losses']}; max |weight difference| {r['max_weight_diff']:.3g}")
    return 0 if r["identical_losses"] else 1


if __name__ == "__main__":
    sys.exit(main())
