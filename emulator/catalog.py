"""The sample profiles shipped with cartesim, and what a profile argument names.

The samples are the package ``cartesim.emulator.samples`` (the repository's fixtures/cards/),
found by ``importlib.resources`` whether cartesim runs from a wheel or from a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from cartesim.core.errors import InputError

SCHEMA_FILE = Path(__file__).parent / "schema" / "profile.schema.json"
_SAMPLES = "cartesim.emulator.samples"


def samples_dir() -> Path:
    return Path(str(files(_SAMPLES)))


def sample_names() -> list[str]:
    return sorted(p.stem for p in samples_dir().glob("*.yaml"))


def is_sample_name(arg: str) -> bool:
    """A bare name (``cps-roulette``) rather than a path (``cards/x.yaml``, ``./x``)."""
    return bool(arg) and "/" not in arg and not Path(arg).suffix


def resolve_profile(arg: str | Path, base: Path | None = None) -> Path:
    """The profile file ``arg`` names: a path (relative to ``base`` if given, else to the current
    folder) when that file exists or ``arg`` looks like a path, else a shipped sample."""
    text = str(arg)
    path = (base / text) if base is not None else Path(text)
    if path.is_file() or not is_sample_name(text):
        if base is not None and not path.is_file():
            raise InputError(text, "", f"no such file (relative to {base})")
        return path
    sample = samples_dir() / f"{text}.yaml"
    if sample.is_file():
        return sample
    names = ", ".join(sample_names())
    raise InputError(text, "", f"no such file, and no sample of that name (samples: {names})")
