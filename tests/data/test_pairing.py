"""Pairing rules and layout detection on small fake folders."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdrestore.data import PairingError, UnpairedWarning, detect_layout, find_pairs, get_rule


@pytest.fixture
def shared_data(request: pytest.FixtureRequest) -> Path:
    """tests/conftest.py's ``data_dir`` when there is one, else KDRESTORE_DATA or ../shared/data."""
    try:
        return Path(request.getfixturevalue("data_dir"))
    except pytest.FixtureLookupError:
        pass
    env = os.environ.get("KDRESTORE_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set KDRESTORE_DATA)")
    return root


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / n)


def _names(pairs: list[tuple[Path, Path]]) -> list[tuple[str, str]]:
    return [(f"{d.parent.name}/{d.name}", f"{c.parent.name}/{c.name}") for d, c in pairs]


def test_sots_layout(tmp_path: Path) -> None:
    _touch(tmp_path / "hazy", "1400_1.png", "1400_10.png", "1401_4.png")
    _touch(tmp_path / "gt", "1400.png", "1401.png")
    assert detect_layout(tmp_path) == (tmp_path / "hazy", tmp_path / "gt", "sots")
    assert _names(find_pairs(tmp_path)) == [("hazy/1400_1.png", "gt/1400.png"),
                                            ("hazy/1400_10.png", "gt/1400.png"),
                                            ("hazy/1401_4.png", "gt/1401.png")]


def test_sots_outdoor_names_and_mixed_extensions(tmp_path: Path) -> None:
    _touch(tmp_path / "HAZY", "0001_0.8_0.2.jpg")
    _touch(tmp_path / "GT", "0001.png")
    assert _names(find_pairs(tmp_path)) == [("HAZY/0001_0.8_0.2.jpg", "GT/0001.png")]


def test_rain100l_and_rain100h_layouts(tmp_path: Path) -> None:
    _touch(tmp_path / "l" / "rain", "rain-001.png", "rain-002.png")
    _touch(tmp_path / "l" / "norain", "norain-001.png", "norain-002.png")
    assert _names(find_pairs(tmp_path / "l", rule="rain100l")) == [
        ("rain/rain-001.png", "norain/norain-001.png"), ("rain/rain-002.png", "norain/norain-002.png")]
    assert len(find_pairs(tmp_path / "l")) == 2
    _touch(tmp_path / "h" / "inputcrop", "1.png", "2.png", "10.png")
    _touch(tmp_path / "h" / "cleancrop", "1.png", "2.png", "10.png")
    pairs = find_pairs(tmp_path / "h")
    assert [d.name for d, _ in pairs] == ["1.png", "2.png", "10.png"]  # natural order
    assert all(d.name == c.name for d, c in pairs)
    assert get_rule("rain100h").clean_stem("norain-5x2") == "norain-5"


@pytest.mark.parametrize("deg,clean", [("input", "target"), ("degraded", "clean"), ("lq", "gt")])
def test_same_name_layouts(tmp_path: Path, deg: str, clean: str) -> None:
    _touch(tmp_path / deg, "a.png", "b.png")
    _touch(tmp_path / clean, "a.png", "b.png")
    assert _names(find_pairs(tmp_path)) == [(f"{deg}/a.png", f"{clean}/a.png"),
                                            (f"{deg}/b.png", f"{clean}/b.png")]


def test_explicit_folders_and_auto_rule(tmp_path: Path) -> None:
    _touch(tmp_path / "x", "1400_1.png", "1401_7.png")
    _touch(tmp_path / "y", "1400.png", "1401.png")
    assert len(find_pairs(tmp_path / "x", tmp_path / "y")) == 2  # auto picks sots


def test_rain100l_side_by_side_in_one_folder(tmp_path: Path) -> None:
    _touch(tmp_path, "rain-001.png", "norain-001.png", "rain-002.png", "norain-002.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pairs = find_pairs(tmp_path, tmp_path)
    assert [(d.name, c.name) for d, c in pairs] == [("rain-001.png", "norain-001.png"),
                                                    ("rain-002.png", "norain-002.png")]


def test_regex_rule(tmp_path: Path) -> None:
    _touch(tmp_path / "in", "img7_noisy.png", "img8_noisy.png")
    _touch(tmp_path / "ref", "img7.png", "img8.png")
    pairs = find_pairs(tmp_path / "in", tmp_path / "ref", rule=r"regex:(img\d+)_noisy=>\1")
    assert [(d.name, c.name) for d, c in pairs] == [("img7_noisy.png", "img7.png"),
                                                    ("img8_noisy.png", "img8.png")]
    assert get_rule(r"regex:(\d+)_\d+=>\1").clean_stem("1400_10") == "1400"
    assert get_rule(r"regex:(?P<id>\d+)_\d+=>sample-\g<id>").clean_stem("3_1") == "sample-3"
    with pytest.raises(PairingError, match="invalid pattern"):
        get_rule("regex:([=>x")
    with pytest.raises(PairingError, match="PATTERN=>TEMPLATE"):
        get_rule("regex:abc")
    with pytest.raises(PairingError, match="unknown pairing rule 'nope'"):
        get_rule("nope")


def test_mismatch_error_names_rule_folders_and_examples(tmp_path: Path) -> None:
    _touch(tmp_path / "hazy", "a_1.png", "b_1.png", "c_1.png", "d_1.png")
    _touch(tmp_path / "gt", "x.png", "y.png", "z.png", "w.png")
    with pytest.raises(PairingError) as info:
        find_pairs(tmp_path, rule="sots")
    msg = str(info.value)
    assert "'sots'" in msg and str(tmp_path / "hazy") in msg and str(tmp_path / "gt") in msg
    assert "a_1.png, b_1.png, c_1.png" in msg and "d_1.png" not in msg
    assert "w.png, x.png, y.png" in msg
    with pytest.raises(PairingError, match="matched no images"):
        find_pairs(tmp_path)  # auto: every rule tried


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "foo").mkdir()
    with pytest.raises(PairingError, match="no known paired layout.*foo"):
        find_pairs(tmp_path)


def test_unpaired_images_are_warned_about(tmp_path: Path) -> None:
    _touch(tmp_path / "input", "a.png", "b.png", "orphan.png")
    _touch(tmp_path / "target", "a.png", "b.png")
    with pytest.warns(UnpairedWarning, match="1 of 3 .*orphan.png"):
        pairs = find_pairs(tmp_path)
    assert len(pairs) == 2
    with pytest.raises(PairingError, match="orphan.png"):
        find_pairs(tmp_path, strict=True)


def test_real_benchmarks_pair_automatically(shared_data: Path) -> None:
    for sub, n in [("dehaze/SOTS-indoor-50", 50), ("derain/Rain100H", 100),
                   ("train/Rain100L-train", 200)]:
        if not (shared_data / sub).is_dir():
            pytest.skip(f"{sub} not in {shared_data}")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pairs = find_pairs(shared_data / sub)
        assert len(pairs) == n, sub
        assert len({d for d, _ in pairs}) == n
