"""Species table: molar masses, lifetimes, lookup and the reporting-unit conversions."""

import math

import numpy as np
import pytest

from diffflux.constants import SECONDS_PER_DAY, SECONDS_PER_YEAR
from diffflux.species import (
    SPECIES,
    LossTerm,
    Species,
    flux_density_to_reporting,
    flux_from_reporting,
    flux_to_reporting,
    get_species,
    mixing_ratio_from_reporting,
    mixing_ratio_to_reporting,
    molar_mass_from_formula,
    species_names,
)

REQUIRED = ["CO2", "CH4", "N2O", "HFC-134a", "HFC-32", "HFC-125", "CO", "NOx", "BC", "SF6"]


def test_table_has_all_required_species():
    assert species_names() == REQUIRED


@pytest.mark.parametrize(
    "name, molar_mass",
    [
        ("CO2", 44.009e-3),
        ("CH4", 16.043e-3),
        ("N2O", 44.013e-3),
        ("HFC-134a", 102.03e-3),
        ("HFC-32", 52.023e-3),
        ("HFC-125", 120.02e-3),
        ("CO", 28.010e-3),
        ("NOx", 46.005e-3),
        ("BC", 12.011e-3),
        ("SF6", 146.05e-3),
    ],
)
def test_molar_masses(name, molar_mass):
    assert get_species(name).molar_mass == pytest.approx(molar_mass, rel=2e-4)


@pytest.mark.parametrize(
    "name, years",
    [("CH4", 9.1), ("N2O", 116.0), ("HFC-134a", 14.0), ("HFC-32", 5.4), ("HFC-125", 30.0),
     ("SF6", 3200.0), ("CO", 2.0 / 12.0)],
)
def test_lifetimes(name, years):
    assert get_species(name).lifetime_years == pytest.approx(years, rel=1e-12)


def test_short_lived_and_passive():
    assert get_species("NOx").lifetime == pytest.approx(SECONDS_PER_DAY, rel=1e-12)
    assert 5 * SECONDS_PER_DAY <= get_species("BC").lifetime <= 7 * SECONDS_PER_DAY
    assert math.isinf(get_species("CO2").lifetime)
    assert get_species("CO2").loss_frequency == 0.0


def test_ch4_partial_lifetimes_add_up():
    ch4 = get_species("CH4")
    procs = {t.process: t.lifetime / SECONDS_PER_YEAR for t in ch4.loss}
    assert set(procs) == {"oh", "stratosphere"}
    assert 1.0 / (1.0 / procs["oh"] + 1.0 / procs["stratosphere"]) == pytest.approx(9.1, rel=1e-12)
    assert procs["stratosphere"] == pytest.approx(150.0)


def test_loss_processes_of_each_species():
    kinds = {n: {t.process for t in get_species(n).loss} for n in REQUIRED}
    assert kinds["CO2"] == set()
    assert kinds["N2O"] == {"stratosphere"} and kinds["SF6"] == {"stratosphere"}
    for n in ("HFC-134a", "HFC-32", "HFC-125", "CO"):
        assert kinds[n] == {"oh"}
        assert get_species(n).k_oh is not None
    assert kinds["BC"] == {"boundary_layer"}
    assert kinds["NOx"] == {"uniform"}


def test_k_oh_jpl_values():
    # JPL 19-5: k(CH4 + OH) at 298 K = 2.45e-12 exp(-1775/298) = 6.4e-15 cm3 s-1
    assert get_species("CH4").k_oh(298.0) == pytest.approx(6.36e-15, rel=2e-3)
    # the pressure-dependent CO rate at the surface: 1.5e-13 * 1.6
    assert get_species("CO").k_oh(280.0, 101325.0) == pytest.approx(2.4e-13, rel=1e-12)


@pytest.mark.parametrize("alias", ["ch4", "Methane", "hfc134a", "HFC_134a", "hfc 134a", "sf6",
                                   "black carbon", "nox"])
def test_lookup_is_case_insensitive(alias):
    assert get_species(alias).name in REQUIRED


def test_unknown_species_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_species("HFC-23x")
    msg = str(err.value)
    assert "HFC-23x" in msg
    for name in REQUIRED:
        assert name in msg


def test_species_instance_passes_through():
    s = Species(name="Rn222", formula="C", molar_mass=222e-3, mixing_ratio_unit="ppt",
                flux_unit="Gg/yr", flux_mass_per_mol=222e-3, flux_mass_unit=1e6,
                loss=(LossTerm("uniform", 5.5 * SECONDS_PER_DAY, "radioactive decay"),))
    assert get_species(s) is s
    assert s.lifetime == pytest.approx(5.5 * SECONDS_PER_DAY)


def test_mixing_ratio_round_trip():
    chi = np.array([410e-6, 1.9e-6])
    assert np.allclose(mixing_ratio_to_reporting("CO2", chi), [410.0, 1.9])
    assert mixing_ratio_to_reporting("CH4", 1.9e-6) == pytest.approx(1900.0)
    assert mixing_ratio_to_reporting("SF6", 11e-12) == pytest.approx(11.0)
    assert np.allclose(mixing_ratio_from_reporting("CO2", mixing_ratio_to_reporting("CO2", chi)),
                       chi, rtol=1e-15)


def test_flux_conversions():
    # 1 PgC/yr of CO2 in mol/s
    mol_s = flux_from_reporting("CO2", 1.0)
    assert mol_s == pytest.approx(1e12 / 12.011e-3 / SECONDS_PER_YEAR, rel=1e-12)
    assert flux_to_reporting("CO2", mol_s) == pytest.approx(1.0, rel=1e-14)
    # CH4 reported as the molecule's mass, N2O as nitrogen (two N atoms), NOx as N (one)
    assert flux_to_reporting("CH4", 1.0) == pytest.approx(16.043e-3 * SECONDS_PER_YEAR / 1e9)
    assert flux_to_reporting("N2O", 1.0) == pytest.approx(2 * 14.007e-3 * SECONDS_PER_YEAR / 1e9)
    assert flux_to_reporting("NOx", 1.0) == pytest.approx(14.007e-3 * SECONDS_PER_YEAR / 1e9)
    assert get_species("SF6").flux_unit == "Gg/yr"
    assert get_species("HFC-134a").amount_to_reporting(1e6 / 102.03e-3) == pytest.approx(1.0)


def test_flux_density_to_reporting():
    area = np.full((2, 3), 1.0e12)
    flux = np.full((1, 2, 3), 1.0e-8)  # mol m-2 s-1
    total = flux_density_to_reporting("CH4", flux, area)
    assert total.shape == (1,)
    assert total[0] == pytest.approx(6 * 1e4 * 16.043e-3 * SECONDS_PER_YEAR / 1e9, rel=1e-12)


def test_with_lifetime_keeps_partition():
    sf6 = get_species("SF6").with_lifetime(850.0 * SECONDS_PER_YEAR)
    assert sf6.lifetime_years == pytest.approx(850.0)
    ch4 = get_species("CH4").with_lifetime(10.0 * SECONDS_PER_YEAR)
    ratio = ch4.loss[0].lifetime / ch4.loss[1].lifetime
    base = SPECIES["CH4"].loss[0].lifetime / SPECIES["CH4"].loss[1].lifetime
    assert ratio == pytest.approx(base)
    with pytest.raises(ValueError, match="no loss process"):
        get_species("CO2").with_lifetime(1.0)


def test_bad_definitions_raise():
    with pytest.raises(ValueError, match="unknown process"):
        LossTerm("photolysis", 1.0)
    with pytest.raises(ValueError, match="positive"):
        LossTerm("oh", -1.0)
    with pytest.raises(ValueError, match="k_oh"):
        Species(name="X", formula="C", molar_mass=1.0, mixing_ratio_unit="ppb", flux_unit="Tg/yr",
                flux_mass_per_mol=1.0, flux_mass_unit=1e9, loss=(LossTerm("oh", 1.0),))
    with pytest.raises(ValueError, match="mixing_ratio_unit"):
        Species(name="X", formula="C", molar_mass=1.0, mixing_ratio_unit="ppq", flux_unit="Tg/yr",
                flux_mass_per_mol=1.0, flux_mass_unit=1e9)
    with pytest.raises(ValueError, match="element"):
        molar_mass_from_formula("CCl4")
