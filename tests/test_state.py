"""State files: atomic, owner-only, validated, bound to their card, locked; never the profile."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cartesim.core.errors import InputError
from cartesim.emulator import state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.emulator.profile import CpsProfile, Fault, load_profile
from tests.helpers import CARDS, apdu

PROFILE = CARDS / "cps-roulette.yaml"
WRONG, RIGHT = "0020000104 30303030", "0020000104 31323334"  # VERIFY 0000, VERIFY 1234
UNBLOCK_WRONG = "0020000208 3030303030303030"  # VERIFY of the code de déblocage, 00000000


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


NOT_UTF8 = b'{"\xff": 1}'  # JSON's own encoding detection says UTF-8, then decoding fails
# Each bad state: the field and the problem of the one line that refuses it.
BAD_STATES: list[tuple[str, dict[str, Any] | str | bytes, str, str]] = [
    ("not JSON", "not json", "", "not a cartesim state file (Expecting value, line 1)"),
    ("not UTF-8", NOT_UTF8, "", "not a cartesim state file (not UTF-8 text)"),
    ("other format", {"format": "other"}, "format", "Input should be 'cartesim-state/2' (and 1 more)"),
    (
        "format 1 (no card named)",
        {"format": "cartesim-state/1", "atr": "3BAC00402A001225006480000310009000"},
        "format",
        "cartesim-state/1 names no card: delete it to start afresh",
    ),
    (
        "more tries than the profile",
        _with("pin.tries_left", 9),
        "pin.tries_left",
        "greater than the profile's tries_max",
    ),
    (
        "more unblock tries than the profile",
        _with("unblock.tries_left", 11),
        "unblock.tries_left",
        "greater than the profile's tries_max",
    ),
    (
        "more unblocks",
        _with("unblock.uses_left", 200),
        "unblock.uses_left",
        "greater than the profile's uses_max",
    ),
    ("short code", _with("pin.code", "12"), "pin.code", "String should match pattern '^[0-9]{4,8}$'"),
    ("a boolean count", _with("pin.tries_left", True), "pin.tries_left", "Input should be a valid integer"),
    ("a text count", _with("pin.tries_left", "3"), "pin.tries_left", "Input should be a valid integer"),
    ("a decimal count", _with("pin.tries_left", 3.0), "pin.tries_left", "Input should be a valid integer"),
    ("a code as a number", _with("pin.code", 1234), "pin.code", "Input should be a valid string"),
    (
        "5,000 digits",
        json.dumps(fresh_state()).replace('"tries_left": 3', '"tries_left": ' + "9" * 5000),
        "",
        "not a cartesim state file (a number longer than 9 digits)",
    ),
    (
        "10 digits",
        json.dumps(fresh_state()).replace('"tries_left": 3', '"tries_left": 1234567890'),
        "",
        "not a cartesim state file (a number longer than 9 digits)",
    ),
    (
        "9 digits: a number, too large a count",
        json.dumps(fresh_state()).replace('"tries_left": 3', '"tries_left": 123456789'),
        "pin.tries_left",
        "Input should be less than or equal to 15",
    ),
    (
        "NaN",
        json.dumps(fresh_state()).replace('"tries_left": 3', '"tries_left": NaN'),
        "",
        "not a cartesim state file (NaN is not a number)",
    ),
    ("nested 30,000 deep", "[" * 30_000 + "]" * 30_000, "", "not a cartesim state file (nested too deep)"),
    ("larger than 64 KiB", " " * (65 * 1024) + "{}", "", "file larger than 64 KiB"),
    ("no card named", {k: v for k, v in fresh_state().items() if k != "card"}, "card", "Field required"),
    (
        "another card's serial",
        _with("card.serial", "00099999"),
        "card.serial",
        "this state file belongs to card 00099999, not to 00021520",
    ),
    (
        "a Vitale's state",
        fresh_state("vitale-famille"),
        "card.type",
        "this state file is a vitale card's, not a cps's",
    ),
    (
        "another issue of the card",
        fresh_state("cps-blocked"),
        "card.profile_sha256",
        "this state file belongs to another card (issued from another profile): delete it to start afresh",
    ),
    (
        "no code porteur",
        {k: v for k, v in fresh_state().items() if k != "pin"},
        "pin",
        "this state file belongs to another kind of card",
    ),
    (
        "no code de déblocage",
        {k: v for k, v in fresh_state().items() if k != "unblock"},
        "unblock",
        "this state file belongs to another kind of card",
    ),
    ("unknown key", {**fresh_state(), "extra": 1}, "extra", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("content", "where", "problem"), [c[1:] for c in BAD_STATES], ids=[c[0] for c in BAD_STATES]
)
def test_bad_state_files(
    tmp_path: Path, content: dict[str, Any] | str | bytes, where: str, problem: str
) -> None:
    """One line naming the file, the field and the problem (each part checked: the JSON output
    gives them apart)."""
    path = tmp_path / "s.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
        path.chmod(0o600)
    else:
        write(path, content)
    with pytest.raises(InputError) as e:
        load_card(PROFILE, path)
    assert (e.value.source, e.value.where, e.value.problem) == (str(path), where, problem)
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
    path = tmp_path / "nope" / "s.json"
    with pytest.raises(InputError) as e:
        load_card(PROFILE, path)
    assert (e.value.source, e.value.where, e.value.problem) == (str(path), "", "its folder does not exist")


def test_identity_names_the_issued_card() -> None:
    """The description and the faults make no other card; the digest is the SHA-256 of the
    profile's canonical JSON (sorted keys, ASCII escapes), so it stays what state files hold."""
    profile = load_profile(PROFILE)
    assert isinstance(profile, CpsProfile)
    ident = state.identity(profile)
    fault = Fault.model_validate({"apdu": 3, "mute": True})
    other = profile.model_copy(update={"description": "another text", "faults": [fault]})
    assert state.identity(other) == ident
    accented = profile.model_copy(
        update={
            "situations": [
                profile.situations[0].model_copy(update={"raison_structure": "CABINET HÉLÈNE RPPS"})
            ]
        }
    )
    assert state.identity(accented).profile_sha256 == (
        "ec5b49fc215ab123eada5c3d9d7b2eb60ae0071b3f1c2a9621d28f89527b36c1"
    )


def test_save_writes_a_private_copy(tmp_path: Path) -> None:
    card = load_card(PROFILE)
    assert apdu(card, WRONG) == "63C2"
    state.save(card, tmp_path / "copy.json")
    assert json.loads((tmp_path / "copy.json").read_text()) == state.snapshot(card)
    assert stat.S_IMODE(os.stat(tmp_path / "copy.json").st_mode) == 0o600
    nowhere = tmp_path / "nope" / "copy.json"
    with pytest.raises(InputError) as e:
        state.save(card, nowhere)
    assert (e.value.source, e.value.where, e.value.problem) == (str(nowhere), "", "No such file or directory")


def test_save_names_an_error_the_system_gave_no_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(path: Path, data: bytes) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(state, "write_atomic", fails)
    with pytest.raises(InputError) as e:
        state.save(load_card(PROFILE), tmp_path / "copy.json")
    assert e.value.problem == "the disk went away"


def test_load_and_adopt_a_saved_state(tmp_path: Path) -> None:
    """A saved state is read, never written (replay --state, emulate --state-file); adopted by
    a card bound to its own file, it is written there at once."""
    blocked = load_card(PROFILE)
    for _ in range(3):
        apdu(blocked, WRONG)
    saved = tmp_path / "bug.json"
    state.save(blocked, saved)
    card = load_card(PROFILE)
    assert state.load(card, tmp_path / "missing.json") is False
    assert apdu(card, "00200001") == "63C3"
    assert state.load(card, saved) is True
    assert apdu(card, "00200001") == "6983"
    own = tmp_path / "own.json"
    bound = load_card(PROFILE, own)
    state.adopt(bound, saved)
    assert json.loads(own.read_text())["pin"]["tries_left"] == 0
    assert saved.read_bytes() == json.dumps(state.snapshot(blocked), indent=2).encode() + b"\n"
    missing = tmp_path / "missing.json"
    with pytest.raises(InputError) as e:
        state.adopt(bound, missing)
    assert (e.value.source, e.value.where, e.value.problem) == (str(missing), "", "no such file")
    spoilt = write(tmp_path / "spoilt.json", "not json")
    with pytest.raises(InputError) as e:
        state.load(card, spoilt)
    assert (e.value.source, e.value.where) == (str(spoilt), "")
    write(spoilt, _with("pin.tries_left", 7))
    with pytest.raises(InputError) as e:
        state.load(card, spoilt)
    assert (e.value.source, e.value.where) == (str(spoilt), "pin.tries_left")


def test_adopt_writes_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = tmp_path / "bug.json"
    state.save(load_card(PROFILE), saved)
    own = tmp_path / "own.json"
    card = load_card(PROFILE, own)
    held: list[bool] = []
    real = state.write_atomic

    def write_atomic(path: Path, data: bytes) -> None:
        fd = os.open(tmp_path / "own.json.lock", os.O_RDWR)
        try:  # another open file description: the lock excludes it while the session holds it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        real(path, data)

    monkeypatch.setattr(state, "write_atomic", write_atomic)
    state.adopt(card, saved)
    assert held == [True]


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
    with pytest.raises(InputError) as e:
        load_card(PROFILE, tmp_path / "s.json")
    _lock_error(
        tmp_path / "s.json", e, "cannot lock it: s.json.lock: a symbolic link: refused (give the file itself)"
    )
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


def test_no_write_without_a_session_over_a_newer_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.json"
    a, b = load_card(PROFILE, path), load_card(PROFILE, path)
    for _ in range(3):
        in_session(b, WRONG)
    blocked = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="cartesim.emulator.cardos"):
        assert apdu(a, RIGHT) == "6F00"  # outside a session: a's card is stale, so it writes nothing
    assert path.read_bytes() == blocked
    (record,) = caplog.records
    assert record.getMessage() == "card OS internal error"
    assert record.exc_info is not None
    refused = record.exc_info[1]
    assert isinstance(refused, InputError)
    assert (refused.source, refused.where, refused.problem) == (
        str(path),
        "",
        "changed by another process meanwhile: not overwritten",
    )


def test_deleted_file_is_a_fresh_card(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    for _ in range(3):
        in_session(card, WRONG)
    assert in_session(card, UNBLOCK_WRONG) == "63C9"
    path.unlink()
    assert in_session(card, "00200001") == "63C3"
    assert in_session(card, "00200002") == "63CA"  # the code de déblocage's tries too


def test_verification_survives_what_leaves_the_code_porteur_alone(tmp_path: Path) -> None:
    """Another process's wrong code de déblocage changes the file, not the code porteur."""
    path = tmp_path / "s.json"
    a, b = load_card(PROFILE, path), load_card(PROFILE, path)
    assert in_session(a, RIGHT) == "9000"
    assert in_session(b, UNBLOCK_WRONG) == "63C9"
    assert in_session(a, "00200001") == "9000"


def test_a_file_spoilt_while_bound_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    in_session(card, WRONG)
    path.write_text("not json")
    with pytest.raises(InputError) as e:
        in_session(card, WRONG)
    assert (e.value.source, e.value.where, e.value.problem) == (
        str(path),
        "",
        "not a cartesim state file (Expecting value, line 1)",
    )
    write(path, _with("pin.tries_left", 7))
    with pytest.raises(InputError) as e:
        in_session(card, WRONG)
    assert (e.value.source, e.value.where) == (str(path), "pin.tries_left")


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


def test_unwritable_state_answers_memory_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    in_session(card, WRONG)
    before = path.read_bytes()

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state, "write_atomic", full)
    # A card in a reader: 6581, and no code compared without its try recorded; one line logged.
    with caplog.at_level(logging.ERROR, logger="cartesim.emulator.state"):
        assert state.serve(card, bytes.fromhex(RIGHT.replace(" ", ""))).hex().upper() == "6581"
    assert [r.getMessage() for r in caplog.records] == [f"{path}: cannot write it (No space left on device)"]
    # A CLI command: one line naming the file.
    with pytest.raises(InputError) as e:
        in_session(card, RIGHT)
    assert (e.value.source, e.value.where, e.value.problem) == (
        str(path),
        "",
        "cannot write it (No space left on device)",
    )
    assert path.read_bytes() == before


def test_card_without_profile_has_no_state(tmp_path: Path) -> None:
    card = load_card(PROFILE)
    bare = CardOS(card.atr, card.mf, pin=card.pin, unblock=card.unblock)
    with pytest.raises(InputError) as e:
        state.save(bare, tmp_path / "s.json")
    assert (e.value.source, e.value.where, e.value.problem) == (
        "card",
        "",
        "built without a profile: it cannot have a state file",
    )


def test_unbound_cards_have_no_session() -> None:
    """serve, session and binding take any card in a reader: bound ones get a session."""
    card = load_card(PROFILE)
    assert state.binding(object()) is None
    with state.session(card):
        assert apdu(card, WRONG) == "63C2"
    seen: list[int] = []
    card.on_persist = lambda: seen.append(1)  # a hook of its own: no state file
    assert state.binding(card) is None
    assert state.serve(card, bytes.fromhex(WRONG.replace(" ", ""))) == b"\x63\xc1"
    assert seen == [1]


def test_write_atomic_uses_a_hidden_temp_file_beside_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written beside the state (a rename within one folder is atomic), hidden, named after it:
    a crash between the write and the rename leaves a file anyone can tell apart."""
    moved: list[tuple[str, str]] = []
    real = os.replace

    def replace(src: str, dst: str) -> None:
        moved.append((src, dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    state.write_atomic(tmp_path / "s.json", b"{}")
    ((src, dst),) = moved
    temp = Path(src)
    assert temp.parent == tmp_path and temp.name.startswith(".s.json.") and temp.name.endswith(".tmp")
    assert Path(dst) == tmp_path / "s.json"


def test_write_atomic_reports_its_own_failure_when_the_temp_file_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def vanish_then_fail(src: str, dst: str) -> None:
        os.unlink(src)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", vanish_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        state.write_atomic(tmp_path / "s.json", b"{}")
    assert list(tmp_path.iterdir()) == []


# --- the lock ----------------------------------------------------------------------------------
def _lock_error(path: Path, e: pytest.ExceptionInfo[InputError], problem: str) -> None:
    assert (e.value.source, e.value.where, e.value.problem) == (str(path), "", problem)


def test_lock_in_a_folder_where_no_file_can_be_made() -> None:
    path = Path("/proc/cartesim-test.json")
    with pytest.raises(InputError) as e:
        load_card(PROFILE, path)
    _lock_error(path, e, "cannot lock it: cartesim-test.json.lock: No such file or directory")


def test_lock_refused_by_the_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(InputError) as e:
        in_session(card, WRONG)
    _lock_error(path, e, "cannot lock it: No locks available")


def _while_waiting(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """The first flock waits while ``meanwhile`` happens (another process at work)."""
    real, calls = fcntl.flock, list[int]()

    def flock(fd: int, operation: int) -> None:
        if not calls:
            calls.append(1)
            meanwhile()
        real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)


def test_lock_file_deleted_while_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock that counts is the file at the path: a deleted one is made again and locked."""
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    lock = tmp_path / "s.json.lock"
    _while_waiting(monkeypatch, lock.unlink)
    assert in_session(card, WRONG) == "63C2"
    assert lock.exists()


def test_lock_file_replaced_while_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    lock, other = tmp_path / "s.json.lock", tmp_path / "other"
    other.touch(mode=0o600)
    replacement = other.stat().st_ino
    _while_waiting(monkeypatch, lambda: os.replace(other, lock))
    assert in_session(card, WRONG) == "63C2"  # the old file let go, the new one locked
    assert lock.stat().st_ino == replacement


def test_lock_file_made_a_link_while_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaced by a symbolic link to the very file locked: the path is a link now, refused."""
    path = tmp_path / "s.json"
    card = load_card(PROFILE, path)
    lock, moved = tmp_path / "s.json.lock", tmp_path / "moved.lock"

    def relink() -> None:
        os.rename(lock, moved)
        lock.symlink_to(moved)

    _while_waiting(monkeypatch, relink)
    with pytest.raises(InputError) as e:
        in_session(card, WRONG)
    _lock_error(path, e, "cannot lock it: s.json.lock: a symbolic link: refused (give the file itself)")
