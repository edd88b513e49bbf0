#!/usr/bin/env bash
# Installs what cartesim needs on a fresh Debian/Ubuntu machine, only what is missing:
#   system packages (pcscd, the vpcd driver, PC/SC headers and swig to build pyscard, pcsc-tools,
#   opensc, cardpeek for the e2e Vitale test) and a virtualenv (.venv) holding tox and cartesim itself.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig pcsc-tools opensc openssl cardpeek gcc iproute2)
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  PACKAGES+=(python3-venv python3-pip python3-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "ci/setup.sh: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  echo "ci/setup.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import tox, cartesim.harness.cli.main' 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q tox -e '.[test]'
  touch .venv/.installed
fi
