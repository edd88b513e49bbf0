"""What ships inside the package: the sample profiles (fixtures/cards/) and the JSON Schema."""

from __future__ import annotations

from pathlib import Path

from emulator.errors import InputError

SCHEMA_FILE = Path(__file__).parent / "schema" / "profile.schema.json"


def samples_dir() -> Path:
    """The sample profiles: ``emulator/samples/`` once installed (pyproject maps fixtures/cards/
    there), or fixtures/cards/ itself in a checkout."""
    installed = Path(__file__).resolve().parent / "samples"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "fixtures" / "cards"


def sample_names() -> list[str]:
    return sorted(p.stem for p in samples_dir().glob("*.yaml"))


def resolve_profile(arg: str) -> Path:
    """A profile path as given, or the name of a shipped sample (``cps-roulette``)."""
    path = Path(arg)
    if path.exists() or path.suffix or "/" in arg:
        return path
    sample = samples_dir() / f"{arg}.yaml"
    if sample.exists():
        return sample
    names = ", ".join(sample_names())
    raise InputError(arg, "", f"no such file, and no sample of that name (samples: {names})")
