"""Score a model on a data set: per-image PSNR/SSIM under a named convention, timing, and failures."""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .metrics import Convention, psnr, psnr_ssim
from .profile import count_macs, count_params


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    ms: float
    input_psnr: float


@dataclass
class EvalResult:
    """The outcome of one evaluation; ``to_dict`` is what ``kdrestore eval --json`` writes."""

    model: str
    task: str
    data: str
    convention: Convention
    params: int
    macs: int = 0
    macs_shape: tuple[int, ...] = ()
    images: list[ImageScore] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def psnr(self) -> float:
        return statistics.fmean(s.psnr for s in self.images) if self.images else math.nan

    @property
    def ssim(self) -> float:
        return statistics.fmean(s.ssim for s in self.images) if self.images else math.nan

    @property
    def input_psnr(self) -> float:
        return statistics.fmean(s.input_psnr for s in self.images) if self.images else math.nan

    @property
    def ms_per_image(self) -> float:
        return statistics.median(s.ms for s in self.images) if self.images else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "task": self.task, "data": self.data, "n_images": len(self.images),
            "psnr": self.psnr, "ssim": self.ssim, "input_psnr": self.input_psnr,
            "params": self.params, "macs": self.macs, "macs_input_shape": list(self.macs_shape),
            "ms_per_image_median": self.ms_per_image, "convention": self.convention.to_dict(),
            "failed": [{"name": n, "error": e} for n, e in self.failed],
            "per_image": [asdict(s) for s in self.images], **self.extra,
        }


@torch.no_grad()
def restore_tensor(model: nn.Module, x: Tensor) -> Tensor:
    """Run a model on one C x H x W image on the model's device; returns C x H x W on the CPU."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    return model(x[None].to(device))[0].float().cpu()


def evaluate(
    model: nn.Module,
    samples: Iterable[dict[str, Any] | None | Exception],
    convention: Convention,
    *,
    name: str = "model",
    task: str = "",
    data: str = "",
    limit: int | None = None,
    progress: bool = True,
    total: int | None = None,
) -> EvalResult:
    """Score ``model`` on samples ``{'input', 'target', 'name'}`` (C x H x W tensors in [0, 1]).

    A sample given as an exception (an unreadable file) is recorded in ``failed`` and the run goes on.
    """
    model.eval()
    result = EvalResult(model=name, task=task, data=data, convention=convention, params=count_params(model))
    bar: Iterator[Any] = tqdm(samples, total=total, desc=f"eval {name}", disable=not progress, leave=False)
    for sample in bar:
        if limit is not None and len(result.images) >= limit:
            break
        if isinstance(sample, Exception) or sample is None:
            result.failed.append((str(getattr(sample, "path", "?")), str(sample)))
            continue
        x, y = sample["input"], sample["target"]
        if not result.macs_shape:
            result.macs_shape = (1, *x.shape)
            result.macs = count_macs(model, result.macs_shape)
        start = time.perf_counter()
        out = restore_tensor(model, x)
        ms = (time.perf_counter() - start) * 1e3
        p, s = psnr_ssim(out, y, convention)
        p_in = psnr(x, y, Convention(space=convention.space, crop_border=convention.crop_border))
        result.images.append(ImageScore(str(sample.get("name", len(result.images))), p, s, ms, p_in))
    return result
