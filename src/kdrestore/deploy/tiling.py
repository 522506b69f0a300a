"""Tiled inference: restore images of any size within a memory budget, without visible seams.

The image is cut into overlapping tiles; each tile is restored on its own and the outputs are
blended with a window that is 0 over the outer quarter of every shared (interior) edge, rises as a
raised cosine over the middle half and is 1 inside. Pixels that reach the output therefore lie at
least ``overlap // 4`` pixels from any tile edge, so for a model whose receptive-field radius is at
most ``overlap // 4`` the tiled result equals the untiled one up to float rounding; for wider models
the seams are blended smoothly instead of cut. At the image borders each tile is mirrored by
``margin`` pixels (reflect padding) before the model sees it, so border pixels get the same kind of
context as interior ones instead of the zeros that convolution padding would add. Tile origins are multiples of ``multiple`` (the
model's down-sampling factor) so encoder-decoder models see the same sampling grid as on the whole
image; the last tile along an axis is aligned to the border (it may be up to ``multiple - 1``
pixels larger).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Model = Callable[[Tensor], Tensor]


def tile_for_budget(max_pixels: int, overlap: int, multiple: int = 1, margin: int = 0) -> int:
    """The largest square tile side (a multiple of ``multiple``) with ``(side + 2 margin)**2 <= max_pixels``."""
    side = (int(math.isqrt(int(max_pixels))) - 2 * margin) // multiple * multiple
    if side <= overlap + multiple:
        raise ValueError(f"a budget of {max_pixels} pixels gives {side}-pixel tiles, too small for an overlap "
                         f"of {overlap}; raise the budget or lower the overlap")
    return side


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Tile origins along one axis: every ``step`` (a multiple of ``multiple``), the last at the border."""
    if length <= tile:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    last = (length - tile) // multiple * multiple  # the last tile spans [last, length)
    starts = list(range(0, last, step))
    return starts + [last]


def _ramp(size: int, overlap: int, rise_at_start: bool, rise_at_end: bool, wide: bool = False) -> Tensor:
    """1-D blending weights of one tile: 0 / raised cosine / 1 at each interior edge (``wide``: the
    raised cosine spans the whole overlap, for models whose tiles differ in tone anyway)."""
    w = torch.ones(size, dtype=torch.float32)
    zero = 0 if wide else overlap // 4
    rise = max(1, overlap - 2 * zero)
    t = (torch.arange(rise, dtype=torch.float32) + 0.5) / rise
    up = torch.cat([torch.zeros(zero), 0.5 - 0.5 * torch.cos(math.pi * t)])[:size]
    if rise_at_start:
        w[: up.numel()] = torch.minimum(w[: up.numel()], up)
    if rise_at_end:
        w[size - up.numel():] = torch.minimum(w[size - up.numel():], up.flip(0))
    return w


def plan_tiles(h: int, w: int, tile: int | None, overlap: int, max_pixels: int | None,
               multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """The tiles ``(top, left, height, width)`` covering an ``h x w`` image (one tile when it fits)."""
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile is None:
        if max_pixels is None or h * w <= max_pixels:
            return [(0, 0, h, w)]
        tile = tile_for_budget(max_pixels, overlap, multiple)
    if tile < overlap + multiple:
        raise ValueError(f"tile ({tile}) must be at least overlap + multiple ({overlap} + {multiple})")
    if h <= tile and w <= tile:
        return [(0, 0, h, w)]
    ys, xs = tile_starts(h, tile, overlap, multiple), tile_starts(w, tile, overlap, multiple)
    return [(y, x, (h if y == ys[-1] else y + tile) - y, (w if x == xs[-1] else x + tile) - x)
            for y in ys for x in xs]


def pad_borders(x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
    """Mirror the image at its borders (reflect; replicate where the image is too small to mirror)."""
    if not (top or bottom or left or right):
        return x
    h, w = x.shape[-2:]
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode)


def _run_padded(model: Model, tiles: list[Tensor], pads: tuple[int, int, int, int]) -> Tensor:
    """Run the model on a batch of equally padded tiles and crop the padding off the outputs."""
    top, bottom, left, right = pads
    out = model(torch.cat([pad_borders(t, *pads) for t in tiles]))
    return out[..., top:out.shape[-2] - bottom, left:out.shape[-1] - right]


@torch.no_grad()
def restore_tiled(model: Model, image: Tensor, tile: int | None = None, overlap: int = 32,
                  max_pixels: int | None = None, *, multiple: int | None = None,
                  batch_size: int | None = None, margin: int = 0, wide: bool = False) -> Tensor:
    """Run ``model`` on ``image`` (``B x C x H x W``) tile by tile; returns the blended output.

    ``tile``: tile side in pixels; None picks the largest square within ``max_pixels`` (pixels per
    model call, padding included), or the whole image when it fits or no budget is given.
    ``multiple``: tile origins are multiples of it (default: ``model.multiple`` when the model has
    one, else 1). ``margin``: the image is mirrored by this many pixels at its borders before the
    model sees it (in each tile that touches a border), so a model whose convolutions pad with
    zeros restores border pixels as it does interior ones; round it to ``multiple``.
    ``wide``: blend over the whole overlap (models with global context: tiles never agree exactly,
    so the tone change is spread as far as possible) instead of cutting the outer quarter.
    ``batch_size``: tiles of equal shape per model call (default: as many as the budget allows,
    at most 8; 1 without a budget). The output keeps the input's shape (its channels may differ).
    """
    if image.ndim != 4:
        raise ValueError(f"expected a B x C x H x W tensor, got shape {tuple(image.shape)}")
    m = int(multiple or getattr(model, "multiple", 1) or 1)
    if image.shape[0] != 1:
        return torch.cat([restore_tiled(model, image[i:i + 1], tile, overlap, max_pixels, multiple=m,
                                        batch_size=batch_size, margin=margin, wide=wide)
                          for i in range(image.shape[0])])
    h, w = image.shape[-2:]
    budget = None if max_pixels is None else max(1, int(max_pixels))
    if budget is not None and tile is None and (h + 2 * margin) * (w + 2 * margin) > budget:
        tile = tile_for_budget(budget, overlap, m, margin)
    tiles = plan_tiles(h, w, tile, overlap, None, m)
    if len(tiles) == 1:
        return _run_padded(model, [image], (margin,) * 4)
    if batch_size is None:
        area = (tiles[0][2] + 2 * margin) * (tiles[0][3] + 2 * margin)
        batch_size = 1 if budget is None else max(1, min(8, budget // area))
    out: Tensor | None = None
    weight = torch.zeros(1, 1, h, w, dtype=torch.float32, device=image.device)
    groups: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}
    for y, x, th, tw in tiles:
        pads = (margin if y == 0 else 0, margin if y + th == h else 0, margin if x == 0 else 0,
                margin if x + tw == w else 0)
        groups.setdefault((th, tw, *pads), []).append((y, x, th, tw))
    for key, group in groups.items():
        pads = key[2:]
        for i in range(0, len(group), batch_size):
            chunk = group[i:i + batch_size]
            result = _run_padded(model, [image[..., y:y + th, x:x + tw] for y, x, th, tw in chunk], pads).float()
            if out is None:
                out = torch.zeros(1, result.shape[1], h, w, dtype=torch.float32, device=image.device)
            for (y, x, th, tw), r in zip(chunk, result):
                win = (_ramp(th, overlap, y > 0, y + th < h, wide)[:, None]
                       * _ramp(tw, overlap, x > 0, x + tw < w, wide)[None, :]).to(image.device)
                out[0, :, y:y + th, x:x + tw] += r * win
                weight[0, 0, y:y + th, x:x + tw] += win
            del result
    assert out is not None
    return out.div_(weight.clamp_min_(1e-12)).to(image.dtype)
