#!/usr/bin/env bash
# Set up (if needed) and run the example robot project's simulation suite on the embedded
# simulator with 8 xdist workers. Writes example_project/report.html (self-contained) and
# example_project/metrics.json. Extra arguments go to pytest (e.g. -k motion, -n 4).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT/example_project"
exec python -m pytest -n 8 -p no:cacheprovider --html report.html --self-contained-html \
  --simtwin-metrics-json metrics.json "$@"
