"""Replay a recorded APDU trace (``--trace``) against a fresh emulated card; report what differs.

Traces mask the data of VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER, so the codes are
rebuilt from the recorded outcome, never from the codes themselves: the card OS only tells a right
code from a wrong one, so the right code where the card said 9000 and a wrong one of the same
length elsewhere make the card behave as it did. New codes are chosen here and tracked.

Sessions: a trace appended by several commands holds several card sessions. The trace says where
each starts (a ``power_up`` record) and where the card was reset (``reset``): the card is reset
there, as it was when the trace was recorded.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cartesim.core import apdu as A
from cartesim.core import pins, strict_json
from cartesim.core.errors import InputError
from cartesim.core.layout import PIN_REF_DEBLOCAGE, PIN_REF_PORTEUR
from cartesim.core.sw import SW
from cartesim.core.trace import CardEvent
from cartesim.emulator import state as card_state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import load_card
from cartesim.emulator.files import read_file

# About 60,000 exchanges, replayed in a few seconds; a trace is read whole before any is replayed.
MAX_TRACE_BYTES = 8 << 20
_MAX_DIGITS = 20  # a time in µs since 1970 has 16 digits: no number in a trace is longer
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_MASKED = re.compile(r"([0-9A-Fa-f]{10})((?:\*\*)+)")
# Digits for the codes replay chooses: any valid code works, the card compares nothing else.
_NEW_DIGITS = "9753186420"


@dataclass(frozen=True)
class Recorded:
    """One exchange of a trace file."""

    line: int
    command: str  # as recorded: hex, PIN data masked with '*'
    response: str
    time: float | None = None
    duration_us: int = 0

    @property
    def masked(self) -> bool:
        return "*" in self.command


@dataclass(frozen=True)
class RecordedEvent:
    """A power-up or a reset of the card, in a trace file."""

    line: int
    event: CardEvent


def _entry(raw: str, source: str, line: int) -> Recorded | RecordedEvent:
    def bad(problem: str) -> InputError:
        return InputError(source, f"line {line}", problem)

    try:
        obj = strict_json.loads(raw, max_digits=_MAX_DIGITS)
    except strict_json.BadJson as e:
        raise bad(f"not JSON ({e.detail})" if e.syntax else e.problem) from None
    if not isinstance(obj, dict):
        raise bad("not a JSON object")
    if "event" in obj:
        try:
            return RecordedEvent(line, CardEvent(obj["event"]))
        except ValueError:
            events = ", ".join(e.value for e in CardEvent)
            raise bad(f"'event': unknown (events: {events})") from None
    command, response = obj.get("command"), obj.get("response")
    if not isinstance(command, str) or not isinstance(response, str):
        raise bad("'command' and 'response' must be hex strings")
    masked = _MASKED.fullmatch(command)
    if masked:
        header = bytes.fromhex(masked.group(1))
        n = len(masked.group(2)) // 2
        if header[1] not in A.SECRET_INS:
            raise bad("'command': masked data on a command that carries no code")
        if n not in (header[4], header[4] + 1):  # data, maybe followed by Le
            raise bad("'command': the masked length does not match Lc")
    elif not _HEX.fullmatch(command) or len(command) < 8:
        raise bad("'command': not an APDU in hex")
    if not _HEX.fullmatch(response):
        raise bad("'response': not hex with a status word")
    when, took = obj.get("time"), obj.get("duration_us", 0)
    if when is not None and (isinstance(when, bool) or not isinstance(when, int | float)):
        raise bad("'time': not a number")
    if isinstance(took, bool) or not isinstance(took, int):
        raise bad("'duration_us': not a whole number")
    return Recorded(line, command.upper(), response.upper(), None if when is None else float(when), took)


def load_trace(path: Path) -> list[Recorded | RecordedEvent]:
    """The exchanges of a trace file; InputError naming the file, the line and the problem."""
    source = str(path)
    try:
        text = read_file(path, MAX_TRACE_BYTES).decode("utf-8")
    except FileNotFoundError as e:
        raise InputError(source, "", e.strerror or "no such file") from None
    except UnicodeDecodeError:
        raise InputError(source, "", "not UTF-8 text") from None
    entries = [_entry(raw, source, n) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if not any(isinstance(e, Recorded) for e in entries):
        raise InputError(source, "", "no exchange in this trace")
    return entries


# --- rebuilding the masked codes ---------------------------------------------------------------
@dataclass
class Codes:
    """The codes as replay knows them: from the card built, then the new PINs it chose."""

    pin: str | None
    unblock: str | None


def _wrong(n: int, right: str | None) -> str:
    """``n`` digits that are not ``right``."""
    if right is not None and len(right) == n:
        return str((int(right[0]) + 1) % 10) + right[1:]
    return "0" * n


def _new_pin(n: int, current: str | None, malformed: bool) -> str:
    if malformed:  # the card said 6A80 (not digits): so must the replayed code
        return "A" * n
    chosen = (_NEW_DIGITS * 2)[:n]
    return chosen if chosen != current else (_NEW_DIGITS[1:] * 2)[:n]


def rebuild(entry: Recorded, codes: Codes) -> tuple[bytes, str | None]:
    """The command to send for ``entry``, and the new PIN it sets if the card accepts it."""
    if not entry.masked:
        return bytes.fromhex(entry.command), None
    head_hex, stars = entry.command.rstrip("*"), len(entry.command) - len(entry.command.rstrip("*"))
    head = bytes.fromhex(head_hex)
    ins, p2, lc = head[1], head[3], head[4]
    le = b"\x00" if stars // 2 > lc else b""  # a masked Le: its value is lost, 00 asks for all
    accepted = int(entry.response[-4:], 16) == SW.OK
    malformed = int(entry.response[-4:], 16) == SW.WRONG_DATA
    new: str | None = None
    if ins == A.INS_VERIFY:
        right = {PIN_REF_PORTEUR: codes.pin, PIN_REF_DEBLOCAGE: codes.unblock}.get(p2)
        # A code of another length than recorded cannot be the one the card accepted: wrong.
        data = right if accepted and right is not None and len(right) == lc else _wrong(lc, right)
    elif ins == A.INS_CHANGE_REFERENCE_DATA and codes.pin is not None and lc > len(codes.pin):
        # The card splits old‖new at the length of its current code.
        old = codes.pin if accepted else _wrong(len(codes.pin), codes.pin)
        new = _new_pin(lc - len(old), codes.pin, malformed)
        data = old + new
    elif ins == A.INS_RESET_RETRY_COUNTER and codes.unblock is not None and lc > pins.UNBLOCK_DIGITS:
        code = codes.unblock if accepted else _wrong(pins.UNBLOCK_DIGITS, codes.unblock)
        new = _new_pin(lc - pins.UNBLOCK_DIGITS, codes.pin, malformed)
        data = code + new
    else:  # wrong length or no such code on this card: any bytes of that length do
        data = "0" * lc
    return head + data.encode() + le, new


# --- the replay --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    index: int  # 1-based position among the exchanges
    line: int  # line in the trace file
    command: str  # as recorded (codes masked)
    expected: str
    actual: str


@dataclass
class ReplayReport:
    trace: str
    profile: str
    exchanges: int = 0
    sessions: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "identical": self.identical}


def replay_on(card: CardOS, entries: list[Recorded | RecordedEvent], report: ReplayReport) -> None:
    codes = Codes(card.pin.code if card.pin else None, card.unblock.code if card.unblock else None)
    index = 0
    for entry in entries:
        if isinstance(entry, RecordedEvent):
            card.reset()  # a new session, or a reset within one: security status lost
            report.sessions += entry.event is CardEvent.POWER_UP
            continue
        index += 1
        command, new = rebuild(entry, codes)
        actual = card.process(command).hex().upper()
        if new is not None and actual.endswith("9000"):
            codes.pin = new
        if actual != entry.response:
            report.differences.append(Difference(index, entry.line, entry.command, entry.response, actual))
        report.exchanges += 1
    report.sessions = max(report.sessions, 1)  # a trace without power-up records: one session


def replay(trace: Path, profile: str | Path, *, state: Path | None = None) -> ReplayReport:
    """Replay ``trace`` against the card of ``profile`` (from ``state`` if given: read, never
    written)."""
    entries = load_trace(trace)
    card = load_card(profile)
    if state is not None and not card_state.load(card, state):
        raise InputError(str(state), "", "no such file")
    report = ReplayReport(str(trace), str(profile))
    replay_on(card, entries, report)
    return report


def render(report: ReplayReport) -> str:
    """The report as text: one line, then each difference."""
    diff = len(report.differences)
    verdict = "identiques" if report.identical else f"{diff} différence(s)"
    lines = [
        f"{report.trace} : {report.exchanges} échange(s) rejoué(s) sur {report.profile} "
        f"({report.sessions} session(s)) : {verdict}"
    ]
    for d in report.differences:
        lines += [
            f"#{d.index} (ligne {d.line}) {d.command}",
            f"  attendu : {d.expected}",
            f"  obtenu  : {d.actual}",
        ]
    return "\n".join(lines) + "\n"
