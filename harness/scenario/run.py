"""Scenarios: reproduce a lockout, an unblock, a card pulled mid-command, from a YAML file.

``run_scenario(path, transport="direct"|"pcsc")`` puts the scenario's cards in readers, plays
its steps in order, prints one line per step, and stops at the first step whose outcome differs
from what the step expects, with a report: expected against actual, and that step's APDUs
(codes masked). The format is in docs/scenarios.md; loading and checking in scenario_load.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cartesim.core import apdu
from cartesim.core.cps import CpsCard, CpsData
from cartesim.core.errors import (
    CardMute,
    CardRemoved,
    CartesimError,
    CodeKind,
    LinkDropped,
    NoCard,
    TransportError,
    error_name,
)
from cartesim.core.trace import Exchange, ListTracer, Tracer, trace_file
from cartesim.core.vitale import VitaleCard
from cartesim.harness.scenario import fields as scenario_fields
from cartesim.harness.scenario.load import PlannedStep, Scenario, load_scenario
from cartesim.harness.scenario.readers import PlaceCard, ScenarioCard, readers
from cartesim.harness.scenario.schema import (
    STATE_KEYS,
    ChangePin,
    Expect,
    ReadCps,
    TriesLeft,
    Unblock,
    Verify,
    Wait,
)

TRANSPORTS = ("direct", "pcsc")
Say = Callable[[str], None]

# The command whose status word is "the sw" of a step, by action: (INS, carries data).
_DECISIVE: dict[str, tuple[int, bool]] = {
    "verify": (apdu.INS_VERIFY, True),
    "change_pin": (apdu.INS_CHANGE_REFERENCE_DATA, True),
    "unblock": (apdu.INS_RESET_RETRY_COUNTER, True),
    "tries_left": (apdu.INS_VERIFY, False),
}


@dataclass(frozen=True)
class Mismatch:
    key: str
    expected: str
    actual: str


@dataclass
class Outcome:
    """What a step did: the decisive status word, the engine's error, what was read, the state."""

    sw: str | None = None
    error: str | None = None  # an expect.error name
    message: str | None = None  # the engine's own words
    fields: dict[str, str] | None = None
    state: dict[str, int | bool | None] | None = None
    state_error: str | None = None
    note: str = ""
    exchanges: list[Exchange] = field(default_factory=list)
    own_exchanges: int = 0  # the first ones are the action's; the rest, the state query's
    interrupted: str | None = None  # the command whose answer never came (card pulled)


@dataclass(frozen=True)
class StepResult:
    index: int
    label: str
    outcome: Outcome
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class ScenarioResult:
    path: Path
    transport: str
    total: int
    steps: list[StepResult] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def failure(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)

    @property
    def passed(self) -> bool:
        return self.failure is None and len(self.steps) == self.total

    def report(self) -> str:
        """The mismatch report ("" when the scenario passed): expected vs actual, the APDUs."""
        bad = self.failure
        if bad is None:
            return ""
        lines = [f"MISMATCH in {self.path} at steps[{bad.index}] ({bad.label}), transport {self.transport}"]
        width = max(len(m.key) for m in bad.mismatches)
        lines += [
            f"  {m.key + ':':<{width + 1}}  expected {m.expected}, actual {m.actual}" for m in bad.mismatches
        ]
        lines.append(f"  APDU trace of steps[{bad.index}] (codes masked):")
        o = bad.outcome
        lines += [f"    {ex.command}  -> {ex.response}" for ex in o.exchanges[: o.own_exchanges]]
        if o.interrupted:
            lines.append(f"    {o.interrupted}  -> (no answer: card removed)")
        if not o.own_exchanges and not o.interrupted:
            lines.append("    (no APDU)")
        if o.exchanges[o.own_exchanges :]:
            lines.append("    then the state query:")
            lines += [f"    {ex.command}  -> {ex.response}" for ex in o.exchanges[o.own_exchanges :]]
        return "\n".join(lines)


def _mask(code: str) -> str:
    return "*" * len(code)


def label(ps: PlannedStep, several_cards: bool) -> str:
    """How a step is shown: its action and options, codes masked."""
    step, args = ps.step, ps.step.args
    text = step.action
    if isinstance(args, Verify):
        text += f" {_mask(args.code)}"
    elif isinstance(args, ChangePin):
        text += f" {_mask(args.code)} -> {_mask(args.new_pin)}"
        if args.confirmation is not None and args.confirmation != args.new_pin:
            text += " (confirmation differs)"
    elif isinstance(args, Unblock):
        text += f" {_mask(args.code)} new {_mask(args.new_pin)}"
        if args.confirmation is not None and args.confirmation != args.new_pin:
            text += " (confirmation differs)"
        if args.remove_card:
            text += f" remove_card={args.remove_card}"
    elif isinstance(args, TriesLeft):
        text += f" {args.of}"
    elif isinstance(args, ReadCps):
        text += f" {_mask(args.pin)}" if args.pin else " (no PIN)"
    elif isinstance(args, Wait):
        text += f" {args.seconds:g} s"
    if several_cards and ps.slot is not None:
        text += f" [slot {ps.slot}]"
    return text


# --- playing a step ------------------------------------------------------------------------
def _act(ps: PlannedStep, reader: ScenarioCard | None, out: Outcome) -> None:
    """Do the step's action; the engine's errors are left to the caller."""
    step, args = ps.step, ps.step.args
    if isinstance(args, Wait):
        time.sleep(args.seconds)
        out.note = "done"
        return
    assert reader is not None
    t = reader.transport
    if isinstance(args, Verify):
        CpsCard(t).verify(args.code, confirm_last_try=True)  # a scenario's codes are deliberate
    elif isinstance(args, ChangePin):
        confirmation = args.new_pin if args.confirmation is None else args.confirmation
        CpsCard(t).change_pin(args.code, args.new_pin, confirmation, confirm_last_try=True)
    elif isinstance(args, Unblock):
        confirmation = args.new_pin if args.confirmation is None else args.confirmation
        if args.remove_card:
            reader.card.arm(apdu.INS_RESET_RETRY_COUNTER, args.remove_card)
        try:
            CpsCard(t).unblock(args.code, args.new_pin, confirmation, confirm_last_try=True)
        finally:
            reader.card.disarm()
    elif isinstance(args, TriesLeft):
        kind = CodeKind.PORTEUR if args.of == "porteur" else CodeKind.DEBLOCAGE
        left = CpsCard(t).tries_left(kind)
        out.note = "inconnu" if left is None else f"{left} tentative(s)"
    elif isinstance(args, ReadCps):
        card = CpsCard(t)
        if args.pin is not None:
            data = card.read(args.pin, confirm_last_try=True)
        else:
            with t.transaction():
                data = CpsData(card.read_holder(), card.read_situations())
        out.fields = scenario_fields.fields_of(data)
        out.note = f"{data.holder.nom} {data.holder.prenom}, {len(data.situations)} situation(s)"
    elif step.action == "read_vitale":
        vitale = VitaleCard(t).read()
        out.fields = scenario_fields.fields_of(vitale)
        out.note = f"{vitale.assure.nom} {vitale.assure.prenom}, {len(vitale.beneficiaires)} bénéficiaire(s)"
    elif step.action == "power_cycle":
        t.power_cycle()
        out.note = "done"
    elif step.action == "remove":
        reader.remove()
        out.note = "card out"
    elif step.action == "insert":
        reader.insert()
        out.note = "card in"


def _decisive_sw(action: str, exchanges: list[Exchange]) -> str | None:
    if action not in _DECISIVE:
        return None
    ins, with_data = _DECISIVE[action]
    for ex in reversed(exchanges):
        command = bytes.fromhex(ex.command.replace("*", "0"))
        if len(command) > 1 and command[1] == ins and (len(command) > 5) == with_data:
            return ex.response[-4:]
    return None


def _state(reader: ScenarioCard, out: Outcome) -> None:
    try:
        s = CpsCard(reader.transport).status()
    except CartesimError as e:
        out.state_error = str(e)
        return
    out.state = {
        "tries_left": s.pin_tries_left,
        "unblock_tries_left": s.unblock_tries_left,
        "unblocks_left": s.unblock_uses_left,
        "blocked": s.blocked,
        "definitively_blocked": s.definitively_blocked,
        "verified": s.pin_verified,
    }


def play(ps: PlannedStep, reader: ScenarioCard | None, trace: ListTracer) -> Outcome:
    out = Outcome()
    start = len(trace)
    try:
        _act(ps, reader, out)
    except (CardRemoved, NoCard, CardMute, LinkDropped) as e:  # what a card in a reader may do
        out.error, out.message = error_name(e), str(e)
    except TransportError:
        raise  # no PC/SC service, no reader: the rig is broken, not the card (exit 3)
    except CartesimError as e:
        out.error, out.message = error_name(e), str(e)
    out.own_exchanges = len(trace) - start
    out.sw = _decisive_sw(ps.step.action, list(trace[start:]))
    if reader is not None:
        out.interrupted, reader.card.interrupted = reader.card.interrupted, None
        if out.interrupted is not None:
            reader.settle()
        if any(getattr(ps.step.expect, k) is not None for k in STATE_KEYS):
            _state(reader, out)  # its queries belong to the step's trace too
    out.exchanges = list(trace[start:])
    return out


def _show(value: object) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def compare(e: Expect, o: Outcome) -> list[Mismatch]:
    """Expected against actual; an engine error must be expected (sw or error), never ignored."""
    out: list[Mismatch] = []
    if e.sw is not None and e.sw != o.sw:
        out.append(Mismatch("sw", e.sw, o.sw or "no answer"))
    actual_error = f"{o.error} ({o.message})" if o.error else "none"
    if e.error is not None and e.error != o.error:
        out.append(Mismatch("error", e.error, actual_error))
    elif e.error is None and e.sw is None and o.error is not None:
        out.append(Mismatch("error", "none", actual_error))
    for key in STATE_KEYS:
        wanted = getattr(e, key)
        if wanted is None:
            continue
        got = f"unknown (status: {o.state_error})" if o.state is None else _show(o.state[key])
        if _show(wanted) != got:
            out.append(Mismatch(key, _show(wanted), got))
    for key, wanted_text in (e.fields or {}).items():
        got_text = None if o.fields is None else o.fields.get(key)
        if wanted_text != got_text:
            got = repr(got_text) if got_text is not None else "(not read)" if o.fields is None else "(absent)"
            out.append(Mismatch(f"fields.{key}", repr(wanted_text), got))
    return out


def _result_text(o: Outcome, e: Expect) -> str:
    parts = [p for p in (o.sw, o.message or o.note) if p]
    if o.state is not None:  # the state keys the step checks, as found
        parts.append(", ".join(f"{k} {_show(o.state[k])}" for k in STATE_KEYS if getattr(e, k) is not None))
    return "  ".join(parts) or "-"


# --- the scenario --------------------------------------------------------------------------
@contextmanager
def _trace_file(path: Path | None) -> Iterator[list[Tracer]]:
    with ExitStack() as stack:
        tracers: list[Tracer] = []
        if path is not None:
            tracers.append(stack.enter_context(trace_file(path)))
        yield tracers


def run_scenario(
    scenario: Scenario | Path | str,
    transport: str = "direct",
    trace: Path | None = None,
    say: Say = print,
    place: PlaceCard | None = None,
) -> ScenarioResult:
    """Play a scenario; InputError if it is invalid, TransportError if pcscd cannot be had."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    result = ScenarioResult(sc.path, transport, len(sc.steps))

    def tell(line: str) -> None:
        result.lines.append(line)
        say(line)

    tell(f"scenario {sc.path} ({transport})" + (f": {sc.description}" if sc.description else ""))
    steps_trace = ListTracer()
    with (
        _trace_file(trace) as tracers,
        readers({c.slot: c.build() for c in sc.cards}, transport, [steps_trace, *tracers], place) as by_slot,
    ):
        for ps in sc.steps:
            text = label(ps, len(sc.cards) > 1)
            outcome = play(ps, None if ps.slot is None else by_slot[ps.slot], steps_trace)
            step = StepResult(ps.index, text, outcome, tuple(compare(ps.step.expect, outcome)))
            result.steps.append(step)
            tell(
                f"[{ps.index}] {text}  -> {_result_text(outcome, ps.step.expect)}  {'ok' if step.ok else 'MISMATCH'}"
            )
            if not step.ok:
                for line in result.report().splitlines():
                    tell(line)
                return result
    tell(f"ok: {len(result.steps)} step(s) as expected")
    return result
