"""A light CF-1.8 check of the products diffflux writes (not a full CF checker).

The allow-list holds only the standard names the products use, copied with their canonical units from the
CF Standard Name Table (https://cfconventions.org/Data/cf-standard-names/current/build/cf-standard-name-table.html).
No standard name is used where the table has none that fits: the table has mole-flux names for CO2 only
(``surface_upward_mole_flux_of_carbon_dioxide``); methane and the other species, and single flux components
(fossil, NEE ...), whose CF names are mass fluxes "expressed as carbon" in kg m-2 s-1, carry a
``long_name`` only. Observation tables mix species in one variable, so their values carry no standard
name either.
"""

from __future__ import annotations

import os
import re

import numpy as np
import xarray as xr

STANDARD_NAMES: dict[str, tuple[str, ...]] = {
    # standard name: accepted unit strings (the canonical unit and spellings of it we write)
    "time": ("since",),  # any "<unit> since <date>"
    "latitude": ("degrees_north",),
    "longitude": ("degrees_east",),
    "altitude": ("m",),
    "cell_area": ("m2",),
    "surface_upward_mole_flux_of_carbon_dioxide": ("mol m-2 s-1",),
}
"""The CF standard names diffflux products use (canonical units from the CF table)."""

MODIFIERS = ("standard_error", "status_flag", "number_of_observations", "detection_minimum")
"""CF standard-name modifiers (Appendix C) accepted after a standard name."""

_TIME_UNITS = re.compile(
    r"^\s*(seconds?|minutes?|hours?|days?)\s+since\s+(\d{1,4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(?:Z|UTC|\+00:?00)?\s*$"
)


def parse_time_units(units: str) -> tuple[str, np.datetime64] | None:
    """``("seconds", reference)`` from a CF time unit such as ``"seconds since 2021-01-01 00:00:00"``; None
    if it cannot be parsed."""
    m = _TIME_UNITS.match(units or "")
    if not m:
        return None
    unit, y, mo, d, h, mi, s = m.groups()
    try:
        ref = np.datetime64(
            f"{int(y):04d}-{int(mo):02d}-{int(d):02d}T{int(h or 0):02d}:{int(mi or 0):02d}:{int(s or 0):02d}",
            "s",
        )
    except ValueError:
        return None
    return unit.rstrip("s") + "s", ref


def _refs(attr: str | None) -> list[str]:
    """Variable names referenced by a blank-separated attribute (``"area: cell_area"`` -> cell_area)."""
    if not attr:
        return []
    return [w for w in str(attr).split() if not w.endswith(":")]


def cf_check(path: str | os.PathLike) -> list[str]:
    """Problems found in a netCDF file; an empty list means clean.

    Checked: the ``Conventions`` attribute names CF; every numeric variable has ``units`` (bounds
    variables inherit them); ``standard_name`` values are in :data:`STANDARD_NAMES` (optionally with a
    :data:`MODIFIERS` modifier) with a unit the table allows; dimension coordinates have ``units`` and
    ``axis``; time units parse; ``bounds``, ``cell_measures`` and ``ancillary_variables`` name existing
    variables; ``cell_methods`` names dimensions of the variable (or ``area``).
    """
    problems: list[str] = []
    with xr.open_dataset(path, decode_cf=False) as ds:
        conv = str(ds.attrs.get("Conventions", ""))
        if not conv.startswith("CF-"):
            problems.append(f"global attribute Conventions is {conv!r}, expected 'CF-1.8'")
        names = set(ds.variables)
        bounds_of = {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}
        for name, var in ds.variables.items():
            attrs = var.attrs
            where = f"variable {name!r}"
            units = attrs.get("units")
            numeric = var.dtype.kind in "fiuc"
            if numeric and name not in bounds_of and not units:
                problems.append(f"{where} has no units")
            if units and " since " in str(units) and parse_time_units(str(units)) is None:
                problems.append(f"{where}: time units {units!r} cannot be parsed")
            if var.dims == (name,) and numeric and "axis" not in attrs:
                problems.append(f"coordinate {name!r} has no axis attribute")
            sn = attrs.get("standard_name")
            if sn:
                parts = str(sn).split()
                base, mods = parts[0], parts[1:]
                if base not in STANDARD_NAMES:
                    problems.append(f"{where}: standard_name {base!r} is not in the allow-list")
                elif mods:
                    if len(mods) > 1 or mods[0] not in MODIFIERS:
                        problems.append(f"{where}: unknown standard_name modifier {' '.join(mods)!r}")
                elif units:
                    ok = STANDARD_NAMES[base]
                    if not (str(units) in ok or ("since" in ok and " since " in str(units))):
                        problems.append(
                            f"{where}: units {units!r} do not fit standard_name {base!r} "
                            f"(expected {' or '.join(ok)})"
                        )
            for key in ("bounds", "cell_measures", "ancillary_variables"):
                for ref in _refs(attrs.get(key)):
                    if ref not in names:
                        problems.append(f"{where}: {key} refers to missing variable {ref!r}")
            cm = attrs.get("cell_methods")
            if cm:
                for token in re.findall(r"(\w+):", str(cm)):
                    if token not in var.dims and token != "area":
                        problems.append(f"{where}: cell_methods names {token!r}, not a dimension of it")
    return problems
