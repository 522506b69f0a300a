"""What every bench shares: the budget options, mean ± spread, the "helps" rule, the teacher check,
row checks and rows run in worker processes."""
from __future__ import annotations

import pytest

from kdrestore.experiments.bench_common import (BenchOptions, aggregate, apply_budget, check_rows, format_rows,
                                             run_bench, run_units, score_entry, teacher_entry, verdict)
from kdrestore.errors import KdrestoreError
from kdrestore.experiments.bench import bench_recipe


def test_budget_options_give_steps_and_refuse_what_cannot_train():
    assert BenchOptions().steps_for() == 300
    assert BenchOptions(samples=100_000, batch=8).steps_for() == 12_500
    assert BenchOptions(samples=100, batch=8).steps_for(crops_per_step=40) == 4  # at least the minimum
    assert BenchOptions(time_budget="2m").steps_for() > 10 ** 6
    with pytest.raises(KdrestoreError, match="too small for one row"):
        BenchOptions(samples=8, batch=8)
    with pytest.raises(KdrestoreError, match="too short for one row: at least 15s"):
        BenchOptions(time_budget="5s")
    with pytest.raises(KdrestoreError, match="one per-row budget"):
        BenchOptions(samples=1000, steps=10)
    with pytest.raises(KdrestoreError, match="different seeds"):
        BenchOptions(seeds=[1, 1])
    with pytest.raises(KdrestoreError, match="stages in steps"):
        BenchOptions(time_budget="1m").fixed_steps("spdd")


def test_workdir_is_made_when_missing_and_a_file_is_refused(tmp_path):
    BenchOptions(workdir=str(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(KdrestoreError, match="--workdir .*f is a file"):
        BenchOptions(workdir=str(tmp_path / "f"))


def test_apply_budget_sets_steps_or_the_clock_and_the_batched_pipeline():
    train = {"kind": "synth", "path": "x", "degradation": "awgn", "mode": "gray"}
    recipe = apply_budget(bench_recipe("r", "denoise", {"name": "dncnn"}, train, __import__("pathlib").Path("/d"),
                                       1, 8, 32, 0), BenchOptions(samples=800, pipeline="batched"))
    assert recipe["train"]["steps"] == 100 == recipe["train"]["ckpt_every"] and recipe["train"]["val_every"] == 101
    assert recipe["data"]["train"]["pipeline"] == "batched" and "time_budget" not in recipe["train"]
    timed = apply_budget(bench_recipe("r", "denoise", {"name": "dncnn"}, train, __import__("pathlib").Path("/d"),
                                      1, 8, 32, 0), BenchOptions(time_budget="90s"))
    assert timed["train"]["time_budget"] == "90s" and timed["schedule"]["warmup_steps"] == 50


def test_a_method_of_another_task_is_refused_with_the_rows_that_apply():
    by_task = {"dehaze": ("alone", "spdd"), "denoise": ("alone", "hmds-peer")}
    assert check_rows(None, "denoise", by_task, "methods") == ["alone", "hmds-peer"]
    with pytest.raises(KdrestoreError, match=r"'spdd' does not apply to denoise .*\['dehaze'\].*"
                                             r"rows for denoise: \['alone', 'hmds-peer'\]"):
        check_rows(["spdd"], "denoise", by_task, "methods")
    with pytest.raises(KdrestoreError, match="does not cover 'derain'"):
        check_rows(None, "derain", by_task, "methods")


def _scores(values: dict[str, list[float]], teacher: str | None = "T") -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for row, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            out.setdefault(seed, []).append(score_entry("t", row, "m", v, 0.5, reference="alone",
                                                        teacher=None if row == "alone" else teacher))
    return out


def test_helps_only_where_the_mean_gain_exceeds_the_spread():
    rows = {r["row"]: r for r in aggregate(_scores({"alone": [30.0, 30.2], "big": [31.0, 31.1],
                                                     "noisy": [29.0, 31.8], "worse": [29.0, 29.1]}), [])}
    assert rows["alone"]["verdict"] == "reference" and rows["alone"]["psnr_mean"] == pytest.approx(30.1)
    assert rows["big"]["verdict"] == "helps" and rows["big"]["gain"] == pytest.approx(0.95)
    assert rows["noisy"]["gain"] > 0 and rows["noisy"]["verdict"] == "within spread"  # +0.3 dB, sd 1.98
    assert rows["worse"]["verdict"] == "hurts"
    assert rows["big"]["per_seed"] == {"0": 31.0, "1": 31.1} and rows["big"]["psnr_spread"] == pytest.approx(0.0707, 1e-3)
    one = {r["row"]: r for r in aggregate(_scores({"alone": [30.0], "big": [35.0]}), [])}
    assert one["big"]["verdict"] == "one seed" == verdict(5.0, None)  # one seed never "helps"


def test_a_teacher_below_the_student_alone_refuses_its_rows():
    teachers = [teacher_entry("t", "m", "T", 29.5)]
    rows = {r["row"]: r for r in aggregate(_scores({"alone": [30.0, 30.2], "big": [31.0, 31.1]}), teachers)}
    assert rows["big"]["verdict"] == "refused: teacher below alone"
    text = format_rows(list(rows.values()), teachers)
    assert "teacher T" in text and "29.50" in text and "refused" in text


def test_rows_run_in_worker_processes_and_come_back_in_order():
    out = run_units(["kdrestore.experiments.bench_common:device_description"] * 2, [{"device": "cpu"}] * 2, jobs=2)
    assert len(out) == 2 and all(s.startswith("CPU ") for s in out)


def test_a_worker_re_importing_python_m_kdrestore_does_not_run_the_command_line():
    import runpy

    runpy.run_module("kdrestore.__main__", run_name="__mp_main__")  # what a spawned worker does; no SystemExit


CALLS: list[int] = []  # the values the unit below was called with (in this process: jobs=1)
FAIL_ON: set[int] = set()


def _unit(value: int, opts: BenchOptions, rows: list[str] | None = None) -> dict:
    CALLS.append(value)
    if value in FAIL_ON:
        raise RuntimeError(f"killed while training unit {value}")
    return {"scores": [score_entry("t", r, "m", 20.0 + value + opts.seed, 0.5, reference="a") for r in rows or []],
            "teachers": [], "value": value, "shape": (1, 2)}


def test_a_killed_bench_resumes_from_the_units_that_finished(tmp_path):
    from kdrestore.experiments.bench_units import UnitStore

    target = f"{__name__}:_unit"
    units = [{"value": v, "opts": BenchOptions(steps=8, seeds=[0])} for v in (1, 2)]
    store = UnitStore(tmp_path / "units")
    CALLS.clear()
    FAIL_ON.clear()
    FAIL_ON.add(2)
    with pytest.raises(RuntimeError, match="unit 2"):
        run_units([target] * 2, units, jobs=1, store=store)
    assert CALLS == [1, 2] and len(list((tmp_path / "units").glob("unit-*.json"))) == 1
    FAIL_ON.clear()
    CALLS.clear()
    # the same units again, shown differently (progress, another workdir): unit 1 is read back, not trained
    again = [{"value": v, "opts": BenchOptions(steps=8, seeds=[0], progress=True, workdir=str(tmp_path / "w"))}
             for v in (1, 2)]
    out = run_units([target] * 2, again, jobs=1, store=store)
    assert CALLS == [2]
    assert [r["value"] for r in out] == [1, 2] and out[0]["shape"] == [1, 2] == out[1]["shape"]  # both as JSON
    CALLS.clear()
    run_units([target] * 2, again, jobs=1, store=store)
    assert CALLS == []
    changed = [{"value": 1, "opts": BenchOptions(steps=16, seeds=[0])},
               {"value": 1, "opts": BenchOptions(steps=8, seeds=[1])}]
    run_units([target] * 2, changed, jobs=1, store=store)
    assert CALLS == [1, 1]  # another budget, another seed: other units, trained


def test_a_resumed_bench_keeps_every_row_apart_and_gives_the_same_record(tmp_path):
    plan = [(f"{__name__}:_unit", ["a", "b"], {"value": 3})]
    opts = BenchOptions(steps=8, seeds=[0, 1], resume=str(tmp_path / "units"))
    CALLS.clear()
    FAIL_ON.clear()
    first = run_bench("fake", plan, opts)
    assert len(CALLS) == 4 and len(list((tmp_path / "units").glob("unit-*.json"))) == 4  # 2 seeds x 2 rows
    CALLS.clear()
    second = run_bench("fake", plan, opts)
    assert CALLS == [] and second["rows"] == first["rows"]
    assert [r["psnr_mean"] for r in second["rows"]] == [23.5, 23.5]
    from datetime import datetime
    assert datetime.fromisoformat(second["finished"]) >= datetime.fromisoformat(first["finished"])  # orders records


def test_an_unreadable_finished_unit_is_named(tmp_path):
    from kdrestore.experiments.bench_units import UnitStore, unit_key

    store = UnitStore(tmp_path / "units")
    key = unit_key("m:f", {"value": 1, "opts": BenchOptions(steps=8)})
    store.path(key).write_text("{not json")
    with pytest.raises(KdrestoreError, match=store.path(key).name):
        store.load(key)
    (tmp_path / "file").write_text("")
    with pytest.raises(KdrestoreError, match="is a file"):
        UnitStore(tmp_path / "file")


def _unit_failing_on_two(value: int, opts: BenchOptions) -> dict:
    if value == 2:
        raise RuntimeError("unit 2 failed")
    return {"scores": [], "teachers": [], "value": value}


def test_a_failed_worker_does_not_lose_the_rows_the_others_finished(tmp_path):
    from kdrestore.experiments.bench_units import UnitStore

    units = [{"value": v, "opts": BenchOptions(steps=8)} for v in (1, 2, 3)]
    with pytest.raises(RuntimeError, match="unit 2 failed"):
        run_units([f"{__name__}:_unit_failing_on_two"] * 3, units, jobs=2, store=UnitStore(tmp_path / "u"))
    assert len(list((tmp_path / "u").glob("unit-*.json"))) == 2
