"""Named regions and their fractional masks on any model grid.

A region mask is an array ``(nlat, nlon)`` in [0, 1]: the fraction of each model cell's area inside the
region (on the sphere). Masks are static NumPy inputs (cached per grid), not traced.

Region names (case-insensitive; an optional ``kind:`` prefix selects the namespace, and is required only
when a bare name is ambiguous, e.g. ``SAU`` = Saudi Arabia (``country:SAU``) or S.Australia
(``ar6:SAU``)):

=================  =========================================================================================
kind               names
=================  =========================================================================================
``globe``          ``globe``
``surface``        ``land`` (Natural Earth 1:50m land, lakes excluded;
                   :func:`diffflux.geography.land_fraction`) and ``ocean`` (``1 - land``: inland
                   water not in the land layer, e.g. the Caspian Sea, counts as ocean)
``hemisphere``     ``NH``, ``SH``
``lat``            latitude bands ``<a>-<b>`` with ``a < b`` as ``30S``, ``0`` (or ``EQ``), ``30N``;
                   any band is accepted, e.g. ``lat:15S-15N``; the standard set is :data:`STANDARD_BANDS`
``ar6``            the 58 IPCC AR6 WGI reference regions by acronym (``EAS``, ``WCE``, ...; Iturbide et al.
                   2020), see :mod:`diffflux.regions.ar6`
``basin``          ocean basins ``Atlantic``, ``Pacific``, ``Indian``, ``Southern``, ``Arctic`` and
                   ``North/South Atlantic``, ``North/South Pacific``, see :func:`basin_labels`
``country``        ISO 3166-1 alpha-3 codes (``JPN``, ``USA``, ...; :mod:`diffflux.geography`)
=================  =========================================================================================

Exactness: latitude bands, hemispheres and the globe are computed analytically (overlaps in
``sin(lat)``); all other masks are boolean rasters at 1/12 degree aggregated with exact overlap areas, so
the area of a mask on any grid equals the area of its raster to round-off. ``surface="land"`` or
``"ocean"`` intersects a region with the land or sea raster at 1/12 degree before aggregating.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np

from diffflux import geography
from diffflux.grid import LatLonGrid
from diffflux.regions.ar6 import ar6_raster, ar6_regions

STANDARD_BANDS: tuple[str, ...] = (
    "90S-30S", "30S-30N", "30N-90N",
    "90S-60S", "60S-30S", "30S-0", "0-30N", "30N-60N", "60N-90N",
)
"""The latitude bands listed by :func:`region_names` (others are parsed on request)."""

BASINS: tuple[str, ...] = ("Atlantic", "Pacific", "Indian", "Southern", "Arctic",
                           "North Atlantic", "South Atlantic", "North Pacific", "South Pacific")
"""Ocean basin names."""

SOUTHERN_OCEAN_NORTH_EDGE = -44.0
"""Northern boundary of the Southern Ocean basin [degrees N]: near the Subtropical Front (40-45S)."""

ARCTIC_SOUTH_EDGE = 66.5
"""Southern boundary of the Arctic basin [degrees N] (the Arctic Circle)."""

# Atlantic/Pacific divide in the Americas: longitude [degrees E] as a piecewise-linear function of
# latitude, drawn over land (Andes, Isthmus of Panama, Central America, Mexico, Canada) so that only the
# cells of narrow straits and coastal lagoons can fall on the wrong side.
_AMERICAS_DIVIDE = np.array([
    (-90.0, -70.0), (-44.0, -70.0), (-18.0, -69.5), (0.0, -77.0), (8.0, -77.3), (9.0, -79.6),
    (11.0, -85.0), (15.0, -89.0), (17.0, -94.5), (19.0, -97.0), (30.0, -105.0), (90.0, -100.0),
])
ATLANTIC_INDIAN_DIVIDE = 20.0
"""Atlantic/Indian boundary south of Africa [degrees E] (meridian of Cape Agulhas)."""
INDIAN_PACIFIC_DIVIDE = 147.0
"""Indian/Pacific boundary south of Australia [degrees E] (Tasmania)."""


@dataclasses.dataclass(frozen=True)
class Region:
    """A named region.

    Attributes:
        name: canonical name with its kind, e.g. ``"ar6:EAS"``, ``"country:JPN"``, ``"lat:30N-60N"``.
        kind: one of ``globe, surface, hemisphere, lat, ar6, basin, country``.
        key: the name within its kind (``"EAS"``, ``"JPN"``, ``(-30.0, 30.0)`` for bands...).
        long_name: human-readable name.
    """

    name: str
    kind: str
    key: object
    long_name: str


def _lat_label(v: float) -> str:
    if v == 0:
        return "0"
    return f"{abs(v):g}{'N' if v > 0 else 'S'}"


def _parse_band(text: str) -> tuple[float, float] | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?|eq)\s*([ns]?)\s*-\s*(\d+(?:\.\d+)?|eq)\s*([ns]?)\s*", text.lower())
    if m is None:
        return None

    def value(num, hemi):
        if num == "eq":
            return 0.0
        v = float(num)
        if v != 0 and hemi == "":
            return None
        return -v if hemi == "s" else v

    a, b = value(m.group(1), m.group(2)), value(m.group(3), m.group(4))
    if a is None or b is None:
        return None
    return a, b


@functools.cache
def _lookup_table() -> dict[str, list[Region]]:
    table: dict[str, list[Region]] = {}

    def add(reg: Region, *keys: str) -> None:
        for k in {reg.name.lower(), *(k.lower() for k in keys)}:
            table.setdefault(k, []).append(reg)

    add(Region("globe", "globe", "globe", "whole globe"), "global", "world")
    add(Region("land", "surface", "land", "land (Natural Earth 1:50m)"))
    add(Region("ocean", "surface", "ocean", "ocean (1 - land)"))
    add(Region("NH", "hemisphere", (0.0, 90.0), "Northern Hemisphere"), "northern hemisphere")
    add(Region("SH", "hemisphere", (-90.0, 0.0), "Southern Hemisphere"), "southern hemisphere")
    for acr, reg in ar6_regions().items():
        add(Region(f"ar6:{acr}", "ar6", acr, f"AR6 {reg.name} ({reg.surface})"), acr, reg.name)
    for b in BASINS:
        add(Region(f"basin:{b}", "basin", b, f"{b} Ocean basin"), b, f"{b} Ocean")
    for c in geography.countries():
        add(Region(f"country:{c.iso_a3}", "country", c.iso_a3, c.name), c.iso_a3, c.name)
    return table


def region_names(kind: str | None = None) -> list[str]:
    """Canonical names of all listed regions (latitude bands: the standard set), optionally of one kind."""
    seen: dict[str, Region] = {}
    for regs in _lookup_table().values():
        for r in regs:
            seen[r.name] = r
    names = [r.name for r in seen.values() if kind in (None, r.kind)]
    if kind in (None, "lat"):
        names += [f"lat:{b}" for b in STANDARD_BANDS]
    order = {"globe": 0, "surface": 1, "hemisphere": 2, "lat": 3, "ar6": 4, "basin": 5, "country": 6}

    def sort_key(n):
        k = n.split(":")[0] if ":" in n else next(iter(_lookup_table()[n.lower()])).kind
        return order.get(k, 9)

    return sorted(dict.fromkeys(names), key=sort_key)


def _valid_names_message() -> str:
    groups: dict[str, list[str]] = {}
    for n in region_names():
        kind = n.split(":")[0] if ":" in n else _lookup_table()[n.lower()][0].kind
        groups.setdefault(kind, []).append(n.split(":", 1)[1] if ":" in n else n)
    parts = [f"{k}: {', '.join(v)}" for k, v in groups.items()]
    return "; ".join(parts) + " (latitude bands: any '<a>-<b>' such as '15S-15N')"


def region(name: str | Region) -> Region:
    """Resolve a region name (see the module docstring); raise ``KeyError`` listing the valid names."""
    if isinstance(name, Region):
        return name
    if not isinstance(name, str):
        raise TypeError(f"region: expected a region name, found {type(name).__name__}")
    text = name.strip()
    kind = None
    if ":" in text:
        kind, text = (s.strip() for s in text.split(":", 1))
        kind = kind.lower()
        if kind not in ("globe", "surface", "hemisphere", "lat", "ar6", "basin", "country"):
            raise KeyError(
                f"region: unknown region kind {kind!r} in {name!r}; valid kinds: globe, surface, "
                f"hemisphere, lat, ar6, basin, country"
            )
    band = _parse_band(text) if kind in (None, "lat") else None
    if band is not None:
        lo, hi = band
        if not (-90.0 <= lo < hi <= 90.0):
            raise KeyError(f"region: latitude band {name!r} must run from south to north within 90S-90N")
        label = f"{_lat_label(lo)}-{_lat_label(hi)}"
        return Region(f"lat:{label}", "lat", (lo, hi), f"latitude band {label}")
    cands = _lookup_table().get(text.lower(), [])
    if kind is not None:
        cands = [r for r in cands if r.kind == kind]
    cands = list({r.name: r for r in cands}.values())
    if len(cands) == 1:
        return cands[0]
    if len(cands) > 1:
        raise KeyError(
            f"region: {name!r} is ambiguous: it may be "
            f"{' or '.join(f'{r.name} ({r.long_name})' for r in cands)}; use the prefixed name"
        )
    raise KeyError(f"region: unknown region {name!r}; valid names are: {_valid_names_message()}")


# -------------------------------------------------------------------------------------------------
# ocean basins on the raster
# -------------------------------------------------------------------------------------------------


@functools.cache
def basin_labels() -> np.ndarray:
    """Basin index of every sea cell of the packaged raster ``(180 res, 360 res)`` (0 on land).

    1 Atlantic, 2 Pacific, 3 Indian, 4 Southern, 5 Arctic. Rules (evaluated at raster cell centres):

    * Southern: south of :data:`SOUTHERN_OCEAN_NORTH_EDGE` (44 S); Arctic: north of
      :data:`ARCTIC_SOUTH_EDGE` (66.5 N).
    * In between, the Americas divide (a line over land: Andes, Panama, Central America, Mexico,
      Canada) separates the Pacific (west) from the Atlantic (east). East of it the Atlantic reaches
      20 E, and north of 30 N up to 100 E (Mediterranean, Black Sea; also the Caspian Sea, which the land
      layer leaves as water).
    * Indian: 20 E - 100 E south of 30 N, and 100 E - 147 E south of the equator, except the Indonesian
      seas (105 E - 147 E, north of 8 S), which are Pacific. Pacific: everything else (100 E eastward
      north of the equator, 147 E eastward in the south, and west of the Americas divide).
    """
    lat, lon = geography.raster_centres()
    sea = ~geography.land_raster()
    la = lat[:, None]
    lo = lon[None, :]
    divide = np.interp(lat, _AMERICAS_DIVIDE[:, 0], _AMERICAS_DIVIDE[:, 1])[:, None]
    west_of_americas = lo < divide
    atlantic = ~west_of_americas & ((lo < ATLANTIC_INDIAN_DIVIDE) | ((la > 30.0) & (lo < 100.0)))
    indian = (~atlantic & (lo >= ATLANTIC_INDIAN_DIVIDE) & (lo < 100.0) & (la <= 30.0)) | (
        (lo >= 100.0) & (lo < INDIAN_PACIFIC_DIVIDE) & (la < 0.0)
        & ~((lo >= 105.0) & (la > -8.0)))
    labels = np.full(sea.shape, 2, dtype=np.uint8)
    labels[np.broadcast_to(atlantic, sea.shape)] = 1
    labels[np.broadcast_to(indian, sea.shape)] = 3
    labels[lat < SOUTHERN_OCEAN_NORTH_EDGE] = 4
    labels[lat > ARCTIC_SOUTH_EDGE] = 5
    labels[~sea] = 0
    labels.setflags(write=False)
    return labels


_BASIN_CODE = {"Atlantic": 1, "Pacific": 2, "Indian": 3, "Southern": 4, "Arctic": 5}


# -------------------------------------------------------------------------------------------------
# masks
# -------------------------------------------------------------------------------------------------


def _band_fraction(grid: LatLonGrid, lo: float, hi: float) -> np.ndarray:
    """Exact fraction of each cell between latitudes ``lo`` and ``hi`` (overlap in sin(lat))."""
    e = np.asarray(grid.lat_edges, dtype=np.float64)
    s0, s1 = np.maximum(e[:-1], lo), np.minimum(e[1:], hi)
    frac = np.where(s1 > s0, np.sin(np.deg2rad(s1)) - np.sin(np.deg2rad(s0)), 0.0)
    frac = frac / (np.sin(np.deg2rad(e[1:])) - np.sin(np.deg2rad(e[:-1])))
    return np.broadcast_to(np.clip(frac, 0.0, 1.0)[:, None], (grid.nlat, grid.nlon)).copy()


def _raster_window(reg: Region) -> tuple[np.ndarray, slice, slice] | None:
    """Boolean raster window of a raster-defined region."""
    if reg.kind == "ar6":
        return ar6_raster(reg.key)
    if reg.kind == "basin":
        labels = basin_labels()
        name = str(reg.key)
        base = name.split()[-1]
        hit = labels == _BASIN_CODE[base]
        if name.startswith("North"):
            hit = hit & (geography.raster_centres()[0] >= 0.0)[:, None]
        elif name.startswith("South "):
            hit = hit & (geography.raster_centres()[0] < 0.0)[:, None]
        win = geography.bounding_window(hit)
        return None if win is None else (hit[win], *win)
    if reg.kind == "country":
        idx = geography.country(reg.key).indices
        hit = np.isin(geography.country_raster(), idx)
        win = geography.bounding_window(hit)
        return None if win is None else (hit[win], *win)
    if reg.kind in ("lat", "hemisphere", "globe", "surface"):
        lat, _ = geography.raster_centres()
        lo, hi = reg.key if reg.kind in ("lat", "hemisphere") else (-90.0, 90.0)
        rows = np.flatnonzero((lat >= lo) & (lat < hi))
        if rows.size == 0:
            return None
        r = slice(rows[0], rows[-1] + 1)
        nlon = geography.raster_centres()[1].size
        mask = np.ones((rows.size, nlon), dtype=bool)
        if reg.kind == "surface":
            land = geography.land_raster()
            mask = land if reg.key == "land" else ~land
        return mask, r, slice(0, nlon)
    raise AssertionError(reg.kind)  # pragma: no cover


def region_mask(grid: LatLonGrid, name: str | Region, *, surface: str | None = None,
                share: str | None = None) -> np.ndarray:
    """Fractional mask ``(nlat, nlon)`` in [0, 1] of a named region on ``grid``.

    Args:
        grid: model grid.
        name: region name (module docstring) or :class:`Region`.
        surface: None (the whole region), ``"land"`` or ``"ocean"``: intersect with the land or sea
            raster at 1/12 degree first (e.g. ``region_mask(grid, "ar6:MED", surface="land")``).
        share: None, ``"land"`` or ``"ocean"``: instead of the fraction of the cell's area, the fraction
            of the cell's *land* (or sea) area that lies in the region (0 in cells without land/sea).
            Use it for budgets of fluxes that sit on land (anthropogenic, biosphere) or on the sea: in a
            coastal cell such a flux belongs to the country owning the cell's land, however small the
            land part (an area-fraction mask of Japan at 1 degree misses ~30 % of its emissions).

    Returns:
        Read-only float64 array: the fraction of each cell's area (or land/sea area) inside the region.
    """
    reg = region(name)
    if surface not in (None, "land", "ocean"):
        raise ValueError(f"region_mask: surface must be None, 'land' or 'ocean', found {surface!r}")
    if share not in (None, "land", "ocean"):
        raise ValueError(f"region_mask: share must be None, 'land' or 'ocean', found {share!r}")
    if share is not None:
        if surface is not None:
            raise ValueError("region_mask: give either surface or share, not both")
        part = _mask_cached(grid.nlon, grid.nlat, reg, share)
        whole = _mask_cached(grid.nlon, grid.nlat, region(share), None)
        frac = np.where(whole > 1e-12, part / np.where(whole > 1e-12, whole, 1.0), 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        frac.setflags(write=False)
        return frac
    return _mask_cached(grid.nlon, grid.nlat, reg, surface)


@functools.lru_cache(maxsize=1024)
def _mask_cached(nlon: int, nlat: int, reg: Region, surface: str | None) -> np.ndarray:
    grid = LatLonGrid(nlon=nlon, nlat=nlat)
    if surface is None and reg.kind in ("lat", "hemisphere"):
        frac = _band_fraction(grid, *reg.key)
    elif surface is None and reg.kind == "globe":
        frac = np.ones((nlat, nlon))
    elif reg.kind == "surface" and surface is None:
        land = geography.land_fraction(grid)
        frac = np.array(land) if reg.key == "land" else 1.0 - land
    else:
        win = _raster_window(reg)
        if win is None:
            frac = np.zeros((nlat, nlon))
        else:
            mask, rows, cols = win
            if surface is not None:
                land = geography.land_raster()[rows, cols]
                mask = mask & (land if surface == "land" else ~land)
            frac = geography.aggregate_raster(mask, grid, rows, cols)
    frac = np.clip(frac, 0.0, 1.0)
    frac.setflags(write=False)
    return frac


def region_masks(grid: LatLonGrid, names, *, surface: str | None = None,
                 share: str | None = None) -> np.ndarray:
    """Stack of masks ``(nregion, nlat, nlon)`` for a list of region names (see :func:`region_mask`)."""
    names = [names] if isinstance(names, (str, Region)) else list(names)
    if not names:
        raise ValueError("region_masks: no region names given")
    return np.stack([region_mask(grid, n, surface=surface, share=share) for n in names])


def region_area(grid: LatLonGrid, name: str | Region, *, surface: str | None = None) -> float:
    """Area of a region on ``grid`` [m2] (``sum(mask * cell area)``)."""
    return float((region_mask(grid, name, surface=surface) * grid.area).sum())
