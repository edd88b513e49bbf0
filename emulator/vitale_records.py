"""The Carte Vitale 2's public per-person records, byte for byte: the identity record of the MF's
short file 2 and the NIR record of the VITALE application's short file 2.

The profile checks with them that a card's identity file fits one READ BINARY; the card builder
writes them. One encoding for both.
"""

from __future__ import annotations

from cartesim.core import layout, tlv


def identity_record(nom: str, prenom: str, date_naissance: str) -> bytes:
    """65 {80 nom, 81 prénom, 82 date de naissance}: one person of the identity file."""
    return tlv.encode(
        layout.TAG_VITALE_PERSON,
        tlv.encode(layout.TAG_VITALE_NOM, nom.encode())
        + tlv.encode(layout.TAG_VITALE_PRENOM, prenom.encode())
        + tlv.encode(layout.TAG_VITALE_NAISSANCE, date_naissance.encode()),
    )


def nir_record(nir: str) -> bytes:
    """65 {93 NIR}: the NIR of the person at the same position in the identity file."""
    return tlv.encode(layout.TAG_VITALE_PERSON, tlv.encode(layout.TAG_VITALE_NIR, nir.encode()))
