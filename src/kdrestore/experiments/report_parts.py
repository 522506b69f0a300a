"""What a report is made of (sections, crops, plot entries) and how its images are inlined; shared by
:mod:`.report` (which measures them), :mod:`.report_html` and :mod:`.report_gallery` (which render)."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor


@dataclass
class Crop:
    label: str
    png: str  # base64 PNG
    psnr: float | None = None  # of the crop against the ground truth, under the task's convention


@dataclass
class PlotEntry:
    """A model on the PSNR / latency / parameters plots."""

    name: str
    kind: str  # "student" or "peer"
    task: str
    psnr: float
    params: int
    ms_per_mp: float | None  # CPU milliseconds per megapixel at the bench input
    data: str
    source: str


@dataclass
class Section:
    """Everything the report shows about one run directory or shipped student."""

    item: str
    name: str
    task: str
    model: str
    source: str
    params: int
    data: str = ""
    teacher: str | None = None
    notes: list[str] = field(default_factory=list)
    grid: list[tuple[str, list[Crop]]] = field(default_factory=list)  # (image name, crops)
    image_psnr: dict[str, float] = field(default_factory=dict)  # mean full-image PSNR per column
    final: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)


def png_base64(img: Tensor) -> str:
    """A ``C x H x W`` [0, 1] tensor (C = 1 or 3) as a base64 PNG."""
    arr = np.round(img.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
