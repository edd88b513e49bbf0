"""The card's file system model: MF, DFs (optionally named by an AID) and transparent EFs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cartesim.core import tlv
from cartesim.core.layout import FID_MF, TAG_ACL_CONTACT, TAG_ACL_CONTACTLESS, TAG_ACLS

# A file's content, or how to make it when first read (certificates: their keys are derived
# only when a reader asks, so that building a card stays fast).
Content = bytes | Callable[[], bytes]


def _security_attributes(acl: bytes | None, contactless: bytes | None) -> bytes:
    """IAS-ECC security attributes: A1 { 8C contact rules, 9C contactless rules }."""
    if acl is None:
        return b""
    rules = tlv.encode(TAG_ACL_CONTACT, acl) + tlv.encode(TAG_ACL_CONTACTLESS, contactless or acl)
    return tlv.encode(TAG_ACLS, rules)


@dataclass(eq=False)
class EF:
    """A transparent elementary file."""

    fid: int
    data: Content
    sfi: int | None = None
    read_pin: int | None = None  # PIN reference whose verification READ BINARY needs
    acl: bytes | None = None  # IAS-ECC access rules (AM byte + SCBs), shown in the FCP when set
    acl_contactless: bytes | None = None  # when they differ from the contact ones
    parent: DF | None = field(default=None, repr=False)

    def content(self) -> bytes:
        if callable(self.data):
            self.data = self.data()
        return self.data

    def fcp(self) -> bytes:
        return tlv.encode(
            0x62,
            tlv.encode(0x80, len(self.content()).to_bytes(2, "big"))
            + tlv.encode(0x82, b"\x01")  # working EF, transparent
            + tlv.encode(0x83, self.fid.to_bytes(2, "big"))
            + (tlv.encode(0x88, bytes((self.sfi << 3,))) if self.sfi else b"")
            + _security_attributes(self.acl, self.acl_contactless)
            + tlv.encode(0x8A, b"\x05"),  # life cycle: operational, activated
        )


@dataclass(eq=False)
class DF:
    """A dedicated file (the MF is the DF with FID 3F00); an ADF has an AID and maybe no FID."""

    fid: int | None
    aid: bytes | None = None
    children: list[EF | DF] = field(default_factory=list)
    acl: bytes | None = None
    parent: DF | None = field(default=None, repr=False)

    def add(self, child: EF | DF) -> EF | DF:
        child.parent = self
        self.children.append(child)
        return child

    def child(self, fid: int) -> EF | DF | None:
        for c in self.children:  # a plain loop: every SELECT comes here (README, Performance)
            if c.fid == fid:
                return c
        return None

    def ef_by_sfi(self, sfi: int) -> EF | None:
        return next((c for c in self.children if isinstance(c, EF) and c.sfi == sfi), None)

    def walk(self) -> list[EF | DF]:
        out: list[EF | DF] = [self]
        for c in self.children:
            out.extend(c.walk() if isinstance(c, DF) else [c])
        return out

    def find_aid(self, aid: bytes) -> DF | None:
        """The DF whose AID is ``aid`` (or starts with it: ISO partial DF name selection)."""
        for node in self.walk():
            if isinstance(node, DF) and node.aid and aid and node.aid.startswith(aid):
                return node
        return None

    def fcp(self) -> bytes:
        body = tlv.encode(0x82, b"\x38")  # DF
        if self.fid is not None:
            body += tlv.encode(0x83, self.fid.to_bytes(2, "big"))
        if self.aid:
            body += tlv.encode(0x84, self.aid)
        return tlv.encode(0x62, body + _security_attributes(self.acl, None) + tlv.encode(0x8A, b"\x05"))


def make_mf() -> DF:
    return DF(FID_MF)


def fci(node: EF | DF) -> bytes:
    """FCI (6F) as answered for SELECT with P2=00: the FCP's objects in a 6F template."""
    return tlv.encode(0x6F, tlv.decode(node.fcp())[0].value)
