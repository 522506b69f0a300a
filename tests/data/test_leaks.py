"""The leak finder on synthetic photos: copies (mirrored, rotated, cropped, re-encoded) are found, distinct
images are not, unreadable files are named and counted, the thumbnail cache follows file changes."""
import os

import numpy as np
import pytest
from PIL import Image, ImageOps

from kdrestore.data.leaks import THRESHOLD, find_leaks, folder_items, image_set
from kdrestore.data.thumbs import cache_dir, thumbnails
from kdrestore.errors import KdrestoreError


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDRESTORE_CACHE", str(tmp_path / "cache"))


def photo(seed: int, w: int = 160, h: int = 120) -> Image.Image:
    """A textured RGB picture: blobs at several scales, different for every seed."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3))
    for cells in (4, 8, 16, 32):
        coarse = rng.random((cells * h // w + 1, cells, 3))
        img += np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)) / cells
    img = (img - img.min()) / (img.max() - img.min())
    return Image.fromarray((img * 255).astype(np.uint8))


def save(im: Image.Image, path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def test_copies_are_found_and_distinct_photos_are_not(tmp_path):
    train = tmp_path / "train"
    for i in range(12):
        save(photo(i), train / f"{i:02d}.png")
    w, h = 160, 120
    copies = {  # test file -> the training photo it copies
        "mirrored.jpg": (ImageOps.mirror(photo(1)), 1),
        "rotated.png": (photo(2).transpose(Image.ROTATE_90), 2),
        "border-cut.png": (photo(3).crop((5, 4, w - 5, h - 4)), 3),
        "centre-80.png": (photo(4).crop((16, 12, w - 16, h - 12)), 4),
        "half-size.webp": (photo(5).resize((w // 2, h // 2)), 5),
    }
    test = tmp_path / "test"
    for name, (im, _) in copies.items():
        save(im, test / name, **({"quality": 70} if name.endswith((".jpg", ".webp")) else {}))
    for i in range(100, 106):
        save(photo(i), test / f"new-{i}.png")
    report = find_leaks([image_set(train)], [image_set(test)])
    found = {m.test.name: m for m in report.results[0].matches}
    assert set(found) == set(copies), {n: round(m.score, 3) for n, m in found.items()}
    for name, (_, source) in copies.items():
        assert found[name].train.name == f"{source:02d}.png" and found[name].score >= THRESHOLD
    assert found["mirrored.jpg"].variant.startswith("mirrored")
    assert report.leaked == 5 and report.to_dict()["result"] == "5 leaked"


def test_training_image_cropped_from_the_test_image_is_found(tmp_path):
    save(photo(7).crop((16, 12, 144, 108)), tmp_path / "train" / "crop.png")
    save(photo(8), tmp_path / "train" / "other.png")
    save(photo(7), tmp_path / "test" / "full.png")
    report = find_leaks([image_set(tmp_path / "train")], [image_set(tmp_path / "test")])
    (m,) = report.results[0].matches
    assert m.train.name == "crop.png" and "crop" in m.variant


def test_unreadable_images_are_named_and_counted_not_fatal(tmp_path):
    save(photo(1), tmp_path / "train" / "a.png")
    save(photo(2), tmp_path / "train" / "b.png")
    (tmp_path / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    save(photo(1), tmp_path / "test" / "copy.png")
    (tmp_path / "test" / "empty.jpg").write_bytes(b"")
    report = find_leaks([image_set(tmp_path / "train")], [image_set(tmp_path / "test")])
    assert report.leaked == 1 and report.unreadable == 2
    assert [p.name for p, _ in report.results[0].unreadable] == ["empty.jpg"]
    assert report.train[0]["unreadable"][0]["file"].endswith("broken.png")


def test_nothing_readable_and_empty_folders_are_errors_naming_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(KdrestoreError, match="no images found in .*empty"):
        image_set(tmp_path / "empty")
    with pytest.raises(KdrestoreError, match="not found: .*missing"):
        image_set(tmp_path / "missing")
    save(photo(1), tmp_path / "train" / "a.png")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"junk")
    with pytest.raises(KdrestoreError, match="none of the 1 images of .*bad could be read"):
        find_leaks([image_set(tmp_path / "train")], [image_set(tmp_path / "bad")])


def test_paired_folders_use_their_clean_side_and_nyu_folders_their_rgb(tmp_path):
    pairs = tmp_path / "pairs"
    for i in range(3):
        save(photo(i), pairs / "gt" / f"{i}.png")
        for k in (1, 2):
            save(photo(50 + i * 2 + k), pairs / "hazy" / f"{i}_{k}.png")
    files, note = folder_items(pairs)
    assert [p.parent.name for p in files] == ["gt"] * 6 and "clean side" in note
    assert len(image_set(pairs).paths) == 3  # one per scene, not per hazy image
    nyu = tmp_path / "nyu"
    save(photo(9), nyu / "rgb" / "0001.jpg")
    save(Image.new("L", (40, 30)), nyu / "depth" / "0001.png")
    files, note = folder_items(nyu)
    assert [p.name for p in files] == ["0001.jpg"] and note == "rgb/ of the scenes with a depth map"


def test_holdout_and_limit_select_the_files_a_section_reads(tmp_path):
    for i in range(6):
        save(photo(i, 48, 40), tmp_path / "f" / f"{i}.png")
    names = lambda s: [p.stem for p in s.paths]  # noqa: E731
    assert names(image_set(tmp_path / "f", holdout=2, part="train")) == ["0", "1", "2", "3"]
    assert names(image_set(tmp_path / "f", holdout=2, part="val")) == ["4", "5"]
    assert names(image_set(tmp_path / "f", holdout=2, part="train", limit=3)) == ["0", "1", "2"]
    with pytest.raises(KdrestoreError, match="data.val.holdout"):
        image_set(tmp_path / "f", holdout=6, part="val", where="data.val")


def test_cache_is_reused_and_follows_changed_files(tmp_path):
    folder = tmp_path / "imgs"
    paths = [save(photo(i, 64, 48), folder / f"{i}.png") for i in range(4)]
    first = thumbnails(paths)
    assert first.computed == 4 and len(list(cache_dir().glob("*.npz"))) == 1
    again = thumbnails(paths)
    assert again.computed == 0 and np.allclose(again.scales, first.scales, atol=2e-3)
    save(photo(99, 64, 48), paths[2])  # replaced: new content, size or mtime
    os.utime(paths[2], ns=(1, 1))
    changed = thumbnails(paths)
    assert changed.computed == 1
    assert float(changed.full[2] @ first.full[2]) < THRESHOLD
    assert not list(cache_dir().glob(".*.tmp"))  # written atomically, nothing left behind
