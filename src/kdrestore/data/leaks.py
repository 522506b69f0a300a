"""Find test images whose scene also appears in training data (a "leak"), by image search.

Every image becomes small grey thumbnails (:mod:`.thumbs`: the whole image and central crops at four
scales, band-passed, zero-mean, unit-norm). A test image is compared, as is, mirrored and rotated by
90/180/270 degrees (the 8 flips and rotations), with every whole training image; its crops with whole
training images and the whole test image with training crops, so a centre-cropped copy on either side is
found too. All of it is one matrix product per block of test images and variant. A test image *leaks*
when its best normalised correlation reaches :data:`THRESHOLD`.

Threshold, measured on ../shared/data (``python benchmarks/leak_scores.py``; 32 x 32 band-passed
thumbnails pooled to 16 x 16): copies of the 118 SOTS-indoor-50 GT and CBSD68 images re-encoded
(JPEG/WebP q50), mirrored, halved, rotated or centre-cropped to 80% score >= 0.998 with their original,
with a 10-px border cut and mirroring >= 0.980, centre-cropped to 90% (between two crop scales, the
worst case) >= 0.959; Rain100H's clean backgrounds score >= 0.995 with the 75 BSDS500 photos and 25
CBSD68 photos they were rendered on. The best match of each of the 230 test images in every training
folder that holds none of its scenes (1,050 searches) scores at most 0.756 (median 0.466).
:data:`THRESHOLD` = 0.85 sits between the two. Degraded images are not a reliable probe (heavy rain over
its own clean image: as low as 0.35; haze: 0.71), which is why paired folders are compared on their
clean side (``gt``, ``norain``, ``cleancrop``, ...), folders of clean images as they are, and an
NYU-style folder (``rgb/`` + ``depth/``) on ``rgb/``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import KdrestoreError
from .holdout import Part, holdout_split
from .imageio import list_images
from .pairing import detect_layout, find_pairs
from .thumbs import FEATURE, Thumbnails, thumbnails

THRESHOLD = 0.85  # midway between distinct photos (<= 0.756) and copies (>= 0.959): see the module docstring
_VARIANTS = ("as is", "rot90", "rot180", "rot270", "mirrored", "mirrored+rot90", "mirrored+rot180", "mirrored+rot270")


@dataclass
class ImageSet:
    """The files of one data section, named for the reader (``label``) with how they were found (``note``)."""

    label: str
    paths: list[Path]
    note: str = ""


def folder_items(folder: str | os.PathLike[str], rule: str = "auto", *, pairs_first: bool = True
                 ) -> tuple[list[Path], str]:
    """The clean image of every item of ``folder``: one per pair of a paired layout (clean side), one
    per image of a folder of clean images, or of its ``rgb/`` subfolder (NYU-style ``rgb/`` + ``depth/``).
    ``pairs_first=False`` (a synthetic set's source folder) takes images directly in ``folder`` first.

    An empty or missing folder raises :class:`KdrestoreError` naming it.
    """
    d = Path(folder)
    if not d.is_dir():
        raise KdrestoreError(f"image folder not found: {d}")
    images = [] if pairs_first else list_images(d)
    if images:
        return images, "images"
    has_subfolders = any(e.is_dir() for e in os.scandir(d))  # detect_layout stats every entry: skip it if none
    if has_subfolders and detect_layout(d) is not None:
        return [clean for _, clean in find_pairs(d, rule=rule)], "clean side of the pairs"
    images, note = list_images(d), "images"
    if not images and (d / "rgb").is_dir() and (d / "depth").is_dir():  # the scenes the NYU reader pairs
        from .nyu import find_nyu_scenes

        images, note = [s.rgb for s in find_nyu_scenes(d).scenes], "rgb/ of the scenes with a depth map"
    elif not images and (d / "rgb").is_dir():
        images, note = list_images(d / "rgb"), "rgb/ subfolder"
    if not images:
        raise KdrestoreError(f"no images found in {d} (nor a paired layout or an rgb/ subfolder)")
    return images, note


def image_set(folder: str | os.PathLike[str], *, label: str | None = None, rule: str = "auto",
              holdout: int | None = None, part: Part = "train", limit: int | None = None,
              where: str = "data", pairs_first: bool = True) -> ImageSet:
    """The clean images a data section reads from ``folder``: its items less (``part='train'``) or only
    (``part='val'``) the last ``holdout``, then the first ``limit``, as the data sets do."""
    items, note = folder_items(folder, rule, pairs_first=pairs_first)
    items = holdout_split(items, holdout, part, where)
    if limit is not None:
        items = items[:limit]
    if holdout is not None:
        note += f", {'all but' if part == 'train' else 'only'} the last {holdout}"
    if limit is not None:
        note += f", first {limit}"
    unique = list(dict.fromkeys(items))  # SOTS-style sets pair several hazy images with one clean image
    return ImageSet(label or str(folder), unique, note)


@dataclass
class Match:
    test: Path
    train: Path
    score: float
    variant: str  # how the test image was turned to match (e.g. "mirrored", "crop of the training image")


@dataclass
class SetResult:
    """One test set against all training sets."""

    label: str
    note: str
    images: int
    matches: list[Match]
    highest: float  # the best score of any test image (a leak or not)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        return {"test": self.label, "note": self.note, "images": self.images, "leaked": len(self.matches),
                "highest_score": round(self.highest, 4),
                "matches": [{"test": relative(m.test, root), "train": relative(m.train, root),
                             "score": round(m.score, 4), "variant": m.variant} for m in self.matches],
                "unreadable": [{"file": relative(p, root), "reason": r} for p, r in self.unreadable]}


@dataclass
class LeakReport:
    threshold: float
    train: list[dict[str, Any]]  # label, note, images, unreadable
    results: list[SetResult]

    @property
    def leaked(self) -> int:
        return sum(len(r.matches) for r in self.results)

    @property
    def unreadable(self) -> int:
        return sum(len(r.unreadable) for r in self.results) + sum(len(t["unreadable"]) for t in self.train)

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        """Plain data; file names relative to ``root`` when they lie under it."""
        train = [{**t, "unreadable": [{**u, "file": relative(u["file"], root)} for u in t["unreadable"]]}
                 for t in self.train]
        return {"threshold": self.threshold, "result": "clean" if not self.leaked else f"{self.leaked} leaked",
                "train": train, "tests": [r.to_dict(root) for r in self.results]}


def relative(path: str | os.PathLike[str], root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX style) when it lies under it, else as given."""
    p = Path(path)
    if root is not None:
        try:
            return p.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return str(p)


def _dihedral(flat: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of N x FEATURE*FEATURE thumbnails, in :data:`_VARIANTS` order."""
    sq = flat.reshape(-1, FEATURE, FEATURE)
    out = []
    for mirrored in (False, True):
        base = sq[:, :, ::-1] if mirrored else sq
        out += [np.ascontiguousarray(np.rot90(base, k, axes=(1, 2))).reshape(len(flat), -1) for k in range(4)]
    return out


def best_matches(test: Thumbnails, train: Thumbnails, block: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per test image: ``(best score, index of the training image, variant index)``.

    Variants 0-7: the whole test image turned (see :data:`_VARIANTS`) against whole training images;
    8: the whole test image, as is or mirrored, against the central crops of training images ("a crop
    of the training image"); 9: the test image's central crops, as is or mirrored, against whole training
    images ("the training image is a crop of it").
    """
    n, m = len(test.paths), len(train.paths)
    best = np.full(n, -1.0, np.float32)
    where = np.zeros(n, np.int64)
    how = np.zeros(n, np.int64)
    if n == 0 or m == 0:
        return best, where, how
    gallery_full = np.ascontiguousarray(train.scales[:, 0])
    gallery_crops = np.ascontiguousarray(train.scales[:, 1:]).reshape(-1, train.scales.shape[2])  # m*(K-1) rows
    crops_per_image = train.scales.shape[1] - 1
    for lo in range(0, n, block):
        full, crops = test.scales[lo:lo + block, 0], test.scales[lo:lo + block, 1:]
        turned = _dihedral(full)
        crops = crops.reshape(-1, crops.shape[-1])  # b*(K-1) rows
        candidates = [(v, q, gallery_full, 1, 1) for v, q in enumerate(turned)]
        candidates += [(8, q, gallery_crops, 1, crops_per_image) for q in (full, turned[4])]
        mirrored_crops = np.ascontiguousarray(crops.reshape(-1, FEATURE, FEATURE)[:, :, ::-1]).reshape(len(crops), -1)
        candidates += [(9, q, gallery_full, crops_per_image, 1) for q in (crops, mirrored_crops)]
        for variant, q, g, q_rows, g_rows in candidates:
            s = q @ g.T  # normalised correlations
            if q_rows > 1:  # several crops per test image: keep each image's best
                s = s.reshape(-1, q_rows, s.shape[1]).max(axis=1)
            if g_rows > 1:  # several crops per training image
                s = s.reshape(s.shape[0], -1, g_rows).max(axis=2)
            j = s.argmax(axis=1)
            v = s[np.arange(len(s)), j]
            rows = slice(lo, lo + len(s))
            better = v > best[rows]
            best[rows] = np.where(better, v, best[rows])
            where[rows] = np.where(better, j, where[rows])
            how[rows] = np.where(better, variant, how[rows])
    return best, where, how


def _variant_name(i: int) -> str:
    return _VARIANTS[i] if i < 8 else ("a crop of the training image" if i == 8 else "the training image is a crop of it")


def find_leaks(train: Sequence[ImageSet], tests: Sequence[ImageSet], threshold: float = THRESHOLD,
               *, cache: bool = True, workers: int = 2) -> LeakReport:
    """Every image of ``tests`` whose scene appears in any of ``train`` (score >= ``threshold``);
    ``workers``: threads decoding images missing from the thumbnail cache."""
    if not train:
        raise KdrestoreError("no training images to compare (no training set given)")
    train_summary, paths = [], []
    for s in train:
        if not s.paths:
            raise KdrestoreError(f"no images in {s.label}")
        paths += s.paths
    gallery = thumbnails(list(dict.fromkeys(paths)), cache=cache, workers=workers)
    if not gallery.paths:
        raise KdrestoreError(f"none of the {len(paths)} training images could be read, e.g. "
                             f"{gallery.failed[0][0]}: {gallery.failed[0][1]}")
    bad = {p: r for p, r in gallery.failed}
    for s in train:
        train_summary.append({"label": s.label, "note": s.note, "images": len(s.paths),
                              "unreadable": [{"file": str(p), "reason": bad[p]} for p in s.paths if p in bad]})
    results = []
    for s in tests:
        if not s.paths:
            raise KdrestoreError(f"no images in {s.label}")
        probe = thumbnails(s.paths, cache=cache, workers=workers)
        if not probe.paths:
            raise KdrestoreError(f"none of the {len(s.paths)} images of {s.label} could be read, e.g. "
                                 f"{probe.failed[0][0]}: {probe.failed[0][1]}")
        best, where, how = best_matches(probe, gallery)
        matches = [Match(probe.paths[i], gallery.paths[where[i]], float(best[i]), _variant_name(int(how[i])))
                   for i in np.flatnonzero(best >= threshold)]
        matches.sort(key=lambda mt: -mt.score)
        results.append(SetResult(s.label, s.note, len(s.paths), matches, float(best.max()) if len(best) else 0.0,
                                 probe.failed))
    return LeakReport(threshold, train_summary, results)
