"""Differential fuzzing of the card OS against an independent reference model (``reference.py``).

Each case is one APDU — arbitrary bytes, a well-formed but wrong command, or a command the model
steers towards the card's states (right and wrong codes, blocked and exhausted codes, selection
and reads, the security environment, chaining, the CPS2ter volet) — sent to the emulated card and
to the model. The oracle checks, for every case:

- an answer, never an exception, never 6F00, and a status word the card may say;
- the status word and the data the model gives (exactly, or what the model knows of them);
- the codes and counters after it (code porteur, its tries left, the code de déblocage's tries
  and uses left, blocked, definitively blocked) and the security status (both codes verified);
- which codes the card compared: every comparison the model makes, and no other (a blocked
  code is never compared).

One episode in ``STATE_EVERY`` binds the card to a state file (``emulator.state``), each APDU in
a session, and now and then replaces the card object by a fresh one loaded from that file (the
model and a twin card without a file then see a power cycle). There the oracle also checks that
the file holds the model's counters after each APDU, that the twin gives the same answers, that
each write made before the answer is a state a crash may leave (the state before with one try
spent, or the state after), and — a crash simulated at the instant the card reads its stored
code — that the file already holds that comparison's try.

Power cycles come between APDUs. After a failure the episode ends (model and card then disagree
on everything), so failures count diverging episodes. Deterministic for a seed.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cartesim.core import layout
from cartesim.core.apdu import redact_hex
from cartesim.core.sw import SW, SW1_MORE_DATA, SW1_MORE_DATA_CPS2TER, SW1_WRONG_LE, SW_COUNTER_BASE
from cartesim.emulator import state
from cartesim.emulator.cardos import CardOS
from cartesim.emulator.cards import build_card
from cartesim.emulator.catalog import resolve_profile
from cartesim.emulator.profile import CpsProfile, VitaleProfile, load_profile
from cartesim.harness.tools import reference as ref
from cartesim.harness.tools.reference import Codes, Expect, Layout, Node, Opaque, ReferenceCard

Profile = CpsProfile | VitaleProfile

SAMPLES = (
    "cps-roulette",
    "cps-blocked",
    "cps-last-try",
    "cps-definitively-blocked",
    "cps-two-situations",
    "cpf-infirmier-remplacant",
    "vitale-famille",
    "vitale-seule",
)
SMALL = "cps-roulette, small counters, no volet, no PUK object"
STATE_EVERY = 8  # one episode in 8 runs on a state file
EPISODE = (40, 400)  # APDUs per episode
MAX_FAILURES_KEPT = 200
# 6581 comes from a state file that cannot be written, never from the card OS itself.
_KNOWN = {int(s) for s in SW} - {int(SW.NO_PRECISE_DIAGNOSIS), int(SW.MEMORY_FAILURE)}


def valid_sw(sw: int) -> bool:
    """A status word the card OS may say (the SW table, 61xx / 9Fxx / 6Cxx / 63Cx), never 6F00."""
    if sw in _KNOWN:
        return True
    return sw >> 8 in (SW1_MORE_DATA, SW1_MORE_DATA_CPS2TER, SW1_WRONG_LE) or sw & 0xFFF0 == SW_COUNTER_BASE


# --- the models: card profiles ------------------------------------------------------------------
def _small(profile: Profile) -> Profile:
    """cps-roulette with counters small enough to reach every end: 2 tries, a code de déblocage
    of 3 tries and 2 uses, no CPS2ter volet, no PUK object in the AODF."""
    assert isinstance(profile, CpsProfile)
    return profile.model_copy(
        update={
            "pin": profile.pin.model_copy(update={"tries_max": 2}),
            "unblock": profile.unblock.model_copy(update={"tries_max": 3, "uses_max": 2}),
            "cps2ter": False,
            "pkcs15": profile.pkcs15.model_copy(update={"unblock_code_object": False}),
        }
    )


@dataclass
class Subject:
    """One card profile under test, and what the model knows of it."""

    name: str
    profile: Profile
    spec: Layout
    problems: list[str]

    @classmethod
    def of(cls, name: str, profile: Profile) -> Subject:
        profile = profile.model_copy(update={"faults": []})
        spec, problems = layout_of(profile, build_card(profile))
        return cls(name, profile, spec, problems)


def layout_of(profile: Profile, pristine: CardOS) -> tuple[Layout, list[str]]:
    """The model's view of ``profile``: its trees filled with the pristine card's file contents,
    and the problems found doing so (files missing, PKCS#15 objects that say otherwise)."""
    if isinstance(profile, VitaleProfile):
        tree = ref.vitale_tree()
        return Layout("vitale", tree), ref.issued_files(tree, pristine.mf)
    numbers = profile.situation_numbers()
    tree = ref.cps_tree(numbers, profile.mise_a_jour is not None)
    problems = ref.issued_files(tree, pristine.mf)
    volet = ref.volet_tree(numbers) if profile.cps2ter else None
    theirs = getattr(pristine, "volet", None)
    if volet is not None and theirs is not None:
        problems += ref.issued_files(volet, theirs.mf)
    elif (volet is None) != (theirs is None):
        problems.append("CPS2ter volet: present on one of the card and the model only")
    problems += _pkcs15_problems(tree, numbers)
    p, u = profile.pin, profile.unblock
    spec = Layout(
        "cps",
        tree,
        volet,
        p.code,
        p.tries_max,
        p.tries_max if p.tries_left is None else p.tries_left,
        u.code,
        u.tries_max,
        u.tries_max if u.tries_left is None else u.tries_left,
        u.uses_max,
        u.uses_max if u.uses_left is None else u.uses_left,
    )
    return spec, problems


def _pkcs15_problems(tree: Node, numbers: list[int]) -> list[str]:
    """The PKCS#15 objects behind auth ID 01 are exactly the files and keys the model protects
    with the code porteur: the situations, and both keys."""
    app = tree.child(layout.FID_CPS_DF)
    assert app is not None
    found = {n.fid: n for n in app.children}
    problems: list[str] = []
    if layout.FID_DODF in found:
        behind, free = ref.private_objects(found[layout.FID_DODF].content)
        prefix = (layout.FID_MF.to_bytes(2, "big")) + layout.FID_CPS_DF.to_bytes(2, "big")
        situations = {prefix + (layout.FID_SITUATION_FIRST + n - 1).to_bytes(2, "big") for n in numbers}
        if behind != situations:
            problems.append("DODF: the objects behind auth ID 01 are not the situations")
        if free & situations:
            problems.append("DODF: a situation without auth ID 01")
    if layout.FID_PRKDF in found:
        keys = ref.private_keys(found[layout.FID_PRKDF].content)
        if keys != dict.fromkeys(ref.KEY_OPERATIONS, bytes((layout.AUTH_ID_PIN,))):
            problems.append("PrKDF: a key not behind auth ID 01")
    return problems


def subjects() -> list[Subject]:
    out = [Subject.of(name, load_profile(resolve_profile(name))) for name in SAMPLES]
    out.append(Subject.of(SMALL, _small(load_profile(resolve_profile("cps-roulette")))))
    return out


# --- the report ---------------------------------------------------------------------------------
@dataclass
class FuzzReport:
    cases: int = 0
    per_model: dict[str, int] = field(default_factory=dict)
    checks: int = 0
    state_cases: int = 0
    reloads: int = 0
    crash_checks: int = 0
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(message)


def summary(report: FuzzReport) -> str:
    models = ", ".join(f"{k} {v}" for k, v in report.per_model.items())
    lines = [
        f"fuzz: {report.cases:,} cases against the reference model, {len(report.per_model)} card "
        f"profiles ({models})",
        f"  {report.checks:,} oracle checks (status word, data, codes, counters, security status, "
        f"comparisons); {report.state_cases:,} cases on a state file, {report.reloads:,} reloads from "
        f"it, {report.crash_checks:,} crash checks",
        f"  {report.failure_count} failure(s) in {report.seconds:.1f} s",
    ]
    lines += [f"  {f}" for f in report.failures[:20]]
    return "\n".join(lines)


# --- the code probe -----------------------------------------------------------------------------
class _Watched(str):
    """A code as the card stores it, watched: reading its content — comparing it — calls
    ``seen``. Its length is not content (CHANGE REFERENCE DATA splits at it)."""

    seen: Callable[[], None]

    def _read(self) -> str:
        self.seen()
        return str.__str__(self)

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self._read().encode(encoding, errors)

    def __eq__(self, other: object) -> bool:
        return self._read() == other

    def __ne__(self, other: object) -> bool:
        return self._read() != other

    __hash__ = str.__hash__

    def __getitem__(self, key: Any) -> str:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())


class _Probe:
    """Watches the card's two codes while it processes one APDU: which it compares, and (state
    runs) what its state file holds at that instant — what a crash then would leave."""

    def __init__(self, file: Callable[[], Codes] | None) -> None:
        self.file = file
        self.armed = False
        self.seen: list[tuple[str, Codes | None]] = []

    def watch(self, card: CardOS) -> None:
        for which, holder in (("pin", card.pin), ("unblock", card.unblock)):
            if holder is not None and type(holder.code) is not _Watched:
                watched = _Watched(holder.code)
                watched.seen = self._seen_by(which)
                holder.code = watched

    def _seen_by(self, which: str) -> Callable[[], None]:
        def seen() -> None:
            if self.armed:
                self.seen.append((which, self.file() if self.file else None))

        return seen

    @contextmanager
    def armed_for(self) -> Iterator[None]:
        self.seen, self.armed = [], True
        try:
            yield
        finally:
            self.armed = False


# --- the state file -----------------------------------------------------------------------------
class _Recorder:
    """The card's persist hook in state runs: the Binding writes, then we note what the file
    holds — every state written before the answer left."""

    def __init__(self, bound: state.Binding, read: Callable[[], Codes]) -> None:
        self.bound, self.read = bound, read
        self.writes: list[Codes] = []

    def __call__(self) -> None:
        self.bound()
        self.writes.append(self.read())


def _file_codes(path: Path, issued: Codes) -> Codes:
    """The codes and counters the state file holds (the card as issued while there is none)."""
    try:
        saved = json.loads(path.read_bytes())
    except FileNotFoundError:
        return issued
    pin, unblock = saved.get("pin") or {}, saved.get("unblock") or {}
    return Codes(
        pin.get("code", ""),
        pin.get("tries_left", 0),
        unblock.get("tries_left", 0),
        unblock.get("uses_left", 0),
    )


# --- generation ---------------------------------------------------------------------------------
def _fid(*fids: int) -> bytes:
    return b"".join(f.to_bytes(2, "big") for f in fids)


def _apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    out = bytes((cla, ins, p1, p2))
    if data:
        out += bytes((len(data),)) + data
    if le is not None:
        out += bytes((le & 0xFF,))
    return out


def _lineage(node: Node) -> list[Node]:
    """The node's DFs from the MF down, and the node."""
    return ([*_lineage(node.parent)] if node.parent is not None else []) + [node]


class _Generator:
    """APDUs for one subject, steered by the model's state (it knows the codes, what is pending,
    which file is selected)."""

    def __init__(self, rng: random.Random, subject: Subject) -> None:
        self.rng, self.subject = rng, subject
        self.queued: list[bytes] = []
        spec = subject.spec
        self.nodes = spec.tree.nodes()
        self.fids = sorted({n.fid for n in self.nodes if n.fid is not None})
        self.aids = [n.aid for n in self.nodes if n.aid]
        self.volet_fids = (
            sorted({n.fid for n in spec.volet.nodes() if n.fid is not None}) if spec.volet else []
        )
        families: list[tuple[Callable[[ReferenceCard], bytes], int]] = [
            (self._select, 14),
            (self._read, 12),
            (self._get_response, 6),
            (self._verify, 12 if spec.has_codes else 2),
        ]
        if spec.has_codes:
            families += [
                (self._verify_unblock, 5),
                (self._change, 4),
                (self._reset_retry, 5),
                (self._get_data, 4),
                (self._mse, 5),
                (self._pso, 5),
                (self._internal_authenticate, 1),
                (self._get_challenge, 1),
            ]
        self.protected = [n for n in self.nodes if n.needs_pin]
        if self.protected:
            families.append((self._protected, 4))
        if spec.volet is not None:
            families.append((self._volet, 6))
        self.families = [f for f, _ in families]
        self.weights = [w for _, w in families]

    def next(self, model: ReferenceCard) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self.rng.randbytes(self.rng.choice((0, 1, 2, 3, 4, 5, 6, self.rng.randint(0, 300))))
        if r < 0.20:
            return self._wrong()
        family = self.rng.choices(self.families, self.weights)[0]
        return family(model)

    # helpers
    def _maybe(self, p: float) -> bool:
        return self.rng.random() < p

    def _le(self) -> int | None:
        return self.rng.choice((None, None, 0, self.rng.randint(1, 255)))

    def _number(self, n: int) -> bytes:
        return bytes(self.rng.randint(0x30, 0x39) for _ in range(n))

    def _wrong_code(self, right: str) -> bytes:
        """A code of the right length that is not the right one (mostly), or any other."""
        r = self.rng.random()
        if r < 0.7:
            while True:
                candidate = self._number(len(right))
                if candidate != right.encode():
                    return candidate
        if r < 0.85:
            return self._number(self.rng.randint(4, 8))
        if r < 0.93:
            return self.rng.randbytes(len(right))
        return self._number(self.rng.choice((1, 2, 3, 9, 12)))

    def _code(self, right: str, p_right: float) -> bytes:
        return right.encode() if self._maybe(p_right) else self._wrong_code(right)

    def _new_pin(self) -> bytes:
        r = self.rng.random()
        if r < 0.85:
            return self._number(self.rng.randint(4, 8))
        if r < 0.93:
            return self._number(self.rng.choice((0, 1, 3, 9)))
        return b"12a4"

    def _wrong(self) -> bytes:
        rng = self.rng
        cla = rng.choice((0x00, 0x00, 0x00, 0x80, 0x0C, 0x10, layout.CLA_CPS2TER, rng.randint(0, 255)))
        ins = rng.choice(
            (0xA4, 0xB0, 0x20, 0x24, 0x2C, 0xC0, 0xCA, 0xCB, 0x22, 0x2A, 0x88, 0x84, rng.randint(0, 255))
        )
        p1 = rng.choice((0x00, 0x02, 0x04, 0x08, 0x09, 0x80 | rng.randint(0, 31), rng.randint(0, 255)))
        p2 = rng.choice((0x00, 0x01, 0x02, 0x04, 0x0C, rng.randint(0, 255)))
        data = rng.choice((b"", rng.randbytes(rng.randint(1, 255)), _fid(rng.choice(self.fids))))
        return _apdu(cla, ins, p1, p2, data, self._le())

    # SELECT and READ BINARY
    def _select(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        p2 = rng.choice((0x04, 0x0C, 0x04, 0x0C, 0x00, rng.randint(0, 255)))
        kind = rng.random()
        node = rng.choice(self.nodes)
        if kind < 0.35:
            p1, data = (
                rng.choice((0x00, 0x00, 0x02)),
                _fid(node.fid if node.fid is not None else rng.choice(self.fids)),
            )
        elif kind < 0.55:
            p1, data = (
                0x04,
                (
                    rng.choice(self.aids)[: rng.randint(1, 16)]
                    if self._maybe(0.9)
                    else rng.randbytes(rng.randint(0, 17))
                ),
            )
        elif kind < 0.8:
            path = [n.fid for n in _lineage(node) if n.fid is not None]
            if self._maybe(0.5) and path and path[0] == layout.FID_MF:
                path = path[1:] or path
            p1, data = rng.choice((0x08, 0x09)), _fid(*path) if path else b""
        elif kind < 0.9:
            p1, data = 0x00, rng.choice((b"", b"\x3f", _fid(rng.randint(0, 0xFFFF))))
        else:
            p1, data = rng.randint(0, 255), rng.randbytes(rng.randint(0, 4))
        return _apdu(0x00, 0xA4, p1, p2, data, rng.choice((None, None, 0, rng.randint(1, 64))))

    def _protected(self, model: ReferenceCard) -> bytes:
        """A file behind the code porteur: selected by its path, then read (either tree)."""
        rng = self.rng
        le = rng.choice((None, 0, rng.randint(1, 255)))
        if self.volet_fids and self._maybe(0.4):
            fid = rng.choice((layout.FID_CPS2TER_SITUATION_FIRST, layout.FID_CPS2TER_BILLING))
            self.queued.append(_apdu(layout.CLA_CPS2TER, 0xB0, 0, 0, b"", le))
            return _apdu(layout.CLA_CPS2TER, 0xA4, 0, 0, _fid(fid))
        node = rng.choice(self.protected)
        self.queued.append(_apdu(0x00, 0xB0, 0, rng.choice((0, 0, 5)), b"", le))
        return _apdu(0x00, 0xA4, 0x08, 0x0C, _fid(*(n.fid or 0 for n in _lineage(node)[1:])))

    def _read(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        size = len(model.current.content)
        offset = rng.choice((0, 0, 0, rng.randint(0, max(size, 1)), size, size + rng.randint(1, 5)))
        le = rng.choice((None, 0, max(1, min(255, size - offset)), rng.randint(1, 255)))
        if self._maybe(0.3):
            sfi = rng.choice([n.sfi for n in self.nodes if n.sfi] + [rng.randint(0, 31)])
            p1 = 0x80 | sfi if self._maybe(0.95) else rng.choice((0xA1, 0xC2, 0x80, 0x9F))
            return _apdu(0x00, 0xB0, p1, min(offset, 255), b"", le)
        offset = min(offset, 0x7FFF)
        data = b"" if self._maybe(0.97) else b"\x00"
        return _apdu(0x00, 0xB0, offset >> 8, offset & 0xFF, data, le)

    def _get_response(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        n = ref.size_of(model.pending)
        le = rng.choice((n & 0xFF, n & 0xFF, rng.randint(1, max(1, n)) & 0xFF, rng.randint(0, 255), None))
        cla = model.pending_cla if self._maybe(0.9) else rng.choice((0x00, layout.CLA_CPS2TER, 0x80))
        p1p2 = (0, 0) if self._maybe(0.95) else (rng.randint(0, 255), rng.randint(0, 255))
        return _apdu(cla, 0xC0, *p1p2, b"" if self._maybe(0.97) else b"\x01", le)

    # the codes
    def _verify(self, model: ReferenceCard) -> bytes:
        spec, rng = self.subject.spec, self.rng
        p1 = 0x00 if self._maybe(0.97) else rng.randint(1, 255)
        p2 = layout.PIN_REF_PORTEUR if self._maybe(0.95) else rng.choice((0x00, 0x03, 0x81, 0x11))
        if self._maybe(0.15):
            return _apdu(0x00, 0x20, p1, p2)  # tries left
        return _apdu(0x00, 0x20, p1, p2, self._code(model.codes.code or spec.code or "1234", 0.45))

    def _verify_unblock(self, model: ReferenceCard) -> bytes:
        spec = self.subject.spec
        if self._maybe(0.25):
            return _apdu(0x00, 0x20, 0x00, layout.PIN_REF_DEBLOCAGE)
        return _apdu(0x00, 0x20, 0x00, layout.PIN_REF_DEBLOCAGE, self._code(spec.unblock_code, 0.5))

    def _change(self, model: ReferenceCard) -> bytes:
        if self._maybe(0.03):
            return _apdu(0x00, 0x24, 0x00, layout.PIN_REF_PORTEUR)
        old = self._code(model.codes.code, 0.6)
        p2 = layout.PIN_REF_PORTEUR if self._maybe(0.95) else 0x02
        return _apdu(0x00, 0x24, 0x00 if self._maybe(0.97) else 0x01, p2, old + self._new_pin())

    def _reset_retry(self, model: ReferenceCard) -> bytes:
        spec, rng = self.subject.spec, self.rng
        p2 = layout.PIN_REF_PORTEUR if self._maybe(0.95) else 0x02
        if self._maybe(0.35):
            return _apdu(0x00, 0x2C, 0x02, p2, self._new_pin())
        p1 = 0x00 if self._maybe(0.95) else rng.choice((0x01, 0x03))
        code = self._code(spec.unblock_code, 0.55)
        return _apdu(0x00, 0x2C, p1, p2, code + self._new_pin())

    # the IAS-ECC application
    def _get_data(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        sdo_class = rng.choice(
            (layout.SDO_CLASS_CHV, layout.SDO_CLASS_CHV, layout.SDO_CLASS_RSA_PRIVATE, 0xFB)
        )
        ref_ = rng.choice((0x01, 0x02, 0x81, 0x82, 0x03))
        wanted = rng.choice((b"\xa0\x80", b"\xa0\x80", b"\x9b", b""))
        header = bytes((0xBF, sdo_class, ref_, len(wanted))) + wanted
        body = bytes((0x4D, len(header) + 2, 0x70, len(header))) + header
        if self._maybe(0.1):
            body = body[: rng.randint(0, len(body))] + rng.randbytes(rng.randint(0, 3))
        p1p2 = (0x3F, 0xFF) if self._maybe(0.95) else (0x00, 0x00)
        return _apdu(0x00, 0xCB, *p1p2, body, rng.choice((None, 0)))

    def _mse(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        crt = rng.choice((ref.CRT_AT, ref.CRT_HT, ref.CRT_DST, ref.CRT_DST, ref.CRT_CT, 0xB4))
        algo = rng.choice([*ref.MSE_ALGORITHMS.get(crt, {0x02}), 0x42, 0x99, None])
        key = rng.choice((0x81, 0x82, 0x81, 0x82, 0x01, None))
        data = b""
        if algo is not None:
            data += bytes((0x80, 1, algo))
        if key is not None:
            data += bytes((rng.choice((0x84, 0x84, 0x83)), 1, key))
        if self._maybe(0.05):
            data += b"\x84"  # truncated
        return _apdu(0x00, 0x22, 0x41 if self._maybe(0.97) else 0x81, crt, data)

    def _pso(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.35:  # PSO HASH: 90 00 + 80 <last block>, or an intermediate state
            last = rng.randbytes(rng.choice((0, 3, 64, 65)))
            partial = (
                b""
                if self._maybe(0.8)
                else rng.randbytes(32) + (512 * rng.randint(0, 3) + rng.choice((0, 0, 8))).to_bytes(8, "big")
            )
            body = bytes((0x90, len(partial))) + partial + bytes((0x80, len(last))) + last
            return _apdu(0x00, 0x2A, 0x90, 0xA0, body if self._maybe(0.95) else body[:-1])
        if r < 0.7:  # PSO COMPUTE DIGITAL SIGNATURE: the hash left by PSO HASH, or one given
            data = rng.choice((b"", rng.randbytes(32), rng.randbytes(32), rng.randbytes(rng.randint(1, 250))))
            return _apdu(0x00, 0x2A, 0x9E, 0x9A, data, 0 if self._maybe(0.5) else None)
        if r < 0.95:  # PSO DECIPHER: 81 ‖ 256 bytes, chained; the last part with CLA 00
            cryptogram = (b"\x81" if self._maybe(0.9) else b"\x00") + rng.randbytes(
                rng.choice((256, 256, 255))
            )
            cut = rng.randint(2, 255)
            first, rest = cryptogram[:cut], cryptogram[cut:]
            if len(rest) > 255:
                first, rest = cryptogram[: len(cryptogram) - 255], cryptogram[-255:]
            if self._maybe(0.5):
                self.queued.append(_apdu(0x00, 0x2A, 0x80, 0x86, rest, 0 if self._maybe(0.3) else None))
            return _apdu(0x10, 0x2A, 0x80, 0x86, first)
        return _apdu(0x00, 0x2A, rng.randint(0, 255), rng.randint(0, 255), rng.randbytes(rng.randint(0, 8)))

    def _internal_authenticate(self, model: ReferenceCard) -> bytes:
        data = self.rng.randbytes(self.rng.choice((0, 35, 51, 246, 255)))
        return _apdu(0x00, 0x88, 0x00, 0x00, data, 0 if self._maybe(0.5) else None)

    def _get_challenge(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        if self._maybe(0.9):
            return _apdu(0x00, 0x84, 0x00, 0x00, b"", rng.choice((8, 16, 0, rng.randint(1, 255))))
        return _apdu(0x00, 0x84, rng.randint(0, 1), 0x00, rng.choice((b"", b"\x01")))

    def _volet(self, model: ReferenceCard) -> bytes:
        rng = self.rng
        cla = layout.CLA_CPS2TER
        r = rng.random()
        if r < 0.45:
            fid = rng.choice([*self.volet_fids, rng.randint(0, 0xFFFF)])
            p1p2 = (0, 0) if self._maybe(0.95) else (0, 4)
            return _apdu(cla, 0xA4, *p1p2, _fid(fid) if self._maybe(0.97) else b"\x40")
        if r < 0.8:
            current = model.volet_current
            size = len(current.content) if current is not None else 0
            offset = rng.choice((0, 0, rng.randint(0, max(size, 1)), size))
            p1 = offset >> 8 if self._maybe(0.97) else 0x80
            return _apdu(
                cla, 0xB0, p1, offset & 0xFF, b"", rng.choice((None, 0, max(1, min(255, size - offset))))
            )
        return self._get_response(model)

    def take(self, model: ReferenceCard) -> bytes:
        """The next APDU: the rest of a sequence begun (a chain, a select then read), else a new one."""
        if self.queued:
            return self.queued.pop(0)
        return self.next(model)


# --- the oracle ---------------------------------------------------------------------------------
def _answer_problem(expect: Expect, answer: bytes, model: ReferenceCard) -> str | None:
    """Whether ``answer`` is what the model expects (and learn a decryption's length)."""
    data, sw = answer[:-2], int.from_bytes(answer[-2:], "big")
    if expect.plaintext:  # 6A 80, an empty plaintext, or one delivered as T=0 delivers data
        if (sw in (SW.WRONG_DATA, SW.OK) and not data) or (
            expect.asks is not None and sw == SW.OK and len(data) == expect.asks
        ):
            return None
        if not data and sw >> 8 == (SW1_WRONG_LE if expect.asks is not None else SW1_MORE_DATA):
            if expect.asks is None:
                model.learn_pending(sw)
            return None
        return f"PSO DECIPHER answered {sw:04X} with {len(data)} bytes"
    if sw != expect.sw:
        return f"status word {sw:04X}, the model says {expect.sw:04X}"
    if isinstance(expect.data, Opaque):
        if len(data) != expect.data.length:
            return f"{len(data)} bytes of data, the model says {expect.data.length}"
    elif data != expect.data:
        return f"data {data[:16].hex().upper()}… ({len(data)} bytes) differ from the model's ({len(expect.data)} bytes)"
    return None


def _codes_of(card: CardOS) -> Codes | None:
    if card.pin is None or card.unblock is None:
        return None
    return Codes(
        str.__str__(card.pin.code), card.pin.tries_left, card.unblock.tries_left, card.unblock.uses_left
    )


def _state_problem(card: CardOS, model: ReferenceCard, report: FuzzReport) -> str | None:
    """Codes, counters, blocked states and security status against the model."""
    report.checks += 1
    if not model.spec.has_codes:
        return None if card.pin is None and card.unblock is None else "a card without codes has a code"
    mine, theirs = model.codes, _codes_of(card)
    if theirs is None:
        return "the card has lost a code"
    for name, label in (
        ("pin_left", "code porteur tries left"),
        ("unblock_left", "code de déblocage tries left"),
        ("uses_left", "unblocks left"),
    ):
        report.checks += 1
        if getattr(theirs, name) != getattr(mine, name):
            return f"{label}: {getattr(theirs, name)}, the model says {getattr(mine, name)}"
    report.checks += 1
    if theirs.code != mine.code:
        return "the code porteur is not the model's"  # never the codes themselves
    assert card.pin is not None and card.unblock is not None
    for got, want, label in (
        (card.pin.verified, model.verified, "code porteur verified"),
        (card.unblock.verified, model.unblock_verified, "code de déblocage verified"),
        (card.pin.blocked, model.blocked, "blocked"),
        (
            card.pin.blocked and card.unblock.exhausted,
            model.definitively_blocked,
            "definitively blocked",
        ),
    ):
        report.checks += 1
        if got != want:
            return f"{label}: {got}, the model says {want}"
    return None


def _spent(before: Codes, which: str) -> Codes:
    if which == "pin":
        return Codes(before.code, before.pin_left - 1, before.unblock_left, before.uses_left)
    return Codes(before.code, before.pin_left, before.unblock_left - 1, before.uses_left)


def _comparison_problem(
    seen: list[tuple[str, Codes | None]], before: Codes, model: ReferenceCard, report: FuzzReport
) -> str | None:
    """The codes the card compared are the model's; in state runs, each comparison's try was
    already in the file when the card read its code (a crash then leaves it spent)."""
    report.checks += 1
    compared = [which for which, _ in seen]
    if compared != model.compared:
        return f"the card compared {compared or 'no code'}, the model {model.compared or 'no code'}"
    for which, on_file in seen:
        if on_file is None:
            continue
        report.checks += 1
        report.crash_checks += 1
        if on_file != _spent(before, which):
            label = "code porteur" if which == "pin" else "code de déblocage"
            return (
                f"crash at the comparison: the {label} was compared before its try was written "
                f"(the file says {on_file.pin_left if which == 'pin' else on_file.unblock_left} tries left, "
                f"it must say {_spent(before, which).pin_left if which == 'pin' else _spent(before, which).unblock_left})"
            )
    return None


def _writes_problem(
    writes: list[Codes], before: Codes, after: Codes, model: ReferenceCard, report: FuzzReport
) -> str | None:
    """Every state written before the answer is one a crash may leave: the state before with
    a compared code's try spent, or the state after."""
    allowed = {after} | {_spent(before, which) for which in model.compared}
    for written in writes:
        report.checks += 1
        report.crash_checks += 1
        if written not in allowed:
            return "a crash after a write of this command would leave a state the command never has"
    return None


@dataclass
class _Episode:
    """One card, its model, and (state runs) its file, twin and probe."""

    subject: Subject
    card: CardOS
    model: ReferenceCard
    probe: _Probe
    path: Path | None = None
    bound: state.Binding | None = None
    recorder: _Recorder | None = None
    twin: CardOS | None = None

    @property
    def issued(self) -> Codes:
        s = self.subject.spec
        return Codes(s.code, s.pin_left, s.unblock_left, s.uses_left)

    def file(self) -> Codes:
        assert self.path is not None
        return _file_codes(self.path, self.issued)

    def attach(self) -> None:
        """A fresh card object loaded from the state file (state runs)."""
        assert self.path is not None
        self.card = build_card(self.subject.profile)
        self.bound = state.bind(self.card, self.path)
        self.recorder = _Recorder(self.bound, self.file)
        self.card.on_persist = self.recorder

    def power_cycle(self, reload: bool) -> None:
        self.model.power_cycle()
        if self.twin is not None:
            self.twin.reset()
        if reload:
            self.attach()
        else:
            self.card.reset()

    def process(self, raw: bytes) -> bytes:
        self.probe.watch(self.card)
        if self.recorder is not None:
            self.recorder.writes = []
        with self.probe.armed_for():
            if self.bound is None:
                return self.card.process(raw)
            with self.bound.session():
                return self.card.process(raw)


def _case(ep: _Episode, raw: bytes, report: FuzzReport) -> str | None:
    """One APDU through the card and the model; the first problem, or None."""
    model = ep.model
    before = model.codes
    expect = model.step(raw)
    try:
        answer = ep.process(raw)
    except Exception as e:  # the card OS must never raise; report it as a finding
        return f"exception {type(e).__name__}"
    report.checks += 1
    if len(answer) < 2:
        return "an answer shorter than a status word"
    sw = int.from_bytes(answer[-2:], "big")
    report.checks += 1
    if not valid_sw(sw):
        return f"status word {sw:04X}, one the card may not say"
    report.checks += 1
    problem = (
        _answer_problem(expect, answer, model)
        or _state_problem(ep.card, model, report)
        or _comparison_problem(ep.probe.seen, before, model, report)
    )
    if problem or ep.path is None:
        return problem
    assert ep.recorder is not None and ep.twin is not None
    report.state_cases += 1
    after = model.codes
    problem = _writes_problem(ep.recorder.writes, before, after, model, report)
    report.checks += 1
    if problem is None and ep.file() != after:
        problem = "the state file does not hold the model's codes and counters"
    twin = ep.twin.process(raw)
    report.checks += 1
    if problem is None and (
        twin != answer if not expect.random else (len(twin), twin[-2:]) != (len(answer), answer[-2:])
    ):
        problem = "the card on a state file answers otherwise than the same card without one"
    return problem


def _episode(
    subject: Subject, length: int, on_file: Path | None, rng: random.Random, report: FuzzReport, start: int
) -> int:
    """Run up to ``length`` cases on a fresh card; returns how many ran (fewer after a failure)."""
    card = build_card(subject.profile)
    ep = _Episode(subject, card, ReferenceCard(subject.spec), _Probe(None))
    if on_file is not None:
        on_file.unlink(missing_ok=True)
        ep.path = on_file
        ep.probe = _Probe(ep.file)
        ep.twin = build_card(subject.profile)
        ep.attach()
    gen = _Generator(rng, subject)
    for k in range(length):
        if not gen.queued and rng.random() < (0.25 if on_file is not None else 0.02):
            reload = on_file is not None and rng.random() < 0.9
            report.reloads += reload
            ep.power_cycle(reload)
        raw = gen.take(ep.model)
        problem = _case(ep, raw, report)
        if problem:
            report.fail(
                f"{subject.name}, case {start + k + 1}{' (state file)' if on_file else ''}: {problem} — APDU {redact_hex(raw)}"
            )
            return k + 1
    return length


def _scratch() -> str | None:
    """Where the state files go: a tmpfs when the machine has one (its fsync costs nothing;
    what a disk does at a crash is ``cartesim crash-test``'s, the fuzzer checks the card's
    logic), else the temporary folder."""
    shm = Path("/dev/shm")  # noqa: S108 - a private folder is made inside it
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def run(cases: int, seed: int = 0, models: list[Subject] | None = None) -> FuzzReport:
    rng = random.Random(seed)  # noqa: S311 - reproducible test input, not cryptography
    chosen = models if models is not None else subjects()
    report = FuzzReport(per_model=dict.fromkeys((s.name for s in chosen), 0))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cartesim-fuzz-", dir=_scratch()) as tmp:
        for i, subject in enumerate(chosen):
            n = cases // len(chosen) + (1 if i < cases % len(chosen) else 0)
            for problem in subject.problems:
                report.checks += 1
                report.fail(f"{subject.name}: {problem}")
            done, episode = 0, 0
            while done < n:
                on_file = Path(tmp, "card.json") if episode % STATE_EVERY == 1 else None
                length = min(n - done, rng.randint(*EPISODE))
                done += _episode(subject, length, on_file, rng, report, done)
                episode += 1
            report.per_model[subject.name] = n
            report.cases += n
    report.seconds = time.perf_counter() - start
    return report
