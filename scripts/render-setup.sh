#!/usr/bin/env bash
# Headless OpenGL for the simulator's cameras: MuJoCo renders offscreen through EGL with Mesa (its CPU
# driver llvmpipe without a GPU, the GPU's driver when there is one). Idempotent; installs only what
# is missing. Without these packages cameras report one error naming them and the rest still runs.
set -euo pipefail
PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "render-setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
