"""Property tests with the shipped strategies: any valid profile reads back exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from cartesim.core.cps import CpsCard
from cartesim.core.transport.direct import DirectTransport
from cartesim.core.vitale import VitaleCard
from cartesim.emulator.cards import build_card
from cartesim.emulator.profile import CpsProfile, VitaleProfile
from cartesim.harness.strategies import cps_profiles, vitale_profiles

SETTINGS = settings(
    max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example]
)


@SETTINGS
@given(cps_profiles())
def test_any_cps_profile_reads_back(p: CpsProfile) -> None:
    card = CpsCard(DirectTransport(build_card(p)))
    holder = card.read_holder()
    assert holder.nom == p.holder.nom
    assert holder.civilite == p.holder.civilite
    st = card.status()
    assert st.pin_tries_left == p.pin.tries_left
    assert st.unblock_uses_left == p.unblock.uses_left
    if p.pin.tries_left:
        data = card.read(p.pin.code, confirm_last_try=True)
        assert [s.raison_structure for s in data.situations] == [s.raison_structure for s in p.situations]
        assert [s.numero_remplacant for s in data.situations] == [s.numero_remplacant for s in p.situations]


@SETTINGS
@given(vitale_profiles())
def test_any_vitale_profile_reads_back(p: VitaleProfile) -> None:
    v = VitaleCard(DirectTransport(build_card(p))).read()
    assert v.assure.nir == p.assure.nir
    assert [(b.nom, b.date_naissance) for b in v.beneficiaires] == [
        (b.nom, b.date_naissance) for b in p.beneficiaires
    ]
    assert [len(b.droits_amo) for b in v.beneficiaires] == [len(b.droits_amo) for b in p.beneficiaires]
    assert v.beneficiaires[0].droits_amo[0].debut == p.beneficiaires[0].droits_amo[0].debut


@SETTINGS
@given(cps_profiles(usable=True))
def test_usable_cps_profiles_open_with_their_code(p: CpsProfile) -> None:
    card = CpsCard(DirectTransport(build_card(p)))
    status = card.status()
    assert status.pin_tries_left is not None and status.pin_tries_left >= 1 and not status.blocked
    card.verify(p.pin.code, confirm_last_try=True)
