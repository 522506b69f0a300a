"""NYU-Depth-v2 indoor scenes (RGB + measured depth) and RESIDE-ITS haze synthesised on them.

Layout (``train/NYUv2-indoor``): ``rgb/NNNN.jpg`` (640 x 480) with ``depth/NNNN.png`` (8-bit, stored at
320 x 240; value / 25.5 is about metres, 0.7-10 m). Scenes pair by stem; a scene missing one of the two
files is named in a warning and skipped (the count is in :attr:`NYUScenes.skipped`). The depth map is
resized (bilinear) to the image's size; the stored half size is the documented layout, any other size is
resized with a warning, never used misaligned. The 10-px border (white, unfilled by the depth
registration) is cropped as SOTS does (620 x 460).

Haze (RESIDE-ITS, Li et al., "Benchmarking Single-Image Dehazing and Beyond", IEEE TIP 2019, sec. III-A):
``I = J t + A (1 - t)``, ``t = exp(-beta d)``, with ``beta`` in [0.6, 1.8] and ``A`` in [0.7, 1.0] drawn per
image. ``depth_units``: ``normalized`` divides each image's depth by its own maximum (over the whole image,
before cropping: RESIDE's beta range only matches SOTS's haze that way, see ../shared/README.md) or
``metres`` (value / ``depth_scale``; the haze is then far denser than SOTS's for the same beta).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .imageio import ImageReadError, PathLike, list_images, natural_key
from .paired import _crop_hw, dihedral, random_window, to_tensor

DEPTH_PER_METRE = 25.5  # 8-bit depth value per metre (../shared/README.md: value / 25.5 ~ metres)
ITS_BETA = (0.6, 1.8)  # RESIDE-ITS scattering coefficient range (Li et al., TIP 2019)
ITS_AIRLIGHT = (0.7, 1.0)  # RESIDE-ITS atmospheric light range (same source)
DepthUnits = Literal["normalized", "metres"]


@dataclass
class NYUScene:
    name: str
    rgb: Path
    depth: Path


@dataclass
class NYUScenes:
    """The paired scenes of a folder, in natural order, and the files skipped (name -> reason)."""

    scenes: list[NYUScene]
    skipped: dict[str, str] = field(default_factory=dict)


def find_nyu_scenes(root: PathLike) -> NYUScenes:
    """Pair ``root/rgb/*`` with ``root/depth/*`` by stem; unpaired files are named and skipped."""
    root = Path(root)
    for sub in ("rgb", "depth"):
        if not (root / sub).is_dir():
            raise ImageReadError(root / sub, "no such folder (an NYU folder holds rgb/ and depth/)")
    rgb = {p.stem: p for p in list_images(root / "rgb")}
    depth = {p.stem: p for p in list_images(root / "depth")}
    skipped = {s: f"rgb {rgb[s].name} has no depth map" for s in rgb if s not in depth}
    skipped.update({s: f"depth {depth[s].name} has no rgb image" for s in depth if s not in rgb})
    if skipped:
        names = ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items())[:5])
        warnings.warn(f"{root}: skipped {len(skipped)} unpaired scene(s): {names}"
                      + (" ..." if len(skipped) > 5 else ""), stacklevel=2)
    stems = sorted(set(rgb) & set(depth), key=natural_key)
    return NYUScenes([NYUScene(s, rgb[s], depth[s]) for s in stems], skipped)


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"{type(exc).__name__}: {exc}") from exc


def read_scene(scene: NYUScene, border: int = 10, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """RGB (uint8 H x W x 3) and depth (float32 H x W, the file's 8-bit units) aligned, border cropped.

    ``scale`` < 1 shrinks both (area-averaged RGB, bilinear depth) after the border crop.
    """
    rgb_im = _open(scene.rgb, "RGB")
    depth_im = _open(scene.depth, "F")
    w, h = rgb_im.size
    dw, dh = depth_im.size
    if (dw, dh) != (w, h):
        if (2 * dw, 2 * dh) != (w, h):  # the stored half size is the documented layout
            warnings.warn(f"{scene.depth}: depth map is {dw} x {dh}, image {scene.rgb.name} is {w} x {h}: "
                          "resized to the image", stacklevel=2)
        depth_im = depth_im.resize((w, h), Image.BILINEAR)
    if 2 * border >= min(w, h):
        raise ValueError(f"border {border} leaves nothing of the {w} x {h} image {scene.rgb}")
    box = (border, border, w - border, h - border)
    rgb_im, depth_im = rgb_im.crop(box), depth_im.crop(box)
    if scale != 1.0:
        size = (max(1, round((w - 2 * border) * scale)), max(1, round((h - 2 * border) * scale)))
        rgb_im, depth_im = rgb_im.resize(size, Image.BOX), depth_im.resize(size, Image.BILINEAR)
    return np.asarray(rgb_im, np.uint8), np.asarray(depth_im, np.float32)


def depth_divisor(depth: np.ndarray, units: DepthUnits, depth_scale: float = DEPTH_PER_METRE) -> float:
    """What :func:`scaled_depth` divides ``depth`` by: file units per metre, or the image's own maximum."""
    if units == "metres":
        return float(depth_scale)
    if units == "normalized":
        m = float(depth.max())
        return m if m > 0 else 1.0
    raise ValueError(f"depth_units must be 'normalized' or 'metres', got {units!r}")


def scaled_depth(depth: np.ndarray, units: DepthUnits, depth_scale: float = DEPTH_PER_METRE) -> np.ndarray:
    """Depth in metres (``metres``) or divided by the image's own maximum (``normalized``)."""
    return depth / depth_divisor(depth, units, depth_scale)


class NYUHazeDataset(Dataset):
    """NYU scenes hazed on the fly by the RESIDE-ITS model; items as :class:`SynthDataset`'s.

    ``{'input': hazy, 'target': clean, 'name', 'params'}`` (C x H x W float tensors). Depth is scaled over
    the whole (border-cropped) image, then cropped and augmented with the image, then the haze is drawn
    (``beta``, ``airlight``: a number or a ``(lo, hi)`` range drawn per sample). Seeding as SynthDataset:
    ``fixed`` (validation) keys each item by ``(seed, index)``, training by ``(seed, epoch, index)``.

    Cache: the decoded, border-cropped uint8 RGB and the aligned depth (rounded to uint8 at the image's size)
    are kept in memory once read (the depth is rounded to 8 bits whether cached or not): about 1.14 MB per scene at full size (620 x 460), 0.29 MB at
    ``scale=0.5``; without it every sample decodes a 640 x 480 JPEG and resizes a depth map.
    """

    def __init__(self, scenes: Sequence[NYUScene], *, beta: Any = ITS_BETA, airlight: Any = ITS_AIRLIGHT,
                 depth_units: DepthUnits = "normalized", depth_scale: float = DEPTH_PER_METRE,
                 border: int = 10, scale: float = 1.0, crop: Any = None, augment: bool = False,
                 limit: int | None = None, seed: int = 0, fixed: bool = True, cache: bool = True,
                 mode: str = "rgb") -> None:
        if mode != "rgb":
            raise ValueError(f"NYU haze is colour only (mode 'rgb'), got mode {mode!r}")
        scaled_depth(np.ones((1, 1), np.float32), depth_units, depth_scale)  # validates the units early
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        self.scenes = list(scenes)[:limit] if limit is not None else list(scenes)
        self.beta, self.airlight = beta, airlight
        self.depth_units, self.depth_scale = depth_units, float(depth_scale)
        self.border, self.scale, self.crop, self.augment = int(border), float(scale), _crop_hw(crop), augment
        self.seed, self.fixed, self.epoch, self.cache = int(seed), fixed, None, cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.scenes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        key = [self.seed, index] if self.fixed or self.epoch is None else [self.seed, self.epoch, index]
        return np.random.default_rng(key)

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB and depth (file units) of scene ``index``, aligned and border-cropped."""
        if index in self._cache:
            rgb, depth = self._cache[index]
            return rgb, depth.astype(np.float32)
        rgb, depth = read_scene(self.scenes[index], self.border, self.scale)
        depth8 = np.clip(np.rint(depth), 0, 255).astype(np.uint8)  # the same values cached or not
        if self.cache:
            self._cache[index] = (rgb, depth8)
        return rgb, depth8.astype(np.float32)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..degrade.haze import add_haze

        rgb, depth = self.scene(index)
        d = scaled_depth(depth, self.depth_units, self.depth_scale)
        rng = self.rng(index)
        arrays = [rgb, d[:, :, None]]
        if self.crop is not None:
            arrays = random_window(arrays, self.crop, rng)
        if self.augment:
            arrays = dihedral(arrays, int(rng.integers(0, 8)))
        clean = np.ascontiguousarray(arrays[0], np.float32) / 255.0
        out = add_haze(clean, rng, depth=np.ascontiguousarray(arrays[1][:, :, 0]), depth_units="metres",
                       beta=self.beta, airlight=self.airlight)  # depth already scaled: used as is
        params = {"degradation": "haze", "beta": out.params["beta"], "airlight": float(out.params["airlight"][0]),
                  "depth_units": self.depth_units, "t_mean": out.params["t_mean"]}
        return {"input": to_tensor(out.degraded), "target": to_tensor(clean), "name": self.scenes[index].name,
                "params": params}


NYU_HAZE_PARAMS = ("beta", "airlight", "depth_units", "depth_scale", "border", "scale")


def nyu_haze_dataset(path: PathLike, params: dict[str, Any], *, holdout: int | None, train: bool,
                     crop: Any, augment: bool, limit: int | None, seed: int, where: str) -> NYUHazeDataset:
    """The ``kind: nyu-haze`` data set of a recipe section (``where`` names it in errors)."""
    from ..errors import KdrestoreError
    from .holdout import holdout_split

    unknown = sorted(set(params) - set(NYU_HAZE_PARAMS))
    if unknown:
        raise KdrestoreError(f"{where}.params: unknown key(s) {unknown} for nyu-haze (known: {list(NYU_HAZE_PARAMS)})")
    found = find_nyu_scenes(path)
    if not found.scenes:
        raise KdrestoreError(f"{where}.path: no paired rgb/depth scenes in {path}")
    scenes = holdout_split(found.scenes, holdout, "train" if train else "val", where)
    try:
        return NYUHazeDataset(scenes, crop=crop, augment=augment, limit=limit, seed=seed, fixed=not train,
                              **params)
    except (TypeError, ValueError) as exc:
        raise KdrestoreError(f"{where}.params: {exc}") from exc
