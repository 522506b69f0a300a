"""Adapters that bring a student feature to the shape of a teacher feature.

Token features ``B x N x C`` (Transformers) are reshaped to maps ``B x C x H x W`` using the image's
aspect ratio; channel counts are matched by a 1x1 convolution; spatial sizes by bilinear resizing.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import KdrestoreError


class ShapeError(KdrestoreError, ValueError):
    """Feature shapes that no adapter can reconcile; the message shows both."""


def tokens_to_map(x: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """``B x N x C`` tokens to a ``B x C x H x W`` map whose aspect ratio is the image's."""
    b, n, c = x.shape
    ratio = image_hw[1] / image_hw[0]
    h = round(math.sqrt(n / ratio))
    for cand in (h, h - 1, h + 1):
        if cand > 0 and n % cand == 0:
            return x.transpose(1, 2).reshape(b, c, cand, n // cand)
    raise ShapeError(f"cannot arrange {n} tokens as a map with the image's aspect ratio {image_hw}")


def as_map(x: Tensor, image_hw: tuple[int, int]) -> Tensor:
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return tokens_to_map(x, image_hw)
    raise ShapeError(f"expected a B x C x H x W map or B x N x C tokens, got shape {tuple(x.shape)}")


class FeatureAdapter(nn.Module):
    """Student feature -> teacher feature shape: tokens->map, resize, then a 1x1 conv if channels differ.

    ``match_channels=False`` keeps the student's channels (losses such as FAKD and RSD's own
    projector handle channels themselves).
    """

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...], image_hw: tuple[int, int],
                 match_channels: bool = True) -> None:
        super().__init__()
        self.image_hw = image_hw
        try:
            s = self._map_shape(student_shape, image_hw, "student")
            t = self._map_shape(teacher_shape, image_hw, "teacher")
        except ShapeError as exc:
            raise ShapeError(f"student feature {tuple(student_shape)} vs teacher feature "
                             f"{tuple(teacher_shape)}: {exc}") from None
        if s[0] != t[0]:
            raise ShapeError(f"batch sizes differ: student {student_shape} vs teacher {teacher_shape}")
        self.size = t[2:] if s[2:] != t[2:] else None
        self.proj = nn.Conv2d(s[1], t[1], 1) if match_channels and s[1] != t[1] else nn.Identity()

    @staticmethod
    def _map_shape(shape: tuple[int, ...], image_hw: tuple[int, int], role: str) -> tuple[int, ...]:
        if len(shape) == 4:
            return tuple(shape)
        if len(shape) == 3:
            b, n, c = shape
            return tuple(tokens_to_map(torch.empty(b, n, c, device="meta"), image_hw).shape)
        raise ShapeError(f"{role} feature of shape {tuple(shape)} is neither a map nor tokens")

    def forward(self, x: Tensor, image_hw: tuple[int, int] | None = None) -> Tensor:
        x = as_map(x, image_hw or self.image_hw)
        if self.size is not None:
            x = F.interpolate(x, size=tuple(self.size), mode="bilinear", align_corners=False)
        return self.proj(x)
