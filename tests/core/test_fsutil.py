import json
import os
import stat

import pytest

from kdrestore.fsutil import atomic_path, atomic_write_json


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path, umask):
    """Not mkstemp's 0600: a file written atomically has the mode ``open(path, 'w')`` would give it."""
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "new.json", {"a": 1})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
        with atomic_path(tmp_path / "via-path.png") as tmp:  # a writer that re-creates the file
            tmp.unlink()
            tmp.write_bytes(b"png")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "via-path.png").stat().st_mode) == expected
    os.chmod(tmp_path / "new.json", 0o640)
    atomic_write_json(tmp_path / "new.json", {"a": 2})
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
