#!/usr/bin/env bash
# Installs what cartesim's demo and tests need on a fresh Debian/Ubuntu machine (only git and
# python3 on it, python3-venv or not), only what is missing, then a virtualenv (.venv) holding
# tox and cartesim with its test extra. Safe to run again: it does nothing when all is there.
#
# The system packages, from what uses them:
# - run time: pcscd (the PC/SC service), vsmartcard-vpcd (the driver the emulated cards plug
#   into), iproute2 (`ip`, the private stacks' loopback);
# - the e2e tests' PC/SC programs: pcsc-tools (scriptor, ATR_analysis), opensc (opensc-tool,
#   pkcs15-tool, pkcs11-tool, opensc-pkcs11.so), cardpeek, and openssl (which checks the
#   signatures the emulated CPS makes);
# - building pyscard from source (the test extra pulls cartesim[pcsc]; PyPI has no Linux wheel):
#   swig (it generates the C wrapper), libpcsclite-dev (winscard.h), gcc and libc6-dev (the
#   compiler and the C library's headers: gcc only recommends the latter), and the headers of
#   the very Python that builds it (below);
# - the venv module of that Python, where Debian splits it out (below).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(pcscd vsmartcard-vpcd iproute2 pcsc-tools opensc openssl cardpeek swig libpcsclite-dev gcc libc6-dev)

# The Pythons that build pyscard: python3 on PATH (.venv, hence tox and ci/test) and Debian's
# /usr/bin/python3 (ci/nonroot-e2e's venv), when that is another one. Each needs its headers,
# and its venv module where Debian splits it out.
pythons=("$(readlink -f "$(command -v python3)")")
if [ -x /usr/bin/python3 ] && [ "$(readlink -f /usr/bin/python3)" != "${pythons[0]}" ]; then
  pythons+=("$(readlink -f /usr/bin/python3)")
fi
for python in "${pythons[@]}"; do
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  debian=0
  dpkg-query -S "$python" >/dev/null 2>&1 && debian=1
  if ! "$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    # Debian's own Python keeps its headers in python3.X-dev (what python3-dev pulls for the
    # default python3); a pyenv or python.org build has its own, and is never missing them.
    ((debian)) || { echo "ci/setup.sh: $python has no Python.h (its headers), and is not Debian's: reinstall it with them" >&2; exit 1; }
    PACKAGES+=("python$version-dev")
  fi
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian's Python without its venv module and ensurepip (python3-venv pulls python3.X-venv).
    ((debian)) || { echo "ci/setup.sh: $python cannot make a virtualenv (no venv/ensurepip)" >&2; exit 1; }
    PACKAGES+=("python$version-venv")
  fi
done

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

# pcscd's socket folder, where every private PC/SC stack mounts its own: systemd makes it at boot
# (pcscd.socket); a machine without systemd (a container, a chroot) has none until pcscd runs.
if [ ! -d /run/pcscd ]; then
  if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/pcscd; elif command -v sudo >/dev/null; then sudo mkdir -p /run/pcscd; fi
fi

if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv  # none yet, or one made before python3-venv was there: it has no pip
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import tox, smartcard, cartesim.harness.cli.main' 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q tox -e '.[test]'
  touch .venv/.installed
fi
