"""The report's real-photo gallery, and the whole page rendered by a real browser (headless Chromium;
skipped where none is installed: ``apt-get install chromium``)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from kdrestore.cli import main
from kdrestore.data import builtin_images, write_image
from kdrestore.models.shipped import PRETRAINED_DIR, read_card, shipped_names
from test_report import SHIP_JSON, _pngs, make_run

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "hazy-photos"
    for name, img in builtin_images("rgb", ["coffee", "chelsea"]):
        write_image(folder / f"{name}.jpg", 0.6 * img[:90, :120] + 0.35)  # a veil over real photos
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_report_gallery_of_real_photos(tmp_path, photos, monkeypatch, capsys):
    monkeypatch.delenv("KDRESTORE_PEERS", raising=False)
    out = tmp_path / "gallery.html"
    assert main(["report", "--photos", f"dehaze={photos}", "-o", str(out), "--peers", str(tmp_path / "none")]) == 0
    html = out.read_text()
    students = [n for n in shipped_names() if read_card(PRETRAINED_DIR / n)["task"] == "dehaze"]
    gallery = re.search(r"<section class='gallery'.*?</section>", html, re.S).group(0)
    assert len(_pngs(gallery)) == 2 * (1 + len(students))  # 2 readable photos x (input + each student)
    assert all(f"<th>{s}</th>" in gallery for s in students)
    assert "broken.png skipped" in gallery and "no PSNR" in gallery
    assert "teacher gcanet not shown" in gallery  # its weights are not in the --peers folder given
    with pytest.raises(SystemExit):
        main(["report", "--photos", f"fog={photos}", "-o", str(out)])


@pytest.mark.skipif(BROWSER is None, reason="no headless browser installed (apt-get install chromium)")
def test_the_report_renders_in_headless_chromium(tmp_path, photos):
    """A real browser renders the page: every image decodes and shows, the SVG plots draw."""
    run = make_run(tmp_path / "run", "run-a")
    bench = tmp_path / "ship.json"
    bench.write_text(json.dumps(SHIP_JSON))
    page = tmp_path / "report.html"
    assert main(["report", str(run), "--bench", str(bench), "--photos", f"dehaze={photos}", "-o", str(page),
                 "--crop", "32", "--no-latency"]) == 0
    shot = tmp_path / "shot.png"
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,4000",
           f"--screenshot={shot}", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<img") == page.read_text().count("<img") >= 8 and dom.count("<svg") >= 2
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (4000, 1400)
    ink = (np.abs(img - 255).sum(axis=2) > 30)
    assert ink.mean() > 0.03  # pictures and plots, not a blank page
    orange = (img[..., 0] > 150) & (img[..., 1] < 140) & (img[..., 2] < 110)  # the coffee / cat photos' warm tones
    assert orange.sum() > 500
    points = (np.abs(img - img[..., :1]).sum(axis=2) > 60).sum()  # coloured pixels: markers, photos
    assert points > 2000
