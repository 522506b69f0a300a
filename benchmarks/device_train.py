"""Train the shipped students' recipes concurrently on one GPU within one time budget, and pack the
results (weights, logs, final metrics) into one archive of at most 16 MB.

    python benchmarks/pack_data.py --data ../shared/data --peers ../shared/peers --out device_job   # here
    PYTHONPATH=src python3 benchmarks/device_train.py --job device_job --budget 6m --out "$OUT"  # on the GPU

Each student continues from its shipped weights (``--init-from NAME``: a warm restart with a fresh
schedule, recorded in the run's lineage), or starts as its recipe says (:data:`STUDENTS`), on the batched
device-resident pipeline (synthetic, paired and NYU-haze data alike), reading its images from the job's data
subset (``KDRESTORE_DATA=JOB/data``: the recipe's folders, with their held-out validation parts whole) and
its teachers from the job's peers folder; bf16 autocast and channels_last. Validation picks the best
checkpoint, as on the CPU. ``--throughput`` first runs benchmarks/train_throughput.py on the GPU for
the denoise-gray-fast recipe. Unpack the archive here and decide what to ship with ``kdrestore package``
(it scores the run on held-out data and the test set; a run replaces a shipped student only if its
validation score is better).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from kdrestore.config import TeacherSpec  # noqa: E402
from kdrestore.rundir.layout import RunCheckpoints  # noqa: E402
# student -> (recipe, warm start: a shipped name or None, extra --set; "{peers}" is the job's peers folder)
STUDENTS: dict[str, tuple[str, str | None, list[str]]] = {
    # the shipped RepDN 64x15 (grown from 64x12 by identity layers), kd from FFDNet-gray at each crop's sigma as its
    # recipe says; then kd-qat (the recipe says how)
    "denoise-gray-blind": ("configs/denoise/repdn-blind-d15.yaml", "denoise-gray-blind", []),
    "denoise-gray-fast": ("configs/ship/denoise-gray-fast.yaml", "denoise-gray-fast", []),
    # the gray sigma-25 RepDN 64x12 (grown from 64x8 by identity layers)
    "denoise-gray-s25": ("configs/denoise/repdn-s25-deep.yaml", "denoise-gray-s25", []),
    "denoise-color": ("configs/denoise/repdn-rgb-blind-d11.yaml", "denoise-color", []),  # the colour blind 96x11
    # issue 16's NAFNet-tiny students, each continuing its shipped weights on its latest recipe: heavy rain on the
    # real streak layers of the Rain100L pairs the job carries, light rain (the grown NAFNet) on those pairs, with a
    # width-32 candidate from scratch, haze on the NYU scenes the job carries (pack_data.py: how many)
    "derain-small": ("configs/derain/nafnet-tiny-streaks-crop128.yaml", "derain-small", []),
    "derain-light": ("configs/derain/nafnet-grown-rain100l.yaml", "derain-light", ["data.train.crop=128"]),
    "derain-light-w32": ("configs/derain/nafnet-w32-rain100l.yaml", None, []),  # width 32 from scratch
    "dehaze-small": ("configs/dehaze/nafnet-grown-nyu-norm.yaml", "dehaze-small", []),  # grown to 6 middle blocks
}
ARCHIVE_LIMIT = 16 * 1024 * 1024


def train_command(name: str, job: Path, out: Path, budget: str, batch: int, device: str) -> list[str]:
    sets = ["data.train.pipeline=batched",
            "train.steps=1000000000", f"train.batch_size={batch}", f"train.device={device}",
            "train.log_every=50", "train.val_every=1500", "train.ckpt_every=1500", "data.num_workers=0"]
    if device.startswith("cuda"):
        sets += ["train.amp=bf16", "train.channels_last=true"]
    recipe, warm, extra = STUDENTS[name]
    sets += [e.replace("{peers}", str((job / "peers").resolve())) for e in extra]
    cmd = [sys.executable, "-m", "kdrestore", "train", str(ROOT / recipe), "--quiet",
           "--run-dir", str(out / "runs" / name), "--time-budget", budget]
    if warm is not None:
        cmd += ["--init-from", warm]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _peer_files(teachers: list[TeacherSpec], peers: Path) -> list[Path]:
    """The published weight files that these teachers (ensemble members included) read from ``peers``."""
    from kdrestore.models.registry import default_weights

    files = []
    for t in teachers:
        if t.members:
            files += _peer_files(t.members, peers)
        elif t.name and t.weights is None and (f := default_weights(t.name, peers)) is not None:
            files.append(f)
    return files


def missing_inputs(names: list[str], job: Path) -> list[str]:
    """``student: what`` for every data folder a student's recipe reads, and every teacher's published
    weights, that the job does not hold."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pack_data import data_root  # benchmarks/pack_data.py: ${KDRESTORE_DATA} pointed elsewhere for a block

    from kdrestore.config import distill_section, load_config
    from kdrestore.data.streaks import streak_source

    missing = []
    for name in names:
        recipe, _, extra = STUDENTS[name]
        with data_root((job / "data").resolve()):
            cfg = load_config(ROOT / recipe, overrides=extra)
            for section, ds in (("data.train", cfg.data.train), ("data.val", cfg.data.val)):
                if ds is None:
                    continue
                if ds.path is not None and not Path(ds.path).is_dir():
                    missing.append(f"{name}: {section}.path {ds.path}")
                streaks = streak_source(ds.degradation, ds.params, section)  # rain-streaks: the pairs of its layers
                if streaks is not None and not Path(streaks[0]).is_dir():
                    missing.append(f"{name}: {section}.params.streaks {streaks[0]}")
        missing += [f"{name}: teacher weights {f}" for f in _peer_files(distill_section(cfg).teachers, job / "peers")
                    if not f.is_file()]
    return missing


def best_weights(run: Path) -> Path | None:
    """The run's best checkpoint by validation (else its latest), EMA weights when kept."""
    ckpt, _ = RunCheckpoints(run).best_or_latest()
    return ckpt.weights_file(ema=True) if ckpt is not None else None


def pack_results(out: Path, names: list[str], extra: list[Path]) -> Path:
    """One tar.gz with each run's config, log, metrics, lineage and best weights (fp16)."""
    archive = out / "device_train.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            run = out / "runs" / name
            for f in ("config.yaml", "log.csv", "final_metrics.json", "lineage.json", "stderr.txt"):
                if (run / f).is_file():
                    tar.add(run / f, arcname=f"{name}/{f}")
            w = best_weights(run)
            if w is not None:
                half = run / "best_fp16.safetensors"
                save_file({k: v.half() if v.is_floating_point() else v for k, v in load_file(str(w)).items()},
                          str(half))
                tar.add(half, arcname=f"{name}/model.safetensors")
        for f in extra:
            if f.is_file():
                tar.add(f, arcname=f.name)
    if archive.stat().st_size > ARCHIVE_LIMIT:
        print(f"warning: {archive} is {archive.stat().st_size / 1e6:.1f} MB, over the 16 MB a device call returns",
              file=sys.stderr)
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", default="device_job", help="folder made by pack_data.py (data/, peers/)")
    parser.add_argument("--out", default=os.environ.get("OUT", "device_out"))
    parser.add_argument("--budget", default="6m", help="wall-clock budget of every run (they run at once)")
    parser.add_argument("--students", nargs="*", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--throughput", action="store_true")
    args = parser.parse_args()
    job, out = Path(args.job), Path(args.out)
    missing = missing_inputs(args.students + (["denoise-gray-fast"] if args.throughput else []), job)
    if missing:  # found here, before any device time is spent on runs that cannot read their data
        print("the job does not hold these (pack_data.py --whole / --peer-files ...):\n  " + "\n  ".join(missing),
              file=sys.stderr)
        return 2
    (out / "runs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KDRESTORE_PEERS": str((job / "peers").resolve()),
           "KDRESTORE_DATA": str((job / "data").resolve()),  # the data subset pack_data.py copied
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    extra: list[Path] = []
    if args.throughput:
        cmd = [sys.executable, str(ROOT / "benchmarks/train_throughput.py"), "--recipes",
               str(ROOT / STUDENTS["denoise-gray-fast"][0]), "--device", args.device, "--steps", "60",
               "--json", str(out / "train_throughput.json"), "--set", f"train.batch_size={args.batch}",
               "--set", "data.num_workers=8",
               "--baseline-set", "distill.teacher_precision=fp32", "--baseline-set", "distill.teacher_channels_last=false"]
        if args.device.startswith("cuda"):
            cmd += ["--set", "train.amp=bf16", "--set", "train.channels_last=true"]
        subprocess.run(cmd, env=env, check=False)
        extra.append(out / "train_throughput.json")
    start = time.time()
    procs = {}
    for name in args.students:
        run = out / "runs" / name
        run.mkdir(parents=True, exist_ok=True)
        err = open(run / "stderr.txt", "w")
        procs[name] = (subprocess.Popen(train_command(name, job, out, args.budget, args.batch, args.device),
                                        env=env, stdout=err, stderr=subprocess.STDOUT), err)
    for name, (proc, err) in procs.items():
        code = proc.wait()
        err.close()
        final = out / "runs" / name / "final_metrics.json"
        summary = json.loads(final.read_text()) if final.is_file() else {}
        print(f"{name:20} exit {code}  steps {summary.get('steps')}  samples/s {summary.get('samples_per_s')}  "
              f"val PSNR {summary.get('val_psnr')}  best {summary.get('best_val_psnr')}")
    print(f"all runs done in {time.time() - start:.0f} s")
    archive = pack_results(out, args.students, extra)
    print(f"wrote {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
