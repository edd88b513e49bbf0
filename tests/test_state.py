"""State files: atomic, owner-only, validated, never the profile."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cartesim.core.errors import InputError
from cartesim.emulator import state
from cartesim.emulator.cards import load_card
from tests.helpers import CARDS, apdu

PROFILE = CARDS / "cps-roulette.yaml"


def test_every_change_is_saved_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    before = PROFILE.read_bytes()
    card = load_card(PROFILE, path)
    assert not path.exists()  # a fresh card until something changes
    apdu(card, "0020000104 30303030")
    saved = json.loads(path.read_text())
    assert saved["pin"]["tries_left"] == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_card(PROFILE, path)
    assert apdu(again, "00200001") == "63C2"
    assert PROFILE.read_bytes() == before  # the profile is never rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temp file left


def test_unblock_saved_in_one_write(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    card = load_card(CARDS / "cps-blocked.yaml", path)
    writes: list[dict] = []
    original = card.on_persist
    assert original is not None

    def spy() -> None:
        original()
        writes.append(json.loads(path.read_text()))

    card.on_persist = spy
    assert apdu(card, "002C00010C 3132333435363738 34333231") == "9000"
    assert [w["unblock"]["tries_left"] for w in writes] == [9, 10]
    assert writes[0]["pin"] == {"code": "1234", "tries_left": 0}  # first write: only the try
    assert writes[1]["pin"] == {"code": "4321", "tries_left": 3}  # second: everything at once
    assert writes[1]["unblock"]["uses_left"] == 9


def test_write_atomic_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    path.write_text("old")

    def boom(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        state.write_atomic(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "not a cartesim state file"),
        ('{"format": "other"}', "format"),
        ('{"format": "cartesim-state/1", "atr": "3B751300004509EA9000"}', "another kind of card"),
        (
            '{"format": "cartesim-state/1", "atr": "3BAC00402A001225006480000310009000",'
            ' "pin": {"code": "1234", "tries_left": 9}, "unblock": {"tries_left": 1, "uses_left": 1}}',
            "pin.tries_left: greater than the profile's tries_max",
        ),
        (
            '{"format": "cartesim-state/1", "atr": "3BAC00402A001225006480000310009000",'
            ' "pin": {"code": "12", "tries_left": 1}, "unblock": {"tries_left": 1, "uses_left": 1}}',
            "pin.code",
        ),
    ],
)
def test_bad_state_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as e:
        load_card(PROFILE, path)
    assert str(e.value).startswith(f"{path}: ")
    assert "\n" not in str(e.value)


def test_state_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder does not exist"):
        load_card(PROFILE, tmp_path / "nope" / "s.json")
