"""The scenario file format: pydantic models (unknown keys refused) and the one-line error.

A scenario puts cards in readers and plays steps on them, each step stating what it expects.
The models check the shape; ``harness.scenario_load`` checks what needs the cards (slots,
kinds, which expectation fits which action). docs/scenarios.md is the reference.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_validator,
)

from cartesim.core import pins
from cartesim.emulator.profile import Fault
from cartesim.emulator.safe_yaml import as_text
from cartesim.emulator.validation import one_line, plain_message

SLOTS = 2  # vpcd's two readers; in-process the same numbers name the cards
MAX_WAIT = 5.0  # seconds: a scenario waits for pcscd to notice something, not for minutes

# Codes are test data: digits only, written quoted. Never echoed back in a message.
Pin = Annotated[str, StringConstraints(pattern=pins.PIN_PATTERN), Field(strict=True)]
UnblockCode = Annotated[str, StringConstraints(pattern=pins.UNBLOCK_PATTERN), Field(strict=True)]


def _sw(value: Any) -> Any:
    # YAML reads 6983 and 9000 as integers, 63C2 as text: both mean the same status word.
    if isinstance(value, int) and not isinstance(value, bool):
        value = as_text(value)
    if not isinstance(value, str) or len(value) != 4 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError('must be 4 hex digits, e.g. 63C2 or "9000"')
    return value.upper()


Sw = Annotated[str, BeforeValidator(_sw)]


def _field_value(value: Any) -> Any:
    # Report values are text on the card; a YAML number or date is compared as its text.
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be text, a number or a date")
    return as_text(value)  # 02 unquoted would be compared as "2": refused, to be quoted


FieldValue = Annotated[str, BeforeValidator(_field_value)]

ErrorName = Literal[
    "wrong_code",
    "blocked",
    "definitively_blocked",
    "security",
    "card_error",
    "bad_code",
    "card_data",
    "card_removed",
    "no_card",
    "wrong_card",
    "card_mute",
    "link_dropped",
]
RemoveWhen = Literal["before_processing", "before_answer"]
CodeOf = Literal["porteur", "deblocage"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- what a step expects -------------------------------------------------------------------
class Expect(_Model):
    """Outcome of the step (sw, error, fields) and state of the CPS after it (the rest)."""

    sw: Sw | None = None
    error: ErrorName | None = None
    tries_left: int | None = Field(default=None, ge=0, le=15, strict=True)
    unblock_tries_left: int | None = Field(default=None, ge=0, le=15, strict=True)
    unblocks_left: int | None = Field(default=None, ge=0, le=255, strict=True)
    blocked: StrictBool | None = None
    definitively_blocked: StrictBool | None = None
    verified: StrictBool | None = None
    fields: dict[str, FieldValue] | None = Field(default=None, min_length=1)


STATE_KEYS = (
    "tries_left",
    "unblock_tries_left",
    "unblocks_left",
    "blocked",
    "definitively_blocked",
    "verified",
)


# --- the actions ---------------------------------------------------------------------------
class Verify(_Model):
    code: Pin


class ChangePin(_Model):
    code: Pin
    new_pin: Pin
    confirmation: Pin | None = None  # default: new_pin; a different one is refused unsent


class Unblock(_Model):
    code: UnblockCode
    new_pin: Pin
    confirmation: Pin | None = None
    remove_card: RemoveWhen | None = None  # pull the card when RESET RETRY COUNTER arrives


class TriesLeft(_Model):
    of: CodeOf = "porteur"


class ReadCps(_Model):
    pin: Pin | None = None  # None: read without presenting the code porteur


class NoArgs(_Model):
    pass


class Wait(_Model):
    seconds: float = Field(gt=0, le=MAX_WAIT, strict=True)


# The action name and the option a scalar stands for (``verify: "0000"`` is ``{code: "0000"}``).
SHORT_FORMS: dict[str, str] = {"verify": "code", "tries_left": "of", "read_cps": "pin", "wait": "seconds"}
ACTIONS = (
    "verify",
    "change_pin",
    "unblock",
    "tries_left",
    "read_cps",
    "read_vitale",
    "power_cycle",
    "remove",
    "insert",
    "wait",
)
CPS_ACTIONS = frozenset({"verify", "change_pin", "unblock", "tries_left", "read_cps"})
SW_ACTIONS = frozenset({"verify", "change_pin", "unblock", "tries_left"})
READ_ACTIONS = frozenset({"read_cps", "read_vitale"})


class Step(_Model):
    """One action key, plus ``slot`` (which card) and ``expect``."""

    verify: Verify | None = None
    change_pin: ChangePin | None = None
    unblock: Unblock | None = None
    tries_left: TriesLeft | None = None
    read_cps: ReadCps | None = None
    read_vitale: NoArgs | None = None
    power_cycle: NoArgs | None = None
    remove: NoArgs | None = None
    insert: NoArgs | None = None
    wait: Wait | None = None
    slot: int | None = Field(default=None, ge=0, lt=SLOTS, strict=True)
    expect: Expect = Expect()

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str) and data in ACTIONS:
            return {data: {}}  # `- power_cycle`: an action without options
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name in ACTIONS:
            if name in out and out[name] is None:
                out[name] = {}  # `remove:` with nothing after it
            elif name in out and name in SHORT_FORMS and not isinstance(out[name], dict):
                out[name] = {SHORT_FORMS[name]: out[name]}
        return out

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        found = [name for name in ACTIONS if getattr(self, name) is not None]
        if not found:
            raise ValueError(f"no action; one of: {', '.join(ACTIONS)}")
        if len(found) > 1:
            raise ValueError(f"one action per step, found {' and '.join(found)}")
        return self

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)

    @property
    def args(self) -> BaseModel:
        value = getattr(self, self.action)
        assert isinstance(value, BaseModel)
        return value


# --- the cards -----------------------------------------------------------------------------
class CardEntry(_Model):
    profile: Annotated[str, StringConstraints(min_length=1)]
    slot: int | None = Field(default=None, ge=0, lt=SLOTS, strict=True, description="default: its position")
    state: Annotated[str, StringConstraints(min_length=1)] | None = None
    faults: list[Fault] = Field(default_factory=list, max_length=64, description="added to the profile's")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"profile": data} if isinstance(data, str) else data


class ScenarioFile(_Model):
    description: str = ""
    cards: list[CardEntry] = Field(min_length=1, max_length=SLOTS)
    steps: list[Step] = Field(min_length=1, max_length=500)


# --- errors as one line --------------------------------------------------------------------
def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside a field's type (``list[Step]``, ``Verify | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _keys_at(loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys allowed in the mapping holding the last part of ``loc`` (None: unknown)."""
    model: type[BaseModel] | None = ScenarioFile
    for part in loc[:-1]:
        if isinstance(part, str) and model is not None:
            info = model.model_fields.get(part)
            model = _model_in(info.annotation) if info is not None else None
    return list(model.model_fields) if model is not None else None


def _explain(err: Any) -> str | None:
    kind, msg = err["type"], plain_message(err)
    if kind == "extra_forbidden":
        allowed = _keys_at(err["loc"])
        if allowed == []:
            return "unknown key (this action takes no option; slot and expect go beside it)"
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed or [], n=1)
        if close:
            return f"unknown key (did you mean {close[0]!r}?)"
        return f"unknown key (expected {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if len(err["loc"]) == 2 and err["loc"][0] == "steps":
            return f"must be an action name or a mapping with one action key ({', '.join(ACTIONS)})"
        return "must be a mapping (key: value)"
    if kind == "string_type" and err["loc"][-1] in ("code", "new_pin", "confirmation", "pin"):
        return msg + ' (write codes quoted, e.g. "0000")'
    if kind == "string_pattern_mismatch" and err["loc"][-1] in ("code", "new_pin", "confirmation", "pin"):
        unblock = err["loc"][-1] == "code" and "unblock" in err["loc"]
        if unblock:
            return f"must be {pins.UNBLOCK_DIGITS} digits"
        return f"must be {pins.PIN_MIN_DIGITS} to {pins.PIN_MAX_DIGITS} digits"
    return None


def parse(data: dict[str, Any], source: str) -> ScenarioFile:
    """Validate the raw YAML mapping; InputError naming the first problem's place otherwise."""
    try:
        return ScenarioFile.model_validate(data)
    except ValidationError as e:
        raise one_line(e, source, explain=_explain) from None
