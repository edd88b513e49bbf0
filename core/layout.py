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

# --- CPS3 (public: OpenSC card-iasecc.c, ef-atr.c and issues #2223 #2275 #2224 #2267; ANS's
# Cryptolib CPS sources card-cps.c, card-cps3.c, pkcs15.c; docs/card-layout.md gives each source) ---
AID_CPS3_IAS = bytes.fromhex("E828BD080F8025000001FF0010")  # the PKCS#15 application, DF 3F00/0001
AID_ROOT = bytes.fromhex("8025000001FF0100")  # EF.ATR tag 4F: the root application (the MF)
FID_EF_DIR = 0x2F00  # 3F00/2F00, SFI 0x1E
SFI_EF_DIR = 0x1E
FID_EF_ATR = 0x2F01  # 3F00/2F01, SFI 0x1D
SFI_EF_ATR = 0x1D
# EF.ATR as dumped from a real CPx (OpenSC commit fd83e885f): leading 80, then the BER-TLV of
# ISO 7816-4 (43 card service, 46 pre-issuing, 47 capabilities, 4F root AID, E0 IAS-ECC I/O
# buffer sizes, 78 allocation scheme, 82 status word).
EF_ATR_CONTENT = bytes.fromhex(
    "80 4301B8 460404B0ECC1 4703940180 4F088025000001FF0100 E01002020104020201040202010002020100"
    " 780806062B8122F87802 82029000"
)
FID_SN_ICC = 0xD003  # 3F00/D003, SFI 0x1C: 5A 0A <PAN, BCD>
SFI_SN_ICC = 0x1C
TAG_PAN = 0x5A
SN_ICC_ISSUER = bytes.fromhex("8025000001")  # the PAN's first 10 digits, at offset 2
SERIAL_DIGITS = 8  # the PAN: issuer (10 digits), serial (8), Luhn digit, F padding
FID_ACTUA = 0xD010  # 3F00/D010, template EC: 81 start, 82 end (BCD YYYYMMDDhhmmss); absent if never updated
TAG_ACTUA = 0xEC
TAG_ACTUA_START = 0x81
TAG_ACTUA_END = 0x82
FID_CPS_DF = 0x0001  # 3F00/0001: the PKCS#15 application (AID_CPS3_IAS), situations and keys
FID_ODF = 0x5031
FID_TOKEN_INFO = 0x5032
FID_AODF = 0x7001
FID_SITUATION_FIRST = 0xD120  # 3F00/0001/D120 .. D12F: situations 1..16, numbering may have gaps
MAX_SITUATIONS = 16
PIN_REF_PORTEUR = 0x01  # the code porteur: global CHV 1 (SDO BF 81 01)
KEY_REF_SIGNATURE = 0x81  # CPS_PRIV_SIG: non-repudiation
KEY_REF_AUTHENTICATION = 0x82  # CPS_PRIV_AUT: authentication and deciphering
KEY_SIZE_BYTES = 256  # RSA-2048
LABEL_PIN = "Code porteur de la carte CPX"
LABEL_KEY_SIGNATURE = "CPS_PRIV_SIG"
LABEL_KEY_AUTHENTICATION = "CPS_PRIV_AUT"
AUTH_ID_PIN = 0x01
KEY_ID_SIGNATURE = AID_CPS3_IAS + b"\x01"  # the IDs a real CPx shows (OpenSC commit 137286858)
KEY_ID_AUTHENTICATION = AID_CPS3_IAS + b"\x02"

# IAS-ECC security data objects, read with GET DATA 00 CB 3F FF { 4D { 70 { BF <class> <ref> ... } } }
INS_GET_DATA_SDO = 0xCB
TAG_SDO_EXTENDED_HEADER = 0x4D
TAG_SDO_TEMPLATE = 0x70
TAG_SDO_HEADER = 0xBF
SDO_CLASS_CHV = 0x81  # CHV (PIN) class with the "local" bit, as sent by Cryptolib and OpenSC
SDO_CLASS_RSA_PRIVATE = 0x90
SDO_CLASS_SE = 0xFB
TAG_SDO_DOCP = 0xA0  # data object control parameters: 80, 9A, 9B, 9D, A1 ...
TAG_DOCP_SIZE = 0x80  # of a key: its size in bytes
TAG_TRIES_MAX = 0x9A
TAG_TRIES_LEFT = 0x9B
TAG_USES_MAX = 0x9C
TAG_USES_LEFT = 0x9D
TAG_ACLS = 0xA1
TAG_ACL_CONTACT = 0x8C
TAG_ACL_CONTACTLESS = 0x9C

# The CPS2ter "volet", reached with CLA A0 (Cryptolib card-cps.c, pkcs15.c, iso7816.c)
CLA_CPS2TER = 0xA0
TAG_CPS2TER_FCI = 0x85
FID_CPS2TER_SITUATION_FIRST = 0x4010  # 3F00/4010 .. 401F
FID_CPS2TER_BILLING_DF = 0x7F01  # 3F00/7F01/4000: the billing situation
FID_CPS2TER_BILLING = 0x4000

# --- CPS (cartesim's own) --------------------------------------------------------------------
FID_HOLDER = 0xD107  # 3F00/0001/D107: a real file of unpublished content; cartesim's holder file
PIN_REF_DEBLOCAGE = 0x02  # the code de déblocage: global CHV 2 (SDO BF 81 02)
AUTH_ID_DEBLOCAGE = 0x02
LABEL_DEBLOCAGE = "Code de déblocage de la carte CPX"
FID_PRKDF = 0x7002
FID_CDF = 0x7004
FID_DODF = 0x7005
FID_CERT_SIGNATURE = 0xC001
FID_CERT_AUTHENTICATION = 0xC002
LABEL_CERT_SIGNATURE = "CPS_CERT_SIG"
LABEL_CERT_AUTHENTICATION = "CPS_CERT_AUT"

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
