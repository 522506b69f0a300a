"""The report's SVG charts: one marker per point at the right relative place, valid XML, sane ticks."""
import math
import xml.etree.ElementTree as ET

from kdrestore.experiments.svg import Point, _range, _ticks, line_chart, scatter

NS = {"s": "http://www.w3.org/2000/svg"}


def _points(svg: str) -> dict[str, dict[str, float]]:
    root = ET.fromstring(svg)
    out = {}
    for g in root.iterfind(".//s:g[@class='point']", NS):
        c = g.find("s:circle", NS)
        out[g.get("data-label")] = {k: float(c.get(k)) for k in ("cx", "cy", "r")}
    return out


def test_scatter_places_one_marker_per_point_in_order():
    pts = [Point(10.0, 30.0, "fast-good", "student", 1e4), Point(1000.0, 31.0, "slow-better", "peer", 7e5),
           Point(100.0, 20.0, "mid-bad", "peer", 1.7e3)]
    got = _points(scatter(pts, x_label="ms", y_label="PSNR", log_x=True))
    assert set(got) == {"fast-good", "slow-better", "mid-bad"}
    assert got["fast-good"]["cx"] < got["mid-bad"]["cx"] < got["slow-better"]["cx"]
    # log x: 10 -> 100 -> 1000 are equal steps
    assert math.isclose(got["mid-bad"]["cx"] - got["fast-good"]["cx"],
                        got["slow-better"]["cx"] - got["mid-bad"]["cx"], rel_tol=1e-3)
    assert got["slow-better"]["cy"] < got["fast-good"]["cy"] < got["mid-bad"]["cy"]  # SVG y grows downwards
    assert got["slow-better"]["r"] > got["fast-good"]["r"] > got["mid-bad"]["r"]  # area ~ parameters


def test_scatter_drops_unplottable_points_and_escapes_labels():
    pts = [Point(math.nan, 30.0, "no latency"), Point(-1.0, 30.0, "negative"), Point(5.0, 25.0, "a<b&c")]
    svg = scatter(pts, x_label="x", y_label="y", log_x=True)
    assert set(_points(svg)) == {"a<b&c"}  # parsed back from valid XML
    assert "no data" in scatter([], x_label="x", y_label="y", title="empty")


def test_line_chart_draws_a_polyline_per_series():
    svg = line_chart({"loss": [(1, 0.5), (2, 0.2), (3, 0.1)], "l1": [(1, 0.0), (2, 0.3)]},
                     x_label="step", y_label="loss", log_y=True)
    lines = ET.fromstring(svg).findall(".//s:polyline", NS)
    assert [p.get("data-label") for p in lines] == ["loss", "l1"]
    assert len(lines[1].get("points").split()) == 1  # the zero cannot sit on a log axis
    ys = [float(xy.split(",")[1]) for xy in lines[0].get("points").split()]
    assert ys[0] < ys[1] < ys[2]  # falling loss goes down the chart


def test_log_ticks_exist_on_narrow_ranges():
    for lo, hi in ((0.074, 0.18), (500, 20000), (30.1, 30.2)):
        assert len(_ticks(*_range([lo, hi], True), True)) >= 2
