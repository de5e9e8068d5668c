"""CF unit strings of emission fields -> conversion to SI molar fluxes (mol m-2 s-1 or mol s-1 per cell).

Accepted forms (case matters for SI prefixes: ``Mg`` is a megagram, ``mg`` a milligram):

* amount: a mass (``g, kg, mg, ug, t/tonne/ton/Mg, kt/Gg, Mt/Tg, Gt/Pg``) or an amount of substance
  (``mol, kmol, mmol, umol, nmol``, ``molecules``/``molec``);
* optional basis for masses: the element or molecule the mass counts, written as its own token or glued
  to the mass unit: ``kg C``, ``gC``, ``TgN``, ``kg CH4``, ``kg N2O``. A basis element (``C``, ``N``, ``S``,
  ``F``, ``H``, ``O``) converts through the number of those atoms per molecule of the species (``kg N``
  of N2O: 2 N per molecule); a molecule must be the species' own formula;
* area: ``m-2``, ``km-2``, ``cm-2``, ``ha-1`` (flux densities), or none (per-cell totals; ``cell-1``,
  ``gridcell-1``, ``box-1`` are accepted and ignored);
* time: ``s-1``, ``min-1``, ``h-1``/``hr-1``, ``day-1``/``d-1``, ``month-1``/``mon-1``,
  ``yr-1``/``year-1``/``a-1``.
  A year is the Julian year (365.25 days, as in :mod:`diffflux.species`); a month is the calendar month
  of each record when the time axis says which month it is, else 365.25/12 days.

Exponents as ``m-2``, ``m^-2``, ``m**-2`` or ``/m2``; separators: spaces, ``.``, ``*``. Anything else raises a
ValueError naming the file, the variable and the accepted forms.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from diffflux.constants import AVOGADRO, SECONDS_PER_DAY, SECONDS_PER_YEAR
from diffflux.species import ATOMIC_WEIGHTS, Species, molar_mass_from_formula

MEAN_MONTH = SECONDS_PER_YEAR / 12.0
"""Length of a month when the calendar month is unknown [s] (365.25/12 days)."""

_MASS = {  # kg per unit (case-sensitive)
    "kg": 1.0, "g": 1e-3, "mg": 1e-6, "ug": 1e-9, "µg": 1e-9, "ng": 1e-12,
    "t": 1e3, "tonne": 1e3, "tonnes": 1e3, "ton": 1e3, "tons": 1e3, "Mg": 1e3,
    "kt": 1e6, "Gg": 1e6, "Mt": 1e9, "Tg": 1e9, "Gt": 1e12, "Pg": 1e12,
}
_AMOUNT = {  # mol per unit
    "mol": 1.0, "kmol": 1e3, "mmol": 1e-3, "umol": 1e-6, "µmol": 1e-6, "nmol": 1e-9,
    "molec": 1.0 / AVOGADRO, "molecule": 1.0 / AVOGADRO, "molecules": 1.0 / AVOGADRO,
}
_LENGTH = {"m": 1.0, "km": 1e3, "cm": 1e-2}
_AREA = {"ha": 1e4}
_TIME = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": SECONDS_PER_DAY, "day": SECONDS_PER_DAY, "days": SECONDS_PER_DAY,
    "yr": SECONDS_PER_YEAR, "year": SECONDS_PER_YEAR, "years": SECONDS_PER_YEAR, "a": SECONDS_PER_YEAR,
    "y": SECONDS_PER_YEAR,
}
_MONTH = {"month", "months", "mon", "mo"}
_CELL = {"cell", "gridcell", "grid", "box", "gridbox", "grid_cell"}

ACCEPTED = ("a mass or amount (kg, g, t, Mg, Gg, Tg, mol, molecules; optionally with a basis such as 'kg C' "
            "or 'TgN'), optionally per area (m-2, km-2, cm-2, ha-1; none = per-cell total), per time (s-1, "
            "h-1, day-1, month-1, yr-1), e.g. 'kg m-2 s-1', 'g C m-2 month-1', 'Mg month-1', "
            "'mol m-2 s-1', 'molecules cm-2 s-1', 'kt yr-1'")


@dataclasses.dataclass(frozen=True)
class FluxUnits:
    """A parsed emission unit.

    Attributes:
        text: the unit string.
        mol_per_unit: mol of the species per unit of the amount (after the basis conversion).
        per_area: True for flux densities, False for per-cell totals.
        m2_per_area_unit: m2 in the area unit (1 for m-2); 1 for per-cell totals.
        seconds: seconds per time unit, or None for calendar months.
    """

    text: str
    mol_per_unit: float
    per_area: bool
    m2_per_area_unit: float
    seconds: float | None

    def factor(self, month_seconds=None) -> np.ndarray | float:
        """Multiplier to mol m-2 s-1 (densities) or mol s-1 (per-cell totals).

        Args:
            month_seconds: seconds of each record's month (broadcastable to the time axis) for
                per-month units; default :data:`MEAN_MONTH`.
        """
        seconds = self.seconds
        if seconds is None:
            seconds = MEAN_MONTH if month_seconds is None else np.asarray(month_seconds, dtype=np.float64)
        return self.mol_per_unit / (self.m2_per_area_unit * seconds)

    @property
    def is_monthly(self) -> bool:
        return self.seconds is None


def _tokens(text: str) -> list[tuple[str, int, str]]:
    s = text.strip().replace("**", "").replace("^", "")
    parts = s.split("/")
    out = []
    for ip, part in enumerate(parts):
        sign = 1 if ip == 0 else -1
        for tok in re.split(r"[\s.*·]+", part.strip()):
            if not tok or tok == "1":
                continue
            m = re.fullmatch(r"([A-Za-zµ_][A-Za-z0-9µ_]*?)(-?\d+)?", tok)
            if m is None:
                raise ValueError(tok)
            out.append((m.group(1), sign * (int(m.group(2)) if m.group(2) else 1), tok))
    return out


def sign_of(token: str, text: str) -> int:
    """+1 when ``token`` appears before any '/' of ``text`` (numerator), else -1."""
    head = text.split("/")[0]
    return 1 if re.search(rf"(^|[\s.*·]){re.escape(token)}($|[\s.*·])", head) else -1


def _is_formula(tok: str) -> bool:
    try:
        molar_mass_from_formula(tok)
    except ValueError:
        return False
    return True


def _atoms(formula: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for el, n in re.findall(r"([A-Z][a-z]?)(\d*)", formula):
        counts[el] = counts.get(el, 0) + (int(n) if n else 1)
    return counts


def parse_flux_units(units: str | None, species: Species, *, where: str, variable: str) -> FluxUnits:
    """Parse an emission unit string for ``species`` (see the module docstring).

    Raises:
        ValueError: missing, unparseable or dimensionally wrong units, or a basis that does not fit the
            species; the message names ``where`` (the file) and ``variable``.
    """
    if units is None or str(units).strip() == "":
        raise ValueError(f"{where}: variable '{variable}' has no units attribute; expected {ACCEPTED}")
    text = str(units)

    def bad(reason: str) -> ValueError:
        return ValueError(
            f"{where}: variable '{variable}' has units '{text}' ({reason}); expected {ACCEPTED}"
        )

    try:
        toks = _tokens(text)
    except ValueError as exc:
        raise bad(f"cannot parse '{exc}'") from None
    amount = None  # (kind, factor)
    basis = None
    length_exp, area_factor, time_s, month, time_exp = 0, 1.0, None, False, 0
    for name, exp, raw in toks:
        low = name.lower()
        # chemical formulas carry digits that are not exponents ("CH4", "kgN2O")
        if raw[:1].isupper() and raw not in _MASS and _is_formula(raw) and sign_of(raw, text) > 0:
            if basis is not None:
                raise bad("more than one mass basis")
            basis = raw
            continue
        glued_raw = next((m for m in sorted(_MASS, key=len, reverse=True)
                          if raw.startswith(m) and len(raw) > len(m) and raw[len(m):][:1].isupper()
                          and _is_formula(raw[len(m):])), None)
        if glued_raw is not None and sign_of(raw, text) > 0:
            if amount is not None:
                raise bad("expected exactly one mass or amount unit with exponent 1")
            amount = ("mass", _MASS[glued_raw])
            basis = raw[len(glued_raw):]
            continue
        if name in _MASS or (low in _MASS and low not in ("mg",)) or name in _AMOUNT or low in _AMOUNT:
            if amount is not None or exp != 1:
                raise bad("expected exactly one mass or amount unit with exponent 1")
            amount = ("mass", _MASS[name]) if name in _MASS else (
                ("mass", _MASS[low]) if low in _MASS else ("mol", _AMOUNT.get(name, _AMOUNT.get(low))))
            continue
        if low in _LENGTH:
            length_exp += exp
            area_factor *= _LENGTH[low] ** (-exp) if exp < 0 else 1.0
            if exp > 0:
                raise bad("a length appears in the numerator")
            continue
        if low in _AREA:
            if exp != -1:
                raise bad("hectares must appear once in the denominator")
            length_exp -= 2
            area_factor *= _AREA[low]
            continue
        if low in _TIME or low in _MONTH:
            time_exp += exp
            if low in _MONTH:
                month = True
            else:
                time_s = _TIME[low]
            continue
        if low in _CELL and exp == -1:
            continue
        raise bad(f"unknown unit '{name}'")
    if amount is None:
        raise bad("no mass or amount unit")
    if time_exp != -1 or (month and time_s is not None):
        raise bad("expected exactly one time unit in the denominator (a rate)")
    if length_exp not in (0, -2):
        raise bad("expected per area (m-2) or no area (per-cell total)")
    kind, factor = amount
    if kind == "mol":
        if basis is not None and basis != species.formula:
            raise bad(f"an amount of {basis} cannot be converted to {species.name}")
        mol_per_unit = factor
    else:
        if basis is None or basis == species.formula or basis.lower() == species.name.lower():
            mol_per_unit = factor / species.molar_mass
        elif basis in ATOMIC_WEIGHTS:
            n = _atoms(species.formula).get(basis, 0)
            if n == 0:
                raise bad(f"species {species.name} ({species.formula}) contains no {basis}")
            mol_per_unit = factor / (n * ATOMIC_WEIGHTS[basis] * 1e-3)
        else:
            raise bad(f"mass basis {basis} does not match species {species.name} ({species.formula})")
    return FluxUnits(text=text, mol_per_unit=mol_per_unit, per_area=length_exp == -2,
                     m2_per_area_unit=area_factor if length_exp == -2 else 1.0,
                     seconds=None if month else time_s)
