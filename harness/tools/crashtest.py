"""Crash safety, measured: kill -9 `cartesim emulate --state` at random moments during a storm of
wrong codes and unblocks, and check after every kill that the state file loads and that the card
never grants more tries than it had left (each decrement is written before its answer leaves).

The client knows, from the answers it got, what the card had left. A command whose answer never
came ("in flight") may or may not have been applied; everything else must match exactly. An
unblock in flight is either fully applied or not at all.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cartesim.core import layout
from cartesim.core import sw as swmod
from cartesim.core.apdu import INS_RESET_RETRY_COUNTER, INS_VERIFY, CommandApdu
from cartesim.core.errors import TransportError
from cartesim.core.sw import SW
from cartesim.harness.tools import CARTESIM_ARGV, SAMPLE_CPS, IssuedCps

# (the card shows in about half a second), never a measure; the figures are only printed.
CARD_WAIT = 30.0


@dataclass
class Known:
    """What the client has learnt from the card's answers."""

    code: str
    pin_left: int
    unblock_left: int
    uses_left: int

    @classmethod
    def fresh(cls, issued: IssuedCps) -> Known:
        return cls(issued.code, issued.pin_max, issued.unblock_max, issued.uses_max)


@dataclass
class CrashReport:
    kills: int = 0
    apdus: int = 0
    in_flight_at_kill: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _apdu(ins: int, data: str) -> bytes:
    return CommandApdu(0x00, ins, 0x00, layout.PIN_REF_PORTEUR, data.encode()).to_bytes()


def check(state: dict, known: Known, in_flight: tuple[str, str] | None, issued: IssuedCps) -> list[str]:
    """Violations of the crash-safety rule, given what the client knew and what was in flight."""
    pin, unblock = state["pin"], state["unblock"]
    got = (pin["code"], pin["tries_left"], unblock["tries_left"], unblock["uses_left"])
    k = known
    allowed = {(k.code, k.pin_left, k.unblock_left, k.uses_left)}
    kind = in_flight[0] if in_flight else None
    if kind == "wrong_pin" and k.pin_left > 0:
        allowed.add((k.code, k.pin_left - 1, k.unblock_left, k.uses_left))
    elif kind == "right_pin" and k.pin_left > 0:
        allowed |= {
            (k.code, k.pin_left - 1, k.unblock_left, k.uses_left),
            (k.code, issued.pin_max, k.unblock_left, k.uses_left),
        }
    elif kind == "wrong_unblock" and k.unblock_left > 0 and k.uses_left > 0:
        allowed.add((k.code, k.pin_left, k.unblock_left - 1, k.uses_left))
    elif kind == "right_unblock" and k.unblock_left > 0 and k.uses_left > 0:
        assert in_flight is not None
        allowed.add((k.code, k.pin_left, k.unblock_left - 1, k.uses_left))  # the try, written first
        allowed.add((in_flight[1], issued.pin_max, issued.unblock_max, k.uses_left - 1))  # all at once
    if got not in allowed:
        return [
            f"state {got[1:]} (code {'changed' if got[0] != k.code else 'kept'}) after {kind or 'no command'} in flight; allowed {[a[1:] for a in allowed]}"
        ]
    return []


def _learn(known: Known, action: tuple[str, str], sw: int, issued: IssuedCps) -> None:
    kind, new = action
    left = swmod.tries_left(sw)
    if kind in ("wrong_pin", "right_pin"):
        if sw == SW.OK:
            known.pin_left = issued.pin_max
        elif left is not None:
            known.pin_left = left
        elif sw == SW.AUTH_BLOCKED:
            known.pin_left = 0
    elif sw == SW.OK:  # right unblock
        known.code, known.pin_left, known.unblock_left, known.uses_left = (
            new,
            issued.pin_max,
            issued.unblock_max,
            known.uses_left - 1,
        )
    elif left is not None:
        known.unblock_left = left
    elif sw == SW.AUTH_BLOCKED and kind == "wrong_unblock" and known.unblock_left <= 1:
        known.unblock_left = 0


def _choose(rng: random.Random, known: Known) -> tuple[str, str]:
    if known.pin_left > 0:
        return ("right_pin", "") if rng.random() < 0.2 else ("wrong_pin", "")
    if known.unblock_left > 2 and rng.random() < 0.5:
        return ("wrong_unblock", "")
    return ("right_unblock", f"{rng.randint(0, 9999):04d}")


def run(kills: int, seed: int = 0, say: Callable[[str], None] = lambda _: None) -> CrashReport:
    from cartesim.core.transport.pcsc import PcscTransport, wait_reader
    from cartesim.harness.stack.pcscd import vpcd_reader
    from cartesim.harness.stack.stacks import tool_stack

    rng = random.Random(seed)  # noqa: S311 - reproducible kill times, not cryptography
    issued = IssuedCps.of()
    reader = vpcd_reader(0)
    report = CrashReport()
    start = time.perf_counter()
    with tool_stack(say=say), tempfile.TemporaryDirectory() as folder:
        state_path = Path(folder) / f"slot0-{SAMPLE_CPS}.json"
        known = Known.fresh(issued)
        in_flight: tuple[str, str] | None = None
        for n in range(kills + 1):
            proc = subprocess.Popen(
                [*CARTESIM_ARGV, "emulate", SAMPLE_CPS, "--state", folder],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                if wait_reader(reader, present=True, timeout=CARD_WAIT) is None:
                    report.violations.append(f"kill {n}: the card did not come back")
                    break
                if state_path.exists():
                    try:
                        state = json.loads(state_path.read_text())
                    except ValueError as e:
                        report.violations.append(f"kill {n}: state file does not load ({e})")
                        break
                    report.violations += [f"kill {n}: {v}" for v in check(state, known, in_flight, issued)]
                    known = Known(
                        state["pin"]["code"],
                        state["pin"]["tries_left"],
                        state["unblock"]["tries_left"],
                        state["unblock"]["uses_left"],
                    )
                in_flight = None
                if n == kills:
                    break
                if known.uses_left < 2 or known.unblock_left < 2:
                    # a fresh card before it becomes definitively blocked (the next start reads it).
                    # Its state is thrown away: no need to wait for a clean stop, which on a busy
                    # machine can take longer than any bound set here.
                    proc.kill()
                    proc.wait()
                    state_path.unlink(missing_ok=True)
                    known = Known.fresh(issued)
                    wait_reader(reader, present=False, timeout=CARD_WAIT)
                    proc = subprocess.Popen(
                        [*CARTESIM_ARGV, "emulate", SAMPLE_CPS, "--state", folder],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    wait_reader(reader, present=True, timeout=CARD_WAIT)
                t = PcscTransport(reader, timeout=CARD_WAIT)
                timer = threading.Timer(rng.uniform(0.0, 0.08), lambda p=proc: p.send_signal(signal.SIGKILL))
                timer.start()
                try:
                    while True:
                        action = _choose(rng, known)
                        kind, new = action
                        if kind == "wrong_pin":
                            wrong = "0000" if known.code != "0000" else "1111"
                            command = _apdu(INS_VERIFY, wrong)
                        elif kind == "right_pin":
                            command = _apdu(INS_VERIFY, known.code)
                        elif kind == "wrong_unblock":
                            wrong = "0" * len(issued.unblock_code)
                            command = _apdu(INS_RESET_RETRY_COUNTER, wrong + new.rjust(4, "0"))
                        else:
                            command = _apdu(INS_RESET_RETRY_COUNTER, issued.unblock_code + new)
                        in_flight = action
                        response = t.transmit(command)
                        report.apdus += 1
                        _learn(known, action, int.from_bytes(response[-2:], "big"), issued)
                        in_flight = None
                except TransportError:
                    pass  # killed: the card is gone mid-storm
                finally:
                    timer.cancel()
                    t.close()
                report.in_flight_at_kill += in_flight is not None
                report.kills += 1
                if n % 20 == 0:
                    say(f"{n} kills, {report.apdus} APDUs")
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)
                wait_reader(reader, present=False, timeout=CARD_WAIT)
    report.seconds = time.perf_counter() - start
    return report


def summary(r: CrashReport) -> str:
    lines = [
        f"crash test: {r.kills} kills -9, {r.apdus} APDUs, {r.in_flight_at_kill} with a command in flight, "
        f"{len(r.violations)} violation(s), {r.seconds:.0f} s"
    ]
    lines += [f"  {v}" for v in r.violations[:20]]
    return "\n".join(lines)
