"""One exit-code convention: 0 done, 1 the command ran and its result is a failure, 2 a user error."""
from __future__ import annotations

import pytest

from kdrestore.cli import main


@pytest.mark.parametrize("argv, words", [
    (["train"], "give a CONFIG file, or --resume RUN_DIR"),
    (["distill", "{recipe}"], "has no 'distill' section"),
    (["train", "{recipe}", "--resume", "{tmp}", "--init-from", "x"], "--init-from starts a new run"),
])
def test_user_errors_exit_2_with_one_error_line(tmp_path, capsys, argv, words):
    recipe = tmp_path / "plain.yaml"
    recipe.write_text("model: {name: unet-tiny}\ntrain: {steps: 1}\n")
    argv = [a.format(recipe=recipe, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"kdrestore {argv[0]}: error: ") and words in err[0]


@pytest.mark.parametrize("argv", [["train", "--no-such-option"], ["report", "--photos", "fog=photos/"]])
def test_a_usage_error_of_argparse_is_also_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_a_failed_outcome_exits_1(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    assert main(["degrade", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-d", "awgn"]) == 1
