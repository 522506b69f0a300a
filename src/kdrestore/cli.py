"""The ``kdrestore`` command line: one sub-command per job, each a thin layer over the Python API."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Sequence

from .commands import (bench_coic, bench_datafree, bench_distill, bench_methods, bench_trnr, cmd_bench, cmd_calibrate,
                       cmd_check_leaks, cmd_degrade, cmd_demo, cmd_eval, cmd_export, cmd_models, cmd_package,
                       cmd_report, cmd_restore, cmd_samples, cmd_train)
from .version import __version__

ALLOW_LEAKS = "run even when test or validation scenes are in the training data (recorded as an override)"


def task_folder(text: str) -> str:
    """``TASK=DIR`` with a known task (``--photos``): a malformed value is a usage error (exit code 2)."""
    task, sep, _ = text.partition("=")
    if not sep or task not in ("denoise", "derain", "dehaze"):
        raise argparse.ArgumentTypeError(f"takes TASK=DIR with TASK denoise, derain or dehaze, got {text!r}")
    return text


def add_models(sub: Any) -> None:
    """``models``."""
    p = sub.add_parser("models", help="list the registered models with their parameter counts")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"])
    p.set_defaults(func=cmd_models)


def add_eval(sub: Any) -> None:
    """``eval``."""
    p = sub.add_parser("eval", help="score a model on a data set (PSNR/SSIM, params, MACs, ms)")
    p.add_argument("--model", required=True, help="shipped pretrained name, run directory, or registry name "
                   "(peers: their published weights under --peers)")
    p.add_argument("--weights", help="weights file (.pth/.safetensors); default: the peer's published file")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--data", required=True, help="data folder (paired layout, or clean images for denoise)")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"], help="default: the model's own task")
    p.add_argument("--sigma", type=float, default=25.0, help="AWGN sigma on the 0-255 scale (denoise)")
    p.add_argument("--metric-space", choices=["rgb", "y"], help="default: the task's published convention")
    p.add_argument("--rule", default="auto", help="pairing rule: auto, same, sots, rain100l, rain100h, regex:P=>T")
    p.add_argument("--limit", type=int)
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradation (denoise)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="write the full result (per image too) to this JSON file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)


def add_calibrate(sub: Any) -> None:
    """``calibrate``."""
    p = sub.add_parser("calibrate", help="score a peer on our synthetic held-out data next to its real benchmark "
                                         "and sweep the synthesis parameters to bring the two together")
    p.add_argument("--task", required=True, choices=["derain", "dehaze"])
    p.add_argument("--teacher", required=True, help="registry name of the peer, e.g. gcanet, prenet6, prenet6-rain100l")
    p.add_argument("--rain", choices=["light", "heavy"], default="heavy",
                   help="derain: heavy (synthetic heavy rain vs Rain100H) or light (vs held-out Rain100L-train pairs)")
    p.add_argument("--degradation", help="derain: only the candidates of this synthesis (rain-heavy, rain-light or "
                   "rain-streaks); default all")
    p.add_argument("--weights", help="weights file; default: the peer's published file")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--data", help="benchmark data root (default $KDRESTORE_DATA)")
    p.add_argument("--images", type=int, default=8, help="images scored on each side per candidate (default 8)")
    p.add_argument("--tolerance", type=float, default=1.0, help="dB within which the gaps count as closed")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradations")
    p.add_argument("--json", help="write the sweep to this JSON file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_calibrate)


def add_degrade(sub: Any) -> None:
    """``degrade``."""
    p = sub.add_parser("degrade", help="write a synthetically degraded copy of a folder of clean images")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--degradation", "-d", required=True, help="e.g. awgn, awgn-blind, haze, rain-heavy")
    p.add_argument("--param", "-p", action="append", default=[], help="key=value passed to the degradation")
    p.add_argument("--mode", choices=["rgb", "gray"], default="rgb")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_degrade)


def add_train(sub: Any) -> None:
    """``train`` and ``distill``: the one trainer, from a recipe."""
    for name, text in (("train", "train a model from a YAML recipe (also under torchrun)"),
                       ("distill", "distill a student from teachers with a recipe's 'distill' section")):
        p = sub.add_parser(name, help=text)
        p.add_argument("config", nargs="?", help="YAML recipe (optional with --resume: the run's own config)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
        p.add_argument("--run-dir", help="where to write the run (default: OUTPUT_DIR/NAME of the recipe)")
        p.add_argument("--init-from", metavar="SOURCE",
                       help="warm start from a shipped student's name, a run directory or a weights file "
                            "(fresh optimiser and schedule; recorded in the run's lineage.json)")
        p.add_argument("--time-budget", metavar="DURATION",
                       help="stop after this wall-clock time, e.g. 8m or 2h (the schedule follows the time)")
        p.add_argument("--allow-leaks", action="store_true", help=ALLOW_LEAKS)
        p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=cmd_train)


def bench_options() -> argparse.ArgumentParser:
    """The options every bench shares: tasks, data, the per-row budget, seeds, jobs, device, output."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--task", nargs="+", choices=["denoise", "derain", "dehaze"],
                   help="default: all three (distill, datafree); denoise and dehaze (methods); derain denoise (trnr)")
    p.add_argument("--data", help="benchmark data root (default $KDRESTORE_DATA)")
    p.add_argument("--peers", help="published peer weights, the teachers (default $KDRESTORE_PEERS)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--samples", type=int, help="per-row budget in training crops (steps = crops / batch)")
    budget.add_argument("--time-budget", metavar="DURATION", help="per-row wall-clock budget, e.g. 90s or 8m")
    budget.add_argument("--steps", type=int, help="per-row budget in optimiser steps (default 300)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every row (mean ± sd over them)")
    p.add_argument("--jobs", type=int, default=1, help="rows trained at once in worker processes (they share "
                                                        "the device; default 1)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=48)
    p.add_argument("--pipeline", choices=["per-sample", "batched"], help="data.train.pipeline of synthetic rows "
                                                                          "(batched: device-resident, for GPUs)")
    p.add_argument("--device", help="train.device of every row (default auto: cuda when available)")
    p.add_argument("--methods", nargs="*", help="rows (default: all of the bench's rows for the task)")
    p.add_argument("--test-limit", type=int, help="score on the first N test images only")
    p.add_argument("--workdir", help="where rows train (temporary folders under it; made when missing; "
                                     "default the system's)")
    p.add_argument("--resume", metavar="DIR", help="keep each finished row in DIR (made when missing); the same "
                                                   "command run again with the same DIR reuses them, so a killed "
                                                   "bench loses only the rows in flight")
    p.add_argument("--json", help="write the results record (command, budget, seeds, device, rows) here, e.g. "
                                  "benchmarks/results/<bench>.json")
    p.add_argument("--allow-leaks", action="store_true", help=ALLOW_LEAKS + " (beside --json)")
    p.add_argument("--quiet", action="store_true")
    return p


def add_bench(sub: Any) -> None:
    """``bench NAME``: one sub-command per bench, the shared options plus its own."""
    p = sub.add_parser("bench", help="benchmarks, each row as mean ± sd over --seeds at one per-row budget")
    benches = p.add_subparsers(dest="what", required=True, metavar="NAME")
    shared = [bench_options()]

    def bench(name: str, runner: Any, text: str) -> argparse.ArgumentParser:
        b = benches.add_parser(name, parents=shared, help=text)
        b.set_defaults(func=cmd_bench, run_bench=runner)
        return b

    bench("distill", bench_distill, "distillation methods per task against the student alone and the teacher")
    b = bench("methods", bench_methods, "SPDD/KDDN (dehaze) and HMDS (denoise) against the same network without them")
    b.add_argument("--sets", nargs="+", choices=["Set12", "CBSD68"], help="denoise: test sets (default both)")
    b.add_argument("--sigma", nargs="+", type=float, help="denoise: noise levels (default 25 50)")
    b = bench("datafree", bench_datafree, "data-free vs data-trained students")
    b.add_argument("--multi-steps", type=int, help="steps of the multi-weather student (default the per-row "
                                                   "steps x tasks)")
    b.add_argument("--generator-steps", type=int, help="generator updates per generator phase (default 1)")
    b = bench("trnr", bench_trnr, "few-image training, ordinary vs TRNR (--batch: tasks per step)")
    b.add_argument("--images", default="20", help="clean training images, a count or a share such as 20%%")
    b.add_argument("--full-size", action="store_true", help="MSResNet/DNNet instead of their tiny variants")
    bench("coic", bench_coic, "a backbone with vs without CoIC on mixed rain, per source")


def add_demo(sub: Any) -> None:
    """``demo``."""
    p = sub.add_parser("demo", help="degrade the built-in images, restore them, print scores, write a picture")
    p.add_argument("-o", "--output", default="kdrestore-demo")
    p.add_argument("--peers", help="folder of published peer weights, to include the peers")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def add_samples(sub: Any) -> None:
    """``samples``."""
    p = sub.add_parser("samples", help="render the generator of a data-free run (latest checkpoint) as a PNG grid")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", help="PNG file (default RUN_DIR/generator/view_step_<step>.png)")
    p.add_argument("--count", type=int, default=4, help="samples per degradation label (default 4)")
    p.add_argument("--size", type=int, help="image side, a multiple of 4 (default: the training crop)")
    p.set_defaults(func=cmd_samples)


def add_restore(sub: Any) -> None:
    """``restore``."""
    p = sub.add_parser("restore", help="restore images (files, folders, globs) with a trained model")
    p.add_argument("input", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, help="output folder (never an input's folder)")
    p.add_argument("--model", help="shipped pretrained name, run directory, registry name (+ --weights) or .onnx file "
                   "(default: the shipped student of --task)")
    p.add_argument("--weights", help="weights file (.safetensors/.pth) for a registry model")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"])
    p.add_argument("--rain", choices=["light", "heavy"],
                   help="--task derain: the light-rain (derain-light, Rain100L-like) or heavy-rain (derain-small, "
                        "Rain100H-like) student; default heavy")
    p.add_argument("--max-memory-mb", type=float, help="memory budget of one image's restoration in MB (image buffers "
                   "and model calls; the Python/torch runtime itself takes ~300 MB more); tiles are cut only when it "
                   "demands (default: half the available memory, 1-16 GB)")
    p.add_argument("--tile", type=int, help="force tiles of this side in pixels (default: only when the budget demands)")
    p.add_argument("--overlap", type=int, default=32, help="least tile overlap in pixels (wider for models with "
                   "a wide receptive field or global context)")
    p.add_argument("--max-megapixels", type=float, help="also cap the pixels per model call (default: no cap)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    p.add_argument("--onnx", help="ONNX file for --backend onnx (default: export the model on the fly)")
    p.add_argument("--allow-color-conversion", action="store_true",
                   help="let a gray model restore the luminance of RGB images (chroma kept)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_restore)


def add_package(sub: Any) -> None:
    """``package``."""
    p = sub.add_parser("package", help="ship a finished run as a pretrained student: weights + scored model card")
    p.add_argument("run", help="run directory (its last checkpoint is shipped, EMA weights when present)")
    p.add_argument("--name", required=True, help="the name users will type, e.g. dehaze-small")
    p.add_argument("--test", nargs="+", required=True, help="test folders under --data to score on")
    p.add_argument("--sigma", nargs="+", type=float, help="denoising: noise levels to score at (default 25)")
    p.add_argument("--data", help="benchmark data root (default $KDRESTORE_DATA)")
    p.add_argument("--test-holdout", type=int, metavar="N",
                   help="score only the last N images/pairs of each --test folder: the held-out part of a training "
                        "set (e.g. train/Rain100L-train with 20)")
    p.add_argument("--half", action="store_true", help="store float16 weights (scored as shipped)")
    p.add_argument("--competes-with", help="the peer this student is compared with (registry name)")
    p.add_argument("--recipe", help="the recipe file the run was trained with, for the card")
    p.add_argument("--dest", help="folder of pretrained models (default: the package's own)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing model of that name (its card's notes and ship-bench goals are kept)")
    p.add_argument("--notes", help="how the weights were made, appended to the card's notes")
    p.add_argument("--goal-speedup", type=float, metavar="X",
                   help="ship-bench goal: throughput at least X times the main peer's (card bench.speedup; "
                        "default 4 when no card sets it)")
    p.add_argument("--goal-psnr-margin", type=float, metavar="DB",
                   help="ship-bench goal: PSNR at most DB below the main peer's (card bench.psnr_margin; default 0.3)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="a model argument over the run's, kept in the card (an inference option chosen on "
                        "validation, e.g. attention_window=256 for NAFNet); repeatable")
    p.add_argument("--allow-leaks", action="store_true", help=ALLOW_LEAKS + " (in the model card)")
    p.set_defaults(func=cmd_package)


def add_check_leaks(sub: Any) -> None:
    """``check-leaks``."""
    p = sub.add_parser("check-leaks", help="find test/validation images whose scene is in the training data "
                                           "(image search); exit status 1 when any leaks")
    p.add_argument("--train", nargs="+", metavar="DIR", help="training folders (paired: clean side; rgb/ subfolders)")
    p.add_argument("--test", nargs="+", default=[], metavar="DIR", help="test or validation folders")
    p.add_argument("--recipe", help="a YAML recipe: its training data vs its validation data and the task's "
                                    "benchmark test set (under --data)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    p.add_argument("--data", help="benchmark data root (default $KDRESTORE_DATA)")
    p.add_argument("--threshold", type=float, help="normalised correlation that counts as the same scene "
                                                   "(default: kdrestore.data.leaks.THRESHOLD)")
    p.add_argument("--matches", type=int, help="show at most this many matches (default all)")
    p.add_argument("--json", help="write the full report to this JSON file")
    p.set_defaults(func=cmd_check_leaks)


def add_export(sub: Any) -> None:
    """``export``."""
    p = sub.add_parser("export", help="export a model to ONNX (dynamic size), check parity, optionally INT8")
    p.add_argument("--model", required=True, help="run directory, shipped pretrained name or registry name")
    p.add_argument("--weights")
    p.add_argument("--peers", help="folder of published peer weights (default $KDRESTORE_PEERS)")
    p.add_argument("--task", choices=["denoise", "derain", "dehaze"], help="for the INT8 PSNR cost (default: the model's)")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--int8", action="store_true", help="also write a static INT8 (QDQ) quantized model")
    p.add_argument("--calibration", help="folder of degraded images for INT8 calibration (default: built-in data)")
    p.add_argument("--int8-output", help="default: OUTPUT with .int8.onnx")
    p.add_argument("--int8-weights", choices=["auto", "s8", "u8"], default="auto",
                   help="INT8 weight format: s8 (fast on CPUs with VNNI), u8 (faithful on any x86 CPU), or auto "
                        "(s8 unless this CPU's integer kernels saturate on it; default)")
    p.add_argument("--samples", type=int, default=4, help="built-in test crops for the INT8 PSNR cost")
    p.set_defaults(func=cmd_export)


def add_report(sub: Any) -> None:
    """``report``."""
    p = sub.add_parser("report", help="HTML report of runs: crop grids input/teacher/student/truth, PSNR plots")
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories or shipped model names")
    p.add_argument("--photos", action="append", default=[], metavar="TASK=DIR", type=task_folder,
                   help="a gallery of real degraded photos without ground truth (e.g. dehaze=my-hazy-photos/): "
                        "input, every shipped student of TASK, its teacher (with --peers)")
    p.add_argument("--photo-limit", type=int, default=6, help="photos per gallery (default 6)")
    p.add_argument("-o", "--output", default="report.html", help="the HTML file to write (default report.html)")
    p.add_argument("--data", action="append", default=[], metavar="[TASK=]DIR",
                   help="test images (a task's test folder); TASK=DIR for one task; default: each run's data.val")
    p.add_argument("--bench", action="append", default=[], metavar="JSON",
                   help="peers on the plots: JSON of benchmarks/ship.py or benchmarks/peers.py")
    p.add_argument("--peers", help="published peer weights, for peer teachers (default $KDRESTORE_PEERS)")
    p.add_argument("--sigma", type=float, help="denoise: AWGN sigma of --data images (default: the run's, else 25)")
    p.add_argument("--images", type=int, default=3, help="images per run in the grid (default 3)")
    p.add_argument("--crop", type=int, default=128, help="side of the crops in pixels (default 128)")
    p.add_argument("--no-latency", action="store_true", help="do not time the students and teachers")
    p.add_argument("--threads", type=int, help="CPU threads for the timings (default: torch's)")
    p.add_argument("--title", default="kdrestore report")
    p.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdrestore", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kdrestore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_models, add_eval, add_calibrate, add_degrade, add_train, add_bench, add_demo, add_samples, add_restore, add_package, add_check_leaks, add_export, add_report,):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done; 1 the command ran and its result is a failure (leaks found,
    nothing written, an ONNX parity failure); 2 a user error (arguments, recipe, names, files), reported
    as ``kdrestore COMMAND: error: ...`` without a traceback, like argparse's own usage errors."""
    if argv is None and hasattr(signal, "SIGPIPE"):  # `kdrestore models | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for records (model cards)
    from .errors import KdrestoreError

    try:
        return int(args.func(args))
    except KdrestoreError as exc:
        print(f"kdrestore {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
