"""Where things live on the emulated cards: ATRs, AIDs, file ids, PIN references and tags.

Public facts and cartesim's own choices are marked; docs/card-layout.md explains them, with the
public sources. The emulator builds its file systems from these names and the engine reads them,
so the two can never disagree.
"""

from __future__ import annotations

from enum import IntEnum

# --- ATRs (public: pcsc-tools smartcard_list.txt) -----------------------------------------
ATR_CPS3 = bytes.fromhex("3BAC00402A001225006480000310009000")
ATR_VITALE2 = bytes.fromhex("3B751300004509EA9000")
# Other Vitale 2 variants seen in the field differ in the 6th byte (43, 44, 47).
VITALE2_ATR_VARIANTS = (0x43, 0x44, 0x45, 0x47)

# --- Common file ids -------------------------------------------------------------------------
FID_MF = 0x3F00

# --- CPS (public) ----------------------------------------------------------------------------
AID_CPS3_IAS = bytes.fromhex("E828BD080F80250000 01FF0010")
AID_CPS2TER = bytes.fromhex("8025000001FF0002")
FID_SN_ICC = 0xD003  # 3F00/D003, 12 bytes
SN_ICC_ISSUER = bytes.fromhex("8025000001")  # at offset 2
FID_ACTUA = 0xD010  # 3F00/D010, template EC: 81 start, 82 end (BCD YYYYMMDDhhmmss)
TAG_ACTUA = 0xEC
TAG_ACTUA_START = 0x81
TAG_ACTUA_END = 0x82
FID_CPS_DF = 0x0001  # 3F00/0001: the CPS2ter-compatible DF holding the situations
FID_SITUATION_FIRST = 0xD120  # 3F00/0001/D120 .. D12F: situations 1..16
MAX_SITUATIONS = 16

# --- CPS (cartesim's own) --------------------------------------------------------------------
FID_HOLDER = 0xD001  # 3F00/0001/D001, readable without PIN; also short file id 1
SFI_HOLDER = 0x01
PIN_REF_PORTEUR = 0x01  # public: the CPS PIN is reference 01
PIN_REF_DEBLOCAGE = 0x02  # cartesim: tries-left query of the unblock code (no data only)
GET_DATA_PIN_INFO_P1 = 0x01  # GET DATA 00 CA 01 <ref>: template A0 {80 left, 81 max, 82 uses}
TAG_PIN_INFO = 0xA0
TAG_PIN_TRIES_LEFT = 0x80
TAG_PIN_TRIES_MAX = 0x81
TAG_PIN_USES_LEFT = 0x82
TAG_PIN_USES_MAX = 0x83

TAG_HOLDER = 0xE1
TAG_SITUATION = 0xE2


class HolderTag(IntEnum):
    """Inside template E1 of 3F00/0001/D001; every value is an ASCII/UTF-8 string."""

    TYPE_CARTE = 0x80
    TYPE_IDENT = 0x81
    NIR = 0x82
    CLE_NIR = 0x83
    CIVILITE = 0x84
    NOM = 0x85
    PRENOM = 0x86


class SituationTag(IntEnum):
    """Inside template E2 of 3F00/0001/D12x, in the order of the "Lire CPS" report."""

    NUMERO = 0x80
    MODE_EXERCICE = 0x81
    STATUT_EXERCICE = 0x82
    SECTEUR_ACTIVITE = 0x83
    TYPE_STRUCTURE = 0x84
    NUMERO_STRUCTURE = 0x85
    CLE_STRUCTURE = 0x86
    RAISON_STRUCTURE = 0x87
    NUMERO_FACTURATION = 0x88
    CLE_FACTURATION = 0x89
    NUMERO_REMPLACANT = 0x8A
    CLE_REMPLACANT = 0x8B
    CODE_CONVENTION = 0x8C
    CODE_SPECIALITE = 0x8D
    ZONE_TARIFAIRE = 0x8E
    ZONE_IK = 0x8F
    AGREMENT1 = 0x90
    AGREMENT2 = 0x91
    AGREMENT3 = 0x92
    SIGNATURE_FACTURE = 0x93
    SIGNATURE_LOT = 0x94


# --- Vitale 2 (public: cardpeek's vitale_2.lua, Rufus's lecteurvitale.cpp) ------------------
AID_VITALE = b"\xd2\x50\x00\x00\x02" + b"VITALE"
AID_VITALE_MF = b"\xd2\x50\x00\x00\x02" + b"MF_VITALE"
# READ BINARY with a short file identifier, after SELECT 3F00 (identity) or SELECT AID VITALE (NIR).
SFI_VITALE_IDENTITY = 0x02  # one 65 {80 nom, 81 prénom, 82 date de naissance} per person
SFI_VITALE_NIR = 0x02  # one 65 {93 NIR} per person, in the order of the identity file
FID_POINTERS = 0x2001  # in VITALE: the map of the card's applications and files
FID_DIR = 0x2F00  # in VITALE_MF
FID_PAN = 0x2F02  # in VITALE_MF
TAG_VITALE_PERSON = 0x65  # "Bénéficiaire"
TAG_VITALE_NOM = 0x80
TAG_VITALE_PRENOM = 0x81
TAG_VITALE_NAISSANCE = 0x82  # ASCII YYYYMMDD
TAG_VITALE_NIR = 0x93  # 13 characters + 2-digit key
TAG_VITALE_CARD = 0x66  # "Carte vitale"
TAG_VITALE_DEBUT_VALIDITE = 0x80  # inside 66: ASCII YYYYMMDD
# EF 2001: E0 { A0 { 82 application... }, 80 file... }
TAG_MAP = 0xE0
TAG_MAP_APPLICATIONS = 0xA0
TAG_MAP_APPLICATION = 0x82  # bytes 0-1 entry number, 2-3 (not public: cartesim writes 00 00), 4.. AID
TAG_MAP_FILE = 0x80  # bytes 0-7 name (printable), 8-9 entry number of its application, 10-11 FID
MAP_FILE_NAME_LEN = 8
# One short READ BINARY answers at most 256 bytes (ISO 7816-4), and a Rufus-style reader reads the
# identity and NIR files with one READ BINARY each (00 B0 82 00 00): each must fit in 256 bytes.
VITALE_ONE_READ = 256
# Each person takes exactly 19 bytes in the NIR file (65 11 93 0F + 15 characters): 13 fit.
VITALE_MAX_PERSONS = VITALE_ONE_READ // (2 + 2 + 15)

# --- Vitale 2 (cartesim's own) ---------------------------------------------------------------
FID_VITALE_IDENTITY = 0x2002  # MF (= VITALE_MF) file behind short file id 2
FID_VITALE_NIR = 0x0002  # VITALE application file behind short file id 2
FID_VITALE_CARD = 0x0003  # short file id 3: 66 {80 début de validité (public tag), own tags}
SFI_VITALE_CARD = 0x03
FID_VITALE_RIGHTS = 0x0004  # short file id 4: one 67 per person, in the order of the identity file
SFI_VITALE_RIGHTS = 0x04
MAP_ENTRY_VITALE_MF = 0x0001
MAP_ENTRY_VITALE = 0x0002
# Names of the files in the map (cardpeek shows them); DIR, PAN and POINTERS are not in the map:
# readers know them by their ids (cardpeek adds them to what the map lists).
MAP_NAME_IDENTITY = "IDENTITE"
MAP_NAME_NIR = "NIR"
MAP_NAME_CARD = "CARTE"
MAP_NAME_RIGHTS = "DROITS"
TAG_DIR_APPLICATION = 0x61  # EF.DIR (ISO 7816-4): 61 {4F AID, 50 label}
TAG_DIR_AID = 0x4F
TAG_DIR_LABEL = 0x50
TAG_PAN = 0x5A  # EF 2F02: 5A {the card's serial number, BCD} (ISO 7816-6 "Application PAN")


class CardTag(IntEnum):
    """Inside template 66 of the card file: 80 is public, the others cartesim's own."""

    DEBUT_VALIDITE = 0x80  # YYYYMMDD
    FIN_VALIDITE = 0x81  # YYYYMMDD, empty if none
    TYPE_CARTE = 0x82
    REGIME = 0x83
    CAISSE = 0x84
    CENTRE = 0x85
    CODE_GESTION = 0x86


TAG_RIGHTS = 0x67  # one per person, in the order of the identity file
TAG_AMO_PERIOD = 0x68  # inside 67: 80 début, 81 fin (YYYYMMDD), 82 code couverture


class RightsTag(IntEnum):
    """Inside template 67 of the rights file: what no public source places."""

    RANG = 0x80
    QUALITE = 0x81
    NIR = 0x82  # certified NIR of the person, 13 digits + 2-digit key, may be empty


class AmoTag(IntEnum):
    DEBUT = 0x80
    FIN = 0x81
    CODE = 0x82
