"""State files: atomic, owner-only, validated, bound to their card, locked; never the profile."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cartesim.core.errors import InputError
from cartesim.emulator import state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from tests.helpers import CARDS, apdu

PROFILE = CARDS / "cps-roulette.yaml"
WRONG, RIGHT = "0020000104 30303030", "0020000104 31323334"  # VERIFY 0000, VERIFY 1234


def fresh_state(profile: str | Path = PROFILE) -> dict[str, Any]:
    """The state file a fresh card of ``profile`` writes."""
    return state.snapshot(load_card(profile))


def write(path: Path, content: dict[str, Any] | str, mode: int = 0o600) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(mode)
    return path


def in_session(card: CardOS, command: str) -> str:
    """One command as a CLI process runs it: in a session of the card."""
    with state.session(card):
        return apdu(card, command)


def test_every_change_is_saved_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    before = PROFILE.read_bytes()
    card = load_card(PROFILE, path)
    assert not path.exists()  # a fresh card until something changes
    in_session(card, WRONG)
    saved = json.loads(path.read_text())
    assert saved["pin"]["tries_left"] == 2
    assert saved["card"] == {"type": "cps", **{k: v for k, v in fresh_state()["card"].items() if k != "type"}}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_card(PROFILE, path)
    assert in_session(again, "00200001") == "63C2"
    assert PROFILE.read_bytes() == before  # the profile is never rewritten
    # No temp file left; the lock file stays (deleting it would let two processes lock apart).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.json.lock"]


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


# --- what a state file may hold ----------------------------------------------------------------
def _with(path: str, value: object) -> dict[str, Any]:
    """A fresh state with one value replaced: ``path`` is ``pin.tries_left``."""
    data = fresh_state()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


BAD_STATES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("not JSON", "not json", "not a cartesim state file"),
    ("not UTF-8", "\udcff", "not a cartesim state file"),
    ("other format", {"format": "other"}, "format"),
    (
        "format 1 (no card named)",
        {"format": "cartesim-state/1", "atr": "3BAC00402A001225006480000310009000"},
        "cartesim-state/1 names no card",
    ),
    ("more tries than the profile", _with("pin.tries_left", 9), "pin.tries_left: greater than the profile's"),
    ("more unblocks", _with("unblock.uses_left", 200), "unblock.uses_left: greater than the profile's"),
    ("short code", _with("pin.code", "12"), "pin.code: String should match"),
    ("a boolean count", _with("pin.tries_left", True), "pin.tries_left: Input should be a valid integer"),
    ("a text count", _with("pin.tries_left", "3"), "pin.tries_left: Input should be a valid integer"),
    ("a decimal count", _with("pin.tries_left", 3.0), "pin.tries_left: Input should be a valid integer"),
    ("a code as a number", _with("pin.code", 1234), "pin.code: Input should be a valid string"),
    (
        "5,000 digits",
        json.dumps(fresh_state()).replace('"tries_left": 3', '"tries_left": ' + "9" * 5000),
        "longer than 9 digits",
    ),
    ("NaN", json.dumps(fresh_state()).replace('"tries_left": 3', '"tries_left": NaN'), "NaN is not a number"),
    ("nested 30,000 deep", "[" * 30_000 + "]" * 30_000, "nested too deep"),
    ("larger than 64 KiB", " " * (65 * 1024) + "{}", "larger than 64 KiB"),
    ("no card named", {k: v for k, v in fresh_state().items() if k != "card"}, "card: Field required"),
    (
        "another card's serial",
        _with("card.serial", "00099999"),
        "belongs to card 00099999, not to 00021520",
    ),
    ("a Vitale's state", fresh_state("vitale-famille"), "card.type: this state file is a vitale card's"),
    ("another issue of the card", fresh_state("cps-blocked"), "issued from another profile"),
    ("unknown key", {**fresh_state(), "extra": 1}, "extra: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("content", "problem"), [c[1:] for c in BAD_STATES], ids=[c[0] for c in BAD_STATES])
def test_bad_state_files(tmp_path: Path, content: dict[str, Any] | str, problem: str) -> None:
    path = tmp_path / "s.json"
    if content == "\udcff":
        path.write_bytes(b"\xff\xfe")
    else:
        write(path, content)
    with pytest.raises(InputError, match=problem) as e:
        load_card(PROFILE, path)
    assert str(e.value).startswith(f"{path}: ")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "s.json.lock").exists()  # refused before any lock was taken


def test_a_code_is_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", _with("pin.code", "7391528x"))
    with pytest.raises(InputError) as e:
        load_card(PROFILE, path)
    assert "7391528" not in str(e.value)


def test_state_of_a_card_with_another_code_refused(tmp_path: Path) -> None:
    """A state made on a card whose code is 4242 never makes cps-roulette accept 4242."""
    other = tmp_path / "other.yaml"
    other.write_text(PROFILE.read_text().replace('code: "1234"', 'code: "4242"'))
    path = tmp_path / "s.json"
    card = load_card(other, path)
    assert in_session(card, "0020000104 34323432") == "9000"  # the try is written, then given back
    assert json.loads(path.read_text())["pin"]["code"] == "4242"
    with pytest.raises(InputError, match="issued from another profile"):
        load_card(PROFILE, path)


def test_state_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder does not exist"):
        load_card(PROFILE, tmp_path / "nope" / "s.json")


# --- integrity: what the state path may be -----------------------------------------------------
def test_symbolic_link_refused(tmp_path: Path) -> None:
    real = write(tmp_path / "real.json", fresh_state())
    link = tmp_path / "s.json"
    link.symlink_to(real)
    with pytest.raises(InputError, match=r"s\.json: a symbolic link: refused"):
        load_card(PROFILE, link)
    dangling = tmp_path / "d.json"
    dangling.symlink_to(tmp_path / "nowhere.json")  # would be created through the link
    with pytest.raises(InputError, match="symbolic link"):
        load_card(PROFILE, dangling)
    assert not (tmp_path / "nowhere.json").exists()


def test_symbolic_link_as_lock_file_refused(tmp_path: Path) -> None:
    (tmp_path / "s.json.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match=r"cannot lock it: s\.json\.lock: a symbolic link"):
        load_card(PROFILE, tmp_path / "s.json")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_writable_by_others_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "s.json", fresh_state(), mode)
    with pytest.raises(InputError, match=f"mode {mode:04o} lets group or others write it"):
        load_card(PROFILE, path)


def test_owned_by_another_user_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        path = write(tmp_path / "s.json", fresh_state())
        os.chown(path, 65534, 65534)
        owner = 65534
    else:  # a file we cannot have made: root's
        path, owner = Path("/etc/passwd"), 0
    with pytest.raises(InputError, match=f"owned by uid {owner}, not by you"):
        load_card(PROFILE, path)


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_not_a_regular_file_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "s.json"
    if kind == "fifo":
        os.mkfifo(path, 0o600)  # opened non-blocking: refused at once, never waited on
    elif kind == "folder":
        path.mkdir(mode=0o700)
    else:
        path = Path("/dev/null")
    with pytest.raises(InputError, match="not a regular file"):
        load_card(PROFILE, path)


# --- sessions: the file is the card ------------------------------------------------------------
def test_a_session_rereads_the_file(tmp_path: Path) -> None:
    """Two cards bound to one file, as two processes: each acts on the card as the file has it."""
    path = tmp_path / "s.json"
    a, b = load_card(PROFILE, path), load_card(PROFILE, path)
    assert [in_session(a, WRONG) for _ in range(3)] == ["63C2", "63C1", "6983"]
    assert in_session(b, RIGHT) == "6983"  # b loaded a fresh card, but the card is blocked now
    assert json.loads(path.read_text())["pin"]["tries_left"] == 0


def test_no_write_without_a_session_over_a_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    a, b = load_card(PROFILE, path), load_card(PROFILE, path)
    for _ in range(3):
        in_session(b, WRONG)
    blocked = path.read_bytes()
    assert apdu(a, RIGHT) == "6F00"  # outside a session: a's card is stale, so it writes nothing
    assert path.read_bytes() == blocked


def test_deleted_file_is_a_fresh_card(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    for _ in range(3):
        in_session(card, WRONG)
    path.unlink()
    assert in_session(card, "00200001") == "63C3"


def test_verification_ends_when_another_process_changes_the_code(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    a, b = load_card(PROFILE, path), load_card(PROFILE, path)
    assert in_session(a, RIGHT) == "9000"
    assert in_session(a, "00200001") == "9000"  # verified
    assert in_session(b, "0024000108 31323334 35363738") == "9000"  # b changes the code
    assert in_session(a, "00200001") == "63C3"  # a's verification is gone


def test_flush_never_writes_older_counters(tmp_path: Path) -> None:
    """emulate's last save on SIGTERM: the file written meanwhile by the CLI wins."""
    path = tmp_path / "s.json"
    emulated, cli = load_card(PROFILE, path), load_card(PROFILE, path)
    for _ in range(3):
        in_session(cli, WRONG)
    state.flush(emulated)
    assert json.loads(path.read_text())["pin"]["tries_left"] == 0
    path.unlink()
    state.flush(emulated)  # a missing file is written
    assert json.loads(path.read_text())["pin"]["tries_left"] == 3


def test_unwritable_state_answers_memory_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    in_session(card, WRONG)
    before = path.read_bytes()

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state, "write_atomic", full)
    # A card in a reader: 6581, and no code compared without its try recorded.
    assert state.serve(card, bytes.fromhex(RIGHT.replace(" ", ""))).hex().upper() == "6581"
    # A CLI command: one line naming the file.
    with pytest.raises(InputError, match=r"s.json: cannot write it \(No space left on device\)"):
        in_session(card, RIGHT)
    assert path.read_bytes() == before


def test_card_without_profile_has_no_state(tmp_path: Path) -> None:
    card = load_card(PROFILE)
    bare = CardOS(card.atr, card.mf, pin=card.pin, unblock=card.unblock)
    with pytest.raises(InputError, match="built without a profile"):
        state.save(bare, tmp_path / "s.json")
