"""The fuzzer: a short run in the suite (the `fuzz` tox env runs 1,000,000 cases), and proof that
it catches what it looks for."""

from __future__ import annotations

import pytest

from cartesim.harness.tools import fuzz
from cartesim.harness.tools.fuzz import valid_sw


def test_short_fuzz_run_finds_nothing() -> None:
    report = fuzz.run(30_000, seed=1)
    assert report.cases == 30_000
    assert report.failures == []


def test_fuzzer_catches_a_card_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from cartesim.emulator.cardos import CardOS

    def broken(self: CardOS, raw: bytes) -> bytes:
        raise ValueError("boom")

    monkeypatch.setattr(CardOS, "process", broken)
    report = fuzz.run(30, seed=2)
    assert len(report.failures) == 30
    assert "exception ValueError" in report.failures[0]


def test_fuzzer_catches_an_internal_error_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from cartesim.emulator.cardos import CardOS

    monkeypatch.setattr(CardOS, "process", lambda self, raw: b"\x6f\x00")
    assert len(fuzz.run(9, seed=3).failures) == 9


@pytest.mark.parametrize(
    ("sw", "ok"),
    [
        (0x9000, True),
        (0x61FF, True),
        (0x6C10, True),
        (0x63C2, True),
        (0x6F00, False),
        (0x1234, False),
        (0x6400, False),
    ],
)
def test_valid_status_words(sw: int, ok: bool) -> None:
    assert valid_sw(sw) is ok
