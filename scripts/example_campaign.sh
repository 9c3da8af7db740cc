#!/usr/bin/env bash
# Reliability campaign: run the example suite N times in a row (default 20) with -n 8 and stop at
# the first red run (KEEP_GOING=1: run all N and count). Each run's report, metrics and log go to
# example_project/campaign/run-K/.
#   scripts/example_campaign.sh [N] [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-20}"
shift || true
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT/example_project"
OUT="campaign"
rm -rf "$OUT" && mkdir -p "$OUT"
start=$(date +%s)
red=0
for k in $(seq 1 "$RUNS"); do
  dir="$OUT/run-$k"
  mkdir -p "$dir"
  t0=$(date +%s)
  if python -m pytest -n 8 -p no:cacheprovider -q -rfE --html="$dir/report.html" --self-contained-html \
      --simtwin-metrics-json="$dir/metrics.json" --simtwin-artifacts="$dir/artifacts" \
      --junitxml="$dir/junit.xml" "$@" >"$dir/pytest.log" 2>&1; then
    echo "run $k/$RUNS: green in $(( $(date +%s) - t0 )) s: $(tail -n 1 "$dir/pytest.log")"
  else
    echo "run $k/$RUNS: RED in $(( $(date +%s) - t0 )) s (log: example_project/$dir/pytest.log)"
    grep -E "^(FAILED|ERROR) " "$dir/pytest.log" || tail -n 30 "$dir/pytest.log"
    red=$((red + 1))
    [ "${KEEP_GOING:-0}" = 1 ] || exit 1
  fi
done
echo "campaign: $((RUNS - red))/$RUNS runs green in $(( $(date +%s) - start )) s"
[ "$red" = 0 ]
