#!/usr/bin/env bash
# Idempotent Docker set-up for the docker backend tests (CI and developers, as root or with sudo):
#   1. installs docker.io and debootstrap when missing,
#   2. starts dockerd in the background when no daemon answers (log: $SIMTWIN_DOCKERD_LOG) and waits,
#   3. builds the base image (debootstrap + docker import) when missing, and the simulator image
#      when missing or built from other sources (`simtwin image build --if-stale`).
# No registry is needed. Prints the simulator image tag on success.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERD_LOG="${SIMTWIN_DOCKERD_LOG:-/var/log/simtwin-dockerd.log}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_install+=(debootstrap)
if [ "${#need_install[@]}" -gt 0 ]; then
  echo "docker-setup: installing ${need_install[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker || true
  fi
fi
if ! docker info >/dev/null 2>&1; then
  echo "docker-setup: starting dockerd (log: $DOCKERD_LOG)" >&2
  $SUDO mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid + nohup: the daemon must outlive this script and the CI step that ran it.
  $SUDO setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "docker-setup: dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:" >&2
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi
echo "docker-setup: daemon $(docker version --format '{{.Server.Version}}' 2>/dev/null) is up" >&2

# The venv with the docker SDK (bootstrap.sh is idempotent).
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
simtwin image build --if-stale
