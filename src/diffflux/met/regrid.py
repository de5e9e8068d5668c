"""Horizontal regridding of global lon-lat fields and vertical interpolation in log-pressure.

Preprocessing code (NumPy, float64), run once when met is read; nothing here is traced.

Horizontal (source grid -> :class:`~diffflux.grid.LatLonGrid`), separable in latitude and longitude:

* **conservative** (scalars: surface pressure, temperature, Kz, fluxes per m2): the target value is
  the area-weighted mean of the source cells it overlaps, with exact spherical areas ``a^2 dlon (sin
  lat_n - sin lat_s)``. Overlaps are computed for any pair of grids (nested or not), so the global
  integral ``sum(A v)`` is preserved to round-off (first-order conservative remapping, Jones 1999,
  Mon. Wea. Rev. 127, 2204-2210, for lon-lat grids).
* **bilinear** (winds): linear in longitude (periodic) and latitude between source centres; target
  points poleward of the outermost source row take that row's value (constant extrapolation over at
  most half a source cell). Conservative averaging is available for winds too.

Source cell edges are the ``bounds`` variables when the file has them, otherwise midpoints between
centres, with the outermost latitude edges at the poles. Grids must be global: every problem (gap to
a pole, less than 360 degrees of longitude, non-monotonic or repeated coordinates) raises a
ValueError naming the file and the coordinate.

Vertical: :func:`interpolate_log_pressure`, linear in ``ln p`` between source levels, constant
beyond the outermost source levels (the count of such points is returned so callers can report it).

Flux fields (inventories, masks): :func:`rectilinear_grid` validates global *or regional* rectilinear
grids (bounds that must tile, windows across the date line) and :class:`ConservativeRegridder` remaps
flux densities or per-cell totals with exact spherical overlaps stored as banded sparse 1-D weights
(:class:`Overlap1D`), so 0.1-degree sources cost time proportional to their size; global totals are
preserved to ~1e-16 relative in float64.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from diffflux.grid import LatLonGrid


def _where(where: str) -> str:
    return f"{where}: " if where else ""


@dataclasses.dataclass(frozen=True, eq=False)
class SourceGrid:
    """A validated global source grid.

    Attributes:
        lat: ``(ny,)`` ascending latitude centres [degrees north].
        lon: ``(nx,)`` ascending longitude centres [degrees east] (within one 360-degree turn).
        lat_edges: ``(ny + 1,)`` ascending edges, ``-90`` and ``90`` at the ends.
        lon_edges: ``(nx + 1,)`` ascending edges, ``lon_edges[-1] = lon_edges[0] + 360``.
        lat_flip: the file's latitudes run north to south (fields are flipped on input).
        lon_order: ``(nx,)`` indices that put the file's longitude axis in ascending order.
    """

    lat: np.ndarray
    lon: np.ndarray
    lat_edges: np.ndarray
    lon_edges: np.ndarray
    lat_flip: bool
    lon_order: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    def orient(self, field: np.ndarray) -> np.ndarray:
        """Put a field ``(..., ny, nx)`` in file order into ascending latitude and longitude
        order."""
        field = np.asarray(field)
        if self.lat_flip:
            field = field[..., ::-1, :]
        return np.take(field, self.lon_order, axis=-1)

    def area(self, radius: float = 1.0) -> np.ndarray:
        """Cell areas ``(ny, nx)`` on a sphere of ``radius`` [m2 for radius in m]."""
        s = np.sin(np.deg2rad(self.lat_edges))
        s[0], s[-1] = -1.0, 1.0
        return radius**2 * np.outer(np.diff(s), np.deg2rad(np.diff(self.lon_edges)))

    def same_as(self, grid: LatLonGrid, tol: float = 1e-6) -> bool:
        """True when the source cells are the model grid's cells (within ``tol`` degrees)."""
        if self.lat.size != grid.nlat or self.lon.size != grid.nlon:
            return False
        if not np.allclose(self.lat_edges, grid.lat_edges, atol=tol, rtol=0):
            return False
        d = (self.lon_edges - grid.lon_edges + 180.0) % 360.0 - 180.0
        return bool(np.allclose(d, 0.0, atol=tol, rtol=0))


def _check_monotonic(values: np.ndarray, name: str, where: str) -> int:
    """Return +1 for strictly increasing, -1 for strictly decreasing; raise otherwise."""
    if values.ndim != 1:
        raise ValueError(
            f"{_where(where)}coordinate '{name}' must be one-dimensional (a regular lon-lat grid), "
            f"found shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{_where(where)}coordinate '{name}' contains non-finite values")
    if values.size < 2:
        raise ValueError(
            f"{_where(where)}coordinate '{name}' has {values.size} value(s); a global grid "
            "needs >= 2"
        )
    d = np.diff(values)
    if np.all(d > 0):
        return 1
    if np.all(d < 0):
        return -1
    k = int(np.argmax(d <= 0) if d[0] > 0 else np.argmax(d >= 0))
    raise ValueError(
        f"{_where(where)}coordinate '{name}' is not strictly monotonic: expected increasing or "
        f"decreasing values, found {values[k]:g} followed by {values[k + 1]:g} at index {k}"
    )


def _checked_coordinates(lat, lon, lat_name: str, lon_name: str, where: str):
    """Float64 coordinates checked monotonic with latitudes in [-90, 90].

    Returns ``(lat, lon, lat_s, lat_flip, lon_dir)``: ``lat_s`` south to north, ``lat_flip`` whether the
    file's latitudes run north to south, ``lon_dir`` the sign of the longitude direction.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat_dir = _check_monotonic(lat, lat_name, where)
    lon_dir = _check_monotonic(lon, lon_name, where)
    lat_flip = lat_dir < 0
    lat_s = lat[::-1] if lat_flip else lat
    if lat_s[0] < -90.0 - 1e-9 or lat_s[-1] > 90.0 + 1e-9:
        raise ValueError(
            f"{_where(where)}coordinate '{lat_name}' must lie in [-90, 90] degrees north, found "
            f"{lat_s[0]:g} .. {lat_s[-1]:g}"
        )
    return lat, lon, lat_s, lat_flip, lon_dir


def source_grid(
    lat,
    lon,
    *,
    lat_bounds=None,
    lon_bounds=None,
    lat_name: str = "lat",
    lon_name: str = "lon",
    where: str = "",
) -> SourceGrid:
    """Validate global lon-lat coordinates and build their cell edges.

    Args:
        lat, lon: 1-D centre coordinates [degrees]; latitude in either order, longitude increasing
            or decreasing in any 360-degree range (e.g. 0..360 or -180..180).
        lat_bounds, lon_bounds: optional ``(n, 2)`` CF bounds [degrees].
        lat_name, lon_name: coordinate names used in error messages.
        where: file (and variable) for error messages.

    Raises:
        ValueError: non-monotonic coordinates, latitudes outside [-90, 90], a latitude gap to a
            pole, or longitudes that do not cover 360 degrees (or repeat a point).
    """
    lat, lon, lat_s, lat_flip, _ = _checked_coordinates(lat, lon, lat_name, lon_name, where)

    # ---- latitude edges
    if lat_bounds is not None:
        b = np.asarray(lat_bounds, dtype=np.float64)
        b = b[::-1] if lat_flip else b
        lat_edges = np.concatenate([[b[0].min()], b.max(axis=1)])
        if not np.allclose(b.min(axis=1)[1:], b.max(axis=1)[:-1], atol=1e-6):
            raise ValueError(f"{_where(where)}bounds of '{lat_name}' are not contiguous")
    else:
        mid = 0.5 * (lat_s[1:] + lat_s[:-1])
        lat_edges = np.concatenate([[lat_s[0] - (mid[0] - lat_s[0])], mid,
                                    [lat_s[-1] + (lat_s[-1] - mid[-1])]])
    tol = 1e-3 * float(np.min(np.diff(lat_s)))
    if lat_edges[0] > -90.0 + tol or lat_edges[-1] < 90.0 - tol:
        raise ValueError(
            f"{_where(where)}grid does not cover the globe: the cells of '{lat_name}' span "
            f"{lat_edges[0]:g} .. {lat_edges[-1]:g} degrees north (centres {lat_s[0]:g} .. "
            f"{lat_s[-1]:g}); expected cells reaching both poles (-90 and 90)"
        )
    lat_edges = np.clip(lat_edges, -90.0, 90.0)
    if np.any(np.diff(lat_edges) <= 0):
        raise ValueError(f"{_where(where)}cells of '{lat_name}' have non-positive widths")

    # ---- longitude: sort into one turn starting near -180
    wrapped = (lon + 180.0) % 360.0 - 180.0
    order = np.argsort(wrapped, kind="stable")
    lon_s = wrapped[order]
    if np.any(np.diff(lon_s) <= 1e-9):
        k = int(np.argmax(np.diff(lon_s) <= 1e-9))
        raise ValueError(
            f"{_where(where)}coordinate '{lon_name}' repeats a longitude modulo 360 ({lon_s[k]:g} "
            f"degrees; a cyclic duplicate column such as 0 and 360): expected each meridian once. "
            f"Drop the duplicate, e.g. ds.isel({lon_name}=slice(None, -1))"
        )
    if lon_bounds is not None:
        b = np.asarray(lon_bounds, dtype=np.float64)[order]
        lo = b.min(axis=1)
        shift = lon_s - 0.5 * (b[:, 0] + b[:, 1])
        shift = 360.0 * np.round(shift / 360.0)
        lo = lo + shift
        hi = b.max(axis=1) + shift
        lon_edges = np.concatenate([lo[:1], hi])
        if not np.allclose(lo[1:], hi[:-1], atol=1e-6):
            raise ValueError(f"{_where(where)}bounds of '{lon_name}' are not contiguous")
    else:
        gaps = np.diff(np.concatenate([lon_s, [lon_s[0] + 360.0]]))
        mid = lon_s[:-1] + 0.5 * gaps[:-1]
        first = lon_s[0] - 0.5 * gaps[-1]
        lon_edges = np.concatenate([[first], mid, [first + 360.0]])
        big = int(np.argmax(gaps))
        if gaps[big] > 1.5 * np.median(gaps) + 1e-9:
            east = lon_s[(big + 1) % lon_s.size]
            raise ValueError(
                f"{_where(where)}grid does not cover the globe: coordinate '{lon_name}' has a gap "
                f"of {gaps[big]:g} degrees between {lon_s[big]:g} and {east:g} degrees east "
                f"(typical spacing {np.median(gaps):g}); expected 360 degrees of longitude"
            )
    if abs(lon_edges[-1] - lon_edges[0] - 360.0) > 1e-6:
        raise ValueError(
            f"{_where(where)}grid does not cover the globe: cells of '{lon_name}' span "
            f"{lon_edges[-1] - lon_edges[0]:g} degrees, expected 360"
        )
    return SourceGrid(
        lat=lat_s,
        lon=lon_s,
        lat_edges=lat_edges,
        lon_edges=lon_edges,
        lat_flip=lat_flip,
        lon_order=order,
    )


def model_source_grid(grid: LatLonGrid) -> SourceGrid:
    """The model grid itself as a :class:`SourceGrid` (for arrays already on the model grid)."""
    return SourceGrid(
        lat=grid.lat.copy(),
        lon=grid.lon.copy(),
        lat_edges=grid.lat_edges.copy(),
        lon_edges=grid.lon_edges.copy(),
        lat_flip=False,
        lon_order=np.arange(grid.nlon),
    )


# -------------------------------------------------------------------------------------------------
# 1-D weight matrices
# -------------------------------------------------------------------------------------------------


def _overlap(t0, t1, s0, s1):
    hi = np.minimum(t1[:, None], s1[None, :])
    lo = np.maximum(t0[:, None], s0[None, :])
    return np.maximum(0.0, hi - lo)


def conservative_lat_weights(src_edges, tgt_edges) -> np.ndarray:
    """``(nt, ns)`` weights: target value = ``W @ source`` for area-weighted latitude averaging.

    Overlaps are measured in ``sin(lat)`` (proportional to area on the sphere); each row sums to 1.
    """
    s = np.sin(np.deg2rad(np.asarray(src_edges, dtype=np.float64)))
    t = np.sin(np.deg2rad(np.asarray(tgt_edges, dtype=np.float64)))
    s[0], s[-1] = -1.0, 1.0
    t[0], t[-1] = -1.0, 1.0
    o = _overlap(t[:-1], t[1:], s[:-1], s[1:])
    return o / np.diff(t)[:, None]


def conservative_lon_weights(src_edges, tgt_edges) -> np.ndarray:
    """``(nt, ns)`` periodic overlap weights in longitude; each row sums to 1."""
    s = np.asarray(src_edges, dtype=np.float64)
    t = np.asarray(tgt_edges, dtype=np.float64)
    # bring the source start into [t0, t0 + 360) and add the neighbouring turns
    shift = np.floor((s[0] - t[0]) / 360.0) * 360.0
    s = s - shift
    o = np.zeros((t.size - 1, s.size - 1))
    for k in (-1, 0, 1):
        o += _overlap(t[:-1], t[1:], s[:-1] + 360.0 * k, s[1:] + 360.0 * k)
    return o / np.diff(t)[:, None]


def bilinear_lat_weights(src_centres, tgt_centres) -> np.ndarray:
    """``(nt, ns)`` linear interpolation in latitude; constant beyond the outermost source rows."""
    s = np.asarray(src_centres, dtype=np.float64)
    t = np.asarray(tgt_centres, dtype=np.float64)
    w = np.zeros((t.size, s.size))
    j = np.clip(np.searchsorted(s, t, side="right") - 1, 0, s.size - 2)
    f = np.clip((t - s[j]) / (s[j + 1] - s[j]), 0.0, 1.0)
    rows = np.arange(t.size)
    w[rows, j] += 1.0 - f
    w[rows, j + 1] += f
    return w


def bilinear_lon_weights(src_centres, tgt_centres) -> np.ndarray:
    """``(nt, ns)`` periodic linear interpolation in longitude."""
    s = np.asarray(src_centres, dtype=np.float64)
    t = np.asarray(tgt_centres, dtype=np.float64)
    n = s.size
    ext = np.concatenate([s, [s[0] + 360.0]])
    tt = s[0] + (t - s[0]) % 360.0
    i = np.clip(np.searchsorted(ext, tt, side="right") - 1, 0, n - 1)
    f = (tt - ext[i]) / (ext[i + 1] - ext[i])
    w = np.zeros((t.size, n))
    rows = np.arange(t.size)
    w[rows, i] += 1.0 - f
    w[rows, (i + 1) % n] += f
    return w


@dataclasses.dataclass(frozen=True, eq=False)
class HorizontalRegridder:
    """Separable regridding from a :class:`SourceGrid` to a model grid.

    ``conservative(field)`` and ``bilinear(field)`` take ``(..., ny, nx)`` in *file order* (the
    source orientation is applied) and return ``(..., nlat, nlon)`` on the model grid.
    """

    source: SourceGrid
    grid: LatLonGrid
    lat_cons: np.ndarray
    lon_cons: np.ndarray
    lat_bil: np.ndarray
    lon_bil: np.ndarray
    identity: bool = False

    @classmethod
    def build(cls, source: SourceGrid, grid: LatLonGrid) -> HorizontalRegridder:
        """Weights for ``source -> grid``; identical grids are copied exactly (``identity``)."""
        return cls(
            source=source,
            grid=grid,
            identity=source.same_as(grid),
            lat_cons=conservative_lat_weights(source.lat_edges, grid.lat_edges),
            lon_cons=conservative_lon_weights(source.lon_edges, grid.lon_edges),
            lat_bil=bilinear_lat_weights(source.lat, grid.lat),
            lon_bil=bilinear_lon_weights(source.lon, grid.lon),
        )

    @staticmethod
    def _apply(wlat, wlon, field):
        tmp = np.matmul(field, wlon.T)
        return np.matmul(wlat, tmp)

    def conservative(self, field, *, oriented: bool = False) -> np.ndarray:
        """Area-conservative remap of ``(..., ny, nx)`` to ``(..., nlat, nlon)``.

        ``field`` is in file order unless ``oriented`` (already ascending in lat and lon).
        """
        f = np.asarray(field, dtype=np.float64)
        f = f if oriented else self.source.orient(f)
        if self.identity:
            return f.copy()
        return self._apply(self.lat_cons, self.lon_cons, f)

    def bilinear(self, field, *, oriented: bool = False) -> np.ndarray:
        """Bilinear interpolation of ``(..., ny, nx)`` to ``(..., nlat, nlon)`` (see
        ``conservative``)."""
        f = np.asarray(field, dtype=np.float64)
        f = f if oriented else self.source.orient(f)
        if self.identity:
            return f.copy()
        return self._apply(self.lat_bil, self.lon_bil, f)


def regrid_conservative(field, lat, lon, grid: LatLonGrid, *, where: str = "") -> np.ndarray:
    """Area-conservative remap of ``field (..., ny, nx)`` on centres ``lat, lon`` to ``grid``."""
    src = source_grid(lat, lon, where=where)
    return HorizontalRegridder.build(src, grid).conservative(field)


def regrid_bilinear(field, lat, lon, grid: LatLonGrid, *, where: str = "") -> np.ndarray:
    """Bilinear interpolation of ``field (..., ny, nx)`` on centres ``lat, lon`` to ``grid``."""
    src = source_grid(lat, lon, where=where)
    return HorizontalRegridder.build(src, grid).bilinear(field)


# -------------------------------------------------------------------------------------------------
# vertical
# -------------------------------------------------------------------------------------------------


def interpolate_log_pressure(values, p_src, p_tgt):
    """Interpolate along the level axis linearly in ``ln p``.

    Args:
        values: ``(ns, ...)`` values on source levels (any level order).
        p_src: ``(ns,)`` or ``(ns, ...)`` source pressures [Pa], positive.
        p_tgt: ``(nt, ...)`` target pressures [Pa], positive.

    Returns:
        ``(result (nt, ...), n_outside)``: the interpolated values and the number of target points
        outside the source pressure range, where the nearest source level's value is used.
    """
    values = np.asarray(values, dtype=np.float64)
    p_tgt = np.asarray(p_tgt, dtype=np.float64)
    p_src = np.asarray(p_src, dtype=np.float64)
    if p_src.ndim == 1:
        p_src = p_src.reshape((-1,) + (1,) * (values.ndim - 1))
    p_src = np.broadcast_to(p_src, values.shape)
    if np.any(p_src <= 0) or np.any(p_tgt <= 0):
        raise ValueError("interpolate_log_pressure: pressures must be positive")
    ns = values.shape[0]
    if ns == 1:
        out = np.broadcast_to(values, (p_tgt.shape[0],) + values.shape[1:]).copy()
        return out, int(np.prod(out.shape))
    # sort source levels by pressure (ascending) column by column
    order = np.argsort(p_src, axis=0)
    lp = np.log(np.take_along_axis(p_src, order, axis=0))
    v = np.take_along_axis(values, order, axis=0)
    out = np.empty((p_tgt.shape[0],) + values.shape[1:])
    n_out = 0
    for t in range(p_tgt.shape[0]):
        x = np.log(np.broadcast_to(p_tgt[t], values.shape[1:]))
        idx = np.sum(lp < x[None], axis=0)
        lo = np.clip(idx - 1, 0, ns - 2)
        lp0 = np.take_along_axis(lp, lo[None], axis=0)[0]
        lp1 = np.take_along_axis(lp, lo[None] + 1, axis=0)[0]
        f = (x - lp0) / (lp1 - lp0)
        n_out += int(np.sum((f < 0) | (f > 1)))
        f = np.clip(f, 0.0, 1.0)
        v0 = np.take_along_axis(v, lo[None], axis=0)[0]
        v1 = np.take_along_axis(v, lo[None] + 1, axis=0)[0]
        out[t] = v0 + f * (v1 - v0)
    return out, n_out


# -------------------------------------------------------------------------------------------------
# rectilinear (global or regional) source grids and sparse exact-overlap conservative remapping
# -------------------------------------------------------------------------------------------------
#
# The dense 1-D weight matrices above are fine for met grids; flux inventories come at up to 0.1 degree
# (3600 x 1800 cells), where dense ``(nt, ns)`` matrices and their products become expensive. The classes
# below store, for every target cell, the few source cells it overlaps (a banded sparse matrix), so the
# cost of a remap is proportional to the number of (target, source) overlaps. Overlaps are exact on the
# sphere for rectilinear cells: in latitude they are measured in ``sin(lat)`` and in longitude in degrees,
# and the area of the overlap of two cells is ``a^2 * d(sin lat) * d(lon)`` (Jones 1999, first-order
# conservative remapping restricted to lon-lat cells).


@dataclasses.dataclass(frozen=True, eq=False)
class RectilinearGrid:
    """Cells of a rectilinear lon-lat grid, global or regional, with validated edges.

    Attributes:
        lat_edges: ``(ny + 1,)`` ascending latitude edges [degrees north], within [-90, 90].
        lon_edges: ``(nx + 1,)`` ascending longitude edges [degrees east]; their span is at most 360
            degrees (exactly 360 for a global grid).
        lat_flip: the file's latitudes run north to south (fields are flipped by :meth:`orient`).
        lon_order: ``(nx,)`` indices putting the file's longitude axis in ascending order.
        where: file (and variable) for error messages.
    """

    lat_edges: np.ndarray
    lon_edges: np.ndarray
    lat_flip: bool = False
    lon_order: np.ndarray | None = None
    where: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return (self.lat_edges.size - 1, self.lon_edges.size - 1)

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes ``(ny,)`` [degrees north] (mid-points of the edges)."""
        return 0.5 * (self.lat_edges[1:] + self.lat_edges[:-1])

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes ``(nx,)`` [degrees east] (mid-points of the edges)."""
        return 0.5 * (self.lon_edges[1:] + self.lon_edges[:-1])

    @property
    def is_global(self) -> bool:
        """True when the cells cover the whole sphere."""
        return bool(
            abs(self.lon_edges[-1] - self.lon_edges[0] - 360.0) < 1e-6
            and self.lat_edges[0] <= -90.0 + 1e-9
            and self.lat_edges[-1] >= 90.0 - 1e-9
        )

    def orient(self, field) -> np.ndarray:
        """Put a field ``(..., ny, nx)`` in file order into ascending latitude and longitude order."""
        field = np.asarray(field)
        if field.ndim < 2 or field.shape[-2:] != self.shape:
            raise ValueError(
                f"{_where(self.where)}field of shape {field.shape} does not match the grid: expected "
                f"(..., {self.shape[0]}, {self.shape[1]}) (..., lat, lon)"
            )
        if self.lat_flip:
            field = field[..., ::-1, :]
        if self.lon_order is not None:
            field = np.take(field, self.lon_order, axis=-1)
        return field

    def area(self, radius: float = 1.0) -> np.ndarray:
        """Exact spherical cell areas ``(ny, nx)`` [m2 for ``radius`` in m]."""
        s = np.sin(np.deg2rad(self.lat_edges))
        s = np.where(self.lat_edges <= -90.0, -1.0, np.where(self.lat_edges >= 90.0, 1.0, s))
        return radius**2 * np.outer(np.diff(s), np.deg2rad(np.diff(self.lon_edges)))

    @classmethod
    def from_model(cls, grid: LatLonGrid) -> RectilinearGrid:
        """The model grid's cells (south to north, west to east from -180)."""
        return cls(lat_edges=np.asarray(grid.lat_edges, dtype=np.float64),
                   lon_edges=np.asarray(grid.lon_edges, dtype=np.float64), where="model grid")

    @classmethod
    def regular(cls, dlat: float, dlon: float, *, lat0: float = -90.0, lon0: float = -180.0,
                nlat: int | None = None, nlon: int | None = None) -> RectilinearGrid:
        """A regular grid of ``dlat x dlon`` degree cells from ``(lat0, lon0)``, global by default."""
        ny = int(round((90.0 - lat0) / dlat)) if nlat is None else nlat
        nx = int(round(360.0 / dlon)) if nlon is None else nlon
        return cls(lat_edges=np.clip(lat0 + dlat * np.arange(ny + 1), -90.0, 90.0),
                   lon_edges=lon0 + dlon * np.arange(nx + 1))


def _edges_from_bounds(bounds: np.ndarray, centres: np.ndarray, name: str, where: str) -> np.ndarray:
    """Ascending edges from CF ``(n, 2)`` bounds of ascending centres; cells must tile (no gap/overlap)."""
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (centres.size, 2):
        raise ValueError(
            f"{_where(where)}bounds of '{name}' must have shape ({centres.size}, 2), found {b.shape}"
        )
    lo, hi = b.min(axis=1), b.max(axis=1)
    if np.any(hi - lo <= 0):
        k = int(np.argmax(hi - lo <= 0))
        raise ValueError(f"{_where(where)}cell {k} of '{name}' has zero width (bounds {b[k].tolist()})")
    if np.any((centres < lo - 1e-6) | (centres > hi + 1e-6)):
        k = int(np.argmax((centres < lo - 1e-6) | (centres > hi + 1e-6)))
        raise ValueError(
            f"{_where(where)}centre {centres[k]:g} of '{name}' lies outside its bounds {b[k].tolist()}"
        )
    gap = lo[1:] - hi[:-1]
    if np.any(np.abs(gap) > 1e-6 * max(1.0, float(np.max(hi - lo)))):
        k = int(np.argmax(np.abs(gap) > 1e-6))
        kind = "a gap" if gap[k] > 0 else "an overlap"
        raise ValueError(
            f"{_where(where)}cells of '{name}' do not tile: {kind} of {abs(gap[k]):g} degrees between "
            f"cell {k} (bounds {lo[k]:g} .. {hi[k]:g}) and cell {k + 1} (bounds {lo[k + 1]:g} .. "
            f"{hi[k + 1]:g}); expected each cell to start where the previous one ends"
        )
    return np.concatenate([lo[:1], hi])


def _edges_from_centres(c: np.ndarray, name: str, where: str) -> np.ndarray:
    """Ascending edges half-way between ascending centres; the outer cells are mirrored."""
    if c.size == 1:
        raise ValueError(
            f"{_where(where)}coordinate '{name}' has a single value and no bounds: the cell width is "
            "unknown; add a CF bounds variable"
        )
    d = np.diff(c)
    # Edges from centres only make sense for (near-)uniform spacing: with irregular spacing the centres
    # cannot be the mid-points of contiguous cells, and a file written that way does not tile.
    mid = 0.5 * (c[1:] + c[:-1])
    edges = np.concatenate([[c[0] - 0.5 * d[0]], mid, [c[-1] + 0.5 * d[-1]]])
    width = np.diff(edges)
    if np.any(np.abs(width - d.mean()) > 1e-3 * d.mean() + 1e-9) and not np.allclose(
            0.5 * (edges[1:] + edges[:-1]), c, atol=1e-6):
        k = int(np.argmax(np.abs(0.5 * (edges[1:] + edges[:-1]) - c) > 1e-6))
        raise ValueError(
            f"{_where(where)}coordinate '{name}' is irregularly spaced (spacing {d.min():g} .. "
            f"{d.max():g} degrees) and has no bounds: its cells cannot be reconstructed so that they "
            f"tile (centre {c[k]:g} is not the mid-point of its cell); add CF bounds"
        )
    return edges


def rectilinear_grid(
    lat,
    lon,
    *,
    lat_bounds=None,
    lon_bounds=None,
    lat_name: str = "lat",
    lon_name: str = "lon",
    where: str = "",
    require_global: bool = False,
) -> RectilinearGrid:
    """Validate the coordinates of a global or regional rectilinear lon-lat grid and build its cells.

    Args:
        lat, lon: 1-D centre coordinates [degrees]; either order (descending latitudes are flipped),
            longitudes in any convention (0..360, -180..180, or a regional window crossing the date line
            such as 100..260).
        lat_bounds, lon_bounds: optional CF bounds ``(n, 2)`` [degrees]; without them the edges are the
            mid-points between centres (the outer cells mirrored; latitude edges within 1e-6 of a half
            cell beyond a pole are clipped to the pole).
        lat_name, lon_name, where: names and file for error messages.
        require_global: raise unless the cells cover the sphere.

    Raises:
        ValueError: coordinates that are not 1-D, not finite or not strictly monotonic; latitudes outside
            [-90, 90]; bounds with gaps or overlaps; cells spanning more than 360 degrees of longitude or
            repeating a meridian; irregular spacing without bounds; a regional grid when
            ``require_global``.
    """
    lat, lon, lat_s, lat_flip, lon_dir = _checked_coordinates(lat, lon, lat_name, lon_name, where)
    if lat_bounds is not None:
        lb = np.asarray(lat_bounds, dtype=np.float64)
        lat_edges = _edges_from_bounds(lb[::-1] if lat_flip else lb, lat_s, lat_name, where)
    else:
        lat_edges = _edges_from_centres(lat_s, lat_name, where)
        # mirrored outer cells of pole-centred grids (ERA-like) reach half a cell beyond the pole
        lat_edges = np.clip(lat_edges, -90.0, 90.0)
    if lat_edges[0] < -90.0 - 1e-6 or lat_edges[-1] > 90.0 + 1e-6:
        raise ValueError(
            f"{_where(where)}bounds of '{lat_name}' reach beyond the poles ({lat_edges[0]:g} .. "
            f"{lat_edges[-1]:g} degrees north)"
        )
    lat_edges = np.clip(lat_edges, -90.0, 90.0)
    if np.any(np.diff(lat_edges) <= 0):
        raise ValueError(f"{_where(where)}cells of '{lat_name}' have non-positive widths")

    # longitude: ascending in the file's own convention first
    order = np.arange(lon.size) if lon_dir > 0 else np.arange(lon.size)[::-1]
    lon_s = lon[order]
    if lon_bounds is not None:
        lb = np.asarray(lon_bounds, dtype=np.float64)[order]
        # bounds may use another convention than the centres (e.g. centres 0..360, bounds -180..180)
        shift = 360.0 * np.round((lon_s - 0.5 * (lb[:, 0] + lb[:, 1])) / 360.0)
        lon_edges = _edges_from_bounds(lb + shift[:, None], lon_s, lon_name, where)
    else:
        if lon_s[-1] - lon_s[0] >= 360.0 - 1e-9:
            raise ValueError(
                f"{_where(where)}coordinate '{lon_name}' repeats a longitude modulo 360 ({lon_s[0]:g} "
                f"and {lon_s[-1]:g} degrees; a cyclic duplicate column): expected each meridian once"
            )
        lon_edges = _edges_from_centres(lon_s, lon_name, where)
        span = lon_edges[-1] - lon_edges[0]
        # the last cell of a global grid from centres may close the circle with a slightly different width
        if abs(span - 360.0) < 0.5 * np.diff(lon_s).min():
            lon_edges[-1] = lon_edges[0] + 360.0
    span = lon_edges[-1] - lon_edges[0]
    if span > 360.0 + 1e-6:
        raise ValueError(
            f"{_where(where)}cells of '{lon_name}' do not tile the sphere: they span {span:g} degrees of "
            f"longitude (from {lon_edges[0]:g} to {lon_edges[-1]:g}), more than 360, so some cells overlap"
        )
    grid = RectilinearGrid(lat_edges=lat_edges, lon_edges=lon_edges, lat_flip=lat_flip,
                           lon_order=None if lon_dir > 0 else order, where=where)
    if require_global and not grid.is_global:
        raise ValueError(
            f"{_where(where)}grid is not global: its cells span {lat_edges[0]:g} .. {lat_edges[-1]:g} "
            f"degrees north and {span:g} degrees of longitude; expected the whole sphere"
        )
    return grid


@dataclasses.dataclass(frozen=True, eq=False)
class Overlap1D:
    """Banded sparse overlaps along one axis: target cell ``t`` overlaps source cells ``index[t, :]``.

    Attributes:
        index: ``(nt, K)`` source indices (padding entries have ``weight = 0``).
        weight: ``(nt, K)`` overlap measure: ``d(sin lat)`` in latitude, degrees in longitude.
        target_width: ``(nt,)`` the target cells' widths in the same measure.
        source_width: ``(ns,)`` the source cells' widths in the same measure.
    """

    index: np.ndarray
    weight: np.ndarray
    target_width: np.ndarray
    source_width: np.ndarray

    @property
    def n_source(self) -> int:
        return self.source_width.size

    def apply(self, field: np.ndarray, axis: int, *, normalise: bool = True) -> np.ndarray:
        """``out[..., t, ...] = sum_k weight[t, k] field[..., index[t, k], ...]`` (divided by the target
        width when ``normalise``: the overlap-weighted mean)."""
        f = np.moveaxis(np.asarray(field), axis, -1)
        out = np.einsum("...tk,tk->...t", f[..., self.index], self.weight)
        if normalise:
            out = out / self.target_width
        return np.moveaxis(out, -1, axis)


def _banded_overlaps(t_edges: np.ndarray, s_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                          np.ndarray, np.ndarray]:
    """Sparse overlaps of ascending target cells with ascending source cells: (index, lo, hi, valid)."""
    ns = s_edges.size - 1
    j0 = np.clip(np.searchsorted(s_edges, t_edges[:-1], side="right") - 1, 0, ns - 1)
    j1 = np.clip(np.searchsorted(s_edges, t_edges[1:], side="left") - 1, 0, ns - 1)
    k = max(int(np.max(j1 - j0)) + 1, 1)
    idx = j0[:, None] + np.arange(k)[None, :]
    valid = idx <= j1[:, None]
    idx = np.minimum(idx, ns - 1)
    lo = np.maximum(t_edges[:-1, None], s_edges[idx])
    hi = np.minimum(t_edges[1:, None], s_edges[idx + 1])
    valid &= hi > lo
    return idx, lo, hi, valid


def lat_overlaps(src_edges, tgt_edges) -> Overlap1D:
    """Exact latitude overlaps in ``d(sin lat)`` between ascending edge sets [degrees north]."""
    s = np.asarray(src_edges, dtype=np.float64)
    t = np.asarray(tgt_edges, dtype=np.float64)
    idx, lo, hi, valid = _banded_overlaps(t, s)

    def sin(x):
        return np.where(x <= -90.0, -1.0, np.where(x >= 90.0, 1.0, np.sin(np.deg2rad(x))))

    w = np.where(valid, sin(hi) - sin(lo), 0.0)
    return Overlap1D(idx, w, np.diff(sin(t)), np.diff(sin(s)))


def lon_overlaps(src_edges, tgt_edges) -> Overlap1D:
    """Exact, periodic longitude overlaps [degrees] between ascending edge sets (spans <= 360).

    The source edges are unrolled over three turns around the target's first edge; for a regional
    source the stretch between its east edge and the next turn's west edge is a hole (no cell).
    """
    s = np.asarray(src_edges, dtype=np.float64)
    t = np.asarray(tgt_edges, dtype=np.float64)
    ns = s.size - 1
    s = s - 360.0 * np.floor((s[0] - t[0]) / 360.0)  # source start in [t0, t0 + 360)
    closed = abs(s[-1] - s[0] - 360.0) <= 1e-9
    parts_e, parts_i = [s - 360.0], [np.arange(ns)]
    for turn in (0, 1):
        if closed:  # the previous turn's last edge is this turn's first edge
            parts_e.append(s[1:] + 360.0 * turn)
            parts_i.append(np.arange(ns))
        else:  # a hole (index -1) from the previous turn's east edge to this turn's west edge
            parts_e.append(s + 360.0 * turn)
            parts_i.append(np.concatenate([[-1], np.arange(ns)]))
    ext = np.concatenate(parts_e)
    cell_src = np.concatenate(parts_i)
    idx, lo, hi, valid = _banded_overlaps(t, ext)
    src = cell_src[idx]
    valid &= src >= 0
    w = np.where(valid, hi - lo, 0.0)
    return Overlap1D(np.where(src >= 0, src, 0), w, np.diff(t), np.diff(s))


@dataclasses.dataclass(frozen=True, eq=False)
class ConservativeRegridder:
    """Exact-overlap, first-order conservative remap between rectilinear lon-lat grids.

    Built once per (source, target) pair with :meth:`build`; applying it is NumPy (float64), done before
    the differentiable chain starts. Two quantities are supported:

    * :meth:`density` for intensive fields (flux densities, e.g. mol m-2 s-1): the target value is the
      area-weighted mean over the overlaps, ``sum_s A_ts f_s / A_t``, with source cells outside the
      source domain (regional sources) counting as zero. ``sum_t A_t out_t = sum_s A_s f_s`` exactly
      when the target covers the source (any global target does).
    * :meth:`totals` for extensive fields (per-cell totals, e.g. kg yr-1 per cell): each source cell's
      total is split in proportion to overlap area, ``out_t = sum_s (A_ts / A_s) f_s``.

    Attributes:
        source, target: the two grids.
        lat, lon: the 1-D overlaps.
    """

    source: RectilinearGrid
    target: RectilinearGrid
    lat: Overlap1D
    lon: Overlap1D

    @classmethod
    def build(cls, source: RectilinearGrid, target: RectilinearGrid | LatLonGrid) -> ConservativeRegridder:
        """Overlaps of ``target`` cells with ``source`` cells (a model grid is accepted as target)."""
        if isinstance(target, LatLonGrid):
            target = RectilinearGrid.from_model(target)
        return cls(source=source, target=target,
                   lat=lat_overlaps(source.lat_edges, target.lat_edges),
                   lon=lon_overlaps(source.lon_edges, target.lon_edges))

    def _remap(self, f: np.ndarray) -> np.ndarray:
        # reduce the axis that shrinks most first, so the intermediate array is the smaller one
        ny, nx = self.source.shape
        nty, ntx = self.target.shape
        if ntx * ny <= nx * nty:
            return self.lat.apply(self.lon.apply(f, -1), -2)
        return self.lon.apply(self.lat.apply(f, -2), -1)

    def density(self, field, *, oriented: bool = False) -> np.ndarray:
        """Area-weighted mean of ``field (..., ny, nx)`` over each target cell -> ``(..., nty, ntx)``.

        ``field`` is in file order unless ``oriented``.
        """
        f = np.asarray(field, dtype=np.float64)
        f = f if oriented else self.source.orient(f)
        return self._remap(f)

    def totals(self, field, *, oriented: bool = False) -> np.ndarray:
        """Per-cell totals ``(..., ny, nx)`` redistributed by overlap area -> ``(..., nty, ntx)``."""
        f = np.asarray(field, dtype=np.float64)
        f = f if oriented else self.source.orient(f)
        dens = f / self.source.area(1.0)
        return self._remap(dens) * self.target.area(1.0)

    def coverage(self) -> np.ndarray:
        """Fraction ``(nty, ntx)`` of each target cell's area covered by source cells."""
        return self._remap(np.ones(self.source.shape))
