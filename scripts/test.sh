#!/usr/bin/env bash
# Set up (if needed) and run the plugin's own test suite. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec python -m pytest -n 2 -p no:cacheprovider "$@"
