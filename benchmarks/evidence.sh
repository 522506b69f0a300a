#!/usr/bin/env bash
# Every bench at the real budget -- 100,000 training crops per row, seeds 0 and 1 -- then the README's
# verdict table regenerated from the records. Meant for a GPU session (tiny students run at thousands of
# crops per second on an H200; on a 2-core CPU this takes days):
#
#     bash benchmarks/evidence.sh                 # JOBS=8 rows at once by default
#     JOBS=4 SAMPLES=100000 bash benchmarks/evidence.sh
#
# Needs KDRESTORE_DATA and KDRESTORE_PEERS (the data root and the published peer weights).
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES="${SAMPLES:-100000}"
JOBS="${JOBS:-8}"
OUT="${OUT:-benchmarks/results}"
KDRESTORE="${KDRESTORE:-kdrestore}"
mkdir -p "$OUT"
common=(--samples "$SAMPLES" --seeds 0 1 --jobs "$JOBS" --batch 8 --crop 48 --quiet)
gpu=(--pipeline batched)   # synthetic rows: the device-resident pipeline (ignored by latent/mixed/task rows)
$KDRESTORE bench distill  "${common[@]}" "${gpu[@]}" --json "$OUT/distill.json"
$KDRESTORE bench methods  "${common[@]}" "${gpu[@]}" --json "$OUT/methods.json"
$KDRESTORE bench datafree "${common[@]}" "${gpu[@]}" --json "$OUT/datafree.json"
$KDRESTORE bench coic     "${common[@]}" --json "$OUT/coic.json"
$KDRESTORE bench trnr     "${common[@]}" --batch 4 --json "$OUT/trnr.json"
python benchmarks/verdicts.py "$OUT" --readme README.md
