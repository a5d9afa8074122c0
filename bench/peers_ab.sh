#!/usr/bin/env bash
# One interleaved pass of the peer bench (bench/peers) with a "before" Wayline checkout in
# the same pass: restate, then each Wayline peer on the BASE checkout and on this one, RUNS
# times round-robin, so slow periods of the VM hit every variant alike.
#   BASE_SRC=/path/to/old/checkout RUNS=3 bash bench/peers_ab.sh
# Results: bench/peers/results/<peer>-<k>.json (this checkout; the table in
# bench/peers/RESULTS.md is rebuilt from them) and $BASE_T/results/<peer>-<k>.json (base).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
P="$HERE/peers"
RUNS="${RUNS:-3}"
BASE_SRC="${BASE_SRC:-}"
BASE_T="${BASE_T:-/tmp/peers-base}"
T="${PEERS_TMP:-/tmp/peers}"
mkdir -p "$T" "$BASE_T/results"
for k in $(seq "$RUNS"); do
  echo "== restate run $k/$RUNS"
  RUN_TAG="-$k" bash "$P/restate/run.sh" >"$T/restate-$k.log" 2>&1 || echo "   FAILED restate"
  for peer in wayline wayline-inngest; do
    if [ -n "$BASE_SRC" ]; then
      echo "== $peer (base) run $k/$RUNS"
      PEERS_TMP="$BASE_T" WAYLINE_SRC="$BASE_SRC" BENCH_OUT="$BASE_T/results/$peer-$k.json" \
        bash "$P/$peer/run.sh" >"$BASE_T/$peer-$k.log" 2>&1 || echo "   FAILED $peer (base)"
    fi
    echo "== $peer run $k/$RUNS"
    WAYLINE_SRC="$(cd "$HERE/.." && pwd)" RUN_TAG="-$k" \
      bash "$P/$peer/run.sh" >"$T/$peer-$k.log" 2>&1 || echo "   FAILED $peer"
  done
done
python3 "$P/report.py"
