"""A fuzzer for the card OS: arbitrary bytes and well-formed but wrong APDUs, against each model.

Every answer must be a valid R-APDU: at least a status word, and that status word one the card
OS is allowed to say (the SW table, or 61xx / 6Cxx / 63Cx) — never 6F00, the internal-error
answer, and never an exception. Counters must stay within their bounds. Deterministic for a seed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from cartesim.core import apdu as A
from cartesim.core import layout
from cartesim.core.sw import SW, SW1_MORE_DATA, SW1_MORE_DATA_CPS2TER, SW1_WRONG_LE, SW_COUNTER_BASE
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import build_card
from cartesim.emulator.catalog import resolve_profile
from cartesim.emulator.profile import CpsProfile, VitaleProfile, load_profile

MODELS = ("cps-roulette", "cps-blocked", "vitale-famille")
# 6581 comes from a state file that cannot be written, never from the card OS itself.
_KNOWN = {int(s) for s in SW} - {int(SW.NO_PRECISE_DIAGNOSIS), int(SW.MEMORY_FAILURE)}
_INS = [
    A.INS_SELECT,
    A.INS_READ_BINARY,
    A.INS_VERIFY,
    A.INS_CHANGE_REFERENCE_DATA,
    A.INS_RESET_RETRY_COUNTER,
    A.INS_GET_RESPONSE,
    A.INS_GET_DATA,
    layout.INS_GET_DATA_SDO,
    0x22,  # MSE SET
    0x2A,  # PSO
    0x88,  # INTERNAL AUTHENTICATE
]


def _fid(*fids: int) -> bytes:
    return b"".join(f.to_bytes(2, "big") for f in fids)


# Data a card acts on: its file ids, paths and AIDs, codes right and wrong.
_INTERESTING_DATA = [
    _fid(layout.FID_MF),
    _fid(layout.FID_CPS_DF),
    _fid(layout.FID_HOLDER),
    _fid(layout.FID_SITUATION_FIRST),
    _fid(layout.FID_DIR),
    _fid(layout.FID_MF, layout.FID_CPS_DF, layout.FID_HOLDER),
    layout.AID_CPS3_IAS,
    layout.AID_VITALE,
    b"1234",
    b"0000",
    b"12345678" + b"4321",
    bytes.fromhex("4D087006BF810102A080"),  # an SDO's counters
    bytes.fromhex("8401818001 42"),  # MSE SET DST
    bytes.fromhex("9000 8003616263"),  # PSO HASH, no intermediate state
    b"\x40\x10",
]


def valid_sw(sw: int) -> bool:
    if sw in _KNOWN:
        return True
    return sw >> 8 in (SW1_MORE_DATA, SW1_MORE_DATA_CPS2TER, SW1_WRONG_LE) or sw & 0xFFF0 == SW_COUNTER_BASE


@dataclass
class FuzzReport:
    cases: int = 0
    per_model: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 2, 3, 4, 5, 6, rng.randint(0, 300))))


def _wrong_apdu(rng: random.Random) -> bytes:
    """A well-formed short APDU with plausible but wrong parts."""
    cla = rng.choice((0x00, 0x00, 0x00, 0x80, 0x0C, 0x10, layout.CLA_CPS2TER, rng.randint(0, 255)))
    ins = rng.choice([*_INS, rng.randint(0, 255)])
    p1 = rng.choice((0x00, 0x02, 0x04, 0x08, 0x09, 0x80 | rng.randint(0, 31), rng.randint(0, 255)))
    p2 = rng.choice((0x00, 0x01, 0x02, 0x04, 0x0C, rng.randint(0, 255)))
    data = rng.choice((b"", rng.choice(_INTERESTING_DATA), rng.randbytes(rng.randint(1, 255))))
    le = rng.choice((None, None, 0, rng.randint(1, 255)))
    out = bytes((cla, ins, p1, p2))
    if data:
        out += bytes((len(data),)) + data
    if le is not None:
        out += bytes((le,))
    return out


def _check(card: CardOS, raw: bytes) -> str | None:
    try:
        r = card.process(raw)
    except Exception as e:  # the card OS must never raise; report it as a finding
        return f"exception {type(e).__name__} on {A.redact_hex(raw)}"
    if len(r) < 2:
        return f"answer shorter than a status word on {A.redact_hex(raw)}"
    sw = int.from_bytes(r[-2:], "big")
    if not valid_sw(sw):
        return f"status word {sw:04X} on {A.redact_hex(raw)}"
    for pin in filter(None, (card.pin,)):
        if not 0 <= pin.tries_left <= pin.tries_max:
            return f"PIN counter out of bounds after {A.redact_hex(raw)}"
    if card.unblock and not (
        0 <= card.unblock.tries_left <= card.unblock.tries_max
        and 0 <= card.unblock.uses_left <= card.unblock.uses_max
    ):
        return f"unblock counters out of bounds after {A.redact_hex(raw)}"
    return None


def run(cases: int, seed: int = 0) -> FuzzReport:
    rng = random.Random(seed)  # noqa: S311 - reproducible test input, not cryptography
    profiles: dict[str, CpsProfile | VitaleProfile] = {}
    for name in MODELS:
        profiles[name] = load_profile(resolve_profile(name))
    report = FuzzReport(per_model=dict.fromkeys(MODELS, 0))
    start = time.perf_counter()
    per_model = cases // len(MODELS)
    for i, name in enumerate(MODELS):
        n = per_model + (1 if i < cases % len(MODELS) else 0)
        card = build_card(profiles[name])
        for k in range(n):
            if k % 500 == 0:
                card = build_card(profiles[name])  # fresh state now and then: both paths explored
            raw = _random_bytes(rng) if rng.random() < 0.4 else _wrong_apdu(rng)
            failure = _check(card, raw)
            if failure:
                report.failures.append(f"{name}: {failure}")
        report.per_model[name] = n
        report.cases += n
    report.seconds = time.perf_counter() - start
    return report
