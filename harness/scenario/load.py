"""Load a scenario: the YAML, its schema, its cards, then the checks that need the cards.

Everything a scenario can get wrong is found here, before any card is powered: which slot a step
addresses, whether that card can do it, whether the expectation fits the action, whether the
card is in the reader. Each problem is one line: file, place (``steps[3].expect.sw``), problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cartesim.core.atr import CardKind
from cartesim.core.errors import InputError
from cartesim.emulator import state as card_state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import build_card
from cartesim.emulator.catalog import find_profile
from cartesim.emulator.profile import CpsProfile, VitaleProfile, load_profile
from cartesim.emulator.safe_yaml import load_yaml
from cartesim.harness.scenario import fields as scenario_fields
from cartesim.harness.scenario.schema import (
    CPS_ACTIONS,
    READ_ACTIONS,
    STATE_KEYS,
    SW_ACTIONS,
    CardEntry,
    Step,
    Unblock,
    parse,
)


@dataclass(frozen=True)
class CardSpec:
    """A card of the scenario: validated profile, optional starting state, its slot."""

    slot: int
    profile_path: Path
    profile: CpsProfile | VitaleProfile
    state: Path | None

    @property
    def kind(self) -> CardKind:
        return self.profile.kind

    def build(self) -> CardOS:
        """A fresh card as the scenario starts it. The state file is read, never written:
        a scenario replays the same way every time."""
        card = build_card(self.profile)
        if self.state is not None:
            card_state.load(card, self.state)
        return card


@dataclass(frozen=True)
class PlannedStep:
    index: int
    step: Step
    slot: int | None  # None: the step addresses no card (wait)

    @property
    def where(self) -> str:
        return f"steps[{self.index}]"


@dataclass(frozen=True)
class Scenario:
    path: Path
    description: str
    cards: tuple[CardSpec, ...]
    steps: tuple[PlannedStep, ...]

    def card(self, slot: int) -> CardSpec:
        return next(c for c in self.cards if c.slot == slot)


def _profile_path(base: Path, value: str, source: str, where: str) -> Path:
    found = find_profile(value, base)
    if found is None:
        raise InputError(
            source, where, f"no such file ({value}, relative to the scenario), and no sample of that name"
        )
    return found


def _card(base: Path, entry: CardEntry, i: int, source: str) -> CardSpec:
    path = _profile_path(base, entry.profile, source, f"cards[{i}].profile")
    state = None
    if entry.state is not None:
        state = base / entry.state
        if not state.is_file():
            raise InputError(
                source, f"cards[{i}].state", f"no such file ({entry.state}, relative to the scenario)"
            )
    profile = load_profile(path)
    if entry.faults:  # the scenario's faults come after the profile's own
        profile = profile.model_copy(update={"faults": [*profile.faults, *entry.faults]})
    spec = CardSpec(i if entry.slot is None else entry.slot, path, profile, state)
    spec.build()  # a state file that does not fit the card fails now, naming that file
    return spec


def _cards(base: Path, entries: list[CardEntry], source: str) -> tuple[CardSpec, ...]:
    specs: list[CardSpec] = []
    for i, entry in enumerate(entries):
        spec = _card(base, entry, i, source)
        taken = [j for j, s in enumerate(specs) if s.slot == spec.slot]
        if taken:
            raise InputError(source, f"cards[{i}].slot", f"slot {spec.slot} already holds cards[{taken[0]}]")
        specs.append(spec)
    return tuple(specs)


class _Checker:
    """Walks the steps in order, tracking which cards are in their reader."""

    def __init__(self, source: str, cards: tuple[CardSpec, ...]) -> None:
        self.source = source
        self.kinds = {c.slot: c.kind for c in cards}
        self.present = dict.fromkeys(self.kinds, True)

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(self.source, where, problem)

    def slot(self, at: str, step: Step) -> int | None:
        """The slot the step addresses: given, or the only card that can do the action."""
        action = step.action
        if action == "wait":
            if step.slot is not None:
                raise self.fail(f"{at}.slot", "wait addresses no card")
            return None
        need = CardKind.CPS if action in CPS_ACTIONS else CardKind.VITALE if action == "read_vitale" else None
        if step.slot is not None:
            if step.slot not in self.kinds:
                slots = ", ".join(str(s) for s in self.kinds)
                raise self.fail(f"{at}.slot", f"no card in slot {step.slot} (cards in slot(s) {slots})")
            if need is not None and self.kinds[step.slot] != need:
                kind = self.kinds[step.slot]
                raise self.fail(
                    f"{at}.slot", f"slot {step.slot} holds a {kind.value} card; {action} needs a {need.value}"
                )
            return step.slot
        fits = [s for s, k in self.kinds.items() if need is None or k == need]
        if not fits:
            assert need is not None  # any card fits an action that needs none
            raise self.fail(f"{at}.{action}", f"no {need.value} card in this scenario")
        if len(fits) > 1:
            raise self.fail(f"{at}.slot", f"missing: {action} could address slot {fits[0]} or {fits[1]}")
        return fits[0]

    def expectations(self, at: str, step: Step, slot: int | None, out_after: bool) -> None:
        action, e = step.action, step.expect
        if e.sw is not None and action not in SW_ACTIONS:
            raise self.fail(f"{at}.expect.sw", f"not for {action} (only {', '.join(sorted(SW_ACTIONS))})")
        if isinstance(step.args, Unblock) and step.args.remove_card and e.sw is not None:
            raise self.fail(f"{at}.expect.sw", "no answer reaches the engine when the card is removed")
        if e.error is not None and action in ("wait", "remove"):
            raise self.fail(f"{at}.expect.error", f"{action} cannot fail")
        if e.fields is not None:
            if action not in READ_ACTIONS:
                raise self.fail(f"{at}.expect.fields", "only for read_cps and read_vitale")
            kind = CardKind.CPS if action == "read_cps" else CardKind.VITALE
            for key in e.fields:
                problem = scenario_fields.check_key(key, kind)
                if problem:
                    raise self.fail(f"{at}.expect.fields.{key}", problem)
        state = [k for k in STATE_KEYS if getattr(e, k) is not None]
        if not state:
            return
        if slot is None or self.kinds[slot] is not CardKind.CPS:
            raise self.fail(f"{at}.expect.{state[0]}", "only for a step on a CPS")
        if out_after or e.error in ("card_removed", "no_card"):
            raise self.fail(
                f"{at}.expect.{state[0]}", "the card is out after this step; check it after insert"
            )

    def step(self, i: int, step: Step) -> PlannedStep:
        at = f"steps[{i}]"
        slot = self.slot(at, step)
        action = step.action
        if slot is not None:
            if action == "remove" and not self.present[slot]:
                raise self.fail(f"{at}.remove", f"the card in slot {slot} is already out")
            if action == "insert" and self.present[slot]:
                raise self.fail(f"{at}.insert", f"the card in slot {slot} is already in")
            pulled = isinstance(step.args, Unblock) and step.args.remove_card is not None
            if pulled and not self.present[slot]:
                raise self.fail(f"{at}.unblock.remove_card", f"the card in slot {slot} is already out")
            if action == "insert":
                self.present[slot] = True
            elif action == "remove" or pulled:
                self.present[slot] = False
        out_after = slot is not None and not self.present[slot]
        self.expectations(at, step, slot, out_after)
        return PlannedStep(i, step, slot)


def load_scenario(path: Path | str) -> Scenario:
    """Read and check a scenario file; InputError (one line) on any problem."""
    path = Path(path)
    source = str(path)
    model = parse(load_yaml(path), source)
    cards = _cards(path.parent, model.cards, source)
    checker = _Checker(source, cards)
    steps = tuple(checker.step(i, s) for i, s in enumerate(model.steps))
    return Scenario(path, model.description, cards, steps)
