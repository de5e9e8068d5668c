"""Plant functional types (PFTs) and their default parameters.

Each parameter is a per-PFT default; the optimiser never sees these numbers directly but positive
multipliers of them (:mod:`diffflux.models.biosphere.params`). Values are chosen within the ranges of the
Sim-CYCLE/VISIT parameter tables (Ito & Oikawa 2002, Ecol. Model. 151; Ito & Inatomi 2012,
Biogeosciences 9), LPJ (Sitch et al. 2003, GCB 9, Table 1) and the respiration literature (Ryan 1991,
Ecol. Appl. 1), then the few free ones (Pmax, maintenance coefficients) were tuned once so that the built-in
climatology gives global GPP and NPP near Beer et al. (2010) and Zhao & Running (2010); the resulting totals
are printed by ``python -m diffflux.models.biosphere`` and listed in the README.

Units: temperatures [degC], rates per day unless the name ends in ``_yr`` [yr-1], carbon [g C m-2],
specific leaf area [m2 leaf (g C)-1], Pmax [umol CO2 m-2(leaf) s-1], QE [mol CO2 (mol photon)-1],
rooting depth [m], emission factors [g species (kg dry matter)-1] (Akagi et al. 2011, ACP 11, Table 1).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

EVERGREEN, COLD_DECIDUOUS, DROUGHT_DECIDUOUS, GRASS = 0, 1, 2, 3
PHENOLOGY_NAMES = ("evergreen", "cold-deciduous", "drought-deciduous", "grass")

# Fire emission-factor biomes (Akagi et al. 2011, Table 1, g per kg dry matter burned):
#                     CO2    CO     CH4    BC     NOx (as NO)
EMISSION_FACTORS = {
    "tropical_forest": (1643.0, 93.0, 5.07, 0.52, 2.55),
    "savanna": (1686.0, 63.0, 1.94, 0.37, 3.9),
    "temperate_forest": (1637.0, 89.0, 3.92, 0.56, 2.51),
    "boreal_forest": (1489.0, 127.0, 5.96, 0.56, 0.90),
    "crop_residue": (1585.0, 102.0, 5.82, 0.75, 3.11),
}
EMITTED_SPECIES = ("CO2", "CO", "CH4", "BC", "NOx")
CARBON_FRACTION_DM = 0.45  # g C per g dry matter of plant biomass (Andreae & Merlet 2001)


@dataclass(frozen=True)
class PFT:
    """Default parameters of one plant functional type (see the module docstring for units)."""

    code: str
    name: str
    c4: bool
    phenology: int
    pmax: float
    qe: float
    k_ext: float
    sla: float
    lai_opt: float
    t_min: float
    t_opt: float
    t_max: float
    m_leaf: float  # maintenance respiration of foliage at 15 C [d-1]
    m_stem: float  # of living (sapwood) stem carbon [d-1]
    m_root: float  # of living (fine) root carbon [d-1]
    live_stem: float  # sapwood fraction of stem carbon [-]
    live_root: float  # fine-root fraction of root carbon [-]
    q10_resp: float
    growth_resp: float  # fraction of GPP spent as growth respiration [-]
    alloc_leaf: float  # foliage share of allocated carbon while LAI << LAI_opt [-]
    alloc_stem: float  # stem share of the non-foliage remainder [-]
    turn_leaf_yr: float
    turn_stem_yr: float
    turn_root_yr: float
    shed_rate: float  # extra foliage loss rate when phenologically dormant [d-1]
    gdd_onset: float  # growing degree days above 5 C for leaf-out [degC d]
    t_off: float  # 10-day mean air temperature of leaf-off [degC]
    w_off: float  # relative root-zone water of drought leaf-off [-]
    root_depth: float
    combust_leaf: float
    combust_stem: float
    combust_litter: float
    fire_mortality: float  # fraction of unburnt stem killed in burnt area (to litter) [-]
    moist_extinction: float  # relative fuel (top-soil) moisture of extinction [-] (Thonicke et al. 2001)
    fire_biome: str


PFTS: tuple[PFT, ...] = (
    PFT(
        code="TrEF",
        name="tropical evergreen forest",
        c4=False,
        phenology=EVERGREEN,
        pmax=8.58,
        qe=0.055,
        k_ext=0.5,
        sla=0.012,
        lai_opt=6,
        t_min=2,
        t_opt=28,
        t_max=45,
        m_leaf=0.00154,
        m_stem=0.0007,
        m_root=0.0012,
        live_stem=0.05,
        live_root=0.35,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.51,
        alloc_stem=0.55,
        turn_leaf_yr=0.6,
        turn_stem_yr=0.0616,
        turn_root_yr=0.12,
        shed_rate=0.08,
        gdd_onset=0,
        t_off=0,
        w_off=0.15,
        root_depth=2,
        combust_leaf=0.7,
        combust_stem=0.1,
        combust_litter=0.85,
        fire_mortality=0.2,
        moist_extinction=0.35,
        fire_biome="tropical_forest",
    ),
    PFT(
        code="TrDF",
        name="tropical deciduous forest",
        c4=False,
        phenology=DROUGHT_DECIDUOUS,
        pmax=9.36,
        qe=0.055,
        k_ext=0.5,
        sla=0.02,
        lai_opt=5,
        t_min=2,
        t_opt=28,
        t_max=45,
        m_leaf=0.00154,
        m_stem=0.0007,
        m_root=0.0012,
        live_stem=0.05,
        live_root=0.35,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.544,
        alloc_stem=0.55,
        turn_leaf_yr=0.7,
        turn_stem_yr=0.084,
        turn_root_yr=0.15,
        shed_rate=0.08,
        gdd_onset=0,
        t_off=0,
        w_off=0.3,
        root_depth=2,
        combust_leaf=0.7,
        combust_stem=0.1,
        combust_litter=0.85,
        fire_mortality=0.2,
        moist_extinction=0.3,
        fire_biome="tropical_forest",
    ),
    PFT(
        code="TeBF",
        name="temperate broadleaf forest",
        c4=False,
        phenology=COLD_DECIDUOUS,
        pmax=10.14,
        qe=0.055,
        k_ext=0.5,
        sla=0.025,
        lai_opt=5.5,
        t_min=-2,
        t_opt=22,
        t_max=40,
        m_leaf=0.00175,
        m_stem=0.0007,
        m_root=0.0012,
        live_stem=0.05,
        live_root=0.35,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.544,
        alloc_stem=0.55,
        turn_leaf_yr=0.5,
        turn_stem_yr=0.056,
        turn_root_yr=0.12,
        shed_rate=0.08,
        gdd_onset=200,
        t_off=7,
        w_off=0,
        root_depth=1.5,
        combust_leaf=0.7,
        combust_stem=0.1,
        combust_litter=0.85,
        fire_mortality=0.2,
        moist_extinction=0.3,
        fire_biome="temperate_forest",
    ),
    PFT(
        code="TeNF",
        name="temperate needleleaf forest",
        c4=False,
        phenology=EVERGREEN,
        pmax=7.8,
        qe=0.055,
        k_ext=0.45,
        sla=0.008,
        lai_opt=5,
        t_min=-5,
        t_opt=20,
        t_max=38,
        m_leaf=0.00126,
        m_stem=0.0006,
        m_root=0.0012,
        live_stem=0.05,
        live_root=0.35,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.51,
        alloc_stem=0.55,
        turn_leaf_yr=0.3,
        turn_stem_yr=0.042,
        turn_root_yr=0.12,
        shed_rate=0.08,
        gdd_onset=0,
        t_off=0,
        w_off=0,
        root_depth=1.5,
        combust_leaf=0.7,
        combust_stem=0.1,
        combust_litter=0.85,
        fire_mortality=0.2,
        moist_extinction=0.3,
        fire_biome="temperate_forest",
    ),
    PFT(
        code="BoF",
        name="boreal forest",
        c4=False,
        phenology=EVERGREEN,
        pmax=7.02,
        qe=0.055,
        k_ext=0.45,
        sla=0.008,
        lai_opt=4,
        t_min=-8,
        t_opt=15,
        t_max=35,
        m_leaf=0.00126,
        m_stem=0.0006,
        m_root=0.0012,
        live_stem=0.05,
        live_root=0.35,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.51,
        alloc_stem=0.55,
        turn_leaf_yr=0.25,
        turn_stem_yr=0.028,
        turn_root_yr=0.1,
        shed_rate=0.08,
        gdd_onset=0,
        t_off=0,
        w_off=0,
        root_depth=1,
        combust_leaf=0.7,
        combust_stem=0.15,
        combust_litter=0.85,
        fire_mortality=0.3,
        moist_extinction=0.3,
        fire_biome="boreal_forest",
    ),
    PFT(
        code="SAV",
        name="savanna",
        c4=True,
        phenology=DROUGHT_DECIDUOUS,
        pmax=12.48,
        qe=0.06,
        k_ext=0.5,
        sla=0.02,
        lai_opt=3,
        t_min=5,
        t_opt=32,
        t_max=48,
        m_leaf=0.00175,
        m_stem=0.0007,
        m_root=0.0015,
        live_stem=0.1,
        live_root=0.5,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.68,
        alloc_stem=0.35,
        turn_leaf_yr=1,
        turn_stem_yr=0.14,
        turn_root_yr=0.3,
        shed_rate=0.08,
        gdd_onset=0,
        t_off=0,
        w_off=0.25,
        root_depth=1.5,
        combust_leaf=0.9,
        combust_stem=0.25,
        combust_litter=0.85,
        fire_mortality=0.1,
        moist_extinction=0.2,
        fire_biome="savanna",
    ),
    PFT(
        code="C3G",
        name="C3 grass",
        c4=False,
        phenology=GRASS,
        pmax=10.14,
        qe=0.05,
        k_ext=0.5,
        sla=0.025,
        lai_opt=2.5,
        t_min=-3,
        t_opt=20,
        t_max=40,
        m_leaf=0.0021,
        m_stem=0,
        m_root=0.0018,
        live_stem=0,
        live_root=1,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.85,
        alloc_stem=0,
        turn_leaf_yr=1,
        turn_stem_yr=2,
        turn_root_yr=0.5,
        shed_rate=0.08,
        gdd_onset=100,
        t_off=2,
        w_off=0.2,
        root_depth=0.8,
        combust_leaf=0.9,
        combust_stem=0,
        combust_litter=0.85,
        fire_mortality=0,
        moist_extinction=0.2,
        fire_biome="savanna",
    ),
    PFT(
        code="C4G",
        name="C4 grass",
        c4=True,
        phenology=GRASS,
        pmax=14.04,
        qe=0.06,
        k_ext=0.5,
        sla=0.022,
        lai_opt=2.5,
        t_min=8,
        t_opt=32,
        t_max=48,
        m_leaf=0.0021,
        m_stem=0,
        m_root=0.0018,
        live_stem=0,
        live_root=1,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.85,
        alloc_stem=0,
        turn_leaf_yr=1,
        turn_stem_yr=2,
        turn_root_yr=0.5,
        shed_rate=0.08,
        gdd_onset=150,
        t_off=10,
        w_off=0.2,
        root_depth=1,
        combust_leaf=0.9,
        combust_stem=0,
        combust_litter=0.85,
        fire_mortality=0,
        moist_extinction=0.2,
        fire_biome="savanna",
    ),
    PFT(
        code="SHR",
        name="shrubland",
        c4=False,
        phenology=GRASS,
        pmax=7.02,
        qe=0.05,
        k_ext=0.5,
        sla=0.01,
        lai_opt=2,
        t_min=-2,
        t_opt=24,
        t_max=45,
        m_leaf=0.00154,
        m_stem=0.0007,
        m_root=0.0015,
        live_stem=0.1,
        live_root=0.5,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.595,
        alloc_stem=0.45,
        turn_leaf_yr=0.5,
        turn_stem_yr=0.112,
        turn_root_yr=0.2,
        shed_rate=0.08,
        gdd_onset=100,
        t_off=2,
        w_off=0.2,
        root_depth=1.5,
        combust_leaf=0.8,
        combust_stem=0.2,
        combust_litter=0.85,
        fire_mortality=0.2,
        moist_extinction=0.25,
        fire_biome="savanna",
    ),
    PFT(
        code="TUN",
        name="tundra",
        c4=False,
        phenology=COLD_DECIDUOUS,
        pmax=8.7,
        qe=0.05,
        k_ext=0.5,
        sla=0.015,
        lai_opt=1.5,
        t_min=-8,
        t_opt=12,
        t_max=30,
        m_leaf=0.00154,
        m_stem=0.0007,
        m_root=0.0015,
        live_stem=0.1,
        live_root=0.5,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.68,
        alloc_stem=0.3,
        turn_leaf_yr=0.8,
        turn_stem_yr=0.056,
        turn_root_yr=0.2,
        shed_rate=0.08,
        gdd_onset=80,
        t_off=2,
        w_off=0,
        root_depth=0.5,
        combust_leaf=0.8,
        combust_stem=0.2,
        combust_litter=0.85,
        fire_mortality=0.2,
        moist_extinction=0.3,
        fire_biome="boreal_forest",
    ),
    PFT(
        code="CRP",
        name="cropland",
        c4=False,
        phenology=GRASS,
        pmax=12.48,
        qe=0.05,
        k_ext=0.5,
        sla=0.03,
        lai_opt=4,
        t_min=0,
        t_opt=23,
        t_max=42,
        m_leaf=0.0021,
        m_stem=0.001,
        m_root=0.0018,
        live_stem=0.5,
        live_root=1,
        q10_resp=2,
        growth_resp=0.22,
        alloc_leaf=0.85,
        alloc_stem=0.4,
        turn_leaf_yr=1,
        turn_stem_yr=2,
        turn_root_yr=1,
        shed_rate=0.08,
        gdd_onset=250,
        t_off=8,
        w_off=0.2,
        root_depth=1,
        combust_leaf=0.9,
        combust_stem=0.5,
        combust_litter=0.85,
        fire_mortality=0,
        moist_extinction=0.2,
        fire_biome="crop_residue",
    ),
)
PFT_CODES: tuple[str, ...] = tuple(p.code for p in PFTS)
NPFT = len(PFTS)

# Parameters that enter as arrays (numbers); the rest (code, name, fire_biome) are static labels.
NUMERIC_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(PFT) if f.name not in ("code", "name", "fire_biome")
)


def pft_index(code: str) -> int:
    """Index of a PFT code; the error lists the valid codes."""
    try:
        return PFT_CODES.index(code)
    except ValueError:
        raise KeyError(
            f"biosphere: unknown PFT code {code!r}; valid codes are {', '.join(PFT_CODES)}"
        ) from None


def default_table() -> dict[str, np.ndarray]:
    """``{parameter: (NPFT,) float64 array}`` of defaults, plus ``emission_factors`` ``(NPFT, 5)``."""
    table = {name: np.array([float(getattr(p, name)) for p in PFTS]) for name in NUMERIC_FIELDS}
    table["emission_factors"] = np.array([EMISSION_FACTORS[p.fire_biome] for p in PFTS])
    return table
