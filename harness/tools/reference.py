"""The fuzzer's oracle: a reference model of the emulated CPS3 and Carte Vitale 2.

Written from what the cards must do — ISO 7816-4, the layout and behaviour docs/card-layout.md
gives (public facts and cartesim's documented choices) — and sharing no code with the card OS
(``emulator/cardos.py``, ``pin.py``, ``ias.py``, ``cps2ter.py``): only constants (status words,
file ids, tags, the IAS-ECC access rules of ``cards/cps.py``) and the BER-TLV codec, with which
the model reads the requests the spec defines in BER-TLV.

What the model takes from the card as issued is *data*: each file's content and FCP, read from a
pristine card that is never fuzzed (``issued_files``). Which files exist and where, which need the
code porteur, how selection moves, what every command answers, which codes it compares and what
it does to the codes and counters: the model's own.

``ReferenceCard.step(raw)`` answers an ``Expect`` for one command: its status word and data when
the model knows them exactly (almost always), or what it knows of them (a signature's length, a
challenge's length, a decryption's outcome). Everything else the checker verifies with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cartesim.core import layout, tlv
from cartesim.core.sw import SW
from cartesim.emulator.cards.cps import (  # constants: the access rules each SDO shows
    ACL_KEY_AUTHENTICATION,
    ACL_KEY_SIGNATURE,
    ACL_PIN,
    ACL_UNBLOCK,
)

# --- constants of the IAS-ECC application, as docs/card-layout.md gives them ---------------------
CLA_CHAINING = 0x10
INS_SELECT, INS_READ_BINARY, INS_GET_RESPONSE = 0xA4, 0xB0, 0xC0
INS_VERIFY, INS_CHANGE, INS_RESET_RETRY = 0x20, 0x24, 0x2C
INS_MSE, INS_PSO, INS_INTERNAL_AUTH, INS_GET_CHALLENGE = 0x22, 0x2A, 0x88, 0x84
CRT_AT, CRT_HT, CRT_DST, CRT_CT = 0xA4, 0xAA, 0xB6, 0xB8
# What MSE SET accepts for each template (algorithm references)...
MSE_ALGORITHMS = {CRT_AT: {0x02}, CRT_HT: {0x40}, CRT_DST: {0x42, 0x02}, CRT_CT: {0x1A, 0x0A}}
ALGO_SHA256_RSA = 0x42
# ...and what each key may do: CPS_PRIV_SIG signs, CPS_PRIV_AUT authenticates and deciphers.
KEY_OPERATIONS = {layout.KEY_REF_SIGNATURE: {CRT_DST}, layout.KEY_REF_AUTHENTICATION: {CRT_AT, CRT_CT}}
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MODULUS_BYTES = layout.KEY_SIZE_BYTES
SIGNABLE = MODULUS_BYTES - 11  # PKCS#1 v1.5 type 1: at most k - 11 bytes under the padding
SHA256_BLOCK = 64
VOLET_SW1_MORE_DATA, ISO_SW1_MORE_DATA, SW1_WRONG_LE = 0x9F, 0x61, 0x6C


def counter_sw(left: int) -> int:
    """63 Cx: a wrong code, x tries left; 69 83 when none is."""
    return SW.AUTH_BLOCKED if left == 0 else 0x63C0 | left


def digits(raw: bytes) -> bool:
    return bool(raw) and all(0x30 <= b <= 0x39 for b in raw)


# --- the command --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None  # None: no Le byte; 1..256

    @property
    def header(self) -> tuple[int, int, int]:
        return self.ins, self.p1, self.p2

    @property
    def asks(self) -> bool:
        """ISO case 2: Le and no data — the reader takes exactly Le bytes back (T=0)."""
        return self.le is not None and not self.data


def parse(raw: bytes) -> Command | None:
    """A short command APDU (ISO 7816-3 cases 1 to 4), or None for anything else."""
    if len(raw) < 4:
        return None
    cla, ins, p1, p2 = raw[:4]
    if len(raw) == 4:
        return Command(cla, ins, p1, p2, b"", None)
    if len(raw) == 5:
        return Command(cla, ins, p1, p2, b"", raw[4] or 256)
    lc = raw[4]
    if lc and len(raw) == 5 + lc:
        return Command(cla, ins, p1, p2, bytes(raw[5:]), None)
    if lc and len(raw) == 6 + lc:
        return Command(cla, ins, p1, p2, bytes(raw[5:-1]), raw[-1] or 256)
    return None


# --- files --------------------------------------------------------------------------------------
@dataclass(eq=False)
class Node:
    """A file of the model's tree: an EF, or a DF (the MF, an application) with children."""

    fid: int | None
    aid: bytes | None = None
    sfi: int | None = None
    needs_pin: bool = False
    is_df: bool = False
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    content: bytes = b""
    fcp: bytes = b""

    def add(self, *nodes: Node) -> Node:
        for n in nodes:
            n.parent = self
            self.children.append(n)
        return self

    def child(self, fid: int) -> Node | None:
        return next((c for c in self.children if c.fid == fid), None)

    def nodes(self) -> list[Node]:
        """This node and everything under it, depth first, in order."""
        out = [self]
        for c in self.children:
            out += c.nodes()
        return out

    @property
    def name(self) -> str:
        return f"{self.fid:04X}" if self.fid is not None else self.aid.hex().upper() if self.aid else "?"

    @property
    def path(self) -> str:
        return (self.parent.path + "/" if self.parent else "") + self.name

    @property
    def df(self) -> Node:
        """The DF a selection stands in: the node itself, or the EF's parent."""
        if self.is_df:
            return self
        assert self.parent is not None
        return self.parent


def ef(fid: int, sfi: int | None = None, needs_pin: bool = False) -> Node:
    return Node(fid, sfi=sfi, needs_pin=needs_pin)


def df(fid: int | None, aid: bytes | None = None) -> Node:
    return Node(fid, aid=aid, is_df=True)


@dataclass(frozen=True)
class Layout:
    """What the model knows of a profile: its tree(s), codes and counters as issued."""

    kind: str  # "cps" or "vitale"
    tree: Node
    volet: Node | None = None
    code: str = ""
    pin_max: int = 0
    pin_left: int = 0
    unblock_code: str = ""
    unblock_max: int = 0
    unblock_left: int = 0
    uses_max: int = 0
    uses_left: int = 0

    @property
    def has_codes(self) -> bool:
        return self.kind == "cps"


def cps_tree(situation_numbers: list[int], updated: bool) -> Node:
    """The CPS3 (docs/card-layout.md, Files): the situations, and only they, need the code porteur."""
    app = df(layout.FID_CPS_DF, layout.AID_CPS3_IAS).add(
        *(
            ef(fid)
            for fid in (
                layout.FID_ODF,
                layout.FID_TOKEN_INFO,
                layout.FID_AODF,
                layout.FID_PRKDF,
                layout.FID_CDF,
                layout.FID_DODF,
                layout.FID_CERT_SIGNATURE,
                layout.FID_CERT_AUTHENTICATION,
                layout.FID_HOLDER,
            )
        ),
        *(ef(layout.FID_SITUATION_FIRST + n - 1, needs_pin=True) for n in situation_numbers),
    )
    mf = df(layout.FID_MF, layout.AID_ROOT).add(
        ef(layout.FID_EF_DIR, layout.SFI_EF_DIR),
        ef(layout.FID_EF_ATR, layout.SFI_EF_ATR),
        ef(layout.FID_SN_ICC, layout.SFI_SN_ICC),
    )
    if updated:
        mf.add(ef(layout.FID_ACTUA))
    return mf.add(app)


def volet_tree(situation_numbers: list[int]) -> Node:
    """The CPS2ter volet: situation n at 3F00/4010+n-1, the billing situation at 3F00/7F01/4000."""
    return df(layout.FID_MF).add(
        *(ef(layout.FID_CPS2TER_SITUATION_FIRST + n - 1, needs_pin=True) for n in situation_numbers),
        df(layout.FID_CPS2TER_BILLING_DF).add(ef(layout.FID_CPS2TER_BILLING, needs_pin=True)),
    )


def vitale_tree() -> Node:
    """The Carte Vitale 2 (docs/card-layout.md): nothing needs a code."""
    return df(layout.FID_MF, layout.AID_VITALE_MF).add(
        ef(layout.FID_VITALE_IDENTITY, layout.SFI_VITALE_IDENTITY),
        ef(layout.FID_DIR),
        ef(layout.FID_PAN),
        df(None, layout.AID_VITALE).add(
            ef(layout.FID_VITALE_NIR, layout.SFI_VITALE_NIR),
            ef(layout.FID_VITALE_CARD, layout.SFI_VITALE_CARD),
            ef(layout.FID_VITALE_RIGHTS, layout.SFI_VITALE_RIGHTS),
            ef(layout.FID_POINTERS),
        ),
    )


def issued_files(model: Node, card: Any) -> list[str]:
    """Fill the model's tree with the contents and FCPs of the pristine card's files (``card``:
    an emulator.fs DF); the problems: files the model expects and the card lacks, or the other
    way round."""
    problems: list[str] = []
    model.fcp = card.fcp()
    if not model.is_df:
        model.content = card.content()
        return problems
    theirs = list(card.children)
    for mine in model.children:
        match = next(
            (c for c in theirs if c.fid == mine.fid and (mine.fid is not None or c.aid == mine.aid)), None
        )
        if match is None or hasattr(match, "children") != mine.is_df:
            problems.append(f"{mine.path}: not on the card as the model has it")
            continue
        theirs.remove(match)
        problems += issued_files(mine, match)
    problems += [f"{model.path}: the card has a file the model lacks ({c.fid})" for c in theirs]
    return problems


# --- PKCS#15: which objects the code porteur protects (auth ID 01) -------------------------------
def private_objects(dodf: bytes) -> tuple[set[bytes], set[bytes]]:
    """The DODF's data objects: paths behind auth ID 01, and paths behind none."""
    behind: set[bytes] = set()
    free: set[bytes] = set()
    for obj in tlv.decode(dodf):
        common, _, typed = obj.children()
        auth = [t.value for t in common.children() if t.tag == 0x04]
        data_path = typed.children()[0].children()[0].value  # [1] { Path { OCTET STRING } }
        (behind if auth == [bytes((layout.AUTH_ID_PIN,))] else free).add(data_path)
    return behind, free


def private_keys(prkdf: bytes) -> dict[int, bytes | None]:
    """The PrKDF's keys: each key reference and the auth ID that protects it."""
    out: dict[int, bytes | None] = {}
    for obj in tlv.decode(prkdf):
        common, key, _ = obj.children()
        auth = [t.value for t in common.children() if t.tag == 0x04]
        reference = [t.value for t in key.children() if t.tag == 0x02][-1]
        out[int.from_bytes(reference, "big")] = auth[0] if auth else None
    return out


# --- the model's answers ------------------------------------------------------------------------
@dataclass(frozen=True)
class Opaque:
    """Data whose length the model knows and whose content it does not (a signature)."""

    length: int


Data = bytes | Opaque


def _cut(data: Data, start: int, stop: int) -> Data:
    if isinstance(data, Opaque):
        return Opaque(max(0, min(stop, data.length) - start))
    return data[start:stop]


def size_of(data: Data) -> int:
    return data.length if isinstance(data, Opaque) else len(data)


@dataclass(frozen=True)
class Expect:
    """What the card must answer: ``sw`` and ``data`` exactly, or ``data`` as an Opaque length.
    ``random``: the content is random (GET CHALLENGE). ``plaintext``: a PKCS#1 decryption the
    model does not redo: 6A 80, or data announced by 61 xx (pending then learnt from xx)."""

    sw: int
    data: Data = b""
    random: bool = False
    plaintext: bool = False
    asks: int | None = None  # a plaintext asked for with Le (case 2): exactly Le bytes or 6C xx


@dataclass(frozen=True)
class Codes:
    """The persistent state: what the state file holds."""

    code: str
    pin_left: int
    unblock_left: int
    uses_left: int


Handler = Callable[[Command], tuple[Data, int]]


@dataclass
class ReferenceCard:
    """The model of one card: persistent codes and counters, volatile security status, selection,
    security environment, chaining and T=0 state."""

    spec: Layout
    codes: Codes = field(init=False)
    verified: bool = field(init=False, default=False)
    unblock_verified: bool = field(init=False, default=False)
    current: Node = field(init=False)
    volet_current: Node | None = field(init=False)
    pending: Data = field(init=False, default=b"")
    pending_cla: int = field(init=False, default=0)
    env: dict[int, tuple[int | None, int | None]] = field(init=False, default_factory=dict)
    hashed: bool = field(init=False, default=False)
    chain: tuple[tuple[int, int, int], bytes] | None = field(init=False, default=None)
    # What the last command compared: "pin", "unblock" (each at most once per command).
    compared: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        s = self.spec
        self.codes = Codes(s.code, s.pin_left, s.unblock_left, s.uses_left)
        self.power_cycle()

    # --- power --------------------------------------------------------------------------------
    def power_cycle(self) -> None:
        """Power off/on, a warm reset, or a fresh card object from the state file: only the
        persistent codes and counters survive."""
        self.verified = self.unblock_verified = False
        self.current = self.spec.tree
        self.volet_current = self.spec.volet
        self.pending, self.env, self.hashed, self.chain = b"", {}, False, None

    # --- derived states -----------------------------------------------------------------------
    @property
    def blocked(self) -> bool:
        return self.spec.has_codes and self.codes.pin_left == 0

    @property
    def unblock_exhausted(self) -> bool:
        return self.spec.has_codes and (self.codes.unblock_left == 0 or self.codes.uses_left == 0)

    @property
    def definitively_blocked(self) -> bool:
        return self.blocked and self.unblock_exhausted

    # --- one command --------------------------------------------------------------------------
    def step(self, raw: bytes) -> Expect:
        self.compared = []
        cmd = parse(raw)
        if cmd is None:
            self.pending = b""  # a malformed APDU ends what was pending; a chain survives it
            return Expect(SW.WRONG_LENGTH)
        if self.spec.kind == "vitale":
            return self._iso(cmd)
        if cmd.cla == layout.CLA_CPS2TER and self.spec.volet is not None:
            self.chain = None
            return self._run(cmd, self._volet_handlers(), VOLET_SW1_MORE_DATA)
        if cmd.cla == CLA_CHAINING:
            return self._chain_part(cmd)
        if self.chain is not None and self.chain[0] != cmd.header:
            self.chain = None
        out = self._iso(cmd)
        self.chain = None
        return out

    def _iso(self, cmd: Command) -> Expect:
        if cmd.cla != 0x00:
            self.pending = b""
            return Expect(SW.CLA_NOT_SUPPORTED)
        return self._run(cmd, self._handlers(), ISO_SW1_MORE_DATA)

    def _run(self, cmd: Command, handlers: dict[int, Handler], more: int) -> Expect:
        if cmd.ins == INS_GET_RESPONSE:
            return self._get_response(cmd, more)
        self.pending = b""
        handler = handlers.get(cmd.ins)
        if handler is None:
            return Expect(SW.INS_NOT_SUPPORTED)
        if cmd.header == (INS_PSO, 0x80, 0x86):  # its outcome the model knows only in part
            return self._decipher(cmd)
        data, sw = handler(cmd)
        return self._deliver(cmd, data, sw, more, random=cmd.ins == INS_GET_CHALLENGE)

    def _deliver(self, cmd: Command, data: Data, sw: int, more: int, random: bool = False) -> Expect:
        """T=0: a case 2 command gets exactly Le bytes or 6C xx; any other command that makes
        data announces it with 61 xx (9F xx in the volet) for GET RESPONSE."""
        n = size_of(data)
        if not n:
            return Expect(sw)
        if cmd.asks:
            if n != cmd.le:
                return Expect(SW1_WRONG_LE << 8 | n & 0xFF)
            return Expect(sw, data, random)
        self.pending, self.pending_cla = data, cmd.cla
        return Expect(more << 8 | n & 0xFF)

    def _get_response(self, cmd: Command, more: int) -> Expect:
        if cmd.p1 or cmd.p2:
            self.pending = b""
            return Expect(SW.WRONG_P1P2)
        if cmd.data:
            self.pending = b""
            return Expect(SW.WRONG_LENGTH)
        pending = self.pending if cmd.cla == self.pending_cla else b""
        n = size_of(pending)
        if not n:
            return Expect(SW.CONDITIONS_NOT_SATISFIED)
        want = cmd.le or 256
        if want > n:
            return Expect(SW1_WRONG_LE << 8 | n & 0xFF)
        out, self.pending = _cut(pending, 0, want), _cut(pending, want, n)
        left = size_of(self.pending)
        return Expect(more << 8 | left & 0xFF if left else SW.OK, out)

    def learn_pending(self, sw: int) -> None:
        """A decryption's result announced by 61 xx: the model now knows its length."""
        self.pending, self.pending_cla = Opaque(sw & 0xFF or 256), 0x00

    # --- handlers -----------------------------------------------------------------------------
    def _handlers(self) -> dict[int, Handler]:
        iso: dict[int, Handler] = {
            INS_SELECT: self._select,
            INS_READ_BINARY: self._read_binary,
            INS_VERIFY: self._verify,
            INS_CHANGE: self._change,
            INS_RESET_RETRY: self._reset_retry,
        }
        if self.spec.kind == "cps":
            iso |= {
                layout.INS_GET_DATA_SDO: self._get_data,
                INS_MSE: self._mse,
                INS_PSO: self._pso,
                INS_INTERNAL_AUTH: self._internal_authenticate,
                INS_GET_CHALLENGE: self._get_challenge,
            }
        return iso

    # SELECT --------------------------------------------------------------------------------------
    def _select(self, cmd: Command) -> tuple[Data, int]:
        mf = self.spec.tree
        if self.spec.kind == "cps":
            # The CPS3's own answers (docs/card-layout.md, Commands)
            if cmd.p1 == 0x04 and cmd.data == layout.AID_ROOT:
                if cmd.p2 not in (0x00, 0x04, 0x0C):
                    return b"", SW.INCORRECT_P1P2
                self.current = mf
                return (mf.fcp if cmd.p2 == 0x04 else b""), SW.OK
            if cmd.p2 == 0x00:
                return b"", SW.INCORRECT_P1P2
            if cmd.p1 == 0x02 and cmd.data == layout.FID_MF.to_bytes(2, "big"):
                self.current = mf
                return (mf.fcp if cmd.p2 == 0x04 else b""), SW.OK
        if cmd.p2 not in (0x00, 0x04, 0x0C):
            return b"", SW.INCORRECT_P1P2
        found: Node | None
        here = self.current.df
        if cmd.p1 == 0x00:
            if not cmd.data:
                found = mf
            elif len(cmd.data) != 2:
                return b"", SW.WRONG_LENGTH
            else:
                found = self._by_fid(int.from_bytes(cmd.data, "big"))
        elif cmd.p1 == 0x02:
            if len(cmd.data) != 2:
                return b"", SW.WRONG_LENGTH
            found = here.child(int.from_bytes(cmd.data, "big"))
            found = found if found is not None and not found.is_df else None
        elif cmd.p1 == 0x04:
            if not 1 <= len(cmd.data) <= 16:
                return b"", SW.WRONG_LENGTH
            found = next((n for n in mf.nodes() if n.is_df and n.aid and n.aid.startswith(cmd.data)), None)
        elif cmd.p1 in (0x08, 0x09):
            if not cmd.data or len(cmd.data) % 2:
                return b"", SW.WRONG_LENGTH
            found = self._by_path(cmd.data, mf if cmd.p1 == 0x08 else here)
        else:
            return b"", SW.INCORRECT_P1P2
        if found is None:
            return b"", SW.FILE_NOT_FOUND
        self.current = found
        if cmd.p2 == 0x0C:
            return b"", SW.OK
        if cmd.p2 == 0x04:
            return found.fcp, SW.OK
        return tlv.encode(0x6F, tlv.decode(found.fcp)[0].value), SW.OK  # FCI: the FCP's objects in 6F

    def _by_fid(self, fid: int) -> Node | None:
        """By file ID: the MF, the current DF's children, its parent and the parent's children."""
        if fid == layout.FID_MF:
            return self.spec.tree
        here = self.current.df
        found = here.child(fid)
        if found is None and here.parent is not None:
            found = here.parent if here.parent.fid == fid else here.parent.child(fid)
        return found

    def _by_path(self, raw: bytes, start: Node) -> Node | None:
        fids = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        node: Node | None = start
        if fids[0] == layout.FID_MF:
            node, fids = self.spec.tree, fids[1:]
        for fid in fids:
            if node is None or not node.is_df:
                return None
            node = node.child(fid)
        return node

    # READ BINARY ---------------------------------------------------------------------------------
    def _read_binary(self, cmd: Command) -> tuple[Data, int]:
        if cmd.data:
            return b"", SW.WRONG_LENGTH
        target: Node | None
        if cmd.p1 & 0x80:
            sfi = cmd.p1 & 0x1F
            if cmd.p1 & 0x60 or sfi in (0, 0x1F):
                return b"", SW.INCORRECT_P1P2
            target = next((c for c in self.current.df.children if not c.is_df and c.sfi == sfi), None)
            if target is None:
                return b"", SW.FILE_NOT_FOUND
            offset = cmd.p2
        else:
            if self.current.is_df:
                return b"", SW.COMMAND_NOT_ALLOWED
            target, offset = self.current, cmd.p1 << 8 | cmd.p2
        if target.needs_pin and not self.verified:
            return b"", SW.SECURITY_NOT_SATISFIED
        self.current = target
        content = target.content
        if offset > len(content) or (content and offset == len(content)):
            return b"", SW.WRONG_P1P2
        return content[offset : offset + (cmd.le or 256)], SW.OK

    # The codes -----------------------------------------------------------------------------------
    def _spend(self, which: str, candidate: bytes) -> bool:
        """A comparison: its try is spent (and persisted) first."""
        self.compared.append(which)
        c = self.codes
        if which == "pin":
            self.codes = replace(c, pin_left=c.pin_left - 1)
            return candidate == c.code.encode()
        self.codes = replace(c, unblock_left=c.unblock_left - 1)
        return candidate == self.spec.unblock_code.encode()

    def _porteur(self, candidate: bytes, new: str | None = None) -> int:
        if self.blocked:
            return SW.AUTH_BLOCKED
        if not self._spend("pin", candidate):
            self.verified = False
            return counter_sw(self.codes.pin_left)
        self.codes = replace(self.codes, code=new or self.codes.code, pin_left=self.spec.pin_max)
        self.verified = True
        return SW.OK

    def _deblocage(self, candidate: bytes) -> int:
        if not digits(candidate) or len(candidate) != 8:
            return SW.WRONG_DATA
        if self.unblock_exhausted:
            return SW.AUTH_BLOCKED
        if not self._spend("unblock", candidate):
            self.unblock_verified = False
            return counter_sw(self.codes.unblock_left)
        return SW.OK

    def _unblocked(self, new: bytes) -> int:
        self.codes = Codes(new.decode(), self.spec.pin_max, self.spec.unblock_max, self.codes.uses_left - 1)
        self.verified = self.unblock_verified = False
        return SW.OK

    def _verify(self, cmd: Command) -> tuple[Data, int]:
        if cmd.p1 != 0x00:
            return b"", SW.INCORRECT_P1P2
        if not self.spec.has_codes or cmd.p2 not in (layout.PIN_REF_PORTEUR, layout.PIN_REF_DEBLOCAGE):
            return b"", SW.DATA_NOT_FOUND
        if cmd.p2 == layout.PIN_REF_DEBLOCAGE:
            if not cmd.data:
                if self.unblock_exhausted:
                    return b"", SW.AUTH_BLOCKED
                return b"", SW.OK if self.unblock_verified else counter_sw(self.codes.unblock_left)
            if len(cmd.data) != 8:
                return b"", SW.WRONG_LENGTH
            sw = self._deblocage(cmd.data)
            if sw == SW.OK:
                self.codes = replace(self.codes, unblock_left=self.spec.unblock_max)
                self.unblock_verified = True
            return b"", sw
        if not cmd.data:
            if self.blocked:
                return b"", SW.AUTH_BLOCKED
            return b"", SW.OK if self.verified else counter_sw(self.codes.pin_left)
        if not 4 <= len(cmd.data) <= 8:
            return b"", SW.WRONG_LENGTH
        return b"", self._porteur(cmd.data)

    def _change(self, cmd: Command) -> tuple[Data, int]:
        if cmd.p1 != 0x00:
            return b"", SW.INCORRECT_P1P2
        if not self.spec.has_codes or cmd.p2 != layout.PIN_REF_PORTEUR:
            return b"", SW.DATA_NOT_FOUND
        if not cmd.data:
            return b"", SW.WRONG_LENGTH
        split = len(self.codes.code)  # old ‖ new, cut at the current code's length
        old, new = cmd.data[:split], cmd.data[split:]
        if not 4 <= len(new) <= 8:
            return b"", SW.WRONG_LENGTH
        if not digits(new):
            return b"", SW.WRONG_DATA
        return b"", self._porteur(old, new.decode())

    def _reset_retry(self, cmd: Command) -> tuple[Data, int]:
        if cmd.p1 not in (0x00, 0x02):
            return b"", SW.INCORRECT_P1P2
        if not self.spec.has_codes or cmd.p2 != layout.PIN_REF_PORTEUR:
            return b"", SW.DATA_NOT_FOUND
        if cmd.p1 == 0x02:  # the new code only, after VERIFY of the code de déblocage
            new = cmd.data
            if not 4 <= len(new) <= 8:
                return b"", SW.WRONG_LENGTH
            if not digits(new):
                return b"", SW.WRONG_DATA
            if self.unblock_exhausted:
                return b"", SW.AUTH_BLOCKED
            if not self.unblock_verified:
                return b"", SW.SECURITY_NOT_SATISFIED
            return b"", self._unblocked(new)
        if not 12 <= len(cmd.data) <= 16:  # code de déblocage (8) ‖ new code porteur (4..8)
            return b"", SW.WRONG_LENGTH
        candidate, new = cmd.data[:8], cmd.data[8:]
        if not digits(new):
            return b"", SW.WRONG_DATA
        sw = self._deblocage(candidate)
        return b"", self._unblocked(new) if sw == SW.OK else sw

    # GET DATA of a security data object ----------------------------------------------------------
    def _get_data(self, cmd: Command) -> tuple[Data, int]:
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            return b"", SW.INCORRECT_P1P2
        header = self._sdo_header(cmd.data)
        if header is None:
            return b"", SW.WRONG_DATA
        sdo_class, ref = header.tag >> 8 & 0xFF, header.tag & 0xFF
        docp = self._docp(sdo_class, ref)
        if docp is None:
            return b"", SW.DATA_NOT_FOUND
        if header.value[:1] != bytes((layout.TAG_SDO_DOCP,)):
            return b"", SW.INCORRECT_P1P2
        inner = tlv.encode(header.tag, tlv.encode(layout.TAG_SDO_DOCP, docp))
        return tlv.encode(layout.TAG_SDO_TEMPLATE, inner), SW.OK

    @staticmethod
    def _sdo_header(data: bytes) -> tlv.Tlv | None:
        """4D { 70 { BF <class> <ref> <tags> } }, each level one object, or None."""
        try:
            level = tlv.decode(data)
            for tag in (layout.TAG_SDO_EXTENDED_HEADER, layout.TAG_SDO_TEMPLATE):
                if len(level) != 1 or level[0].tag != tag:
                    return None
                level = level[0].children()
        except tlv.TlvError:
            return None
        if len(level) != 1 or not 0xFFFF < level[0].tag <= 0xFFFFFF or level[0].tag >> 16 != 0xBF:
            return None
        return level[0]

    def _docp(self, sdo_class: int, ref: int) -> bytes | None:
        def rules(acl: bytes) -> bytes:
            return tlv.encode(layout.TAG_ACLS, tlv.encode(layout.TAG_ACL_CONTACT, acl))

        def byte(tag: int, n: int) -> bytes:
            return tlv.encode(tag, bytes((n,)))

        c, s = self.codes, self.spec
        if sdo_class == layout.SDO_CLASS_CHV and ref == layout.PIN_REF_PORTEUR:
            return (
                byte(layout.TAG_TRIES_MAX, s.pin_max)
                + byte(layout.TAG_TRIES_LEFT, c.pin_left)
                + rules(ACL_PIN)
            )
        if sdo_class == layout.SDO_CLASS_CHV and ref == layout.PIN_REF_DEBLOCAGE:
            return (
                byte(layout.TAG_TRIES_MAX, s.unblock_max)
                + byte(layout.TAG_TRIES_LEFT, c.unblock_left)
                + byte(layout.TAG_USES_MAX, s.uses_max)
                + byte(layout.TAG_USES_LEFT, c.uses_left)
                + rules(ACL_UNBLOCK)
            )
        if sdo_class == layout.SDO_CLASS_RSA_PRIVATE and ref | 0x80 in KEY_OPERATIONS:
            acl = ACL_KEY_SIGNATURE if ref | 0x80 == layout.KEY_REF_SIGNATURE else ACL_KEY_AUTHENTICATION
            size = tlv.encode(layout.TAG_DOCP_SIZE, MODULUS_BYTES.to_bytes(2, "big"))
            return size + rules(acl)
        return None

    # MSE SET, PSO, INTERNAL AUTHENTICATE, GET CHALLENGE --------------------------------------------
    def _mse(self, cmd: Command) -> tuple[Data, int]:
        if cmd.p1 != 0x41 or cmd.p2 not in MSE_ALGORITHMS:
            return b"", SW.INCORRECT_P1P2
        try:
            items = {t.tag: t.value for t in tlv.decode(cmd.data)}
        except tlv.TlvError:
            return b"", SW.WRONG_DATA
        algo, key = items.get(0x80), items.get(0x84, items.get(0x83))
        if algo is not None and (len(algo) != 1 or algo[0] not in MSE_ALGORITHMS[cmd.p2]):
            return b"", SW.WRONG_DATA
        if cmd.p2 != CRT_HT and (key is None or len(key) != 1 or key[0] not in KEY_OPERATIONS):
            return b"", SW.DATA_NOT_FOUND
        self.env[cmd.p2] = (key[0] if key else None, algo[0] if algo else None)
        if cmd.p2 in (CRT_HT, CRT_DST):
            self.hashed = False
        return b"", SW.OK

    def _key(self, crt: int) -> int | None:
        """The status word that refuses a key operation, or None: it may go ahead. Without the
        code porteur, 69 82 — once MSE SET named a key."""
        key = self.env.get(crt, (None, None))[0]
        if key is None or key not in KEY_OPERATIONS:
            return SW.CONDITIONS_NOT_SATISFIED
        if not self.verified:
            return SW.SECURITY_NOT_SATISFIED
        if crt not in KEY_OPERATIONS[key]:
            return SW.COMMAND_NOT_ALLOWED
        return None

    def _pso(self, cmd: Command) -> tuple[Data, int]:
        if (cmd.p1, cmd.p2) == (0x90, 0xA0):
            return self._hash(cmd)
        if (cmd.p1, cmd.p2) != (0x9E, 0x9A):
            return b"", SW.INCORRECT_P1P2
        refused = self._key(CRT_DST)
        if refused is not None:
            return b"", refused
        # the data given, else the hash PSO HASH left (consumed either way)
        hashed, self.hashed = self.hashed, False
        if not cmd.data and not hashed:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        size = len(cmd.data) or 32
        if self.env[CRT_DST][1] in (None, ALGO_SHA256_RSA):
            if size != 32:
                return b"", SW.WRONG_LENGTH
            size += len(SHA256_DIGEST_INFO)
        return (Opaque(MODULUS_BYTES), SW.OK) if size <= SIGNABLE else (b"", SW.WRONG_LENGTH)

    def _hash(self, cmd: Command) -> tuple[Data, int]:
        if CRT_HT not in self.env and self.env.get(CRT_DST, (None, None))[1] != ALGO_SHA256_RSA:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        try:
            items = tlv.decode(cmd.data)
        except tlv.TlvError:
            return b"", SW.WRONG_DATA
        partial, last = tlv.find(items, 0x90), tlv.find(items, 0x80)
        if partial is None or last is None or len(last.value) > SHA256_BLOCK:
            return b"", SW.WRONG_DATA
        if partial.value:
            if len(partial.value) != 32 + 8:
                return b"", SW.WRONG_DATA
            if int.from_bytes(partial.value[32:], "big") % (SHA256_BLOCK * 8):
                return b"", SW.WRONG_DATA
        self.hashed = True
        return b"", SW.OK

    def _decipher(self, cmd: Command) -> Expect:
        """PSO DECIPHER: the whole cryptogram (chained parts included) is 81 ‖ 256 bytes."""
        refused = self._key(CRT_CT)
        if refused is not None:
            return Expect(refused)
        data = (self.chain[1] if self.chain else b"") + cmd.data
        if data[:1] != b"\x81":
            return Expect(SW.WRONG_DATA)
        if len(data) != 1 + MODULUS_BYTES:
            return Expect(SW.WRONG_LENGTH)
        return Expect(SW.OK, plaintext=True, asks=cmd.le if cmd.asks else None)

    def _internal_authenticate(self, cmd: Command) -> tuple[Data, int]:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            return b"", SW.INCORRECT_P1P2
        refused = self._key(CRT_AT)
        if refused is not None:
            return b"", refused
        if not cmd.data or len(cmd.data) > SIGNABLE:
            return b"", SW.WRONG_LENGTH
        return Opaque(MODULUS_BYTES), SW.OK

    @staticmethod
    def _get_challenge(cmd: Command) -> tuple[Data, int]:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            return b"", SW.INCORRECT_P1P2
        if cmd.data or cmd.le is None:
            return b"", SW.WRONG_LENGTH
        return Opaque(cmd.le), SW.OK

    def _chain_part(self, cmd: Command) -> Expect:
        """CLA 10: a part of a chained PSO, kept until its last part (CLA 00) comes."""
        self.pending = b""
        if cmd.ins != INS_PSO:
            self.chain = None
            return Expect(SW.CHAINING_NOT_SUPPORTED)
        before = self.chain[1] if self.chain is not None and self.chain[0] == cmd.header else b""
        self.chain = (cmd.header, before + cmd.data)
        return Expect(SW.OK)

    # The CPS2ter volet ---------------------------------------------------------------------------
    def _volet_handlers(self) -> dict[int, Handler]:
        return {INS_SELECT: self._volet_select, INS_READ_BINARY: self._volet_read}

    def _volet_select(self, cmd: Command) -> tuple[Data, int]:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            return b"", SW.WRONG_P1P2
        if len(cmd.data) != 2:
            return b"", SW.WRONG_LENGTH
        assert self.spec.volet is not None and self.volet_current is not None
        fid, here = int.from_bytes(cmd.data, "big"), self.volet_current.df
        found = (
            (self.spec.volet if fid == layout.FID_MF else None)
            or (here if here.fid == fid else None)
            or here.child(fid)
            or (here.parent if here.parent is not None and here.parent.fid == fid else None)
            or (here.parent.child(fid) if here.parent is not None else None)
        )
        if found is None:
            return b"", SW.CPS2TER_FILE_NOT_FOUND
        self.volet_current = found
        kind = 0x04 if not found.is_df else 0x01 if found.fid == layout.FID_MF else 0x02
        body = len(found.content).to_bytes(2, "big") + (found.fid or 0).to_bytes(2, "big") + bytes((kind,))
        return bytes((layout.TAG_CPS2TER_FCI, len(body))) + body, SW.OK

    def _volet_read(self, cmd: Command) -> tuple[Data, int]:
        if cmd.p1 & 0x80:
            return b"", SW.WRONG_P1P2
        target = self.volet_current
        if target is None or target.is_df:
            return b"", SW.CPS2TER_FILE_NOT_FOUND
        if target.needs_pin and not self.verified:
            return b"", SW.CPS2TER_ACCESS_NOT_FULFILLED
        offset = cmd.p1 << 8 | cmd.p2
        if offset >= len(target.content):
            return b"", SW.CPS2TER_OUT_OF_FILE
        return target.content[offset : offset + (cmd.le or 256)], SW.OK
