"""Public SESAM-Vitale code tables ("Lire Carte PS"), with their French labels."""

from __future__ import annotations

TYPE_CARTE = {"0": "CPS", "1": "CPF", "2": "CDE/CPE", "3": "CPA", "4": "CSA"}
TYPE_IDENT = {
    "0": "ADELI",
    "1": "cabinet ADELI",
    "3": "FINESS",
    "4": "SIREN",
    "5": "SIRET",
    "6": "cabinet RPPS",
    "8": "RPPS",
}
CIVILITE = {"13": "Docteur", "22": "Madame", "23": "Mademoiselle", "31": "Monsieur", "36": "Professeur"}
MODE_EXERCICE = {"0": "libéral", "1": "salarié", "4": "remplaçant", "7": "non rétribué"}
CODE_CONVENTION = {
    "0": "non conventionné",
    "1": "conventionné",
    "2": "conventionné avec dépassement",
    "3": "honoraires libres",
}
# Vitale: qualité du bénéficiaire.
QUALITE = {
    "0": "assuré",
    "1": "ascendant, descendant, collatéral",
    "2": "conjoint",
    "3": "conjoint divorcé",
    "4": "concubin",
    "5": "conjoint séparé",
    "6": "enfant",
    "8": "conjoint veuf",
    "9": "autre ayant droit",
}
