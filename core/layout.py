"""Where things live on the emulated cards: ATRs, AIDs, file ids, PIN references and tags.

Public facts and cartesim's own choices are marked; docs/card-layout.md
explains them. The emulator builds its file systems from these names and the engine reads them,
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


# --- Vitale 2 (public) -----------------------------------------------------------------------
AID_VITALE = b"\xd2\x50\x00\x00\x02" + b"VITALE"
AID_MF_VITALE = b"\xd2\x50\x00\x00\x02" + b"MF_VITALE"
SFI_VITALE_IDENTITY = 0x02  # in the MF: tag 65 {80 nom, 81 prénom, 82 date YYYYMMDD}
SFI_VITALE_NIR = 0x02  # in the VITALE application: tag 65 {93 NIR, 15 characters}
FID_DIR = 0x2F00  # in MF_VITALE
TAG_VITALE_RECORD = 0x65
TAG_VITALE_NOM = 0x80
TAG_VITALE_PRENOM = 0x81
TAG_VITALE_NAISSANCE = 0x82
TAG_VITALE_NIR = 0x93

# --- Vitale 2 (cartesim's own) ---------------------------------------------------------------
FID_VITALE_IDENTITY = 0x2002  # MF file behind short file id 2
FID_VITALE_NIR = 0x0002  # VITALE application file behind short file id 2
FID_VITALE_INSURED = 0x0003  # short file id 3: insured person's details
SFI_VITALE_INSURED = 0x03
FID_VITALE_BENEFICIARIES = 0x0004  # short file id 4: beneficiaries with their AMO periods
SFI_VITALE_BENEFICIARIES = 0x04


class InsuredTag(IntEnum):
    """Inside template 66 of the insured file."""

    TYPE_CARTE = 0x80
    SERIE = 0x81
    FIN_VALIDITE = 0x82  # YYYYMMDD
    CLE_NIR = 0x83
    REGIME = 0x84
    CAISSE = 0x85
    CENTRE = 0x86
    CODE_GESTION = 0x87


TAG_INSURED = 0x66
TAG_BENEFICIARY = 0x67
TAG_AMO_PERIOD = 0x68  # inside a beneficiary: 80 début, 81 fin (YYYYMMDD), 82 code couverture


class BeneficiaryTag(IntEnum):
    """Inside template 67 of the beneficiaries file (one template per beneficiary)."""

    NOM = 0x80
    PRENOM = 0x81
    NAISSANCE = 0x82  # YYYYMMDD (lunar dates such as 19800000 allowed, as on real cards)
    RANG = 0x83
    QUALITE = 0x84
    NIR = 0x85  # certified NIR of the beneficiary, 13 digits + 2-digit key, may be empty


class AmoTag(IntEnum):
    DEBUT = 0x80
    FIN = 0x81
    CODE = 0x82
