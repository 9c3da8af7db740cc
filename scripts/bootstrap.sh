#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine with Python 3.11: a venv in .venv with
# pytest-simtwin (editable) and its ROS 2 Python packages from PyPI. Sourced by the other scripts.
# SIMTWIN_EXTRAS picks the extras (default: dev = everything the tests and the example need).
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
# Cameras render through headless EGL (Debian's Mesa packages); SIMTWIN_RENDER=0 skips this.
if [ "${SIMTWIN_RENDER:-1}" = 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  bash "$ROOT/scripts/render-setup.sh" || echo "bootstrap: could not install the EGL/Mesa packages; simulated cameras will not render" >&2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# Reinstall when pyproject.toml changed or other extras are asked for; the stamp names the extras.
stamp="$VENV/.simtwin-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$(cat "$stamp")" != "$EXTRAS" ]; then
  echo "bootstrap: installing pytest-simtwin[$EXTRAS] into $VENV (first run: a few minutes)" >&2
  log="$VENV/.simtwin-install.log"
  if ! "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]" >"$log" 2>&1; then
    echo "bootstrap: pip install failed; the last lines of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  "$VENV/bin/python" -c 'import rclpy, mujoco, pytest_simtwin' # fail here, not in the tests
  printf '%s' "$EXTRAS" >"$stamp"
fi
export PATH="$VENV/bin:$PATH"
