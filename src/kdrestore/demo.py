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

# task -> models tried in order after it; peers are skipped when their weights are not available
DEMO_MODELS: dict[str, list[str]] = {
    "denoise": ["nlm-denoise", "dncnn-s25", "ffdnet-gray"],
    "derain": ["prenet6"],
    "dehaze": ["dcp", "aodnet", "gcanet"],
}
TILE = 192  # side of the crops in the comparison picture


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


def run_demo(output: Path, peers: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run the demo; writes ``demo.png`` and ``demo.json`` into ``output`` and returns the score rows."""
    from .data.builtin import builtin_dataset
    from .data.imageio import write_image
    from .deploy.loader import DEFAULT_MODELS, load_shipped, shipped_names

    peers = peers or os.environ.get("KDRESTORE_PEERS")
    output.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    picture_rows: list[list[Image.Image]] = []
    for task, names in DEMO_MODELS.items():
        dataset = builtin_dataset(task, split="test")
        samples = [dataset[i] for i in range(len(dataset))]
        first = samples[0]
        tiles = [_label(_to_tile(first["input"]), f"{task}: input")]
        conv = TASK_CONVENTIONS[task]
        for i, sample in enumerate(samples):
            write_image(output / "inputs" / task / f"{sample.get('name', i)}.png", sample["input"])
        # the task's shipped student first (gray denoising: the built-in denoising images are gray)
        shipped = [DEFAULT_MODELS[task]] if DEFAULT_MODELS[task] in shipped_names() else []
        for name in shipped + names:
            if name not in shipped and not _available(name, peers):
                continue
            model = (load_shipped(name).model if name in shipped else
                     load_model(name, peers=peers, sigma=25.0 if task == "denoise" else None))
            result = evaluate(model, samples, conv, name=name, task=task, data="built-in", progress=progress)
            rows.append({"task": task, "model": name, "images": len(result.images),
                         "input_psnr": result.input_psnr, "psnr": result.psnr, "ssim": result.ssim,
                         "ms_per_image": result.ms_per_image, "convention": conv.describe()})
            out = restore_tensor(model, first["input"])
            tiles.append(_label(_to_tile(out), f"{name} {result.images[0].psnr:.2f}dB"))
        tiles.append(_label(_to_tile(first["target"]), "clean"))
        picture_rows.append(tiles)

    width = max(len(r) for r in picture_rows) * TILE
    sheet = Image.new("RGB", (width, len(picture_rows) * (TILE + 18)), "white")
    for r, tiles in enumerate(picture_rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * TILE, r * (TILE + 18)))
    with atomic_path(output / "demo.png") as tmp:
        sheet.save(tmp, format="PNG")
    atomic_write_json(output / "demo.json", rows)

    header = f"{'task':8} {'model':16} {'images':>6} {'input PSNR':>10} {'PSNR':>7} {'SSIM':>6} {'ms/img':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['task']:8} {r['model']:16} {r['images']:>6} {r['input_psnr']:>10.2f} {r['psnr']:>7.2f} "
              f"{r['ssim']:>6.3f} {r['ms_per_image']:>7.0f}")
    print("conventions: " + "; ".join(f"{t}: {c.describe()}" for t, c in TASK_CONVENTIONS.items()))
    print(f"wrote {output / 'demo.png'} and {output / 'demo.json'}; degraded inputs in {output / 'inputs'} "
          f"(try: kdrestore restore {output / 'inputs' / 'dehaze'} -o restored --task dehaze)")
    if not peers:
        print("tip: set KDRESTORE_PEERS (or --peers) to the published peer weights to compare DnCNN, PReNet, GCANet, AOD-Net")
    return rows
