"""The README's own commands write outputs that git must not pick up."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_outputs() -> set[str]:
    """Everything the README's `kdrestore ...` commands write: -o/--output targets and the demo folder."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    outs = {"kdrestore-demo/"}  # `kdrestore demo` without -o
    for line in text.splitlines():
        for cmd in re.findall(r"kdrestore (?:demo|restore|report|export)\b[^`|&]*", line):
            outs |= {m.rstrip("/") + ("/" if "restore" in cmd.split()[1] else "")
                     for m in re.findall(r"(?:-o|--output) ([\w./-]+)", cmd) if not m.isupper()}  # OUT: a placeholder
    return outs


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_readme_outputs_are_ignored():
    outs = readme_outputs()
    assert {"kdrestore-demo/", "restored/", "report.html"} <= outs
    probe = sorted(o + "x.png" if o.endswith("/") else o for o in outs)
    found = subprocess.run(["git", "check-ignore", "--no-index", *probe], cwd=REPO, capture_output=True, text=True)
    assert sorted(found.stdout.split()) == probe, f"not ignored: {set(probe) - set(found.stdout.split())}"
