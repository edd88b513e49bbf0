"""cartesim: a CPS / Carte Vitale card emulator and test harness for French health software.

The package is three layers, each a folder of the repository installed under this name
(pyproject.toml's ``package-dir``):

- ``cartesim.core``: the engine (APDUs, status words, TLV, transports, CPS and Vitale readers);
- ``cartesim.emulator``: the card OS, the card models, profiles and state, the vpcd client;
- ``cartesim.harness``: the command line, pcscd stacks, scenarios, live control, the pytest
  plugin and hypothesis strategies.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cartesim")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
