"""Mole-fraction and pressure unit strings of observation files, converted to SI (mol mol-1, Pa).

Observation files write the same unit in many ways: ObsPack uses ``"mol mol-1"``, satellite lite files
``"ppm"`` or ``"1e-6"``, older files ``"micromol mol-1"`` or ``"umol/mol"``. :func:`mole_fraction_scale`
accepts the common spellings and refuses anything else with a message that names the file and the
variable, instead of guessing.
"""

from __future__ import annotations

import re

_MOLE_FRACTION: dict[str, float] = {
    "mol mol-1": 1.0,
    "mol/mol": 1.0,
    "mol mol^-1": 1.0,
    "mol.mol-1": 1.0,
    "1": 1.0,
    "mole fraction": 1.0,
    "mole_fraction": 1.0,
    "ppm": 1e-6,
    "ppmv": 1e-6,
    "micromol mol-1": 1e-6,
    "micromol/mol": 1e-6,
    "umol mol-1": 1e-6,
    "umol/mol": 1e-6,
    "\u00b5mol mol-1": 1e-6,
    "\u00b5mol/mol": 1e-6,
    "1e-6": 1e-6,
    "ppb": 1e-9,
    "ppbv": 1e-9,
    "nmol mol-1": 1e-9,
    "nmol/mol": 1e-9,
    "nanomol mol-1": 1e-9,
    "1e-9": 1e-9,
    "ppt": 1e-12,
    "pptv": 1e-12,
    "pmol mol-1": 1e-12,
    "pmol/mol": 1e-12,
    "picomol mol-1": 1e-12,
    "1e-12": 1e-12,
}
"""Accepted spellings (lower case, single spaces) -> value of one unit in mol mol-1."""

_PRESSURE: dict[str, float] = {
    "pa": 1.0,
    "hpa": 100.0,
    "mb": 100.0,
    "mbar": 100.0,
    "kpa": 1000.0,
    "atm": 101325.0,
}
"""Accepted pressure units (lower case) -> value in Pa."""

_LENGTH: dict[str, float] = {"m": 1.0, "meters": 1.0, "metres": 1.0, "meter": 1.0, "km": 1000.0}
"""Accepted length units (lower case) -> value in m."""


def _normalise(unit: str) -> str:
    u = unit.strip().lower().replace("**", "^")
    u = re.sub(r"\s+", " ", u)
    # scientific notation variants: "1.0e-6", "1e-06", "10^-6"
    m = re.fullmatch(r"(?:1(?:\.0*)?e|10\^)([+-]?\d+)", u)
    if m:
        return f"1e-{abs(int(m.group(1)))}" if int(m.group(1)) < 0 else f"1e{int(m.group(1))}"
    return u


def mole_fraction_scale(unit: str | None, *, where: str = "", variable: str = "value") -> float:
    """Value of one ``unit`` in mol mol-1 (``"ppm"`` -> 1e-6).

    Args:
        unit: the units attribute or CSV unit column.
        where: file name (or other origin) for the error message.
        variable: variable name for the error message.

    Raises:
        ValueError: unknown or missing unit, naming ``where``, ``variable``, the unit found and the
            accepted spellings.
    """
    if unit is None or str(unit).strip() == "":
        raise ValueError(
            f"{where}: variable '{variable}' has no units attribute; expected a mole-fraction unit such "
            f"as 'mol mol-1', 'ppm', 'ppb' or 'ppt'"
        )
    key = _normalise(str(unit))
    if key not in _MOLE_FRACTION:
        raise ValueError(
            f"{where}: variable '{variable}' has unknown units {unit!r}; expected a mole-fraction unit, "
            f"one of {sorted(set(_MOLE_FRACTION))}"
        )
    return _MOLE_FRACTION[key]


def _scale(table: dict, kind: str, unit: str | None, where: str, variable: str) -> float:
    key = "" if unit is None else str(unit).strip().lower()
    if key not in table:
        raise ValueError(
            f"{where}: variable '{variable}' has units {unit!r}; expected a {kind} unit, one of "
            f"{sorted(table)}"
        )
    return table[key]


def pressure_scale(unit: str | None, *, where: str = "", variable: str = "pressure") -> float:
    """Value of one pressure ``unit`` in Pa (``"hPa"`` -> 100). Errors like :func:`mole_fraction_scale`."""
    return _scale(_PRESSURE, "pressure", unit, where, variable)


def length_scale(unit: str | None, *, where: str = "", variable: str = "altitude") -> float:
    """Value of one length ``unit`` in m. Errors like :func:`mole_fraction_scale`."""
    return _scale(_LENGTH, "length", unit, where, variable)
