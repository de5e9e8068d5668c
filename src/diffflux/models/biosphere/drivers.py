"""Biosphere drivers: daily weather per land cell, static surface maps, and their sources.

Everything is on the *land cells* of the model grid (cells with a vegetated fraction > 0), flattened to
a 1-D ``cell`` axis; :class:`SurfaceMaps` keeps the map from cells back to ``(lat, lon)``.

Daily weather (:class:`DailyWeather`, each ``(ncell,)``):

======================  ============  =======================================================
field                   unit          meaning
======================  ============  =======================================================
``tair``                K             daily mean 2 m air temperature
``trange``              K             diurnal temperature range (max - min)
``tsoil``               K             daily mean top-soil temperature
``swdown``              W m-2         daily mean downward shortwave at the surface
``daylength``           s             time between sunrise and sunset
``precip``              kg m-2 s-1    daily mean precipitation (rain + snow)
``vpd``                 Pa            daytime vapour-pressure deficit
``co2``                 mol mol-1     atmospheric CO2 dry-air mole fraction
``ch4``                 mol mol-1     atmospheric CH4 dry-air mole fraction
======================  ============  =======================================================

A :class:`DriverSource` returns them for a day index ``d`` (``0 <= d < 365`` in the built-in
climatology; any integer for file drivers, which repeat cyclically) as a pure JAX function, evaluated
inside the biosphere's ``lax.scan``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid
from diffflux.models.biosphere.pft import NPFT, PFT_CODES

WEATHER_FIELDS = ("tair", "trange", "tsoil", "swdown", "daylength", "precip", "vpd", "co2", "ch4")


class DailyWeather(eqx.Module):
    """Weather of one day at every land cell (see the module table for units); each ``(ncell,)``."""

    tair: jax.Array
    trange: jax.Array
    tsoil: jax.Array
    swdown: jax.Array
    daylength: jax.Array
    precip: jax.Array
    vpd: jax.Array
    co2: jax.Array
    ch4: jax.Array


@dataclass(frozen=True, eq=False)
class SurfaceMaps:
    """Static surface properties on the land cells of ``grid`` (NumPy; not traced).

    Attributes:
        grid: the model grid.
        cell_j, cell_i: ``(ncell,)`` latitude and longitude indices of each land cell.
        land_fraction: ``(ncell,)`` land fraction of the cell [-].
        pft_fraction: ``(ncell, NPFT)`` fraction of the *land* of each cell covered by each PFT; the rest
            of the land (``1 - sum``) is bare (desert, ice, rock).
        wetland_fraction: ``(ncell,)`` fraction of the land that is natural wetland [-].
        paddy_fraction: ``(ncell,)`` fraction of the land under flooded rice [-].
        n_input: ``(ncell,)`` nitrogen applied to cropland per unit *land* area [g N m-2 yr-1].
        porosity, field_capacity, wilting_point: ``(ncell,)`` volumetric soil water contents [m3 m-3].
        ph: ``(ncell,)`` soil pH [-].
    """

    grid: LatLonGrid
    cell_j: np.ndarray
    cell_i: np.ndarray
    land_fraction: np.ndarray
    pft_fraction: np.ndarray
    wetland_fraction: np.ndarray
    paddy_fraction: np.ndarray
    n_input: np.ndarray
    porosity: np.ndarray
    field_capacity: np.ndarray
    wilting_point: np.ndarray
    ph: np.ndarray

    def __post_init__(self) -> None:
        validate_maps(self)

    @classmethod
    def with_loam(cls, grid: LatLonGrid, cell_j, cell_i, **fields) -> SurfaceMaps:
        """Maps whose soils are a uniform loam (porosity 0.45, field capacity 0.30, wilting point 0.12,
        pH 6.5; Clapp & Hornberger 1978 class values); ``fields`` gives the other attributes."""
        n = np.asarray(cell_j).size
        soils = {"porosity": 0.45, "field_capacity": 0.30, "wilting_point": 0.12, "ph": 6.5}
        return cls(grid=grid, cell_j=np.asarray(cell_j), cell_i=np.asarray(cell_i),
                   **{k: np.full(n, v) for k, v in soils.items()}, **fields)

    @property
    def ncell(self) -> int:
        return int(self.cell_j.size)

    @property
    def cell_area(self) -> np.ndarray:
        """Land area of each cell [m2], ``(ncell,)``."""
        return self.grid.area[self.cell_j, self.cell_i] * self.land_fraction

    def to_grid(self, values, fill=0.0):
        """Scatter ``(..., ncell)`` values to ``(..., nlat, nlon)`` (JAX; differentiable)."""
        values = jnp.asarray(values)
        out = jnp.full(values.shape[:-1] + (self.grid.nlat, self.grid.nlon), fill, dtype=values.dtype)
        return out.at[..., self.cell_j, self.cell_i].set(values)


def _fail(source: str, variable: str, message: str):
    raise ValueError(f"{source}: variable {variable!r}: {message}")


def validate_maps(maps: SurfaceMaps, source: str = "SurfaceMaps") -> None:
    """Check ranges and consistency of the static maps; errors name the variable and the bad values."""
    n = maps.cell_j.size
    if maps.pft_fraction.shape != (n, NPFT):
        _fail(
            source,
            "pft_fraction",
            f"expected shape ({n}, {NPFT}) for PFTs {PFT_CODES}, found {maps.pft_fraction.shape}",
        )
    for name in (
        "land_fraction",
        "wetland_fraction",
        "paddy_fraction",
        "porosity",
        "field_capacity",
        "wilting_point",
    ):
        a = np.asarray(getattr(maps, name))
        if a.shape != (n,):
            _fail(source, name, f"expected shape ({n},), found {a.shape}")
        bad = ~np.isfinite(a) | (a < 0) | (a > 1)
        if bad.any():
            _fail(
                source, name, f"fractions must lie in [0, 1]; {bad.sum()} values outside, e.g. {a[bad][:5]}"
            )
    f = maps.pft_fraction
    if (~np.isfinite(f)).any() or (f < -1e-12).any():
        _fail(source, "pft_fraction", f"must be finite and >= 0; found min {np.nanmin(f)}")
    total = f.sum(axis=1)
    if (total > 1 + 1e-6).any():
        k = np.argmax(total)
        _fail(
            source,
            "pft_fraction",
            f"PFT fractions (plus bare ground) must sum to one per cell; "
            f"{(total > 1 + 1e-6).sum()} cells sum to more, e.g. {total[k]:.6f} at lat index "
            f"{maps.cell_j[k]}, lon index {maps.cell_i[k]}",
        )
    if (maps.wetland_fraction + maps.paddy_fraction > 1 + 1e-9).any():
        _fail(source, "wetland_fraction", "wetland plus paddy fraction exceeds one")
    if (
        not (maps.wilting_point < maps.field_capacity).all()
        or not (maps.field_capacity < maps.porosity).all()
    ):
        _fail(source, "field_capacity", "need wilting_point < field_capacity < porosity in every cell")
    if (maps.n_input < 0).any() or (~np.isfinite(maps.n_input)).any():
        _fail(source, "n_input", f"must be finite and >= 0 g N m-2 yr-1, found min {np.nanmin(maps.n_input)}")


class DriverSource(eqx.Module):
    """Abstract source of daily weather on the land cells."""

    @abc.abstractmethod
    def weather(self, day) -> DailyWeather:
        """Weather of day index ``day`` (traced integer)."""

    @property
    @abc.abstractmethod
    def days_per_cycle(self) -> int:
        """Length of the repeating cycle in days (365 for a climatological year)."""


class ArrayDrivers(DriverSource):
    """Daily weather held as arrays ``(ndays, ncell)``, repeated cyclically (e.g. read from netCDF)."""

    fields: dict[str, jax.Array]

    @property
    def days_per_cycle(self) -> int:
        return int(self.fields["tair"].shape[0])

    def weather(self, day) -> DailyWeather:
        d = jnp.mod(day, self.days_per_cycle)
        return DailyWeather(**{k: self.fields[k][d] for k in WEATHER_FIELDS})


# Plausible bounds of each weather variable, used to catch unit mistakes (C for K, mm/day for kg m-2 s-1).
WEATHER_BOUNDS = {
    "tair": (180.0, 340.0, "K (a value below 180 suggests degrees Celsius were given)"),
    "trange": (0.0, 40.0, "K"),
    "tsoil": (180.0, 340.0, "K (a value below 180 suggests degrees Celsius were given)"),
    "swdown": (0.0, 500.0, "W m-2 daily mean"),
    "daylength": (0.0, 86400.0, "s"),
    "precip": (0.0, 2e-3, "kg m-2 s-1 (2e-3 is 173 mm per day; larger values suggest mm/day)"),
    "vpd": (0.0, 1e4, "Pa (a value above 1e4 suggests hPa were mislabelled or Pa*100)"),
    "co2": (1e-4, 2e-3, "mol mol-1 (400 ppm is 4e-4)"),
    "ch4": (3e-7, 1e-5, "mol mol-1 (1900 ppb is 1.9e-6)"),
}


def validate_weather(fields: dict[str, np.ndarray], source: str) -> None:
    """Check that every weather field is present, finite and within plausible physical bounds."""
    for name in WEATHER_FIELDS:
        if name not in fields:
            _fail(source, name, f"missing; the biosphere needs {', '.join(WEATHER_FIELDS)}")
        a = np.asarray(fields[name])
        if not np.isfinite(a).all():
            _fail(source, name, f"{(~np.isfinite(a)).sum()} non-finite values")
        lo, hi, unit = WEATHER_BOUNDS[name]
        tol = 1e-9 * max(abs(lo), abs(hi))
        if a.min() < lo - tol or a.max() > hi + tol:
            _fail(
                source,
                name,
                f"values must lie in [{lo}, {hi}] {unit}; found range [{a.min():.6g}, {a.max():.6g}]",
            )
