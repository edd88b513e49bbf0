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


def find_profile(arg: str | Path, base: Path | None = None) -> Path | None:
    """The file ``arg`` names: ``arg`` (relative to ``base`` if given) when that is a file, else
    the shipped sample of that name; None when neither exists."""
    text = str(arg)
    path = base / text if base is not None else Path(text)
    if path.is_file():
        return path
    sample = samples_dir() / f"{text}.yaml"
    if is_sample_name(text) and sample.is_file():
        return sample
    return None


def resolve_profile(arg: str | Path) -> Path:
    """The profile file a user names: a path, or the name of a shipped sample (``cps-roulette``).
    A path that does not exist is returned as is: loading it says what is wrong."""
    found = find_profile(arg)
    if found is not None:
        return found
    if not is_sample_name(str(arg)):
        return Path(arg)
    names = ", ".join(sample_names())
    raise InputError(str(arg), "", f"no such file, and no sample of that name (samples: {names})")
