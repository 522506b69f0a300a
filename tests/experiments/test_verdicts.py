"""benchmarks/verdicts.py: the README's verdict table from results records, never typed by hand."""
from __future__ import annotations

import json

import pytest

from kdrestore.experiments.bench_common import aggregate, score_entry
from runutil import benchmark_script


@pytest.fixture(scope="module")
def verdicts():
    with benchmark_script("verdicts") as module:
        yield module


def record(bench, values, samples=100_000, seeds=(0, 1), table="methods dehaze: s", metric="SOTS", reference="alone"):
    per_seed = {}
    for row, vals in values.items():
        for seed, v in zip(seeds, vals):
            per_seed.setdefault(seed, []).append(score_entry(table, row, metric, v, 0.8, reference=reference))
    return {"bench": bench, "command": "kdrestore bench ...", "seeds": list(seeds), "device": "CPU test",
            "budget": {"kind": "samples", "samples": samples, "steps": samples // 8, "batch": 8, "time_budget": None,
                       "test_limit": None},
            "rows": aggregate(per_seed, []), "teachers": []}


def test_verdicts_follow_the_spread_and_the_real_budget(verdicts, tmp_path):
    (tmp_path / "methods.json").write_text(json.dumps(record("methods", {
        "alone": [20.0, 20.1], "spdd": [20.6, 20.7], "spdd-ema": [20.0, 20.3], "kddn": [19.9, 20.2]})))
    rows = {r[0]: r for r in verdicts.verdict_rows(verdicts.load_records(tmp_path))}
    assert rows["SPDD"][4] == "reproduced" and "spdd +0.60 ± 0.07 dB vs alone (SOTS)" in rows["SPDD"][3]
    assert rows["KDDN"][4] == "not reproduced at this budget"
    assert rows["TRNR"][4].startswith("waits for a GPU run") and rows["TRNR"][3] == "not run yet"
    (tmp_path / "methods.json").write_text(json.dumps(record("methods", {"alone": [20.0, 20.1], "spdd": [20.6, 20.7]},
                                                             samples=800)))
    smoke = {r[0]: r for r in verdicts.verdict_rows(verdicts.load_records(tmp_path))}
    assert smoke["SPDD"][4].startswith("waits for a GPU run: below 100,000 crops")  # a smoke run is no result
    (tmp_path / "methods.json").write_text(json.dumps(record("methods", {"alone": [20.0], "spdd": [21.0]},
                                                             seeds=(0,))))
    one = {r[0]: r for r in verdicts.verdict_rows(verdicts.load_records(tmp_path))}
    assert one["SPDD"][4].startswith("waits for a GPU run")


def test_a_claim_whose_rows_the_record_lacks_is_not_run_yet(verdicts, tmp_path):
    """A record of some rows of a bench (here the SPDD rows of bench methods) leaves the other claims of that
    bench "not run yet", not judged on rows that were never trained."""
    (tmp_path / "methods.json").write_text(json.dumps(record("methods", {
        "alone": [20.0, 20.1], "spdd": [20.6, 20.7], "spdd-feature": [20.3, 20.5]})))
    rows = {r[0]: r for r in verdicts.verdict_rows(verdicts.load_records(tmp_path))}
    assert rows["SPDD"][4] == "reproduced"
    for claim in ("KDDN", "MDRN + HMDS", "RSD"):
        assert rows[claim][3] == "not run yet" and rows[claim][4].startswith("waits for a GPU run"), rows[claim]


def test_trnr_partly_and_the_core_goal_needs_0_3_db(verdicts, tmp_path):
    trnr = record("trnr", {"ordinary": [25.0, 25.1], "trnr": [25.8, 25.9]}, table="trnr denoise: d", metric="s25",
                  reference="ordinary")
    trnr["rows"] += record("trnr", {"ordinary": [22.0, 22.1], "trnr": [21.8, 22.0]}, table="trnr derain: m",
                           metric="Rain100H", reference="ordinary")["rows"]
    (tmp_path / "trnr.json").write_text(json.dumps(trnr))
    (tmp_path / "distill.json").write_text(json.dumps(record("distill", {"alone": [30.0, 30.02], "output": [30.2, 30.21]},
                                                             table="distill denoise: a <- b")))
    rows = {r[0]: r for r in verdicts.verdict_rows(verdicts.load_records(tmp_path))}
    assert rows["TRNR"][4] == "partly"
    assert rows["Distillation core"][4] == "not reproduced at this budget"  # helps, but +0.2 dB < 0.3
    only_denoise = record("trnr", {"ordinary": [25.0, 25.1], "trnr": [24.0, 24.1]}, table="trnr denoise: d",
                          metric="s25", reference="ordinary")
    (tmp_path / "trnr.json").write_text(json.dumps(only_denoise))
    rows = {r[0]: r for r in verdicts.verdict_rows(verdicts.load_records(tmp_path))}
    assert rows["TRNR"][4].startswith("not reproduced at this budget (for the tables run; trnr derain: not run yet")


def test_readme_block_is_replaced_and_bad_records_are_named(verdicts, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{verdicts.START}\nold\n{verdicts.END}\nrest\n")
    assert verdicts.main([str(tmp_path / "none"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro") and text.endswith("rest\n")
    assert text.count("waits for a GPU run") == len(verdicts.CLAIMS)
    (tmp_path / "trnr.json.leak_check.json").write_text('{"result": "clean"}')  # beside a record: not one
    assert verdicts.load_records(tmp_path) == {}
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match="bad.json: not a results record"):
        verdicts.load_records(tmp_path)


def test_two_records_of_one_bench_are_merged_and_all_must_be_at_the_real_budget(verdicts, tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(record("methods", {"alone": [20.0, 20.1], "spdd": [20.6, 20.7]})))
    denoise = record("methods", {"alone": [30.0, 30.1], "hmds-peer": [30.6, 30.7]}, samples=800,
                     table="methods denoise: m, Set12 sigma 50", metric="Set12 s50")
    (tmp_path / "b.json").write_text(json.dumps(denoise))
    merged = verdicts.load_records(tmp_path)["methods"]
    assert {r["table"] for r in merged["rows"]} == {"methods dehaze: s", "methods denoise: m, Set12 sigma 50"}
    rows = {r[0]: r for r in verdicts.verdict_rows({"methods": merged})}
    assert "hmds-peer +0.60" in rows["MDRN + HMDS"][3] and rows["SPDD"][4].startswith("waits for a GPU run")


def test_a_run_of_some_rows_adds_to_an_earlier_run_of_others(verdicts, tmp_path):
    import os
    first, second = tmp_path / "methods.json", tmp_path / "methods-kddn.json"
    first.write_text(json.dumps({**record("methods", {"alone": [20.0, 20.1], "spdd": [20.6, 20.7]}),
                                 "finished": "2026-12-03T10:00:00+00:00"}))
    second.write_text(json.dumps({**record("methods", {"alone": [20.0, 20.2], "kddn": [19.9, 20.3]}),
                                  "finished": "2026-12-04T10:00:00+00:00"}))
    os.utime(second, (1, 1))  # a fresh clone's modification times say nothing: the records' own times decide
    merged = verdicts.load_records(tmp_path)["methods"]
    by_row = {r["row"]: r for r in merged["rows"]}
    assert sorted(by_row) == ["alone", "kddn", "spdd"] and len(merged["rows"]) == 3
    assert by_row["alone"]["psnr_mean"] == pytest.approx(20.1)  # the newer record's reference row
    rows = {r[0]: r for r in verdicts.verdict_rows({"methods": merged})}
    assert rows["SPDD"][4] == "reproduced" and rows["KDDN"][4] == "not reproduced at this budget"


def test_records_without_a_finish_time_are_older_and_ordered_by_name(verdicts, tmp_path):
    import os
    timed = tmp_path / "a-gpu.json"
    timed.write_text(json.dumps({**record("methods", {"alone": [21.0, 21.0], "spdd": [21.6, 21.7]}),
                                 "finished": "2026-12-05T10:00:00+00:00"}))
    for name, base in (("b.json", 20.0), ("c.json", 19.0)):
        (tmp_path / name).write_text(json.dumps(record("methods", {"alone": [base, base], "spdd": [base, base]})))
    os.utime(timed, (1, 1))
    by_row = {r["row"]: r for r in verdicts.load_records(tmp_path)["methods"]["rows"]}
    assert by_row["alone"]["psnr_mean"] == pytest.approx(21.0)  # the only timed record is the newest
    (tmp_path / "a-gpu.json").unlink()
    by_row = {r["row"]: r for r in verdicts.load_records(tmp_path)["methods"]["rows"]}
    assert by_row["alone"]["psnr_mean"] == pytest.approx(19.0)  # untimed: by file name, c.json last
