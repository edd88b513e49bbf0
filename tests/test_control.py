"""Live card control, hardware-free: the card-level API, LocalCardControl, the control socket and
its permissions, `cartesim card` against an in-process server, run_emulation with a fake vpcd."""

from __future__ import annotations

import json
import logging
import os
import queue
import resource
import socket
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardDefinitivelyBlocked, InputError, LastTryNotConfirmed
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator import state as card_state
from cartesim.emulator.cards import load_card
from cartesim.emulator.vpcd import VpcdCard
from cartesim.harness.control import socket as control
from cartesim.harness.control.client import CardControl
from cartesim.harness.control.local import EmulatedSlot, LocalCardControl
from cartesim.harness.control.server import MAX_CLIENTS, ControlServer
from cartesim.harness.control.settings import card_status, reset_card, save_card_state, set_card
from cartesim.harness.control.socket import ControlError, NoEmulator, RemoteInputError
from cartesim.harness.pytest_plugin.cards import InsertedCard
from cartesim.harness.stack.slots import SwappableCard
from cartesim.harness.tools.emulate import parse_state_files, run_emulation
from tests.helpers import assert_valid, run

CPS_ATR = "3BAC00402A001225006480000310009000"
VITALE_ATR = "3B751300004509EA9000"
# cps-two-situations: codes that appear nowhere else (ATR, serial, counters)
SECRETS = ("4242", "87654321", "8642")


def _no_secret(text: str) -> None:
    for code in SECRETS:
        assert code not in text
        assert code.encode().hex() not in text.lower()


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "ctl" / "control.sock"  # a folder of our own: tmp_path itself is 0755


@pytest.fixture
def local() -> LocalCardControl:
    return LocalCardControl.in_process(["cps-roulette", "vitale-famille"])


@pytest.fixture
def server(local: LocalCardControl, sock_path: Path) -> Iterator[ControlServer]:
    with ControlServer(local, sock_path) as s:
        yield s


# --- card-level --------------------------------------------------------------------------------
def test_status_is_counters_only() -> None:
    s = card_status(load_card("cps-two-situations"))
    assert (s.type, s.atr, s.pin_tries_left, s.pin_tries_max) == ("cps", CPS_ATR, 3, 3)
    assert (s.unblock_tries_left, s.unblock_uses_left, s.blocked) == (10, 10, False)
    _no_secret(json.dumps(s.__dict__))
    v = card_status(load_card("vitale-famille"))
    assert (v.type, v.atr, v.pin_tries_left, v.blocked) == ("vitale", VITALE_ATR, None, False)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["fresh"], (3, 10, 10, False, False)),
        (["last-try"], (1, 10, 10, False, False)),
        (["blocked"], (0, 10, 10, True, False)),
        (["unblock-last-try"], (0, 1, 10, True, False)),
        (["definitively-blocked"], (0, 0, 10, True, True)),
        (["definitively-blocked", "blocked"], (0, 10, 10, True, False)),
        (["blocked", "unblock_tries_left=3", "unblock-uses-left=2"], (0, 3, 2, True, False)),
        (["pin_tries_left=2"], (2, 10, 10, False, False)),
        (["definitively-blocked", "fresh"], (3, 10, 10, False, False)),
    ],
)
def test_set_states(states: list[str], expected: tuple[int, int, int, bool, bool]) -> None:
    card = load_card("cps-roulette")
    s = set_card(card, states)
    got = (s.pin_tries_left, s.unblock_tries_left, s.unblock_uses_left, s.blocked, s.definitively_blocked)
    assert got == expected


def test_set_changes_what_the_card_answers() -> None:
    card = load_card("cps-roulette")
    t = DirectTransport(card)
    set_card(card, ["last-try"])
    assert CpsCard(t).status().pin_tries_left == 1
    set_card(card, ["unblock-last-try"])
    with pytest.raises(LastTryNotConfirmed):  # the engine's guard sees the last try
        CpsCard(t).unblock("11111111", "4321", "4321")
    with pytest.raises(CardDefinitivelyBlocked):
        CpsCard(t).unblock("11111111", "4321", "4321", confirm_last_try=True)
    assert CpsCard(t).status().definitively_blocked


@pytest.mark.parametrize(
    ("profile", "setting", "message"),
    [
        ("cps-roulette", "sleepy", "set: sleepy: unknown state"),
        ("cps-roulette", "pin_code=8642", "set: pin_code: unknown counter"),
        ("cps-roulette", "pin_tries_left=4", "set: pin_tries_left: above the card's maximum 3"),
        ("cps-roulette", "unblock_uses_left=x", "set: unblock_uses_left: expected a whole number"),
        ("vitale-famille", "last-try", "set: last-try: this card has no code porteur"),
        (
            "vitale-famille",
            "unblock_tries_left=1",
            "set: unblock_tries_left: this card has no code de déblocage",
        ),
    ],
)
def test_set_refuses(profile: str, setting: str, message: str) -> None:
    card = load_card(profile)
    before = card_status(card)
    with pytest.raises(InputError) as e:
        set_card(card, ["blocked", setting] if card.pin else [setting])
    assert str(e.value).startswith(message)
    assert "8642" not in str(e.value)  # what follows '=' is never echoed for an unknown counter
    assert card_status(card) == before  # checked in full before anything is written


def test_set_nothing() -> None:
    with pytest.raises(InputError, match="nothing to set"):
        set_card(load_card("cps-roulette"), [])


def test_set_and_reset_go_through_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    card = load_card("cps-roulette", path)
    set_card(card, ["definitively-blocked"])
    saved = json.loads(path.read_text())
    assert saved["pin"]["tries_left"] == 0 and saved["unblock"]["tries_left"] == 0
    set_card(card, ["fresh"])
    CpsCard(DirectTransport(card)).change_pin("1234", "8642", "8642")
    set_card(card, ["last-try"])
    reset_card(card, "cps-roulette")  # the profile's code and counters again, in the file too
    assert json.loads(path.read_text())["pin"] == {"code": "1234", "tries_left": 3}
    CpsCard(DirectTransport(card)).verify("1234")


def test_reset_restores_the_profile_not_a_fresh_card() -> None:
    card = load_card("cps-last-try")
    set_card(card, ["fresh"])
    assert reset_card(card, "cps-last-try").pin_tries_left == 1
    with pytest.raises(InputError, match="not the one of this card"):
        reset_card(card, "vitale-famille")


def test_save_card_state(tmp_path: Path) -> None:
    card = load_card("cps-roulette")
    set_card(card, ["last-try", "unblock_uses_left=4"])
    path = save_card_state(card, tmp_path / "bug.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_card("cps-roulette")
    assert card_state.load(again, path)
    assert card_status(again) == card_status(card)
    with pytest.raises(InputError, match="folder does not exist"):
        save_card_state(card, tmp_path / "nope" / "bug.json")


# --- LocalCardControl --------------------------------------------------------------------------
def test_local_remove_insert(local: LocalCardControl) -> None:
    assert local.remove(0).present is False
    assert local.status(0).seen_by_reader is False
    assert local.insert(0).present is True
    assert [s.profile for s in local.status_all()] == ["cps-roulette", "vitale-famille"]


def test_local_swap_keeps_swapped_out_cards(local: LocalCardControl) -> None:
    local.set(0, "last-try")
    first = local.slots[0].holder.card
    s = local.swap(0, "cps-two-situations")
    assert (s.profile, s.present, s.card.pin_tries_left) == ("cps-two-situations", True, 3)
    back = local.swap(0, "cps-roulette")
    assert local.slots[0].holder.card is first and back.card.pin_tries_left == 1
    assert local.swap(1, "vitale-expired-rights").card.type == "vitale"


def test_local_swap_into_an_empty_slot_inserts(local: LocalCardControl) -> None:
    local.remove(1)
    assert local.swap(1, "cps-roulette").present is True


def test_local_refuses(local: LocalCardControl) -> None:
    with pytest.raises(InputError, match="no such slot"):
        local.status(2)
    with pytest.raises(InputError, match="no sample of that name"):
        local.swap(0, "no-such-card")
    assert local.status(0).profile == "cps-roulette"  # a bad swap changes nothing


def test_local_reset_and_save(local: LocalCardControl, tmp_path: Path) -> None:
    local.set(0, "blocked")
    assert local.reset(0).card.pin_tries_left == 3
    path = local.save_state(0, tmp_path / "s.json")
    assert json.loads(path.read_text())["format"] == card_state.FORMAT


# --- a fake vpcd: what pcscd's driver does, enough to see cards come and go ----------------------
class FakeVpcd:
    """Accepts one card at a time, asks its ATR (as vpcd does at every poll), reports comings and
    goings in ``events``: ("atr", HEX) per connection, ("gone",) when it closes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.events: queue.Queue[tuple[str, ...]] = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                atr = self._atr(conn)
                if atr is None:
                    continue
                self.events.put(("atr", atr))
                while self._atr(conn, wait=0.05) is not None:
                    pass
                self.events.put(("gone",))

    @staticmethod
    def _atr(conn: socket.socket, wait: float = 0.0) -> str | None:
        threading.Event().wait(wait)
        try:
            conn.sendall(b"\x00\x01\x04")
            head = conn.recv(2)
            if len(head) < 2:
                return None
            return conn.recv(struct.unpack(">H", head)[0]).hex().upper()
        except OSError:
            return None

    def next(self) -> tuple[str, ...]:
        return self.events.get(timeout=5)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def vpcds() -> Iterator[tuple[FakeVpcd, FakeVpcd]]:
    """Two fake vpcd slots on consecutive ports, as run_emulation expects."""
    for _ in range(50):
        a = socket.create_server(("127.0.0.1", 0))
        try:
            b = socket.create_server(("127.0.0.1", a.getsockname()[1] + 1))
        except OSError:
            a.close()
            continue
        pair = FakeVpcd(a), FakeVpcd(b)
        yield pair
        for v in pair:
            v.close()
        return
    pytest.skip("no two consecutive free ports")


def test_remove_insert_swap_seen_by_vpcd(vpcds: tuple[FakeVpcd, FakeVpcd]) -> None:
    fake = vpcds[0]
    holder = SwappableCard(load_card("cps-roulette"))
    served = VpcdCard(holder, "127.0.0.1", fake.port).start()
    try:
        ctl = LocalCardControl([EmulatedSlot("cps-roulette", holder, served)])
        assert fake.next() == ("atr", CPS_ATR)
        assert ctl.status(0).seen_by_reader
        ctl.remove(0)
        assert fake.next() == ("gone",)
        assert ctl.insert(0).seen_by_reader
        assert fake.next() == ("atr", CPS_ATR)
        ctl.swap(0, "vitale-famille")
        assert fake.next() == ("gone",)  # a swap is a removal the reader sees, then the new card
        assert fake.next() == ("atr", VITALE_ATR)
    finally:
        served.stop()


# --- the socket --------------------------------------------------------------------------------
def test_socket_round_trip(server: ControlServer, sock_path: Path, tmp_path: Path) -> None:
    api = CardControl(sock_path)
    assert [s.card.type for s in api.status_all()] == ["cps", "vitale"]
    assert api.set(0, "last-try").card.pin_tries_left == 1
    assert api.remove(1).present is False
    assert api.insert(1).present is True
    assert api.swap(1, "vitale-expired-rights").profile == "vitale-expired-rights"
    assert api.reset(0).card.pin_tries_left == 3
    assert api.status(0).card.blocked is False


def test_socket_paths_are_the_clients(
    server: ControlServer, sock_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths are the client's: the emulator's working folder is another."""
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "mine.yaml").write_bytes(
        (Path(__file__).parent.parent / "fixtures" / "cards" / "cps-two-situations.yaml").read_bytes()
    )
    monkeypatch.chdir(tmp_path)
    api = CardControl(sock_path)
    assert api.swap(0, "cards/mine.yaml").profile == str(tmp_path / "cards" / "mine.yaml")
    assert api.save_state(0, "saved.json") == tmp_path / "saved.json"
    assert json.loads((tmp_path / "saved.json").read_text())["pin"]["code"] == "4242"


def test_socket_and_folder_permissions(server: ControlServer, sock_path: Path) -> None:
    assert stat.S_IMODE(sock_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(sock_path.stat().st_mode)


def test_socket_removed_at_stop(local: LocalCardControl, sock_path: Path) -> None:
    with ControlServer(local, sock_path):
        assert sock_path.exists()
    assert not sock_path.exists()
    with pytest.raises(NoEmulator, match="Aucun cartesim emulate"):
        CardControl(sock_path).status(0)


def test_no_folder_is_no_emulator(tmp_path: Path) -> None:
    with pytest.raises(NoEmulator):
        CardControl(tmp_path / "none" / "control.sock").status_all()


def test_refuses_an_open_folder(local: LocalCardControl, tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(InputError, match="lets group or others in"):
        ControlServer(local, folder / "control.sock").start()
    with pytest.raises(InputError, match="lets group or others in"):
        CardControl(folder / "control.sock").status_all()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away needs root")
def test_refuses_a_folder_owned_by_someone_else(local: LocalCardControl, tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(InputError, match="owned by uid 65534"):
        ControlServer(local, folder / "control.sock").start()
    with pytest.raises(InputError, match="owned by uid 65534"):
        CardControl(folder / "control.sock").status_all()


def test_refuses_a_symlinked_folder(local: LocalCardControl, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(InputError, match="symbolic links are refused"):
        ControlServer(local, tmp_path / "link" / "control.sock").start()


def test_stale_socket_replaced_live_one_refused(local: LocalCardControl, sock_path: Path) -> None:
    sock_path.parent.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sock_path))
    dead.close()  # a socket file nobody listens on: an emulate that was killed
    with ControlServer(local, sock_path):
        assert CardControl(sock_path).status(0).profile == "cps-roulette"
        with pytest.raises(InputError, match="another cartesim emulate listens"):
            ControlServer(local, sock_path).start()
    sock_path.write_text("")
    with pytest.raises(InputError, match="not a socket"):
        ControlServer(local, sock_path).start()


def test_default_socket_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(control.ENV_CONTROL, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control.default_socket_path() == tmp_path / "cartesim" / "control.sock"
    assert control.control_socket(None) == (tmp_path / "cartesim" / "control.sock", True)
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert control.default_socket_path().parent.name == f"cartesim-{os.geteuid()}"
    monkeypatch.setenv(control.ENV_CONTROL, str(tmp_path / "x.sock"))
    assert control.control_socket(None) == (tmp_path / "x.sock", False)
    assert control.control_socket(tmp_path / "y.sock") == (tmp_path / "y.sock", False)


def _raw(path: Path, *lines: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(b"".join(lines))
        s.shutdown(socket.SHUT_WR)
        return [json.loads(line) for line in s.makefile("rb")]


def test_bad_requests_are_answered_not_fatal(server: ControlServer, sock_path: Path) -> None:
    replies = _raw(
        sock_path,
        b"not json\n",
        b"[1]\n",
        b'{"op": "status"}\n',
        b'{"v": 1, "op": "explode", "slot": 0}\n',
        b'{"v": 1, "op": "remove", "slot": "0"}\n',
        b'{"v": 1, "op": "remove", "slot": true}\n',
        b'{"v": 1, "op": "set", "slot": 0, "settings": "blocked"}\n',
        b'{"v": 1, "op": "save-state", "slot": 0, "file": "relative.json"}\n',
        b'{"v": 1, "op": "status", "slot": 0}\n',
    )
    assert [r["ok"] for r in replies] == [False] * 8 + [True]
    assert all(r["kind"] == "input" for r in replies[:8])
    assert "an absolute path is needed" in replies[7]["error"]
    assert replies[8]["result"]["profile"] == "cps-roulette"


def test_hostile_requests_are_input_errors(server: ControlServer, sock_path: Path) -> None:
    """Each once gave "internal error": a digit that is not ASCII, a NUL in a path, a lone
    surrogate, a 5,000-digit slot, nesting 20,000 deep."""
    requests = {
        "pin_tries_left=²": b'{"v": 1, "op": "set", "slot": 0, "settings": ["pin_tries_left=\\u00b2"]}',
        "NUL in a path": b'{"v": 1, "op": "save-state", "slot": 0, "file": "/tmp/a\\u0000b.json"}',
        "NUL in a profile": b'{"v": 1, "op": "swap", "slot": 0, "profile": "cps-roulette\\u0000"}',
        "lone surrogate": b'{"v": 1, "op": "save-state", "slot": 0, "file": "/tmp/\\ud800.json"}',
        "lone surrogate in a setting": b'{"v": 1, "op": "set", "slot": 0, "settings": ["\\udfff"]}',
        "5,000-digit slot": b'{"v": 1, "op": "status", "slot": ' + b"9" * 5000 + b"}",
        "nesting 20,000 deep": b"[" * 20_000 + b"]" * 20_000,
        "NaN slot": b'{"v": 1, "op": "status", "slot": NaN}',
        "a long setting": b'{"v": 1, "op": "set", "slot": 0, "settings": ["' + b"x" * 5000 + b'"]}',
    }
    replies = _raw(sock_path, *(line + b"\n" for line in requests.values()))
    problems = dict(zip(requests, [(r.get("kind"), str(r.get("error"))) for r in replies], strict=True))
    assert all(kind == "input" for kind, _ in problems.values()), problems
    assert "expected a whole number" in problems["pin_tries_left=²"][1]
    assert "control character" in problems["NUL in a path"][1]
    assert "control character" in problems["NUL in a profile"][1]
    assert "lone surrogate" in problems["lone surrogate"][1]
    assert "a number longer than 9 digits" in problems["5,000-digit slot"][1]
    assert "nested too deep" in problems["nesting 20,000 deep"][1]
    assert "longer than 4096 characters" in problems["a long setting"][1]
    assert _raw(sock_path, b'{"v": 1, "op": "status", "slot": 0}\n')[0]["ok"]  # still serving


def test_set_never_echoes_a_value(
    server: ControlServer, sock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A value after '=', or a setting with digits, may be a code typed in the wrong place."""
    caplog.set_level(logging.DEBUG)
    api = CardControl(sock_path)
    seen = []
    for settings in (["pin_tries_left=73915284"], ["73915284"], ["pin_73915284=1"], ["blocked", "x73915284"]):
        with pytest.raises(RemoteInputError) as e:
            api.set(0, *settings)
        seen.append(str(e.value))
    r = run("card", "set", "0", "pin_tries_left=73915284", "--control", str(sock_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    for text in (*seen, r.stderr, r.stdout, caplog.text):
        assert "73915284" not in text
    assert seen[0] == "set: pin_tries_left: expected a whole number from 0 to 255"
    assert seen[1].startswith("set: setting 1: unknown state")
    assert seen[3].startswith("set: setting 2: unknown state")


@pytest.fixture
def open_files() -> Iterator[int]:
    """How many more files this process may open for a test: its soft limit raised towards what
    1,000 connections need (an unprivileged user's soft limit is often 1,024), put back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1000 + MAX_CLIENTS + 256  # the clients' ends, the served ends, and pytest's own files
    raised = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if raised > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield max(raised, soft) - MAX_CLIENTS - 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connections_are_capped(server: ControlServer, sock_path: Path, open_files: int) -> None:
    """1,000 idle connections once made 994 threads; now MAX_CLIENTS, the others refused at once."""
    before = threading.active_count()
    conns = []
    try:
        for _ in range(min(1000, open_files)):
            c = socket.socket(socket.AF_UNIX)
            c.connect(str(sock_path))
            conns.append(c)
        assert threading.active_count() <= before + MAX_CLIENTS
        refused = conns[-1].makefile("rb").readline()
        assert json.loads(refused)["kind"] == "busy"
        with pytest.raises(ControlError, match=f"serves {MAX_CLIENTS} control connections at most"):
            CardControl(sock_path).status(0)
    finally:
        for c in conns:
            c.close()
    while threading.active_count() > before:  # the served clients see their end, and go
        threading.Event().wait(0.01)
    assert CardControl(sock_path).status(0).card.pin_tries_left == 3


def test_too_long_a_line(server: ControlServer, sock_path: Path) -> None:
    [reply] = _raw(sock_path, b"x" * (control.MAX_LINE + 10) + b"\n")
    assert reply["error"] == "request: line too long"


def test_remote_errors_are_input_errors(server: ControlServer, sock_path: Path) -> None:
    with pytest.raises(RemoteInputError, match="no such slot"):
        CardControl(sock_path).remove(5)


def test_secrets_never_in_status_or_logs(
    sock_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    local = LocalCardControl.in_process(["cps-two-situations"])
    card = local.slots[0].holder.card
    CpsCard(DirectTransport(card)).change_pin("4242", "8642", "8642")
    with ControlServer(local, sock_path):
        api = CardControl(sock_path)
        texts = [json.dumps(api.status(0).to_dict()), json.dumps([s.to_dict() for s in api.status_all()])]
        texts.append(json.dumps(api.set(0, "last-try").to_dict()))
        texts.append(json.dumps(api.reset(0).to_dict()))
        env = {control.ENV_CONTROL: str(sock_path)}
        for args in (("status",), ("status", "0", "--json"), ("set", "0", "blocked"), ("reset", "0")):
            r = run("card", *args, env=env)
            assert r.returncode == 0, r.stderr
            texts += [r.stdout, r.stderr]
    texts.append(caplog.text)
    for text in texts:
        _no_secret(text)


# --- `cartesim card` -----------------------------------------------------------------------------
def test_cli_card(server: ControlServer, sock_path: Path, tmp_path: Path) -> None:
    ctl = ("--control", str(sock_path))
    r = run("card", "status", "0", "--json", *ctl)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert_valid(doc, "card-status")
    assert [s["pin_tries_left"] for s in doc["slots"]] == [3]
    r = run("card", "set", "0", "last-try", *ctl)
    assert r.returncode == 0 and "Code porteur : 1 tentative(s) restante(s) sur 3" in r.stdout
    r = run("card", "remove", "0", *ctl)
    assert (r.returncode, r.stdout) == (0, "Emplacement 0 : carte retirée\n")
    r = run("card", "status", *ctl)
    assert "Emplacement 0 (cps-roulette) : carte retirée" in r.stdout
    assert "Emplacement 1 (vitale-famille) : carte présente, vitale" in r.stdout
    assert run("card", "insert", "0", *ctl).returncode == 0
    r = run("card", "swap", "1", "vitale-expired-rights", *ctl)
    assert r.returncode == 0 and "vitale-expired-rights" in r.stdout
    saved = tmp_path / "bug.json"
    r = run("card", "save-state", "0", str(saved), *ctl)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["pin"]["tries_left"] == 1
    r = run("card", "status", "--json", *ctl)
    doc = json.loads(r.stdout)
    assert_valid(doc, "card-status")
    assert [row["profile"] for row in doc["slots"]] == ["cps-roulette", "vitale-expired-rights"]


def test_cli_card_errors(server: ControlServer, sock_path: Path, tmp_path: Path) -> None:
    ctl = ("--control", str(sock_path))
    r = run("card", "set", "0", "sleepy", *ctl)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown state" in r.stderr
    r = run("card", "remove", "7", *ctl)
    assert r.returncode == 2 and "no such slot" in r.stderr
    r = run("card", "set", "1", "blocked", *ctl)
    assert r.returncode == 2 and "no code porteur" in r.stderr
    r = run("card", "status", "--control", str(tmp_path / "none" / "control.sock"))
    assert r.returncode == 3
    assert r.stderr == f"cartesim: Aucun cartesim emulate n'écoute sur {tmp_path / 'none' / 'control.sock'}\n"


# --- run_emulation -----------------------------------------------------------------------------
def _emulate(
    ports: tuple[FakeVpcd, FakeVpcd],
    profiles: list[str],
    state_dir: Path | None = None,
    **kw: Any,
) -> tuple[threading.Thread, threading.Event, list[str]]:
    """run_emulation in a thread (no signal handlers there), once vpcd has seen every card."""
    stop, said = threading.Event(), list[str]()
    thread = threading.Thread(
        target=run_emulation,
        args=(profiles, state_dir, "127.0.0.1", ports[0].port, said.append, stop),
        kwargs=kw,
        daemon=True,
    )
    thread.start()
    for v in ports[: len(profiles)]:
        assert v.next()[0] == "atr"
    return thread, stop, said


def test_run_emulation_with_control(
    vpcds: tuple[FakeVpcd, FakeVpcd], tmp_path: Path, sock_path: Path
) -> None:
    state_dir = tmp_path / "cards"
    state_dir.mkdir()
    bug = tmp_path / "bug.json"
    card = load_card("cps-roulette")
    set_card(card, ["unblock-last-try"])
    save_card_state(card, bug)
    thread, stop, said = _emulate(
        vpcds,
        ["cps-roulette", "vitale-famille"],
        state_dir=state_dir,
        control=sock_path,
        state_files={0: bug},
    )
    try:
        api = CardControl(sock_path)
        s = api.status(0)
        assert (s.card.pin_tries_left, s.card.unblock_tries_left, s.seen_by_reader) == (0, 1, True)
        api.swap(1, "vitale-expired-rights")
        assert vpcds[1].next() == ("gone",) and vpcds[1].next() == ("atr", VITALE_ATR)
        api.reset(0)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert not sock_path.exists()
    assert json.loads(bug.read_text())["unblock"]["tries_left"] == 1  # read, never written
    assert json.loads((state_dir / "slot0-cps-roulette.json").read_text())["pin"]["tries_left"] == 3
    assert (state_dir / "slot1-vitale-expired-rights.json").exists()
    assert (state_dir / "slot1-vitale-famille.json").exists()
    assert any("control.sock" in line for line in said)


def test_run_emulation_and_the_cli_share_the_card(
    vpcds: tuple[FakeVpcd, FakeVpcd], tmp_path: Path, sock_path: Path
) -> None:
    """emulate --state once ignored what the CLI wrote to the same file, and its last save on
    SIGTERM wrote 3 tries back over a card the CLI had blocked."""
    state_dir = tmp_path / "cards"
    state_dir.mkdir()
    path = str(state_dir / "slot0-cps-roulette.json")
    thread, stop, _ = _emulate(vpcds, ["cps-roulette"], state_dir=state_dir, control=sock_path)
    try:
        api = CardControl(sock_path)
        for _ in range(3):
            run("cps", "verify", "--state", path, stdin="0000\n")
        assert api.status(0).card.blocked  # emulate's card is the file's
        api.set(0, "last-try")  # emulate writes: the CLI sees it
        r = run("cps", "status", "--state", path, "--json")
        assert json.loads(r.stdout)["pin_tries_left"] == 1
        r = run("cps", "verify", "--state", path, stdin="0000\n")
        assert r.stderr.strip() == "Carte bloquée"
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert json.loads(Path(path).read_text())["pin"]["tries_left"] == 0  # never 3 written back


def test_run_emulation_bad_control(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(InputError, match="lets group or others in"):
        run_emulation(
            ["cps-roulette"], None, "127.0.0.1", 1, print, threading.Event(), control=folder / "c.sock"
        )


def test_run_emulation_optional_control_only_warns(vpcds: tuple[FakeVpcd, FakeVpcd], tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o755)
    thread, stop, said = _emulate(vpcds, ["cps-roulette"], control=folder / "c.sock", control_optional=True)
    stop.set()
    thread.join(10)
    assert any(line.startswith("pas de contrôle des cartes") for line in said)


def test_run_emulation_missing_state_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        run_emulation(
            ["cps-roulette"], None, "127.0.0.1", 1, print, threading.Event(), state_files={0: tmp_path / "x"}
        )


def test_parse_state_files() -> None:
    assert parse_state_files(["1=b.json", "0=a.json"], 2) == {0: Path("a.json"), 1: Path("b.json")}
    for bad in ("a.json", "x=a.json", "0=", "2=a.json"):
        with pytest.raises(InputError, match="--state-file"):
            parse_state_files([bad], 2)


# --- the pytest fixtures: the same calls on an inserted card ------------------------------------
def test_inserted_card_api(emulated_cps: InsertedCard, cps_card: CpsCard, tmp_path: Path) -> None:
    assert emulated_cps.set("last-try").pin_tries_left == 1
    assert cps_card.status().pin_tries_left == 1  # what the reader's client sees: the same card
    assert emulated_cps.status().blocked is False
    emulated_cps.set("blocked")
    assert cps_card.status().blocked
    saved = emulated_cps.save_state(tmp_path / "bug.json")
    assert json.loads(saved.read_text())["pin"]["tries_left"] == 0
    assert emulated_cps.reset().pin_tries_left == 3
    cps_card.verify("1234")
