"""What software that knows nothing of cartesim reads from the emulated Carte Vitale 2, through
pcscd + vpcd, for every shipped Vitale profile:

- cardpeek, headless, with its own /usr/share/cardpeek/vitale_2.lua: it reads EF 2001 (the card's
  map), selects every application and file the map names, and saves its view as XML;
- a Rufus-style reader written below from the public facts alone (docs/card-layout.md), on
  pyscard's PC/SC calls: SELECT 3F00, READ BINARY SFI 2, one 65 template per person; SELECT AID
  VITALE, READ BINARY SFI 2, the NIRs by position.

Neither imports anything of cartesim: cartesim only puts the card in the reader. What they must
find comes from the profile's YAML, read here as plain YAML.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cartesim.emulator.cards import load_card
from cartesim.harness.pytest_plugin.shared import unavailable
from cartesim.harness.stack.pcscd import Pcscd
from tests.helpers import CARDS, VITALE_READER

pytestmark = pytest.mark.e2e

VITALE = sorted(p.stem for p in CARDS.glob("vitale-*.yaml"))
VITALE_SLOT = 1  # "Virtual PCD 00 01"
CARDPEEK_SCRIPT = Path("/usr/share/cardpeek/vitale_2.lua")
CARDPEEK_TIMEOUT = 60  # a script error leaves cardpeek at its prompt: the timeout ends it


# --- what the profile says is on the card (plain YAML, no cartesim) ----------------------------
def _expected(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((CARDS / f"{name}.yaml").read_text(encoding="utf-8"))
    a = doc["assure"]
    debut = a.get("debut_validite")
    if debut is None:  # the documented default: the earliest AMO period, not after fin_validite
        debut = min(p["debut"] for b in doc["beneficiaires"] for p in b["droits_amo"])
        if a.get("fin_validite") is not None:
            debut = min(debut, a["fin_validite"])
    assert isinstance(debut, dt.date)
    return {
        "persons": [(b["nom"], b["prenom"], str(b["date_naissance"])) for b in doc["beneficiaires"]],
        "nir": a["nir"] + a["cle_nir"],
        "debut_validite": debut.strftime("%Y%m%d"),
    }


@pytest.fixture(params=VITALE)
def vitale(request: pytest.FixtureRequest, pcscd: Pcscd) -> Iterator[str]:
    """The shipped Vitale profile ``request.param`` in reader "Virtual PCD 00 01"."""
    from cartesim.harness.stack.slots import VpcdSlot

    served = VpcdSlot(VITALE_SLOT, load_card(request.param)).start()
    try:
        yield request.param
    finally:
        served.close()


# --- cardpeek ---------------------------------------------------------------------------------
def _cardpeek(home: Path, lua: str, stdin: str, log: Path) -> int:
    with log.open("w", encoding="utf-8") as out:
        return subprocess.run(
            ["cardpeek", "-c", "-r", f"pcsc://{VITALE_READER}", "-e", lua],
            input=stdin,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "HOME": str(home), "LC_ALL": "C"},
            timeout=CARDPEEK_TIMEOUT,
            check=False,
        ).returncode


@pytest.fixture(scope="module")
def cardpeek_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private HOME with a ~/.cardpeek. On its first run cardpeek asks whether to create the
    folder (1: yes), then says to restart it (1: ok): it loads its libraries (lib/apdu.lua...) only
    at the next start, so this run does nothing else."""
    if shutil.which("cardpeek") is None or not CARDPEEK_SCRIPT.is_file():
        unavailable("cardpeek is not installed (ci/setup.sh installs the Debian package)")
    home = tmp_path_factory.mktemp("cardpeek") / "home"
    home.mkdir()
    log = home.parent / "setup.log"
    rc = _cardpeek(home, "os.exit(0)", "1\n1\n", log)
    assert rc == 0 and (home / ".cardpeek" / "config.lua").is_file(), log.read_text(errors="replace")[-2000:]
    return home


def _nodes(path: Path) -> ET.Element:
    # cardpeek writes its XML declaration with type= instead of encoding=: not XML; dropped.
    text = re.sub(r"^<\?xml[^>]*\?>", "", path.read_text(encoding="utf-8"))
    return ET.fromstring(text)  # noqa: S314 - written by the cardpeek this test ran


def _attrs(node: ET.Element) -> dict[str, str]:
    return {a.get("name", ""): a.text or "" for a in node.findall("attr")}


def _value(node: ET.Element) -> str:
    """A node's raw value: cardpeek writes bytes as "8:" and their hex."""
    val = _attrs(node)["val"]
    assert val.startswith("8:"), val
    return bytes.fromhex(val[2:]).decode("utf-8")


def _children(node: ET.Element) -> dict[str, ET.Element]:
    return {_attrs(c).get("id", ""): c for c in node.findall("node")}


def test_cardpeek_shows_every_person(cardpeek_home: Path, vitale: str, tmp_path: Path) -> None:
    out, log = tmp_path / "out.xml", tmp_path / "cardpeek.log"
    assert "'" not in str(out)
    rc = _cardpeek(cardpeek_home, f"dofile('{CARDPEEK_SCRIPT}'); ui.save_view('{out}'); os.exit(0)", "", log)
    assert rc == 0 and out.is_file(), log.read_text(errors="replace")[-3000:]
    want = _expected(vitale)
    root = _nodes(out)
    every = list(root.iter("node"))
    apps = [n for n in every if _attrs(n).get("classname") == "application"]
    files = {
        _attrs(f)["label"].strip(): f
        for app in apps
        for f in app.findall("node")
        if _attrs(f)["classname"] == "file"
    }
    # The map named cartesim's files; cardpeek adds DIR, PAN and POINTERS itself.
    assert len(apps) == 2
    assert set(files) == {"IDENTITE", "NIR", "CARTE", "DROITS", "DIR", "PAN", "POINTERS"}

    def records(file: str) -> list[dict[str, ET.Element]]:
        (content,) = [n for n in files[file].findall("node") if _attrs(n)["label"] == "content"]
        return [_children(n) for n in content.findall("node") if _attrs(n).get("id") == "65"]

    identity = records("IDENTITE")
    assert [(_value(r["80"]), _value(r["81"]), _value(r["82"])) for r in identity] == want["persons"]
    assert all(_attrs(r["80"])["label"] == "Nom" for r in identity)
    assert all(_attrs(r["82"])["label"] == "Date de naissance" for r in identity)
    assert [_value(r["93"]) for r in records("NIR")] == [want["nir"]] * len(want["persons"])
    card = [n for n in every if _attrs(n).get("id") == "66"]
    assert len(card) == 1 and _attrs(card[0])["label"] == "Carte vitale"
    debut = _children(card[0])["80"]
    assert _attrs(debut)["label"] == "Date de début de validité"
    assert _value(debut) == want["debut_validite"]


# --- a Rufus-style reader: its own APDUs and TLV, from the public facts --------------------------
SELECT_MF = bytes.fromhex("00A40000023F00")
READ_SFI_2 = bytes.fromhex("00B0820000")  # one READ BINARY, Le 00: the whole file
SELECT_VITALE = bytes.fromhex("00A404000BD250000002564954414C45")


class RufusStyleReader:
    """PC/SC straight from pyscard's scard module; T=0: 6C xx resends with Le xx, 61 xx fetches
    with GET RESPONSE."""

    def __init__(self, reader: str) -> None:
        from smartcard import scard

        self.scard = scard
        rv, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert rv == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rv)
        rv, self.card, self.protocol = scard.SCardConnect(
            self.context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        assert rv == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rv)

    def close(self) -> None:
        self.scard.SCardDisconnect(self.card, self.scard.SCARD_RESET_CARD)
        self.scard.SCardReleaseContext(self.context)

    def send(self, apdu: bytes) -> tuple[bytes, int]:
        rv, answer = self.scard.SCardTransmit(self.card, self.protocol, list(apdu))
        assert rv == self.scard.SCARD_S_SUCCESS, self.scard.SCardGetErrorMessage(rv)
        data, sw1, sw2 = bytes(answer[:-2]), answer[-2], answer[-1]
        if sw1 == 0x6C:
            return self.send(apdu[:4] + bytes((sw2,)))
        if sw1 == 0x61:
            return self.send(bytes((0x00, 0xC0, 0x00, 0x00, sw2)))
        return data, (sw1 << 8) | sw2

    @staticmethod
    def templates(data: bytes, tag: int) -> list[dict[int, bytes]]:
        """Each ``tag`` template of ``data`` as {inner tag: value}; one-byte tags and lengths, as
        these files use; a zero byte where a tag should be ends the list (padding)."""

        def walk(buf: bytes) -> Iterator[tuple[int, bytes]]:
            i = 0
            while i + 2 <= len(buf) and buf[i] != 0x00:
                t, n = buf[i], buf[i + 1]
                yield t, buf[i + 2 : i + 2 + n]
                i += 2 + n

        return [dict(walk(value)) for t, value in walk(data) if t == tag]

    def persons(self) -> list[dict[str, str]]:
        data, sw = self.send(SELECT_MF)
        assert sw == 0x9000, f"SELECT 3F00: {sw:04X}"
        data, sw = self.send(READ_SFI_2)
        assert sw == 0x9000, f"identity: {sw:04X}"
        found = [
            {"nom": t[0x80].decode(), "prenom": t[0x81].decode(), "naissance": t[0x82].decode()}
            for t in self.templates(data, 0x65)
        ]
        _, sw = self.send(SELECT_VITALE)
        assert sw == 0x9000, f"SELECT VITALE: {sw:04X}"
        data, sw = self.send(READ_SFI_2)
        assert sw == 0x9000, f"NIR: {sw:04X}"
        for person, t in zip(found, self.templates(data, 0x65), strict=False):
            person["nir"] = t[0x93].decode()
        return found


def test_rufus_style_reader_reads_every_person(vitale: str) -> None:
    try:
        from smartcard import scard  # noqa: F401
    except ImportError:
        unavailable("pyscard is not installed")
    want = _expected(vitale)
    reader = RufusStyleReader(VITALE_READER)
    try:
        persons = reader.persons()
    finally:
        reader.close()
    assert [(p["nom"], p["prenom"], p["naissance"]) for p in persons] == want["persons"]
    assert [p.get("nir") for p in persons] == [want["nir"]] * len(want["persons"])
