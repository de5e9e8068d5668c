"""Physical constants used throughout diffflux (SI units).

Each constant carries its unit and source. Values follow the conventions of common chemistry-transport
models (GEOS-Chem, TM5) so that air masses and conversions match theirs.
"""

EARTH_RADIUS = 6.371e6
"""Mean Earth radius [m] (IUGG mean radius R1, rounded as in TRANSPORT.md)."""

GRAVITY = 9.80665
"""Standard gravitational acceleration [m s-2] (CGPM 1901, conventional value)."""

R_GAS = 8.314462618
"""Molar gas constant [J mol-1 K-1] (CODATA 2018, exact)."""

M_AIR = 28.9644e-3
"""Molar mass of dry air [kg mol-1] (US Standard Atmosphere 1976)."""

R_DRY = R_GAS / M_AIR
"""Specific gas constant of dry air [J kg-1 K-1] (= R_GAS / M_AIR, about 287.05)."""

CP_DRY = 1004.64
"""Specific heat of dry air at constant pressure [J kg-1 K-1] (ECMWF IFS documentation)."""

OMEGA_EARTH = 7.292115e-5
"""Earth's rotation rate [rad s-1] (IERS)."""

P_REF = 1.0e5
"""Reference surface pressure [Pa] used to define hybrid level sets."""

SECONDS_PER_DAY = 86400.0
"""[s]"""

SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY
"""Julian year [s], used for lifetimes and reporting rates."""

AVOGADRO = 6.02214076e23
"""Avogadro constant [mol-1] (CODATA 2018, exact)."""

M_C = 12.011e-3
"""Molar mass of carbon [kg mol-1] (IUPAC standard atomic weight), for PgC reporting."""

M_N = 14.007e-3
"""Molar mass of nitrogen [kg mol-1] (IUPAC), for TgN reporting."""
