"""The README's verdict table, regenerated from the bench results records (never typed by hand).

    python benchmarks/verdicts.py [RESULTS_DIR] [--readme README.md]

Reads every ``*.json`` record of ``kdrestore bench ... --json`` in RESULTS_DIR (default
``benchmarks/results``) and prints one markdown row per paper claim: method, the claim in one line, our
setting, our result and the verdict. With ``--readme`` the table replaces the block between
``<!-- verdicts:start -->`` and ``<!-- verdicts:end -->`` of that file (atomically).

Verdicts: ``waits for a GPU run`` (no record of the bench, or a record below the real budget:
:data:`REAL_SAMPLES` training crops per row and :data:`REAL_SEEDS` seeds); otherwise ``reproduced``
(every compared row "helps": its mean gain over the reference exceeds the spread over the seeds),
``partly`` (some do) or ``not reproduced at this budget`` (none does).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REAL_SAMPLES = 100_000
REAL_SEEDS = 2
START, END = "<!-- verdicts:start -->", "<!-- verdicts:end -->"
GPU_COMMAND = "bash benchmarks/evidence.sh"
NO_ROWS = "no rows in the record"  # the bench ran, but not the rows of this claim (a partial --methods run)


@dataclass
class Claim:
    method: str
    claim: str
    bench: str
    setting: str
    judge: Callable[[list[dict[str, Any]]], tuple[str, str]]  # rows -> (result text, verdict)
    tables: tuple[str, ...] = ()  # the tables (name prefixes) the claim needs; those not in the record are named


def _fmt(r: dict[str, Any], against: str | None = None) -> str:
    sd = "" if r.get("gain_spread") is None else f" ± {r['gain_spread']:.2f}"
    gain = "n/a" if r.get("gain") is None else f"{r['gain']:+.2f}{sd} dB"
    return f"{r['row']} {gain} vs {against or r['reference']} ({r['metric']})"


def _select(rows: list[dict[str, Any]], table: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r for r in rows if r["table"].startswith(table) and r["row"] in names]


def _verdict(helps: list[bool]) -> str:
    if not helps:
        return NO_ROWS
    return "reproduced" if all(helps) else "partly" if any(helps) else "not reproduced at this budget"


def best_row(table: str, names: tuple[str, ...], min_gain: float = 0.0) -> Callable[[list[dict[str, Any]]],
                                                                                    tuple[str, str]]:
    """The claim holds when the best of ``names`` helps (per table and metric), by at least ``min_gain`` dB."""
    def judge(rows: list[dict[str, Any]]) -> tuple[str, str]:
        chosen = _select(rows, table, names)
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for r in chosen:
            key = (r["table"], r["metric"])
            if r.get("gain") is not None and (key not in best or r["gain"] > best[key]["gain"]):
                best[key] = r
        return "; ".join(f"{_fmt(r)}: {r['verdict']}" for r in best.values()) or "no rows", \
            _verdict([r["verdict"] == "helps" and r["gain"] >= min_gain for r in best.values()])
    return judge


def every_metric(table: str, names: tuple[str, ...]) -> Callable[[list[dict[str, Any]]], tuple[str, str]]:
    """The claim holds when every row of ``names`` helps on every metric (test set / source)."""
    def judge(rows: list[dict[str, Any]]) -> tuple[str, str]:
        chosen = [r for r in _select(rows, table, names) if r.get("gain") is not None]
        return "; ".join(f"{_fmt(r)}: {r['verdict']}" for r in chosen) or "no rows", \
            _verdict([r["verdict"] == "helps" for r in chosen])
    return judge


def row_vs_row(table: str, row: str, other: str) -> Callable[[list[dict[str, Any]]], tuple[str, str]]:
    """``row`` beats ``other`` (both measured against the same reference): difference of means vs the spread."""
    def judge(rows: list[dict[str, Any]]) -> tuple[str, str]:
        out, helps = [], []
        for r in _select(rows, table, (row,)):
            o = next((x for x in rows if x["table"] == r["table"] and x["metric"] == r["metric"]
                      and x["row"] == other), None)
            if o is None:
                continue
            spreads = [s for s in (r["psnr_spread"], o["psnr_spread"]) if s is not None]
            diff, spread = r["psnr_mean"] - o["psnr_mean"], max(spreads) if spreads else None
            ok = spread is not None and diff > spread
            helps.append(ok)
            sd = "" if spread is None else f" ± {spread:.2f}"
            out.append(f"{row} {diff:+.2f}{sd} dB vs {other} ({r['table'].split(':')[0]}, {r['metric']})")
        return "; ".join(out) or "no rows", _verdict(helps)
    return judge


def hmds_levels(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """HMDS: a distilled row helps at sigma 50, and its best gain there exceeds the best at sigma 25."""
    names = ("hmds-peer", "hmds-levels", "hmds-restormer-rsd")
    best = {}
    for sigma in ("25", "50"):
        cand = [r for r in _select(rows, "methods denoise", names) if r["metric"].endswith(f"s{sigma}")
                and r.get("gain") is not None]
        best[sigma] = max(cand, key=lambda r: r["gain"], default=None)
    if best["50"] is None:
        return "no sigma-50 rows", NO_ROWS
    text = "; ".join(f"sigma {s}: {_fmt(r)}: {r['verdict']}" for s, r in best.items() if r is not None)
    helps50 = best["50"]["verdict"] == "helps"
    larger = best["25"] is None or best["50"]["gain"] > best["25"]["gain"]
    return text, "reproduced" if helps50 and larger else "partly" if helps50 or any(
        r is not None and r["verdict"] == "helps" for r in best.values()) else "not reproduced at this budget"


def datafree_within(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """Data-free within 1 dB of data-trained on dehaze and derain; ablations reported alongside."""
    out, met = [], []
    for task in ("dehaze", "derain"):
        df = next((r for r in rows if r["table"].startswith(f"datafree {task}") and r["row"] == "data-free"), None)
        if df is None or df.get("gain") is None:
            continue
        ok = df["gain"] >= -1.0
        met.append(ok)
        abl = [f"{r['row'].replace('data-free-', '')} {r['psnr_mean'] - df['psnr_mean']:+.2f}" for r in rows
               if r["table"] == df["table"] and r["row"] in ("data-free-noadv", "data-free-nocr", "data-free-advdeg")]
        out.append(f"{task}: {_fmt(df)} ({'within' if ok else 'not within'} 1 dB)"
                   + (f", ablations vs data-free: {', '.join(abl)} dB" if abl else ""))
    return "; ".join(out) or "no rows", _verdict(met)


CLAIMS = [
    Claim("SPDD", "self-distillation improves a dehazer over the same network trained alone", "methods",
          "kddn-student-tiny, synthetic haze on BSDS500-train, SOTS-indoor-50; rows spdd, spdd-ema, spdd-feature",
          best_row("methods dehaze", ("spdd", "spdd-ema", "spdd-feature"))),
    Claim("KDDN", "a student imitating a clean-image reconstruction teacher beats the same student alone", "methods",
          "kddn-student-tiny, teacher kddn-teacher (clean->clean) at the same budget; rows kddn, kddn-perceptual",
          best_row("methods dehaze", ("kddn", "kddn-perceptual"))),
    Claim("MDRN + HMDS", "distillation helps most for tiny models and high noise (sigma 50)", "methods",
          "mdrn-tiny on Set12/CBSD68 at sigma 25 and 50; hmds-levels vs alone-blind, the others vs alone",
          hmds_levels),
    Claim("RSD", "cross-architecture distillation (Transformer teacher, CNN student) beats plain output distillation",
          "methods", "restormer-tiny teacher -> mdrn-tiny; hmds-restormer-rsd vs restormer-output",
          row_vs_row("methods denoise", "hmds-restormer-rsd", "restormer-output")),
    Claim("Data-free", "the data-free student is within 1 dB of one trained on the original data (dehaze, derain)",
          "datafree", "unet-tiny width 8; data-free vs data-trained; ablations noadv, nocr, advdeg",
          datafree_within),
    Claim("CoIC", "the backbone with instance-level modulation beats the same backbone on mixed rain, per source",
          "coic", "msresnet-tiny vs msresnet-tiny+coic on mixed synthetic + Rain100L rain, per test source",
          every_metric("coic", ("msresnet-tiny+coic", "restormer-tiny+coic"))),
    Claim("CoIC, whole-image encoder", "(the authors' code) embedding the whole rainy image, resized, beats "
          "embedding the training crop", "coic", "msresnet-tiny+coic-whole vs msresnet-tiny+coic, per test source",
          row_vs_row("coic", "msresnet-tiny+coic-whole", "msresnet-tiny+coic")),
    Claim("TRNR", "on 20 training images, TRNR beats ordinary training of the same network", "trnr",
          "msresnet-tiny (derain), dnnet-tiny (denoise) on 20 clean images; trnr and trnr-official vs ordinary",
          best_row("trnr", ("trnr", "trnr-official")), tables=("trnr derain", "trnr denoise")),
    Claim("Distillation core", "(project goal) the best distillation method gains >= 0.3 dB over the student alone",
          "distill", "per task: student alone vs output / FitNet / FAKD / RSD / contrastive from the task's teacher",
          best_row("distill", ("output", "output+fitnet", "output+fakd", "output+rsd", "output+contrastive"),
                   min_gain=0.3)),
]


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """``old`` entries whose key ``new`` does not have, then ``new``'s."""
    have = {key(e) for e in new}
    return [e for e in old if key(e) not in have] + new


def load_records(folder: Path) -> dict[str, dict[str, Any]]:
    """bench name -> its record; several files of one bench are merged row by row (a row of a table in two
    files: the newer record's, so a run of some rows adds to an earlier run of others), keeping every file's
    budget so that a verdict needs all of them at the real budget. Newer means a later ``finished`` time in
    the record (records written before it existed count as older, by file name), never the file's
    modification time, which a fresh clone sets at random. The leak-check records a bench writes beside its
    record (``<record>.leak_check.json``) are not results."""
    records: dict[str, dict[str, Any]] = {}
    loaded = []
    for path in folder.glob("*.json"):
        if path.name.endswith(".leak_check.json"):  # a bench's leak record
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "bench" not in data or "rows" not in data:
            raise SystemExit(f"{path}: not a results record of `kdrestore bench --json` (needs bench, rows)")
        loaded.append((str(data.get("finished") or ""), path.name, path, data))
    for _, _, path, data in sorted(loaded, key=lambda item: item[:2]):
        data["_files"] = [path.name]
        data["_records"] = [data]
        old = records.get(data["bench"])
        if old is not None:
            data["rows"] = _merge(old["rows"], data["rows"], lambda r: (r["table"], r["row"]))
            data["teachers"] = _merge(old.get("teachers", []), data.get("teachers", []),
                                      lambda t: (t["table"], t["teacher"]))
            data["_files"], data["_records"] = old["_files"] + [path.name], old["_records"] + [data]
        records[data["bench"]] = data
    return records


def real_budget(record: dict[str, Any]) -> bool:
    b = record["budget"]
    crops = (b.get("samples") or 0) if b.get("kind") == "samples" else (b.get("steps") or 0) * b.get("batch", 0)
    return crops >= REAL_SAMPLES and len(record.get("seeds", [])) >= REAL_SEEDS and not b.get("test_limit")


def budget_text(record: dict[str, Any]) -> str:
    b = record["budget"]
    bound = (f"{b['time_budget']}/row" if b["kind"] == "time" else
             f"{b['samples']:,} crops/row" if b["kind"] == "samples" else f"{b['steps']} steps x {b['batch']}/row")
    limit = f", first {b['test_limit']} test images" if b.get("test_limit") else ""
    return f"{bound}, seeds {record['seeds']}{limit}, {record['device']}"


def verdict_rows(records: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    out = []
    for c in CLAIMS:
        rec = records.get(c.bench)
        result, verdict = c.judge(rec["rows"]) if rec is not None else ("", NO_ROWS)
        if verdict == NO_ROWS:  # the bench never ran, or not this claim's rows
            out.append((c.method, c.claim, c.setting, "not run yet", f"waits for a GPU run (`{GPU_COMMAND}`)"))
            continue
        parts = rec.get("_records", [rec])
        budgets = "; ".join(dict.fromkeys(budget_text(r) for r in parts))
        setting = f"{c.setting}; {budgets} ({', '.join(rec.get('_files', []))})"
        if not all(real_budget(r) for r in parts):
            verdict = (f"waits for a GPU run: below {REAL_SAMPLES:,} crops x {REAL_SEEDS} seeds per row "
                       f"(`{GPU_COMMAND}`)")
        missing = [t for t in c.tables if not any(r["table"].startswith(t) for r in rec["rows"])]
        if missing:
            verdict += f" (for the tables run; {', '.join(missing)}: not run yet, waits for `{GPU_COMMAND}`)"
        out.append((c.method, c.claim, setting, result, verdict))
    return out


def markdown(rows: list[tuple[str, str, str, str, str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| method | the paper's claim | our setting | our result | verdict |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_block(text: str, table: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"the README has no {START} ... {END} block to replace")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--readme", help="rewrite the verdict block of this README")
    args = parser.parse_args(argv)
    folder = Path(args.results)
    records = load_records(folder) if folder.is_dir() else {}
    table = markdown(verdict_rows(records))
    if args.readme:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from kdrestore.fsutil import atomic_write_text

        path = Path(args.readme)
        atomic_write_text(path, replace_block(path.read_text(encoding="utf-8"), table))
        print(f"wrote the verdict table of {path} from {len(records)} record(s) in {folder}")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
