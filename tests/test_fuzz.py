"""The fuzzer and its oracle: a short run in the suite (the `fuzz` tox env runs 1,000,000 cases),
the reference model against public facts, and proof that the oracle catches what it looks for —
a card that raises, a 6F00 card, and each of the seven mutants of issue 10."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import pytest

from cartesim.core import layout
from cartesim.emulator import cardos, pin
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.fs import DF
from cartesim.harness.tools import fuzz
from cartesim.harness.tools.fuzz import valid_sw
from cartesim.harness.tools.reference import Codes, ReferenceCard

SUBJECTS = fuzz.subjects()
ROULETTE = next(s for s in SUBJECTS if s.name == "cps-roulette")


def test_short_fuzz_run_finds_nothing() -> None:
    report = fuzz.run(30_000, seed=1, models=SUBJECTS)
    assert report.failures == []
    assert report.cases == 30_000
    assert report.checks > 10 * report.cases
    assert report.state_cases > 0 and report.reloads > 0 and report.crash_checks > 0
    assert "30,000 cases against the reference model" in fuzz.summary(report)


def test_same_seed_same_run() -> None:
    first, second = (fuzz.run(3000, seed=7, models=SUBJECTS) for _ in range(2))
    assert (first.checks, first.state_cases, first.reloads) == (
        second.checks,
        second.state_cases,
        second.reloads,
    )


def test_every_profile_as_the_model_has_it() -> None:
    """Each profile's files, volet and PKCS#15 objects behind auth ID 01 agree with the model."""
    for subject in SUBJECTS:
        assert subject.problems == [], subject.name


def test_a_file_missing_from_the_card_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from cartesim.emulator import cards

    real = cards.build_cps

    def without_holder(profile: Any) -> Any:
        card = real(profile)
        app = card.mf.child(layout.FID_CPS_DF)
        assert isinstance(app, DF)
        app.children = [c for c in app.children if c.fid != layout.FID_HOLDER]
        return card

    monkeypatch.setattr(cards, "build_cps", without_holder)
    report = fuzz.run(100, seed=1, models=[fuzz.Subject.of("cps-roulette", ROULETTE.profile)])
    assert any("3F00/0001/D107: not on the card" in f for f in report.failures)


# --- the reference model against public facts ---------------------------------------------------
def test_the_model_shares_no_code_with_the_card_os() -> None:
    """reference.py imports the codec and constants only: nothing of the card OS's logic."""
    from cartesim.harness.tools import reference

    tree = ast.parse(inspect.getsource(reference))
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    modules = {m for m, _ in imported}
    assert modules <= {
        "__future__",
        "collections.abc",
        "dataclasses",
        "typing",
        "cartesim.core",
        "cartesim.core.sw",
        "cartesim.emulator.cards.cps",
    }
    assert {n for m, n in imported if m == "cartesim.core"} == {"layout", "tlv"}
    assert all(n.startswith("ACL_") for m, n in imported if m == "cartesim.emulator.cards.cps")
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import)]


def _model() -> ReferenceCard:
    return ReferenceCard(ROULETTE.spec)


def test_model_gives_the_real_cards_pin_counters() -> None:
    """docs/card-layout.md: the code porteur's SDO as a real CPx answers it, byte for byte."""
    model = _model()
    assert model.step(bytes.fromhex("00CB3FFF0A4D087006BF810102A080")).sw == 0x6118
    got = model.step(bytes.fromhex("00C0000018"))
    assert got.data == bytes.fromhex("7016BF810112A0109A01039B0103A1088C06F3000013FF00")


def test_model_pin_rules() -> None:
    model = _model()
    wrong, right = bytes.fromhex("002000010430303030"), bytes.fromhex("002000010431323334")
    assert [model.step(wrong).sw for _ in range(4)] == [0x63C2, 0x63C1, 0x6983, 0x6983]
    assert model.step(right).sw == 0x6983 and model.blocked and not model.definitively_blocked
    unblock = bytes.fromhex("002C00010C") + b"12345678" + b"4321"
    assert model.step(unblock).sw == 0x9000
    assert model.codes == Codes("4321", 3, 10, 9)
    assert model.step(bytes.fromhex("0020000104") + b"4321").sw == 0x9000 and model.verified
    model.power_cycle()
    assert not model.verified


# --- what the oracle catches --------------------------------------------------------------------
def test_fuzzer_catches_a_card_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: CardOS, raw: bytes) -> bytes:
        raise ValueError("boom")

    monkeypatch.setattr(CardOS, "process", broken)
    report = fuzz.run(30, seed=2, models=SUBJECTS)
    assert report.failure_count == 30
    assert all("exception ValueError" in f for f in report.failures)


def test_fuzzer_catches_an_internal_error_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CardOS, "process", lambda self, raw: b"\x6f\x00")
    report = fuzz.run(9, seed=3, models=SUBJECTS)
    assert report.failure_count == 9
    assert all("6F00, one the card may not say" in f for f in report.failures)


def _mutate(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, old: str, new: str) -> None:
    """Replace ``owner.name`` by its own source with ``old`` (found once) made ``new``: a mutant.
    The source is dedented: a method's body sits 4 spaces in."""
    method = getattr(owner, name)
    source = textwrap.dedent(inspect.getsource(method))
    assert source.count(old) == 1, f"{owner.__name__}.{name}: the code to mutate is not there"
    module = inspect.getmodule(method)
    assert module is not None
    scope: dict[str, Any] = dict(vars(module))
    exec(compile(source.replace(old, new), module.__file__ or "", "exec"), scope)  # noqa: S102
    monkeypatch.setattr(owner, name, scope[name])


MUTANTS: dict[str, tuple[type, str, str, str, str]] = {
    "any code of the right length accepted": (
        pin._Counted,
        "_try",
        "return hmac.compare_digest(candidate, self.code.encode())",
        "return len(candidate) == len(self.code)",
        "status word 9000",
    ),
    "a wrong PIN costs no try": (
        pin.Pin,
        "_check",
        "self.verified = False\n",
        "self.verified = False\n        self.tries_left += 1\n",
        "the model says 63C",  # one try more left than the model
    ),
    "a blocked card lets the right PIN through": (
        pin.Pin,
        "_check",
        "if self.blocked:",
        "if self.blocked and candidate != self.code.encode():",
        "status word 9000, the model says 6983",
    ),
    "situations readable without the PIN": (
        cardos.CardOS,
        "_read_binary",
        "if ef.read_pin is not None and not (self.pin and self.pin.verified):",
        "if False:",
        "the model says 6982",
    ),
    "an unblock costs no use": (
        pin.UnblockCode,
        "_unblock",
        "self.uses_left -= 1",
        "pass",
        "unblocks left",
    ),
    "a wrong unblock code costs no try": (
        pin.UnblockCode,
        "_check",
        "self.verified = False\n",
        "self.verified = False\n        self.tries_left += 1\n",
        "the model says 63C",
    ),
    "the try written after the comparison": (
        pin._Counted,
        "_try",
        "self.tries_left -= 1\n    persist()\n    return hmac.compare_digest(candidate, self.code.encode())",
        "same = hmac.compare_digest(candidate, self.code.encode())\n"
        "    self.tries_left -= 1\n    persist()\n    return same",
        "compared before its try was written",
    ),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_fuzzer_catches_the_mutant(monkeypatch: pytest.MonkeyPatch, mutant: str) -> None:
    owner, name, old, new, says = MUTANTS[mutant]
    _mutate(monkeypatch, owner, name, old, new)
    report = fuzz.run(4000, seed=11, models=SUBJECTS)
    assert report.failure_count > 0, mutant
    assert any(says in f for f in report.failures), report.failures[:5]


def test_the_unmutated_card_passes_the_same_run() -> None:
    assert fuzz.run(4000, seed=11, models=SUBJECTS).failure_count == 0


@pytest.mark.parametrize(
    ("sw", "ok"),
    [
        (0x9000, True),
        (0x61FF, True),
        (0x9F07, True),
        (0x6C10, True),
        (0x63C2, True),
        (0x6F00, False),
        (0x6581, False),
        (0x1234, False),
        (0x6400, False),
    ],
)
def test_valid_status_words(sw: int, ok: bool) -> None:
    assert valid_sw(sw) is ok
