"""Species table: molar masses, reporting units and first-order loss processes.

Inside diffflux every amount is SI (mol, mol mol-1 dry air, mol m-2 s-1, mol s-1). This module is
the single place where they are converted to the units in which each species is usually reported
(ppm/ppb/ppt for mole fractions; PgC/yr, TgCH4/yr, TgN/yr, Gg/yr ... for fluxes), see
:class:`Species` methods and the ``units`` helper functions at the bottom.

Loss processes are described by *partial lifetimes* (the global, air-mass-weighted lifetime the
species would have against that process alone). :class:`diffflux.transport.chemistry.FirstOrderLoss`
turns them into loss-frequency fields (OH, stratosphere, boundary layer, uniform) calibrated on a
reference atmosphere.

Sources of the values (each is repeated next to the number):

* AR6 WG1: Forster, P. et al. (2021), IPCC AR6 WG1 Chapter 7 and its Supplementary Material, Table
  7.SM.7 (lifetimes of halogenated gases, N2O, SF6); Szopa, S. et al. (2021), Chapter 6 (CH4, CO,
  NOx, black carbon lifetimes); Canadell, J. G. et al. (2021), Chapter 5 (N2O budget).
* WMO (2022): Scientific Assessment of Ozone Depletion 2022, Annex (Burkholder & Hodnebrog),
  lifetimes of HFCs and SF6.
* JPL 19-5: Burkholder, J. B. et al. (2019), Chemical Kinetics and Photochemical Data for Use in
  Atmospheric Studies, Evaluation No. 19, JPL Publication 19-5: ``k_OH(T) = A exp(-(E/R) / T)``.
* Atomic weights: IUPAC (2021) conventional standard atomic weights.
"""

from __future__ import annotations

import dataclasses
import math
import re

import jax.numpy as jnp
import numpy as np

from diffflux.constants import SECONDS_PER_DAY, SECONDS_PER_YEAR

# -------------------------------------------------------------------------------------------------
# molar masses
# -------------------------------------------------------------------------------------------------

ATOMIC_WEIGHTS = {
    "H": 1.008,
    "C": 12.011,
    "N": 14.007,
    "O": 15.999,
    "F": 18.998,
    "S": 32.06,
}
"""Conventional standard atomic weights [g mol-1] (IUPAC 2021)."""


def molar_mass_from_formula(formula: str) -> float:
    """Molar mass [kg mol-1] of a simple chemical formula such as ``"CH2FCF3"`` or ``"SF6"``."""
    tokens = re.findall(r"([A-Z][a-z]?)(\d*)", formula)
    if not tokens or "".join(e + n for e, n in tokens) != formula:
        raise ValueError(f"molar_mass_from_formula: cannot parse formula {formula!r}")
    total = 0.0
    for element, count in tokens:
        if element not in ATOMIC_WEIGHTS:
            raise ValueError(
                f"molar_mass_from_formula: element {element!r} of {formula!r} is not in the table "
                f"(known: {', '.join(sorted(ATOMIC_WEIGHTS))})"
            )
        total += ATOMIC_WEIGHTS[element] * (int(count) if count else 1)
    return total * 1e-3


# -------------------------------------------------------------------------------------------------
# loss description
# -------------------------------------------------------------------------------------------------

LOSS_PROCESSES = ("oh", "stratosphere", "boundary_layer", "uniform")
"""Kinds of first-order loss known to :class:`~diffflux.transport.chemistry.FirstOrderLoss`:

* ``"oh"``: ``k_OH(T) [OH]`` with the packaged analytic OH climatology (troposphere),
* ``"stratosphere"``: photolysis / O(1D) loss above a latitude-dependent tropopause,
* ``"boundary_layer"``: deposition-like loss in the lowest ~100 hPa,
* ``"uniform"``: the same loss frequency everywhere.
"""


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One loss process of a species.

    Attributes:
        process: one of :data:`LOSS_PROCESSES`.
        lifetime: partial lifetime [s] against this process alone (global air-mass-weighted mean
            loss frequency ``1 / lifetime`` on the reference atmosphere).
        source: where the number comes from.
    """

    process: str
    lifetime: float
    source: str = ""

    def __post_init__(self) -> None:
        if self.process not in LOSS_PROCESSES:
            raise ValueError(
                f"LossTerm: unknown process {self.process!r}; expected one of {LOSS_PROCESSES}"
            )
        if not (self.lifetime > 0 and math.isfinite(self.lifetime)):
            raise ValueError(
                f"LossTerm({self.process}): lifetime must be positive and finite, "
                f"found {self.lifetime}"
            )


@dataclasses.dataclass(frozen=True)
class OHRateConstant:
    """Arrhenius rate constant of the reaction with OH (JPL 19-5 form).

    ``k(T, p) = A exp(-E_over_R / T) (1 + pressure_coefficient p / 101325 Pa)`` [cm3 molecule-1
    s-1]. The pressure term is only used for CO (older JPL form of the chemical-activation channel).
    """

    A: float
    E_over_R: float
    pressure_coefficient: float = 0.0
    source: str = ""

    def __call__(self, temperature, pressure=None):
        """Rate constant [cm3 molecule-1 s-1] at ``temperature`` [K] (and ``pressure`` [Pa])."""
        xp = np if isinstance(temperature, (float, int, np.ndarray)) else jnp
        k = self.A * xp.exp(-self.E_over_R / temperature)
        if self.pressure_coefficient and pressure is not None:
            k = k * (1.0 + self.pressure_coefficient * pressure / 101325.0)
        return k


# -------------------------------------------------------------------------------------------------
# species
# -------------------------------------------------------------------------------------------------

MIXING_RATIO_UNITS = {"mol/mol": 1.0, "ppm": 1e-6, "ppb": 1e-9, "ppt": 1e-12}
"""Reporting mole-fraction units and their value in mol mol-1."""

MASS_PREFIXES = {"kg": 1.0, "Gg": 1e6, "Tg": 1e9, "Pg": 1e12}
"""Reporting mass units and their value in kg."""


@dataclasses.dataclass(frozen=True)
class Species:
    """A transported species.

    Attributes:
        name: canonical name (``"CO2"``, ``"HFC-134a"`` ...).
        formula: chemical formula used for the molar mass (``"C"`` for black carbon).
        molar_mass: [kg mol-1] of the transported molecule (BC: carbon).
        mixing_ratio_unit: reporting unit of dry-air mole fractions (``"ppm"``, ``"ppb"``,
            ``"ppt"``).
        flux_unit: reporting unit of fluxes, e.g. ``"PgC/yr"``.
        flux_mass_per_mol: mass of the *reported* quantity per mol of species [kg mol-1] (for CO2 in
            PgC:
            the mass of carbon, 12.011e-3; for N2O in TgN: two nitrogen atoms, 28.014e-3).
        flux_mass_unit: one reporting mass unit in kg (``1e12`` for Pg).
        loss: loss processes with their partial lifetimes (empty for a passive tracer).
        k_oh: rate constant with OH (needed when ``loss`` contains an ``"oh"`` term).
        aliases: other accepted names (matching ignores case, ``-``, ``_`` and spaces).
        note: what simplification or convention applies.
    """

    name: str
    formula: str
    molar_mass: float
    mixing_ratio_unit: str
    flux_unit: str
    flux_mass_per_mol: float
    flux_mass_unit: float
    loss: tuple[LossTerm, ...] = ()
    k_oh: OHRateConstant | None = None
    aliases: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.mixing_ratio_unit not in MIXING_RATIO_UNITS:
            raise ValueError(
                f"Species {self.name}: mixing_ratio_unit {self.mixing_ratio_unit!r} is not one of "
                f"{list(MIXING_RATIO_UNITS)}"
            )
        if any(t.process == "oh" for t in self.loss) and self.k_oh is None:
            raise ValueError(f"Species {self.name}: an 'oh' loss term needs a k_oh rate constant")
        processes = [t.process for t in self.loss]
        if len(set(processes)) != len(processes):
            raise ValueError(f"Species {self.name}: duplicate loss processes {processes}")

    # ---- lifetimes ---------------------------------------------------------------------------
    @property
    def loss_frequency(self) -> float:
        """Global mean first-order loss frequency [s-1] (sum over processes; 0 for passive
        tracers)."""
        return sum(1.0 / t.lifetime for t in self.loss)

    @property
    def lifetime(self) -> float:
        """Total global lifetime [s] (``inf`` without loss)."""
        f = self.loss_frequency
        return math.inf if f == 0 else 1.0 / f

    @property
    def lifetime_years(self) -> float:
        """Total global lifetime [yr] (Julian years)."""
        return self.lifetime / SECONDS_PER_YEAR

    def with_lifetime(self, lifetime: float) -> Species:
        """Copy whose loss terms are all scaled so that the total lifetime is ``lifetime`` [s].

        The partition between processes is kept. A passive species cannot be given a lifetime this
        way (which process would it be?): build a :class:`LossTerm` explicitly instead.
        """
        if not self.loss:
            raise ValueError(
                f"Species {self.name} has no loss process to rescale; pass loss=(LossTerm(...),) "
                f"to dataclasses.replace instead"
            )
        factor = lifetime / self.lifetime
        loss = tuple(dataclasses.replace(t, lifetime=t.lifetime * factor) for t in self.loss)
        return dataclasses.replace(self, loss=loss)

    # ---- unit conversions (the one place where SI leaves the code) ----------------------------
    @property
    def mixing_ratio_scale(self) -> float:
        """Value of one reporting mixing-ratio unit in mol mol-1 (1e-6 for ppm)."""
        return MIXING_RATIO_UNITS[self.mixing_ratio_unit]

    def to_reporting_mixing_ratio(self, chi):
        """Dry-air mole fraction [mol mol-1] -> reporting unit (ppm/ppb/ppt). Arrays broadcast."""
        return chi / self.mixing_ratio_scale

    def from_reporting_mixing_ratio(self, value):
        """Reporting unit (ppm/ppb/ppt) -> dry-air mole fraction [mol mol-1]."""
        return value * self.mixing_ratio_scale

    @property
    def flux_scale(self) -> float:
        """Reporting flux units per (mol s-1): multiply a flux in mol s-1 to get ``flux_unit``."""
        return SECONDS_PER_YEAR * self.flux_mass_per_mol / self.flux_mass_unit

    def flux_to_reporting(self, mol_per_s):
        """Total flux [mol s-1] -> reporting unit per Julian year (e.g. PgC/yr)."""
        return mol_per_s * self.flux_scale

    def flux_from_reporting(self, value):
        """Reporting unit per year (e.g. TgCH4/yr) -> total flux [mol s-1]."""
        return value / self.flux_scale

    def amount_to_reporting(self, mol):
        """Amount [mol] -> reporting mass (e.g. PgC for CO2, TgN for N2O): for burdens and
        budgets."""
        return mol * (self.flux_mass_per_mol / self.flux_mass_unit)

    def amount_from_reporting(self, value):
        """Reporting mass (e.g. PgC) -> amount [mol]."""
        return value * (self.flux_mass_unit / self.flux_mass_per_mol)

    @property
    def amount_unit(self) -> str:
        """Reporting unit of amounts (``flux_unit`` without ``/yr``)."""
        return self.flux_unit.removesuffix("/yr")


# ---- the table -----------------------------------------------------------------------------------

_YR = SECONDS_PER_YEAR
_DAY = SECONDS_PER_DAY
_M_C = ATOMIC_WEIGHTS["C"] * 1e-3
_M_N = ATOMIC_WEIGHTS["N"] * 1e-3

# CH4: AR6 WG1 Ch.6 (Szopa et al. 2021, section 6.3.1 and Table 6.1 context) and Ch.7 Table 7.SM.7
# give a total atmospheric lifetime of 9.1 +/- 0.9 yr (perturbation lifetime 11.8 yr). The
# stratospheric partial lifetime ~150 yr is the SPARC (2013) / AR5 Table 6.8 value. Soil uptake
# (~160 yr) and tropospheric Cl (~200 yr) are folded into the OH term, which therefore is the
# remainder 1 / (1/9.1 - 1/150) = 9.69 yr.
_CH4_TOTAL = 9.1 * _YR
_CH4_STRAT = 150.0 * _YR
_CH4_OH = 1.0 / (1.0 / _CH4_TOTAL - 1.0 / _CH4_STRAT)

_SPECIES: tuple[Species, ...] = (
    Species(
        name="CO2",
        formula="CO2",
        molar_mass=molar_mass_from_formula("CO2"),
        mixing_ratio_unit="ppm",
        flux_unit="PgC/yr",
        flux_mass_per_mol=_M_C,  # reported as carbon mass
        flux_mass_unit=MASS_PREFIXES["Pg"],
        aliases=("carbon dioxide",),
        note="no atmospheric loss (passive tracer); fluxes reported as PgC/yr",
    ),
    Species(
        name="CH4",
        formula="CH4",
        molar_mass=molar_mass_from_formula("CH4"),
        mixing_ratio_unit="ppb",
        flux_unit="TgCH4/yr",
        flux_mass_per_mol=molar_mass_from_formula("CH4"),
        flux_mass_unit=MASS_PREFIXES["Tg"],
        loss=(
            LossTerm("oh", _CH4_OH,
                     "AR6 WG1 Ch.6/7: total 9.1 yr minus stratosphere; includes soil and Cl"),
            LossTerm("stratosphere", _CH4_STRAT, "SPARC (2013) / AR5 WG1 Table 6.8: ~150 yr"),
        ),
        # JPL 19-5 Table 1: CH4 + OH, A = 2.45e-12 cm3 s-1, E/R = 1775 K
        k_oh=OHRateConstant(2.45e-12, 1775.0, source="JPL 19-5"),
        aliases=("methane",),
        note="total lifetime 9.1 yr (AR6); OH partial lifetime 9.69 yr includes soil and Cl sinks",
    ),
    Species(
        name="N2O",
        formula="N2O",
        molar_mass=molar_mass_from_formula("N2O"),
        mixing_ratio_unit="ppb",
        flux_unit="TgN/yr",
        flux_mass_per_mol=2.0 * _M_N,  # reported as nitrogen mass (two N atoms per molecule)
        flux_mass_unit=MASS_PREFIXES["Tg"],
        # AR6 WG1 Ch.5 (Canadell et al. 2021, section 5.2.4) and Table 7.SM.7: present-day total
        # lifetime 116 +/- 9 yr (Prather et al. 2015); the perturbation lifetime is 109 +/- 10 yr.
        # The burden decays with the total lifetime, which is what a first-order loss represents.
        loss=(LossTerm("stratosphere", 116.0 * _YR,
                       "AR6 WG1 Ch.5 / Prather et al. (2015): 116 yr"),),
        aliases=("nitrous oxide",),
        note="stratospheric photolysis and O(1D); fluxes reported as TgN/yr (N2O-N)",
    ),
    Species(
        name="HFC-134a",
        formula="CH2FCF3",
        molar_mass=molar_mass_from_formula("CH2FCF3"),
        mixing_ratio_unit="ppt",
        flux_unit="Gg/yr",
        flux_mass_per_mol=molar_mass_from_formula("CH2FCF3"),
        flux_mass_unit=MASS_PREFIXES["Gg"],
        # WMO (2022) Annex and AR6 Table 7.SM.7: total lifetime 14 yr; its stratospheric partial
        # lifetime (hundreds of years, SPARC 2013) is folded into the OH term.
        loss=(LossTerm("oh", 14.0 * _YR, "WMO (2022) Annex / AR6 Table 7.SM.7: 14 yr"),),
        # JPL 19-5 Table 1: CH2FCF3 + OH, A = 1.05e-12, E/R = 1630 K
        k_oh=OHRateConstant(1.05e-12, 1630.0, source="JPL 19-5"),
        aliases=("HFC134a", "R-134a", "CH2FCF3"),
    ),
    Species(
        name="HFC-32",
        formula="CH2F2",
        molar_mass=molar_mass_from_formula("CH2F2"),
        mixing_ratio_unit="ppt",
        flux_unit="Gg/yr",
        flux_mass_per_mol=molar_mass_from_formula("CH2F2"),
        flux_mass_unit=MASS_PREFIXES["Gg"],
        loss=(LossTerm("oh", 5.4 * _YR, "WMO (2022) Annex / AR6 Table 7.SM.7: 5.4 yr"),),
        # JPL 19-5 Table 1: CH2F2 + OH, A = 1.7e-12, E/R = 1500 K
        k_oh=OHRateConstant(1.7e-12, 1500.0, source="JPL 19-5"),
        aliases=("HFC32", "R-32", "CH2F2"),
    ),
    Species(
        name="HFC-125",
        formula="CHF2CF3",
        molar_mass=molar_mass_from_formula("CHF2CF3"),
        mixing_ratio_unit="ppt",
        flux_unit="Gg/yr",
        flux_mass_per_mol=molar_mass_from_formula("CHF2CF3"),
        flux_mass_unit=MASS_PREFIXES["Gg"],
        loss=(LossTerm("oh", 30.0 * _YR, "WMO (2022) Annex / AR6 Table 7.SM.7: 30 yr"),),
        # JPL 19-5 Table 1: CHF2CF3 + OH, A = 5.4e-13, E/R = 1700 K
        k_oh=OHRateConstant(5.4e-13, 1700.0, source="JPL 19-5"),
        aliases=("HFC125", "R-125", "CHF2CF3"),
    ),
    Species(
        name="CO",
        formula="CO",
        molar_mass=molar_mass_from_formula("CO"),
        mixing_ratio_unit="ppb",
        flux_unit="TgCO/yr",
        flux_mass_per_mol=molar_mass_from_formula("CO"),
        flux_mass_unit=MASS_PREFIXES["Tg"],
        # AR6 WG1 Ch.6 (Szopa et al. 2021, section 6.2.1): CO lifetime about two months, set by OH.
        loss=(LossTerm("oh", 2.0 / 12.0 * _YR, "AR6 WG1 Ch.6: ~2 months"),),
        # k = 1.5e-13 (1 + 0.6 p/atm), the JPL (Sander et al. 2000, JPL 00-3) fit; JPL 19-5 writes
        # the same reaction as a termolecular plus chemical-activation pair, which this
        # approximates.
        k_oh=OHRateConstant(1.5e-13, 0.0, pressure_coefficient=0.6, source="JPL 00-3 fit"),
        aliases=("carbon monoxide",),
        note="chemical production from CH4/VOC oxidation is not modelled (loss only)",
    ),
    Species(
        name="NOx",
        formula="NO2",
        molar_mass=molar_mass_from_formula("NO2"),
        mixing_ratio_unit="ppb",
        flux_unit="TgN/yr",
        flux_mass_per_mol=_M_N,  # one N atom per NOx molecule: TgN = TgNO2 * 14.007 / 46.005
        flux_mass_unit=MASS_PREFIXES["Tg"],
        # AR6 WG1 Ch.6: NOx lifetime of hours to ~a day in the boundary layer; one day is used as a
        # uniform first-order loss (documented simplification: no photochemistry, no NO/NO2
        # partition).
        loss=(LossTerm("uniform", 1.0 * _DAY, "AR6 WG1 Ch.6: ~1 day (simplification)"),),
        aliases=("nitrogen oxides", "NO2"),
        note="transported as NO2-equivalent molecules; fluxes reported as TgN/yr",
    ),
    Species(
        name="BC",
        formula="C",
        molar_mass=molar_mass_from_formula("C"),
        mixing_ratio_unit="ppt",
        flux_unit="Tg/yr",
        flux_mass_per_mol=_M_C,
        flux_mass_unit=MASS_PREFIXES["Tg"],
        # AR6 WG1 Ch.6 (section 6.2.2): BC lifetime of days to about a week (multi-model range ~4-7
        # days, Lund et al. 2018); 6 days, as a deposition-like loss confined to the boundary layer.
        loss=(LossTerm("boundary_layer", 6.0 * _DAY,
                       "AR6 WG1 Ch.6 / Lund et al. (2018): ~6 days"),),
        aliases=("black carbon",),
        note="black carbon as carbon atoms; mole fraction in ppt of C; emissions in Tg(BC)/yr",
    ),
    Species(
        name="SF6",
        formula="SF6",
        molar_mass=molar_mass_from_formula("SF6"),
        mixing_ratio_unit="ppt",
        flux_unit="Gg/yr",
        flux_mass_per_mol=molar_mass_from_formula("SF6"),
        flux_mass_unit=MASS_PREFIXES["Gg"],
        # AR6 Table 7.SM.7: 3200 yr (mesospheric electron attachment / photolysis). WMO (2022) notes
        # recent estimates of 850-1280 yr (Ray et al. 2017; Kovacs et al. 2017); pass a lifetime to
        # FirstOrderLoss.for_species to use them.
        loss=(LossTerm("stratosphere", 3200.0 * _YR, "AR6 WG1 Table 7.SM.7: 3200 yr"),),
        aliases=("sulfur hexafluoride", "sulphur hexafluoride"),
        note="loss placed in the model stratosphere (no mesosphere in the model); "
        "lifetime calibrated",
    ),
)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


SPECIES: dict[str, Species] = {s.name: s for s in _SPECIES}
"""Canonical name -> :class:`Species`."""

_LOOKUP: dict[str, Species] = {}
for _s in _SPECIES:
    for _n in (_s.name, *_s.aliases):
        _LOOKUP[_key(_n)] = _s


def species_names() -> list[str]:
    """Canonical names of all species in the table."""
    return [s.name for s in _SPECIES]


def get_species(name: str | Species) -> Species:
    """Look a species up by name (case-insensitive; ``-``, ``_`` and spaces ignored; aliases
    accepted).

    A :class:`Species` instance is returned unchanged, so user-defined species work everywhere.
    """
    if isinstance(name, Species):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"get_species: expected a species name or Species, found {type(name).__name__}"
        )
    try:
        return _LOOKUP[_key(name)]
    except KeyError:
        raise ValueError(
            f"unknown species {name!r}; valid names: {', '.join(species_names())} "
            f"(case-insensitive; aliases such as 'methane' or 'HFC134a' also work)"
        ) from None


# -------------------------------------------------------------------------------------------------
# units helper (functional form of the Species methods, for reporting code)
# -------------------------------------------------------------------------------------------------


def mixing_ratio_to_reporting(species: str | Species, chi):
    """Mole fraction [mol mol-1] -> the species' reporting unit (ppm/ppb/ppt)."""
    return get_species(species).to_reporting_mixing_ratio(chi)


def mixing_ratio_from_reporting(species: str | Species, value):
    """Reporting unit (ppm/ppb/ppt) -> mole fraction [mol mol-1]."""
    return get_species(species).from_reporting_mixing_ratio(value)


def flux_to_reporting(species: str | Species, mol_per_s):
    """Total flux [mol s-1] -> reporting unit per year (``Species.flux_unit``)."""
    return get_species(species).flux_to_reporting(mol_per_s)


def flux_from_reporting(species: str | Species, value):
    """Reporting unit per year -> total flux [mol s-1]."""
    return get_species(species).flux_from_reporting(value)


def flux_density_to_reporting(species: str | Species, flux, area):
    """Area-integrated flux in reporting units per year.

    Args:
        species: name or :class:`Species`.
        flux: surface flux density ``(..., nlat, nlon)`` [mol m-2 s-1].
        area: cell areas ``(nlat, nlon)`` [m2].

    Returns:
        ``(...)`` total flux in ``flux_unit`` (e.g. PgC/yr).
    """
    total = (flux * area).sum(axis=(-2, -1))
    return get_species(species).flux_to_reporting(total)
