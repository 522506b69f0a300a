"""A default data set that needs no download: the sample photographs shipped inside scikit-image.

Only files present in the installed ``skimage/data/`` folder are used (skimage's download
fetchers are never called). Left out: ``motorcycle_right`` (the scene of ``motorcycle_left``,
a test image), synthetic or binary pictures (chessboard, color, horse, logo, phantom), the
motion-blurred ``clock_motion`` and the multi-frame TIFF/GIF samples.

``motorcycle_left`` comes with a real stereo disparity map (``motorcycle_disp.npz``); its
depth (``min disparity / disparity``, farthest pixel = 1, unknown pixels filled from their
nearest known neighbour) is passed to the haze synthesis as ``depth=``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from scipy import ndimage

from .imageio import Mode, read_image
from .paired import CropSize
from .synth import SynthDataset

Task = Literal["denoise", "derain", "dehaze"]
FILES: dict[str, str] = {
    "astronaut": "astronaut.png", "brick": "brick.png", "camera": "camera.png",
    "cell": "cell.png", "chelsea": "chelsea.png", "coffee": "coffee.png", "coins": "coins.png",
    "grass": "grass.png", "gravel": "gravel.png", "hubble_deep_field": "hubble_deep_field.jpg",
    "ihc": "ihc.png", "moon": "moon.png", "motorcycle_left": "motorcycle_left.png",
    "page": "page.png", "retina": "retina.jpg", "rocket": "rocket.jpg", "text": "text.png",
}
TEST_NAMES: tuple[str, ...] = ("astronaut", "camera", "chelsea", "coffee", "motorcycle_left")
TRAIN_NAMES: tuple[str, ...] = ("brick", "cell", "coins", "grass", "gravel", "hubble_deep_field",
                                "ihc", "moon", "page", "retina", "rocket", "text")
COLOR_NAMES = frozenset({"astronaut", "chelsea", "coffee", "motorcycle_left", "hubble_deep_field",
                         "ihc", "retina", "rocket"})
# task -> (degradation, params, mode); colour tasks use only the colour images of a split
TASKS: dict[str, tuple[str, dict[str, Any], Mode]] = {
    "denoise": ("awgn", {"sigma": 25.0}, "gray"),
    "derain": ("rain-heavy", {}, "rgb"),
    "dehaze": ("haze", {"beta": (1.0, 1.5)}, "rgb"),
}


def builtin_dir() -> Path | None:
    """The installed ``skimage/data`` folder, or None without scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def available_names() -> list[str]:
    """The built-in image names whose files exist locally (split order: test, then train)."""
    d = builtin_dir()
    return [n for n in TEST_NAMES + TRAIN_NAMES if d is not None and (d / FILES[n]).is_file()]


def split_names(split: str, color_only: bool = False) -> list[str]:
    """Locally available names of the ``'train'`` or ``'test'`` split (disjoint)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    wanted = TEST_NAMES if split == "test" else TRAIN_NAMES
    return [n for n in available_names() if n in wanted and (not color_only or n in COLOR_NAMES)]


def builtin_images(mode: Mode | None = "rgb", names: Sequence[str] | None = None
                   ) -> list[tuple[str, np.ndarray]]:
    """``[(name, float32 H x W x C image)]``; ``names=None``: every locally available image."""
    avail = available_names()
    if names is None:
        names = avail
    missing = [n for n in names if n not in avail]
    if missing:
        raise ValueError(f"built-in images not available here: {missing}; available: {avail}")
    d = builtin_dir()
    assert d is not None
    return [(n, read_image(d / FILES[n], mode)) for n in names]


def builtin_depth(name: str) -> np.ndarray | None:
    """Normalized depth (H x W, farthest = 1) for a built-in image that has one, else None."""
    d = builtin_dir()
    if name != "motorcycle_left" or d is None or not (d / "motorcycle_disp.npz").is_file():
        return None
    with np.load(d / "motorcycle_disp.npz") as z:
        disp = np.asarray(z[z.files[0]], np.float64)
    valid = np.isfinite(disp) & (disp > 0)
    if not valid.any():
        return None
    _, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
    disp = disp[iy, ix]  # nearest known disparity for unknown pixels
    return (disp.min() / disp).astype(np.float32)


def builtin_dataset(task: Task, split: str = "test", *, names: Sequence[str] | None = None,
                    params: dict[str, Any] | None = None, mode: Mode | None = None,
                    crop: CropSize = None, augment: bool = False, limit: int | None = None,
                    seed: int = 0, fixed: bool | None = None, context: int | None = None) -> SynthDataset:
    """A :class:`SynthDataset` of built-in images with the task's default degradation.

    denoise: AWGN sigma 25 (0-255 scale) on gray images; derain: ``rain-heavy``; dehaze:
    ``haze`` with beta drawn in [1.0, 1.5] (motorcycle_left with its real depth). Colour tasks
    use only the colour images of the split. ``params`` update the defaults; ``fixed``
    defaults to True for the test split and False for train.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    degradation, defaults, task_mode = TASKS[task]
    mode = mode or task_mode
    if names is None:
        names = split_names(split, color_only=task_mode == "rgb")
    images = builtin_images(mode, names)
    per_image: dict[str, dict[str, Any]] = {}
    if task == "dehaze":
        for n, _ in images:
            depth = builtin_depth(n)
            if depth is not None:
                per_image[n] = {"depth": depth}
    return SynthDataset(images, degradation, {**defaults, **(params or {})}, mode=mode, crop=crop,
                        augment=augment, limit=limit, seed=seed,
                        fixed=(split == "test") if fixed is None else fixed, per_image=per_image, context=context)
