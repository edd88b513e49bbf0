"""Where codes come from: an environment variable, a hidden prompt on a terminal, or stdin.

Never from argv: a command line is visible to every user of the machine (ps, /proc).
"""

from __future__ import annotations

import getpass
import os
import sys

from core.errors import BadCode

ENV_PIN = "CARTESIM_PIN"
ENV_UNBLOCK = "CARTESIM_UNBLOCK_CODE"
ENV_NEW_PIN = "CARTESIM_NEW_PIN"


def ask(prompt: str, env: str | None) -> str:
    if env and env in os.environ:
        return os.environ[env].strip()
    if sys.stdin.isatty():
        return getpass.getpass(f"{prompt} : ").strip()
    line = sys.stdin.readline()
    if not line:
        raise BadCode(f"{prompt} : rien sur l'entrée standard (une ligne par code, ou {env})")
    return line.strip()
