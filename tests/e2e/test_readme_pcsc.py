"""The README's application example, as written, against the emulated cards behind pcscd."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cartesim.harness.pytest_plugin.cards import CardFactory
from tests.helpers import CPS_READER, DATA, VITALE_READER, readme_pcsc_examples, run

pytestmark = pytest.mark.e2e


def test_the_readme_opens_a_reader_from_python(cartesim: CardFactory) -> None:
    cartesim.session.ensure_pcscd()  # skips (fails under CI=true) without pcscd + vpcd
    cartesim.insert("vitale-famille")
    cartesim.insert("cps-roulette")
    (example,) = readme_pcsc_examples()
    done = subprocess.run(
        [sys.executable, "-c", example],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CARTESIM_")},
            "CARTESIM_PIN": "1234",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"{CPS_READER} 3BAC00402A001225006480000310009000" in lines
    assert f"{VITALE_READER} 3B751300004509EA9000" in lines
    assert f"{CPS_READER} : 3 tentative(s) restante(s)" in lines
    assert done.stdout.endswith((DATA / "lire-cps-roulette.golden.txt").read_text(encoding="utf-8"))


def test_a_vitale_is_no_cps_through_pcscd(cartesim: CardFactory) -> None:
    cartesim.session.ensure_pcscd()
    cartesim.insert("vitale-famille")
    r = run("cps", "status", "--reader", VITALE_READER)
    assert (r.returncode, r.stderr) == (3, "cartesim: Cette carte est une Carte Vitale, pas une CPS\n")
