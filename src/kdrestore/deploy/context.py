"""What a model sees around a pixel and what one call costs: measured once per model, used by tiling.

:func:`probe_context` runs the model on a small probe image three times:

* **radius**: one pixel in the centre is changed; the farthest output pixel that changes by more
  than :data:`RADIUS_TOL` (1/80 of an 8-bit grey level) gives the receptive-field radius. Every restored image is
  reflect-padded by about this much at its borders (zero padding inside the convolutions would
  otherwise darken or brighten a band as wide as the radius), and tiles overlap by four times it,
  so tiled and whole-image results agree for local models.
* **global context**: everything farther than the radius from the centre is inverted; if the centre
  output still changes by more than :data:`GLOBAL_TOL` (1/8 of a grey level), the model reads the whole image (instance normalisation, global pooling,
  squeeze-and-excitation, attention). Such models are cut into tiles only when the memory budget
  demands it, and then blended over a wide overlap.
* **bytes per pixel**: the largest tensor a module returns on the probe, times
  :data:`PEAK_FACTOR`, estimates the peak working memory of one model call per input pixel (the
  concatenations, residuals and allocator slack that hooks do not see). Measured on this project's
  CPU machine (fresh process, ``/proc/self/status`` VmHWM, 1024 x 1024 input): peak / largest
  module output = 13.0 (dehaze-small), 10.0 (MSResNet-tiny, the derain-small of then), 12.1 (MDRN, the
  denoise-gray-blind of then, and denoise-color), 13.9 (denoise-gray-fast); 16 covers them with a margin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

PEAK_FACTOR = 16.0  # peak working memory of a call / largest module output (measured 10-14, see above)
FALLBACK_BYTES_PER_PIXEL = 4096.0  # a model without modules to hook (ONNX): assume a wide network
MAX_MARGIN = 64  # border padding is capped here (wider models get this much mirrored context)
PROBE = 96
RADIUS_TOL = 5e-5  # output change (image units, [0, 1]) still counted inside the receptive field
GLOBAL_TOL = 5e-4  # centre change from the far image that makes a model "global"


@dataclass(frozen=True)
class ModelContext:
    """Measured facts about a model that tiling needs (see the module docstring)."""

    radius: int  # receptive-field radius in pixels; ``probe // 2`` means "at least that"
    global_context: bool  # the output depends on pixels beyond the radius (the whole image)
    bytes_per_pixel: float  # estimated peak memory of one model call per input pixel
    probe: int = PROBE

    @property
    def wide(self) -> bool:
        """Global context, or a receptive field as large as the probe (tiles would show)."""
        return self.global_context or self.radius >= self.probe // 2 - 1

    def margin(self, multiple: int = 1) -> int:
        """Border padding: the radius (at most :data:`MAX_MARGIN`), rounded up to ``multiple``."""
        if self.radius <= 0:
            return 0
        m = MAX_MARGIN if self.radius >= self.probe // 2 - 1 else min(self.radius + 1, MAX_MARGIN)
        return int(math.ceil(m / multiple) * multiple)

    def overlap(self, requested: int, tile: int) -> int:
        """Tile overlap: at least four radii (exact for local models); a third of the tile for wide ones."""
        want = max(requested, 4 * min(self.radius, MAX_MARGIN))
        if self.wide:
            want = max(want, tile // 3)
        return min(want, tile // 2)

    def describe(self) -> str:
        r = f">= {self.radius}" if self.radius >= self.probe // 2 - 1 else str(self.radius)
        return (f"receptive-field radius {r} px" + (", global context" if self.global_context else "")
                + f", ~{self.bytes_per_pixel:.0f} bytes/pixel per call")


def _probe_input(channels: int, size: int) -> Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.25 + 0.5 * torch.rand(1, channels, size, size, generator=g)


@torch.no_grad()
def probe_context(fn: Callable[[Tensor], Tensor], channels: int, multiple: int = 1, probe: int = PROBE,
                  device: torch.device | str = "cpu") -> ModelContext:
    """Measure radius, global context and memory per pixel of ``fn`` (``B x channels x H x W`` -> same)."""
    size = max(multiple, probe // multiple * multiple)
    c = size // 2
    x = _probe_input(channels, size).to(device)
    sizes: list[int] = []
    hooks = []
    if isinstance(fn, nn.Module):
        def record(_m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, Tensor):
                sizes.append(out.numel() * out.element_size())
        hooks = [m.register_forward_hook(record) for m in fn.modules()]
    try:
        base = fn(x).float()
    finally:
        for h in hooks:
            h.remove()
    bpp = PEAK_FACTOR * max(sizes) / (size * size) if sizes else FALLBACK_BYTES_PER_PIXEL
    bpp = max(bpp, 4.0 * (channels + base.shape[1]))

    poked = x.clone()
    poked[..., c, c] = 1.0 - poked[..., c, c]
    diff = (fn(poked).float() - base).abs().amax(dim=(0, 1))
    ys, xs = torch.nonzero(diff > RADIUS_TOL, as_tuple=True)
    radius = int(max((ys - c).abs().max(), (xs - c).abs().max())) if len(ys) else 0
    radius = min(radius, size // 2)
    global_context = False
    if radius < size // 2 - 2:
        far = torch.ones(size, size, dtype=torch.bool, device=x.device)
        keep = radius + 1
        far[c - keep:c + keep + 1, c - keep:c + keep + 1] = False
        flipped = torch.where(far, 1.0 - x, x)
        change = (fn(flipped).float() - base)[..., c, c].abs().max()
        global_context = bool(change > GLOBAL_TOL)
    return ModelContext(radius, global_context, float(bpp), size)


def image_bytes_per_pixel(in_channels: int, out_channels: int) -> float:
    """Memory held for a whole image while it is restored: the decoded float image, the result
    accumulator and blending weight of the tiles, the float result and its 8/16-bit copy."""
    return 4.0 * (in_channels + 2 * out_channels + 1) + 2.0 * out_channels
