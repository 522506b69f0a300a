"""Shared pieces of the synthetic degradations: the result type, seeding and array checks.

Conventions used by every degradation in :mod:`kdrestore.degrade`:

* images are numpy ``float`` arrays ``H x W x C`` (C = 1 or 3) or ``H x W`` (gray) with values in
  [0, 1]; results are ``float32`` and keep the layout of the input (``H x W`` in, ``H x W`` out);
* ``seed`` is an ``int`` (the call is then fully reproducible) or a ``numpy.random.Generator``
  (its state advances, so two calls with the same generator object differ);
* a parameter given as a number is used as is; given as a pair ``(lo, hi)`` it is drawn
  uniformly from that range; the values actually used are recorded in ``Degraded.params``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
from scipy import ndimage

SeedLike = Union[int, np.integer, np.random.Generator]
Range = Union[float, Sequence[float]]


@dataclass(frozen=True, eq=False)
class Degraded:
    """One synthetic degradation: the degraded image, its clean source and the parameters used.

    ``params`` holds only JSON-serialisable values (numbers, strings, bools, lists, dicts, None).
    ``layer`` is an optional extra array (the ``H x W`` rain-streak layer for rain, else None).
    """

    degraded: np.ndarray
    clean: np.ndarray
    params: dict[str, Any]
    layer: np.ndarray | None = None


def make_rng(seed: SeedLike) -> np.random.Generator:
    """A numpy Generator from an int seed (fresh, reproducible) or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy.random.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng(int(seed))


def seed_record(seed: SeedLike) -> int | None:
    """The seed as stored in ``params``: the int, or None when a Generator was passed."""
    return None if isinstance(seed, np.random.Generator) else int(seed)


def as_float_image(x: Any, name: str = "clean", *, check_range: bool = True) -> np.ndarray:
    """Validate an image and return a float32 ``H x W x C`` copy (a ``H x W`` input gets C = 1).

    Raises ValueError for a non-float dtype, a wrong shape, non-finite values or (with
    ``check_range``) values outside [0, 1] (a tolerance of 1e-5 is allowed and clipped away).
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        hint = " (for 8-bit images use img.astype(np.float32) / 255)" if arr.dtype == np.uint8 else ""
        raise ValueError(f"{name} image must be a floating-point array with values in [0, 1], "
                         f"got dtype {arr.dtype}{hint}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"{name} image must be H x W or H x W x C, got shape {tuple(np.shape(x))}")
    if arr.shape[2] not in (1, 3):
        raise ValueError(f"{name} image must have 1 or 3 channels (H x W x C), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} image is empty: shape {arr.shape}")
    arr = arr.astype(np.float32, copy=True)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} image contains NaN or infinite values")
    if check_range:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-5 or hi > 1 + 1e-5:
            raise ValueError(f"{name} image values must lie in [0, 1], got min={lo:.4g}, max={hi:.4g}"
                             " (8-bit data: divide by 255)")
        np.clip(arr, 0.0, 1.0, out=arr)
    return arr


def like_input(arr: np.ndarray, original: Any) -> np.ndarray:
    """Give ``arr`` (``H x W x C``) the layout of ``original`` (drop C for a ``H x W`` input)."""
    return arr[:, :, 0] if np.ndim(original) == 2 else arr


def is_number(value: Any) -> bool:
    """True for a real scalar (python or numpy number, 0-d array), False for bools and sequences."""
    return (np.ndim(value) == 0 and not isinstance(value, (bool, np.bool_))
            and isinstance(np.asarray(value).item(), (int, float)))


def draw(rng: np.random.Generator, value: Range, name: str, *,
         low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float: a number is returned as is, a pair ``(lo, hi)`` is drawn uniformly.

    Raises ValueError when a value is not finite, a range is reversed or outside [low, high].
    """
    if is_number(value):
        lo = hi = float(value)  # type: ignore[arg-type]
    else:
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}") from None
        if hi < lo:
            raise ValueError(f"{name} range is reversed: ({lo}, {hi})")
    for v in (lo, hi):
        if not math.isfinite(v) or v < low or v > high:
            raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return lo if lo == hi else float(rng.uniform(lo, hi))


def draw_int(rng: np.random.Generator, value: int | Sequence[int], name: str, *, low: int = 0) -> int:
    """Like :func:`draw` for integers: a pair ``(lo, hi)`` is drawn uniformly, both ends included."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        lo = hi = int(value)
    else:
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            lo, hi = (int(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an int or a (low, high) pair, got {value!r}") from None
    if hi < lo or lo < low:
        raise ValueError(f"{name} must be >= {low} with low <= high, got {value!r}")
    return lo if lo == hi else int(rng.integers(lo, hi + 1))


def smooth_field(rng: np.random.Generator, h: int, w: int, scale: float = 0.25,
                 octaves: int = 2) -> np.ndarray:
    """A smooth random field in [0, 1] of shape ``H x W`` (float32).

    Sum of ``octaves`` cubic-spline upsampled uniform noise grids; the coarsest grid spacing is
    ``scale`` times the shorter image side (the correlation length), each octave halves it and
    weighs half as much. Min-max normalised, so it spans [0, 1] exactly (constant 0.5 when flat).
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    field = np.zeros((h, w), np.float64)
    spacing = scale * min(h, w)
    for k in range(max(1, octaves)):
        gh = max(2, math.ceil(h / max(spacing, 1.0)) + 1)
        gw = max(2, math.ceil(w / max(spacing, 1.0)) + 1)
        coarse = rng.uniform(0.0, 1.0, size=(gh, gw))
        up = ndimage.zoom(coarse, (h / gh, w / gw), order=3, mode="nearest", grid_mode=True)
        up = _fit(up, h, w)
        field += up * 0.5 ** k
        spacing /= 2.0
    lo, hi = field.min(), field.max()
    if hi - lo < 1e-12:
        return np.full((h, w), 0.5, np.float32)
    return ((field - lo) / (hi - lo)).astype(np.float32)


def _fit(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crop or edge-pad ``a`` to exactly ``h x w`` (guards against rounding in ndimage.zoom)."""
    a = a[:h, :w]
    if a.shape != (h, w):
        a = np.pad(a, ((0, h - a.shape[0]), (0, w - a.shape[1])), mode="edge")
    return a


def jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars / arrays and tuples into plain JSON-serialisable values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj
