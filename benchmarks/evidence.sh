#!/usr/bin/env bash
# Every bench at the real budget -- 100,000 training crops per row, seeds 0 and 1 -- then the README's
# verdict table regenerated from the records. Meant for a GPU session (tiny students run at thousands of
# crops per second on an H200; on a 2-core CPU this takes days):
#
#     bash benchmarks/evidence.sh                          # the benches still without a real-budget record
#     BENCHES="methods trnr" JOBS=4 bash benchmarks/evidence.sh   # a part (the others keep their records)
#
# coic and trnr are not in the default list: their records at the real budget were measured on the 2-core
# CPU (benchmarks/results/coic.json, trnr.json, trnr-derain.json), so the scarce GPU minutes go to the rest;
# BENCHES="distill methods datafree coic trnr" reruns all five.
#
# Needs KDRESTORE_DATA and KDRESTORE_PEERS (the data root and the published peer weights).
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES="${SAMPLES:-100000}"
JOBS="${JOBS:-8}"
OUT="${OUT:-benchmarks/results}"
UNITS="${UNITS:-runs/bench-units}"   # finished rows kept here: run the script again after a kill and they are reused
BENCHES="${BENCHES:-distill methods datafree}"
KDRESTORE="${KDRESTORE:-kdrestore}"
mkdir -p "$OUT"
common=(--samples "$SAMPLES" --seeds 0 1 --jobs "$JOBS" --batch 8 --crop 48 --quiet)
gpu=(--pipeline batched)   # synthetic rows: the device-resident pipeline (latent/mixed/task rows keep theirs)
for bench in $BENCHES; do
  args=("${common[@]}" --resume "$UNITS/$bench")
  case "$bench" in
    distill|methods|datafree) $KDRESTORE bench "$bench" "${args[@]}" "${gpu[@]}" --json "$OUT/$bench.json" ;;
    coic) $KDRESTORE bench coic "${args[@]}" --methods msresnet-tiny msresnet-tiny+coic msresnet-tiny+coic-whole \
            --json "$OUT/coic.json" ;;
    trnr) $KDRESTORE bench trnr "${args[@]}" --batch 4 --json "$OUT/trnr.json" ;;  # batch: tasks per step
    *) echo "unknown bench $bench (distill methods datafree coic trnr)" >&2; exit 2 ;;
  esac
done
python benchmarks/verdicts.py "$OUT" --readme README.md
