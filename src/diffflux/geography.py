"""Packaged geography: land fraction and country fractions on any regular lat-lon grid.

The source is ``data/geography_5min.npz``: Natural Earth 1:50m countries and land rasterised to a global
1/12-degree raster (see ``data/README.md`` and ``scripts/build_geography.py``). Fractions on a model grid
are exact area-weighted averages of the fine raster: each fine cell contributes the spherical area of its
overlap with a model cell, computed separately in ``sin(latitude)`` and longitude (exact for rectilinear
cells on the sphere), so model grids whose edges are not multiples of 1/12 degree are handled too.

Results are NumPy arrays ``(nlat, nlon)`` in [0, 1], cached per grid; they are static inputs to the
differentiable chain, not traced.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

from diffflux.grid import LatLonGrid


@dataclass(frozen=True)
class Country:
    """One country (or territory) of the packaged table.

    Attributes:
        indices: values of the country in the packaged raster (1-based; several where Natural Earth
            splits one ISO unit, e.g. Australia and Ashmore and Cartier Is.).
        iso_a3: ISO 3166-1 alpha-3 code (``X..`` codes for units without an ISO code).
        iso_numeric: ISO 3166-1 numeric code (-1 where there is none).
        name: short English name.
    """

    indices: tuple[int, ...]
    iso_a3: str
    iso_numeric: int
    name: str


@functools.cache
def _raster() -> tuple[np.ndarray, np.ndarray, int]:
    with resources.files("diffflux.data").joinpath("geography_5min.npz").open("rb") as fh:
        data = np.load(fh)
        country = data["country"]
        res = int(data["cells_per_degree"])
        land = np.unpackbits(data["land"])[: country.size].reshape(country.shape).astype(bool)
    return country, land, res


@functools.cache
def countries() -> tuple[Country, ...]:
    """The packaged country table, ordered by raster index."""
    with resources.files("diffflux.data").joinpath("countries.csv").open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r["iso_a3"], []).append(r)
    table = []
    for code, group in grouped.items():
        first = group[0]
        table.append(
            Country(tuple(int(r["index"]) for r in group), code, int(first["iso_numeric"]), first["name"])
        )
    return tuple(sorted(table, key=lambda c: c.indices[0]))


def country(code: str) -> Country:
    """Look a country up by ISO alpha-3 code (case-insensitive) or exact name."""
    table = countries()
    for c in table:
        if code.upper() == c.iso_a3 or code == c.name:
            return c
    valid = ", ".join(sorted(c.iso_a3 for c in table))
    raise KeyError(f"geography: unknown country {code!r}; valid ISO alpha-3 codes are: {valid}")


def _overlap_lat(edges: np.ndarray, res: int) -> np.ndarray:
    """``(n_coarse, 180 res)`` overlap of fine rows with coarse rows, in units of d(sin lat)."""
    fine = np.linspace(-90.0, 90.0, 180 * res + 1)
    lo = np.maximum(edges[:-1, None], fine[None, :-1])
    hi = np.minimum(edges[1:, None], fine[None, 1:])
    return np.where(hi > lo, np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo)), 0.0)


def _overlap_lon(edges: np.ndarray, res: int) -> np.ndarray:
    """``(n_coarse, 360 res)`` overlap of fine columns with coarse columns [degrees]."""
    fine = np.linspace(-180.0, 180.0, 360 * res + 1)
    lo = np.maximum(edges[:-1, None], fine[None, :-1])
    hi = np.minimum(edges[1:, None], fine[None, 1:])
    return np.where(hi > lo, hi - lo, 0.0)


@functools.lru_cache(maxsize=16)
def _weights(nlon: int, nlat: int) -> tuple[np.ndarray, np.ndarray]:
    grid = LatLonGrid(nlon=nlon, nlat=nlat)
    _, _, res = _raster()
    wlat = _overlap_lat(np.asarray(grid.lat_edges, dtype=np.float64), res)
    wlon = _overlap_lon(np.asarray(grid.lon_edges, dtype=np.float64), res)
    wlat /= wlat.sum(axis=1, keepdims=True)
    wlon /= wlon.sum(axis=1, keepdims=True)
    return wlat, wlon


def _fraction(mask: np.ndarray, grid: LatLonGrid, rows=None, cols=None) -> np.ndarray:
    wlat, wlon = _weights(grid.nlon, grid.nlat)
    if rows is None:
        return wlat @ mask.astype(np.float64) @ wlon.T
    return wlat[:, rows] @ mask.astype(np.float64) @ wlon[:, cols].T


def land_fraction(grid: LatLonGrid) -> np.ndarray:
    """Land fraction of each model cell, ``(nlat, nlon)`` (Natural Earth 1:50m land; inland lakes count as
    land, the Caspian Sea as sea)."""
    return _land_fraction_cached(grid.nlon, grid.nlat)


@functools.lru_cache(maxsize=16)
def _land_fraction_cached(nlon: int, nlat: int) -> np.ndarray:
    _, land, _ = _raster()
    frac = _fraction(land, LatLonGrid(nlon=nlon, nlat=nlat))
    frac = np.clip(frac, 0.0, 1.0)
    frac.setflags(write=False)
    return frac


def country_fraction(grid: LatLonGrid, code: str) -> np.ndarray:
    """Fraction of each model cell inside country ``code`` (ISO alpha-3 or name), ``(nlat, nlon)``."""
    return _country_fraction_cached(grid.nlon, grid.nlat, country(code).indices)


@functools.lru_cache(maxsize=512)
def _country_fraction_cached(nlon: int, nlat: int, indices: tuple[int, ...]) -> np.ndarray:
    raster, _, _ = _raster()
    hit = np.isin(raster, indices)
    rows = np.flatnonzero(hit.any(axis=1))
    cols = np.flatnonzero(hit.any(axis=0))
    grid = LatLonGrid(nlon=nlon, nlat=nlat)
    if rows.size == 0:
        frac = np.zeros((nlat, nlon))
    else:
        r = slice(rows[0], rows[-1] + 1)
        c = slice(cols[0], cols[-1] + 1)
        frac = np.clip(_fraction(hit[r, c], grid, r, c), 0.0, 1.0)
    frac.setflags(write=False)
    return frac


def country_area(code: str) -> float:
    """Area of a country on the packaged 1/12-degree raster [m2] (sphere of radius ``EARTH_RADIUS``)."""
    from diffflux.constants import EARTH_RADIUS

    raster, _, res = _raster()
    hit = np.isin(raster, country(code).indices)
    lat_edges = np.deg2rad(np.linspace(-90.0, 90.0, 180 * res + 1))
    row_area = EARTH_RADIUS**2 * np.deg2rad(1.0 / res) * np.diff(np.sin(lat_edges))
    return float((hit.sum(axis=1) * row_area).sum())


# -------------------------------------------------------------------------------------------------
# public raster helpers (used by diffflux.regions and the built-in inventories)
# -------------------------------------------------------------------------------------------------


def raster_resolution() -> int:
    """Cells per degree of the packaged raster (12: 1/12 degree, 5 arc-minutes)."""
    return _raster()[2]


def raster_centres() -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre latitudes ``(180 res,)`` (south to north) and longitudes ``(360 res,)`` (from 180 W)
    of the packaged raster [degrees]."""
    res = raster_resolution()
    lat = -90.0 + (np.arange(180 * res) + 0.5) / res
    lon = -180.0 + (np.arange(360 * res) + 0.5) / res
    return lat, lon


def country_raster() -> np.ndarray:
    """The packaged country-index raster ``(180 res, 360 res)`` (read-only; 0 = no country; see
    :func:`countries` for the indices)."""
    raster = _raster()[0]
    raster.setflags(write=False)
    return raster


def land_raster() -> np.ndarray:
    """The packaged land/sea raster ``(180 res, 360 res)`` of booleans (read-only; inland lakes are land,
    the Caspian Sea is sea)."""
    land = _raster()[1]
    land.setflags(write=False)
    return land


def raster_cell_area() -> np.ndarray:
    """Area of one raster cell in each raster row ``(180 res,)`` [m2] (sphere of radius ``EARTH_RADIUS``)."""
    from diffflux.constants import EARTH_RADIUS

    res = raster_resolution()
    lat_edges = np.deg2rad(np.linspace(-90.0, 90.0, 180 * res + 1))
    return EARTH_RADIUS**2 * np.deg2rad(1.0 / res) * np.diff(np.sin(lat_edges))


def aggregate_raster(values: np.ndarray, grid: LatLonGrid, rows: slice | None = None,
                     cols: slice | None = None) -> np.ndarray:
    """Exact area-weighted mean of a field on the packaged raster over each model cell.

    Args:
        values: ``(180 res, 360 res)`` raster field (booleans give fractions), or a window of it given by
            ``rows`` and ``cols`` (zero is assumed outside the window).
        grid: model grid.
        rows, cols: slices of the raster that ``values`` covers (default: the whole raster).

    Returns:
        ``(nlat, nlon)`` mean of ``values`` over each model cell (overlap areas exact on the sphere).
    """
    from diffflux.met.regrid import ConservativeRegridder, RectilinearGrid

    res = raster_resolution()
    rows = rows if rows is not None else slice(0, 180 * res)
    cols = cols if cols is not None else slice(0, 360 * res)
    r0, r1, _ = rows.indices(180 * res)
    c0, c1, _ = cols.indices(360 * res)
    values = np.asarray(values)
    if values.shape != (r1 - r0, c1 - c0):
        raise ValueError(
            f"aggregate_raster: values of shape {values.shape} do not match the raster window "
            f"({r1 - r0}, {c1 - c0})"
        )
    # sparse exact overlaps (cost ~ number of window cells), zero outside the window
    window = RectilinearGrid(lat_edges=-90.0 + np.arange(r0, r1 + 1) / res,
                             lon_edges=-180.0 + np.arange(c0, c1 + 1) / res)
    out = ConservativeRegridder.build(window, grid).density(values.astype(np.float64), oriented=True)
    return out


def bounding_window(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the smallest window holding every True cell of ``mask`` (None if
    empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
