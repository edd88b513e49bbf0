"""`cartesim bench`: throughput and latency figures, printed, never asserted.

- floor: a minimal card (``FloorCard``: 9000 to everything) over the same vpcd protocol and socket
  options as the emulator, measured through pcscd in the same run: the stack's own limit;
- pcsc: the emulated CPS through pcscd on a mix of SELECT, READ BINARY and tries-left queries;
- direct: the same mix in-process;
- scenario: three wrong codes + unblock + verify + the full "Lire CPS", through pcscd;
- card visible: from starting `cartesim emulate` to the card present in PC/SC;
- PKCS#11 login + signature: OpenSC's opensc-pkcs11.so driven by PyKCS11 (C_Login with the code
  porteur, then C_Sign with CPS_PRIV_AUT) on the card of `cartesim emulate`, through pcscd.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass

from cartesim.core import commands, layout
from cartesim.core.apdu import INS_READ_BINARY, INS_VERIFY, CommandApdu
from cartesim.core.cps import CpsCard
from cartesim.core.errors import CardBlocked, WrongCode
from cartesim.core.transport import Transport
from cartesim.core.transport.direct import DirectTransport
from cartesim.emulator.cards import load_card
from cartesim.harness.stack.slots import CARD_TIMEOUT, VpcdSlot
from cartesim.harness.tools import CARTESIM_ARGV, SAMPLE_CPS, IssuedCps


class FloorCard:
    """The fastest possible card: it answers 9000 to every APDU. Measures the stack, not the card."""

    atr = layout.ATR_CPS3  # the CPS's ATR: the same protocol, T=0

    def process(self, raw: bytes) -> bytes:
        return b"\x90\x00"

    def reset(self) -> None:
        pass


def _mix() -> list[bytes]:
    """One round: SELECT the holder file, READ BINARY of it (exact Le), a tries-left query."""
    t = DirectTransport(load_card(SAMPLE_CPS))
    path = (layout.FID_CPS_DF, layout.FID_HOLDER)
    commands.check("SELECT", commands.select_path(t, *path))
    holder_len = len(commands.read_binary(t))
    return [
        commands.select_path_apdu(*path).to_bytes(),
        CommandApdu(0x00, INS_READ_BINARY, 0, 0, le=holder_len).to_bytes(),
        CommandApdu(0x00, INS_VERIFY, 0x00, layout.PIN_REF_PORTEUR).to_bytes(),
    ]


ROUNDS = 100  # rounds of the mix per batch


def _batch(t: Transport, commands: list[bytes]) -> float:
    """Seconds taken by ``ROUNDS`` rounds of ``commands`` in one transaction."""
    with t.transaction():
        start = time.perf_counter()
        for _ in range(ROUNDS):
            for c in commands:
                t.transmit(c)
        return time.perf_counter() - start


def _rates(transports: list[Transport], commands: list[bytes], seconds: float) -> list[float]:
    """APDU/s of each transport, measured in alternating batches for about ``seconds`` each,
    so that the load of a shared machine drifts the same way for all of them."""
    spent = [0.0] * len(transports)
    batches = 0
    while min(spent) < seconds:
        for i, t in enumerate(transports):
            spent[i] += _batch(t, commands)
        batches += 1
    n = batches * ROUNDS * len(commands)
    return [n / s for s in spent]


def _scenario(t: Transport, unblock_code: str) -> float:
    card = CpsCard(t)
    start = time.perf_counter()
    for _ in range(3):
        with contextlib.suppress(WrongCode, CardBlocked):
            card.verify("0000", confirm_last_try=True)
    card.unblock(unblock_code, "4321", "4321")
    card.verify("4321")
    card.read("4321")
    return (time.perf_counter() - start) * 1000


@dataclass
class Figures:
    direct_apdu_per_s: float
    pcsc_apdu_per_s: float | None = None
    floor_apdu_per_s: float | None = None
    pcsc_vs_floor: float | None = None
    scenario_ms: float | None = None
    card_visible_ms: float | None = None
    pkcs11_login_sign_ms: float | None = None
    note: str = ""


def _card_visible_ms(reader: str) -> float:
    """Start `cartesim emulate` as a user would and time until PC/SC shows the card."""
    from cartesim.core.transport.pcsc import wait_reader

    argv = [*CARTESIM_ARGV, "emulate", SAMPLE_CPS]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if wait_reader(reader, present=True, timeout=10.0) is None:
            raise TimeoutError("the emulated card never showed in PC/SC")
        return (time.perf_counter() - start) * 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        wait_reader(reader, present=False, timeout=CARD_TIMEOUT)


def _pkcs11_login_sign_ms(reader: str, pin: str) -> float | str:
    """Median time of C_Login + C_Sign through OpenSC's PKCS#11 module, on a card served by
    `cartesim emulate` (PyKCS11 holds the interpreter while it waits: the card must be another
    process); the reason when it cannot be measured."""
    from cartesim.core.transport.pcsc import wait_reader
    from cartesim.harness.tools.pkcs11 import Token, opensc_module

    module = opensc_module()
    if module is None:
        return "PKCS#11 figure skipped: opensc-pkcs11.so not found (apt install opensc)"
    try:
        import PyKCS11  # noqa: F401 - only to say so when it is missing
    except ImportError:
        return "PKCS#11 figure skipped: PyKCS11 not installed (pip install 'cartesim[test]')"
    proc = subprocess.Popen(
        [*CARTESIM_ARGV, "emulate", SAMPLE_CPS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if wait_reader(reader, present=True, timeout=10.0) is None:
            return "PKCS#11 figure skipped: the emulated card never showed in PC/SC"
        token = Token(module, reader)  # binds PKCS#15, reads the certificates: not timed
        try:
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                token.login(pin)
                token.sign_sha256(b"cartesim bench")
                runs.append((time.perf_counter() - start) * 1000)
                token.session.logout()
        finally:
            token.close()
        return sorted(runs)[len(runs) // 2]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        wait_reader(reader, present=False, timeout=CARD_TIMEOUT)


def run(seconds: float = 2.0, say: Callable[[str], None] = lambda _: None) -> Figures:
    mix = _mix()
    issued = IssuedCps.of()
    say("in-process…")
    (direct,) = _rates([DirectTransport(load_card(SAMPLE_CPS))], mix, seconds)
    figures = Figures(direct_apdu_per_s=direct)
    from cartesim.harness.stack.pcscd import PcscdUnavailable, vpcd_reader
    from cartesim.harness.stack.stacks import tool_stack

    with ExitStack() as stack:
        try:
            stack.enter_context(tool_stack(say=say))
        except PcscdUnavailable as e:
            figures.note = f"PC/SC figures skipped: {e}"
            return figures
        say("emulated CPS (slot 0) and floor card (slot 1) through pcscd…")
        cps, floor = VpcdSlot(0, load_card(SAMPLE_CPS)).start(), VpcdSlot(1, FloorCard()).start()
        try:
            with cps.open() as t_cps, floor.open() as t_floor:
                pcsc, floor_rate = _rates([t_cps, t_floor], mix, seconds)
                say("scenario through pcscd…")
                # The story leaves the card unblocked: it can run again.
                runs = [_scenario(t_cps, issued.unblock_code) for _ in range(5)]
        finally:
            cps.close()
            floor.close()
        say("card visible after `cartesim emulate`…")
        visible = sorted(_card_visible_ms(vpcd_reader(0)) for _ in range(3))[1]
        say("PKCS#11 login + signature through pcscd…")
        pkcs11 = _pkcs11_login_sign_ms(vpcd_reader(0), issued.code)
    if isinstance(pkcs11, str):
        figures.note = pkcs11
    else:
        figures.pkcs11_login_sign_ms = pkcs11
    figures.floor_apdu_per_s = floor_rate
    figures.pcsc_apdu_per_s = pcsc
    figures.pcsc_vs_floor = pcsc / floor_rate
    figures.scenario_ms = sorted(runs)[len(runs) // 2]
    figures.card_visible_ms = visible
    return figures


TARGETS = {
    "direct_apdu_per_s": ("≥ 50,000", lambda v: v >= 50_000),
    "pcsc_vs_floor": ("≥ 0.85", lambda v: v >= 0.85),
    "scenario_ms": ("≤ 50", lambda v: v <= 50),
    "card_visible_ms": ("≤ 1,000", lambda v: v <= 1000),
}


def table(f: Figures) -> str:
    rows = [("figure", "value", "target", "")]
    for key, value in asdict(f).items():
        if key == "note":
            continue
        target, ok = TARGETS.get(key, ("—", None))
        fmt = ",.2f" if key == "pcsc_vs_floor" else (",.1f" if key.endswith("_ms") else ",.0f")
        shown = "n/a" if value is None else format(value, fmt)
        verdict = "" if value is None or ok is None else ("ok" if ok(value) else "MISSED")
        rows.append((key, shown, target, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if f.note:
        lines.append(f.note)
    lines.append(f"(machine: {os.cpu_count()} cores; median of runs where repeated)")
    return "\n".join(lines) + "\n"
