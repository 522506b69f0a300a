"""``kdrestore demo``: degrade the built-in images, restore them, print scores, write a comparison picture.

Runs with no download. The shipped pretrained students and the built-in baselines always run (DCP
dehazing, non-local-means denoising); the published peers (DnCNN, FFDNet, PReNet, GCANet, AOD-Net) join
when their weights folder is given (``--peers`` or ``$KDRESTORE_PEERS``). The degraded inputs are
written to ``OUTPUT/inputs/<task>/`` for ``kdrestore restore`` to work on.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from .evaluate.api import load_model
from .evaluate.metrics import TASK_CONVENTIONS
from .evaluate.runner import evaluate, restore_tensor
from .fsutil import atomic_path, atomic_write_json
from .models.registry import default_weights

# picture row -> (task, colour mode, models tried in order after the row's shipped student); peers are
# skipped when their weights are not available
DEMO_MODELS: dict[str, tuple[str, str, list[str]]] = {
    "denoise": ("denoise", "gray", ["nlm-denoise", "dncnn-s25", "ffdnet-gray"]),
    "denoise-rgb": ("denoise", "rgb", ["ffdnet-rgb"]),
    "derain": ("derain", "rgb", ["prenet6"]),
    "dehaze": ("dehaze", "rgb", ["dcp", "aodnet", "gcanet"]),
}
TILE = 192  # side of the crops in the comparison picture
CAPTION = ("labels: PSNR of the whole first test image of the row (its centre is shown); "
           "the printed table and demo.json: mean PSNR over all the row's images")


def _available(name: str, peers: str | None) -> bool:
    from .models.registry import model_entry

    if not model_entry(name).meta.get("peer_weights"):
        return True
    path = default_weights(name, peers)
    return path is not None and path.is_file()


def _to_tile(t: torch.Tensor) -> Image.Image:
    arr = t.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    h, w = arr.shape[:2]
    y0, x0 = max(0, (h - TILE) // 2), max(0, (w - TILE) // 2)
    arr = arr[y0:y0 + TILE, x0:x0 + TILE]
    img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
    canvas = Image.new("RGB", (TILE, TILE + 18), "white")
    canvas.paste(img, (0, 18))
    return canvas


def _label(tile: Image.Image, text: str) -> Image.Image:
    ImageDraw.Draw(tile).text((3, 3), text[:30], fill="black")
    return tile


def format_demo_table(rows: list[dict[str, Any]]) -> str:
    """The score table, its columns as wide as their longest entry."""
    header = ("task", "model", "images", "input PSNR", "PSNR", "SSIM", "ms/img")
    cells = [(r["task"], r["model"], str(r["images"]), f"{r['input_psnr']:.2f}", f"{r['psnr']:.2f}",
              f"{r['ssim']:.3f}", f"{r['ms_per_image']:.0f}") for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *cells)]
    fmt = lambda cs: " ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(cs, widths))).rstrip()
    return "\n".join([fmt(header), "-" * len(fmt(header)), *map(fmt, cells)])


def run_demo(output: Path, peers: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run the demo; writes ``demo.png`` and ``demo.json`` into ``output`` and returns the score rows."""
    from .data.builtin import builtin_dataset, split_names
    from .data.imageio import write_image
    from .deploy.loader import DEFAULT_COLOR_MODELS, DEFAULT_MODELS, load_shipped, shipped_names

    peers = peers or os.environ.get("KDRESTORE_PEERS")
    output.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    picture_rows: list[list[Image.Image]] = []
    for row, (task, mode, names) in DEMO_MODELS.items():
        colour_denoise = task == "denoise" and mode == "rgb"
        student = (DEFAULT_COLOR_MODELS if colour_denoise else DEFAULT_MODELS).get(task)
        shipped = [student] if student in shipped_names() else []
        if colour_denoise:  # the colour images of the test split, AWGN sigma 25 on RGB
            dataset = builtin_dataset(task, split="test", mode="rgb", names=split_names("test", color_only=True))
        else:
            dataset = builtin_dataset(task, split="test")
        samples = [dataset[i] for i in range(len(dataset))]
        first = samples[0]
        tiles = [_label(_to_tile(first["input"]), f"{row}: input")]
        conv = TASK_CONVENTIONS[task]
        for i, sample in enumerate(samples):
            write_image(output / "inputs" / row / f"{sample.get('name', i)}.png", sample["input"])
        for name in shipped + names:
            if name not in shipped and not _available(name, peers):
                continue
            model = (load_shipped(name).model if name in shipped else
                     load_model(name, peers=peers, sigma=25.0 if task == "denoise" else None))
            result = evaluate(model, samples, conv, name=name, task=task, data="built-in", progress=progress)
            rows.append({"task": row, "model": name, "images": len(result.images),
                         "input_psnr": result.input_psnr, "psnr": result.psnr, "ssim": result.ssim,
                         "first_image": result.images[0].name, "first_image_psnr": result.images[0].psnr,
                         "ms_per_image": result.ms_per_image, "convention": conv.describe()})
            out = restore_tensor(model, first["input"])
            tiles.append(_label(_to_tile(out), f"{name} {result.images[0].psnr:.2f}dB"))
        tiles.append(_label(_to_tile(first["target"]), f"clean ({first.get('name', 0)})"))
        picture_rows.append(tiles)

    width = max(len(r) for r in picture_rows) * TILE
    sheet = Image.new("RGB", (width, len(picture_rows) * (TILE + 18) + 18), "white")
    ImageDraw.Draw(sheet).text((3, len(picture_rows) * (TILE + 18) + 3), CAPTION, fill="black")
    for r, tiles in enumerate(picture_rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * TILE, r * (TILE + 18)))
    with atomic_path(output / "demo.png") as tmp:
        sheet.save(tmp, format="PNG")
    atomic_write_json(output / "demo.json", rows)

    print(format_demo_table(rows))
    print(f"picture {CAPTION}")
    print("conventions: " + "; ".join(f"{t}: {c.describe()}" for t, c in TASK_CONVENTIONS.items()))
    print(f"wrote {output / 'demo.png'} and {output / 'demo.json'}; degraded inputs in {output / 'inputs'} "
          f"(try: kdrestore restore {output / 'inputs' / 'dehaze'} -o restored --task dehaze)")
    if not peers:
        print("tip: set KDRESTORE_PEERS (or --peers) to the published peer weights to compare DnCNN, PReNet, GCANet, AOD-Net")
    return rows
