#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine with Python 3.11: a venv in .venv with
# pytest-simtwin (editable) and its ROS 2 Python packages from PyPI. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VENV="${SIMTWIN_VENV:-$ROOT/.venv}"
EXTRAS="${SIMTWIN_EXTRAS:-dev}"

if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "bootstrap: installing python3-venv" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv >/dev/null; fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
stamp="$VENV/.simtwin-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]" 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c 'import rclpy, mujoco, pytest_simtwin' # fail here, not in the tests
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
