"""Reader for CF netCDF met files (ERA5 / MERRA-2 / JRA-55-like) through xarray.

:func:`read_met` reads winds, surface pressure and optional fields from one or more files, checks
them, regrids them to the model grid, interpolates them to the model levels and returns a
time-interpolating met source (mass-balanced by default, :mod:`diffflux.met.balance`).
:func:`load_met` stops before the last step and returns the NumPy records
(:class:`~diffflux.met.arrays.MetOnGrid`) for inspection.

Variables (canonical name: names tried, first found wins, then CF ``standard_name``; ``names=``
overrides; units):

=================  ===================================================  =========================
canonical          names tried                                          units
=================  ===================================================  =========================
``u`` (required)   u, U, ua, uwnd, u_component_of_wind, UGRD            m s-1
``v`` (required)   v, V, va, vwnd, v_component_of_wind, VGRD            m s-1
``ps`` (required)  sp, ps, PS, surface_pressure, psurf, PSFC, pres      Pa (hPa converted)
``temperature``    t, T, ta, air, temperature, air_temperature, TMP     K (degC converted)
``omega``          w, omega, OMEGA, wap, vertical_velocity              Pa s-1 (diagnostic only)
``blh``            blh, PBLH, pblh, zmla, BLH, boundary_layer_height    m (km converted)
``kz``             kz, Kz, KZ, eddy_diffusivity                         m2 s-1
``conv_mflux``     cmfmc, CMFMC, mumf, convective_mass_flux             kg m-2 s-1
=================  ===================================================  =========================

Coordinates are found by CF attributes (``units`` degrees_north/degrees_east, ``standard_name``,
``axis``) or by name (lat/latitude, lon/longitude, time/valid_time, level/lev/plev/pressure_level/
isobaricInhPa/...). Latitudes may run north to south (flipped), longitudes 0..360 or -180..180.

Vertical coordinates: a level coordinate with pressure units (pressure levels), or hybrid
coefficients given by the level coordinate's CF ``formula_terms`` or by the usual names
(``hyam``/``hybm``, ``hyai``/``hybi``, ``ap``/``b``, ``a``/``b`` with ``p0``). Fields are
interpolated linearly in ``ln p`` to the model layer mid pressures (computed from the regridded
``ps``); model levels outside the source range take the nearest source level and are counted
(warning). Levels identical to the model's are copied. On pressure levels, missing values *below the
ground* (``p > ps``, as in MERRA-2) are filled from the lowest valid level above, counted and
reported; any other NaN/inf is an error.

Horizontal: scalars area-conservatively, winds bilinearly (or conservatively with
``wind_regrid="conservative"``), see :mod:`diffflux.met.regrid`.

Every problem raises a ValueError naming the file, the variable, what was expected and what was
found:
missing variables (with the names tried), missing or wrong ``units``, NaN/inf, values implausible
for the units (e.g. ``ps`` in hPa labelled Pa), non-global or non-monotonic grids, times that do not
increase, variables whose times do not match the winds'. Nothing is clipped silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from diffflux.grid import LatLonGrid
from diffflux.met.arrays import MetOnGrid, build_met, check_times, kz_from_blh, seconds_since
from diffflux.met.profiles import BoundaryLayerProfile
from diffflux.met.regrid import (
    HorizontalRegridder,
    SourceGrid,
    interpolate_log_pressure,
    source_grid,
)

# -------------------------------------------------------------------------------------------------
# name tables
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """How a canonical met variable is found and checked."""

    names: tuple[str, ...]
    standard_names: tuple[str, ...]
    quantity: str
    three_d: bool
    required: bool
    plausible: tuple[float, float]  # range of plausible SI values, to catch mislabelled units


VARIABLES: dict[str, VariableSpec] = {
    "u": VariableSpec(("u", "U", "ua", "uwnd", "u_component_of_wind", "UGRD"), ("eastward_wind",),
                      "velocity", True, True, (-400.0, 400.0)),
    "v": VariableSpec(("v", "V", "va", "vwnd", "v_component_of_wind", "VGRD"), ("northward_wind",),
                      "velocity", True, True, (-400.0, 400.0)),
    "ps": VariableSpec(("sp", "ps", "PS", "surface_pressure", "psurf", "PSFC", "pres"),
                       ("surface_air_pressure",), "pressure", False, True, (2.0e4, 1.2e5)),
    "temperature": VariableSpec(("t", "T", "ta", "air", "temperature", "air_temperature", "TMP"),
                                ("air_temperature",), "temperature", True, False, (100.0, 400.0)),
    "omega": VariableSpec(("w", "omega", "OMEGA", "wap", "vertical_velocity"),
                          ("lagrangian_tendency_of_air_pressure",), "pressure_velocity", True,
                          False,
                          (-1.0e3, 1.0e3)),
    "blh": VariableSpec(("blh", "PBLH", "pblh", "zmla", "BLH", "boundary_layer_height"),
                        ("atmosphere_boundary_layer_thickness",), "length", False, False,
                        (0.0, 2.0e4)),
    "kz": VariableSpec(("kz", "Kz", "KZ", "eddy_diffusivity"), (), "diffusivity", True, False,
                       (0.0, 1.0e5)),
    "conv_mflux": VariableSpec(("cmfmc", "CMFMC", "mumf", "convective_mass_flux"),
                               ("atmosphere_convective_mass_flux",
                                "atmosphere_updraft_convective_mass_flux"),
                               "mass_flux", True, False, (-1.0e2, 1.0e2)),
}
"""Canonical variable -> names tried, CF standard names, quantity, 3-D?, required?, plausible
range."""

LAT_NAMES = ("lat", "latitude", "nav_lat", "lat_0", "y")
LON_NAMES = ("lon", "longitude", "nav_lon", "lon_0", "x")
TIME_NAMES = ("time", "valid_time", "t", "Time", "date")
LEVEL_NAMES = ("level", "lev", "plev", "pressure_level", "isobaricInhPa", "pressure", "hybrid",
               "model_level", "levelist", "ilev", "lev_edge", "sigma", "z")

MID_COEFFICIENTS = (("hyam", "hybm"), ("ap", "b"), ("a", "b"))
INTERFACE_COEFFICIENTS = (("hyai", "hybi"), ("ap_bnds", "b_bnds"), ("a_bnds", "b_bnds"),
                          ("a_half", "b_half"))

# -------------------------------------------------------------------------------------------------
# units
# -------------------------------------------------------------------------------------------------

_UNIT_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "second": "s", "seconds": "s", "sec": "s", "secs": "s",
    "pascal": "pa", "pascals": "pa",
    "millibar": "hpa", "millibars": "hpa", "mbar": "hpa", "mb": "hpa",
    "kilogram": "kg", "kilograms": "kg",
    "kelvin": "k", "degk": "k", "deg_k": "k", "degrees_k": "k", "degreek": "k",
    "kilometer": "km", "kilometers": "km", "kilometre": "km", "kilometres": "km",
}
_CELSIUS = {"degc", "deg_c", "celsius", "degrees_celsius", "degree_celsius", "°c", "c"}

# quantity -> list of (unit exponents, factor, offset): SI = value * factor + offset
_UNITS: dict[str, list[tuple[dict[str, int], float, float]]] = {
    "velocity": [({"m": 1, "s": -1}, 1.0, 0.0)],
    "pressure": [({"pa": 1}, 1.0, 0.0), ({"hpa": 1}, 100.0, 0.0), ({"kpa": 1}, 1000.0, 0.0)],
    "temperature": [({"k": 1}, 1.0, 0.0)],
    "pressure_velocity": [({"pa": 1, "s": -1}, 1.0, 0.0), ({"hpa": 1, "s": -1}, 100.0, 0.0)],
    "length": [({"m": 1}, 1.0, 0.0), ({"km": 1}, 1000.0, 0.0)],
    "diffusivity": [({"m": 2, "s": -1}, 1.0, 0.0)],
    "mass_flux": [({"kg": 1, "m": -2, "s": -1}, 1.0, 0.0)],
}
_EXPECTED = {
    "velocity": "m s-1",
    "pressure": "Pa (or hPa/mbar, converted)",
    "temperature": "K (or degC, converted)",
    "pressure_velocity": "Pa s-1 (or hPa s-1, converted)",
    "length": "m (or km, converted)",
    "diffusivity": "m2 s-1",
    "mass_flux": "kg m-2 s-1",
}


def parse_units(units: str) -> dict[str, int] | None:
    """Exponents of a unit string, e.g. ``"kg m**-2 s-1"`` or ``"kg/m2/s"`` -> ``{kg: 1, m: -2, s:
    -1}``.

    Returns None when the string cannot be parsed.
    """
    s = units.strip().lower().replace("**", "").replace("^", "")
    parts = s.split("/")
    out: dict[str, int] = {}
    for ip, part in enumerate(parts):
        sign = 1 if ip == 0 else -1
        for tok in re.split(r"[\s.*·]+", part.strip()):
            if not tok or tok == "1":
                continue
            m = re.fullmatch(r"([a-z_]+)(-?\d+)?", tok)
            if m is None:
                return None
            name = _UNIT_ALIASES.get(m.group(1), m.group(1))
            exp = int(m.group(2)) if m.group(2) else 1
            out[name] = out.get(name, 0) + sign * exp
    return {k: v for k, v in out.items() if v != 0}


def unit_conversion(quantity: str, units: str | None, *, where: str, variable: str) -> tuple[float,
                                                                                              float]:
    """``(factor, offset)`` converting values in ``units`` to SI for ``quantity``; raise
    otherwise."""
    expected = _EXPECTED[quantity]
    if units is None or str(units).strip() == "":
        raise ValueError(
            f"{where}: variable '{variable}' has no units attribute; expected {expected}"
        )
    text = str(units)
    if quantity == "temperature" and text.strip().lower().replace(" ", "_") in _CELSIUS:
        return 1.0, 273.15
    parsed = parse_units(text)
    for exps, factor, offset in _UNITS[quantity]:
        if parsed == exps:
            return factor, offset
    raise ValueError(f"{where}: variable '{variable}' has units '{text}'; expected {expected}")


# -------------------------------------------------------------------------------------------------
# coordinates
# -------------------------------------------------------------------------------------------------


def _attr(da, key):
    v = da.attrs.get(key)
    return None if v is None else str(v)


def _classify_dim(ds: xr.Dataset, dim: str) -> str | None:
    """'lat', 'lon', 'time', 'level' or None for a dimension name."""
    coord = ds[dim] if dim in ds.variables else None
    if coord is not None:
        units = (_attr(coord, "units") or "").lower()
        std = (_attr(coord, "standard_name") or "").lower()
        axis = (_attr(coord, "axis") or "").upper()
        if units in ("degrees_north", "degree_north", "degree_n", "degrees_n", "degreen",
                     "degreesn") or std == "latitude" or axis == "Y":
            return "lat"
        if units in ("degrees_east", "degree_east", "degree_e", "degrees_e", "degreee",
                     "degreese") or std == "longitude" or axis == "X":
            return "lon"
        if np.issubdtype(coord.dtype, np.datetime64) or std == "time" or axis == "T" or (
                coord.dtype == object and coord.size and hasattr(coord.values.flat[0], "calendar")):
            return "time"
        if axis == "Z" or "positive" in coord.attrs:
            return "level"
    if dim in LAT_NAMES:
        return "lat"
    if dim in LON_NAMES:
        return "lon"
    if dim in TIME_NAMES:
        return "time"
    if dim in LEVEL_NAMES:
        return "level"
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class LevelInfo:
    """Pressure of the positions along a variable's level dimension.

    ``p = a + b ps`` [Pa] (``b = 0`` for pressure levels), one value per index of the dimension.
    """

    kind: str  # "pressure" or "hybrid"
    a: np.ndarray
    b: np.ndarray

    def pressures(self, ps):
        """``(nl, ...)`` pressures [Pa] for surface pressure ``ps (...)``."""
        ps = np.asarray(ps, dtype=np.float64)
        shape = (-1,) + (1,) * ps.ndim
        return self.a.reshape(shape) + self.b.reshape(shape) * ps[None]


def _pressure_factor(var, where: str, name: str) -> float | None:
    units = _attr(var, "units")
    if units is None:
        return None
    parsed = parse_units(units)
    for exps, factor, _ in _UNITS["pressure"]:
        if parsed == exps:
            return factor
    return None


def _hybrid_a(ds, name, where, p0_name=None):
    """Pressure part of hybrid coefficients [Pa] (scaled by p0 when dimensionless)."""
    var = ds[name]
    a = np.asarray(var.values, dtype=np.float64)
    factor = _pressure_factor(var, where, name)
    if factor is not None:
        return a * factor
    p0_candidates = [p0_name] if p0_name else ["p0", "P0", "PO"]
    for p0n in p0_candidates:
        if p0n and p0n in ds.variables:
            p0 = ds[p0n]
            f0 = _pressure_factor(p0, where, p0n)
            if f0 is None:
                raise ValueError(f"{where}: variable '{p0n}' (reference pressure of the hybrid "
                                 "levels) "
                                 f"needs pressure units, found {_attr(p0, 'units')!r}")
            return a * float(np.asarray(p0.values)) * f0
    raise ValueError(
        f"{where}: hybrid coefficient '{name}' has units {_attr(var, 'units')!r} and the file "
        f"has no p0; expected Pa (or a dimensionless coefficient with a p0 variable)"
    )


def _formula_terms(attr: str) -> dict[str, str]:
    toks = attr.replace(":", ": ").split()
    out = {}
    for k in range(0, len(toks) - 1, 2):
        out[toks[k].rstrip(":")] = toks[k + 1]
    return out


def _level_info(ds: xr.Dataset, dim: str, n: int, where: str) -> LevelInfo:
    """Pressures along level dimension ``dim``: CF ``formula_terms`` first (hybrid coordinates often
    also carry approximate pressures with hPa units, e.g. CESM), then pressure units (pressure
    levels), then hybrid coefficients found by name."""
    coord = ds[dim] if dim in ds.variables else None
    if coord is not None:
        ft = _attr(coord, "formula_terms")
        if ft:
            terms = _formula_terms(ft)
            a_name = terms.get("ap") or terms.get("a")
            b_name = terms.get("b")
            if a_name in ds.variables and b_name in ds.variables:
                a = _hybrid_a(ds, a_name, where, terms.get("p0"))
                b = np.asarray(ds[b_name].values, dtype=np.float64)
                if a.shape == (n,) and b.shape == (n,):
                    return LevelInfo("hybrid", a, b)
        factor = _pressure_factor(coord, where, dim)
        if factor is not None:
            p = np.asarray(coord.values, dtype=np.float64) * factor
            if np.any(p < 0) or not np.all(np.isfinite(p)):
                raise ValueError(f"{where}: pressure coordinate '{dim}' has negative or non-finite "
                                 f"values")
            return LevelInfo("pressure", p, np.zeros_like(p))
    for a_name, b_name in MID_COEFFICIENTS + INTERFACE_COEFFICIENTS:
        if a_name in ds.variables and b_name in ds.variables:
            a = _hybrid_a(ds, a_name, where)
            b = np.asarray(ds[b_name].values, dtype=np.float64)
            if a.ndim == 2 and a.shape[-1] == 2:  # CF bounds (n, 2) -> interfaces
                a = np.concatenate([a[:, 0], a[-1:, 1]])
                b = np.concatenate([b[:, 0], b[-1:, 1]])
            if a.shape == (n,) and b.shape == (n,):
                return LevelInfo("hybrid", a, b)
            if a.shape == (n + 1,) and b.shape == (n + 1,):
                return LevelInfo("hybrid", 0.5 * (a[1:] + a[:-1]), 0.5 * (b[1:] + b[:-1]))
    raise ValueError(
        f"{where}: cannot tell the pressure of level dimension '{dim}' ({n} levels): expected a "
        f"level coordinate with pressure units (Pa, hPa) or hybrid coefficients (formula_terms, "
        f"hyam/hybm, hyai/hybi, ap/b, a/b with p0) of length {n} or {n + 1}"
    )


# -------------------------------------------------------------------------------------------------
# variables spread over files
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Segment:
    path: str
    ds: xr.Dataset
    name: str
    da: xr.DataArray
    times: np.ndarray  # seconds
    dims: dict[str, str]  # role -> dim name


@dataclasses.dataclass(eq=False)
class _Variable:
    key: str
    spec: VariableSpec
    segments: list[_Segment]
    dims: dict[str, str]  # role -> dim name
    grid: SourceGrid
    level: LevelInfo | None
    factor: float
    offset: float
    times: np.ndarray
    index: list[tuple[int, int]]  # global record -> (segment, local index)

    @property
    def where(self) -> str:
        files = sorted({s.path for s in self.segments})
        return f"file {files[0]}" if len(files) == 1 else f"files {', '.join(files)}"

    def label(self) -> str:
        return f"{self.where}, variable '{self.segments[0].name}'"

    def record(self, k: int) -> np.ndarray:
        """Record ``k`` in SI, oriented (ascending lat/lon): ``(nl, ny, nx)`` or ``(ny, nx)``."""
        iseg, local = self.index[k]
        seg = self.segments[iseg]
        order = [self.dims["level"]] if self.level is not None else []
        order += [self.dims["lat"], self.dims["lon"]]
        da = seg.da.isel({self.dims["time"]: local}).transpose(*order)
        values = np.asarray(da.values, dtype=np.float64) * self.factor + self.offset
        return self.grid.orient(values)


def _find_name(ds: xr.Dataset, key: str, spec: VariableSpec, override: str | None) -> str | None:
    if override is not None:
        return override if override in ds.data_vars else None
    for n in spec.names:
        if n in ds.data_vars:
            return n
    for n, var in ds.data_vars.items():
        if (_attr(var, "standard_name") or "") in spec.standard_names:
            return str(n)
    return None


def _open_variable(key: str, spec: VariableSpec, datasets: list[tuple[str, xr.Dataset]],
                   override: str | None, reference_time) -> _Variable | None:
    segments: list[_Segment] = []
    for path, ds in datasets:
        name = _find_name(ds, key, spec, override)
        if name is None:
            continue
        da = ds[name]
        where = f"file {path}, variable '{name}'"
        dims: dict[str, str] = {}
        unknown = [str(d) for d in da.dims
                   if _classify_dim(ds, str(d)) is None and da.sizes[d] > 1]
        # a 3-D field with one unrecognised dimension and no recognised level: that is the level
        implied_level = (unknown[0] if spec.three_d and len(unknown) == 1 and not any(
            _classify_dim(ds, str(d)) == "level" for d in da.dims) else None)
        for d in da.dims:
            role = "level" if str(d) == implied_level else _classify_dim(ds, str(d))
            if role is None:
                if da.sizes[d] == 1:
                    continue
                raise ValueError(
                    f"{where}: cannot tell what dimension '{d}' (size {da.sizes[d]}) is; expected "
                    f"time, level, latitude and longitude dimensions"
                )
            if role in dims:
                raise ValueError(
                    f"{where}: two dimensions ('{dims[role]}', '{d}') look like {role}"
                )
            dims[role] = str(d)
        da = da.isel({d: 0 for d in da.dims if str(d) not in dims.values()})
        for role in ("lat", "lon"):
            if role not in dims:
                raise ValueError(f"{where}: no {'latitude' if role == 'lat' else 'longitude'} "
                                 f"dimension found among {tuple(da.dims)}")
        if "time" not in dims:
            tnames = [c for c in da.coords if _classify_dim(ds, str(c)) == "time"
                      and da[c].ndim == 0]
            if not tnames:
                raise ValueError(f"{where}: no time dimension or time coordinate found "
                                 f"(dims {tuple(da.dims)})")
            da = da.expand_dims(tnames[0])
            dims["time"] = tnames[0]
        if spec.three_d and "level" not in dims:
            raise ValueError(f"{where}: expected a 3-D field (time, level, lat, lon), found dims "
                             f"{tuple(da.dims)}")
        if not spec.three_d and "level" in dims:
            raise ValueError(f"{where}: expected a 2-D field (time, lat, lon), found a level "
                             f"dimension '{dims['level']}'")
        tvals = da[dims["time"]].values
        if np.issubdtype(np.asarray(tvals).dtype, np.number):
            raise ValueError(f"{where}: time coordinate '{dims['time']}' was not decoded to dates "
                             "(missing or invalid CF units such as 'hours since 2020-01-01')")
        times = seconds_since(tvals, reference_time, where=f"{where}, time '{dims['time']}'")
        check_times(times, where=f"file {path}, time coordinate '{dims['time']}' of '{name}'")
        segments.append(_Segment(path, ds, name, da, times, dims))
    if not segments:
        return None
    segments.sort(key=lambda s: s.times[0])
    first = segments[0]
    dims = first.dims
    where0 = f"file {first.path}, variable '{first.name}'"
    ds0 = first.ds

    def coord(ds, dim):
        return np.asarray(ds[dim].values, dtype=np.float64) if dim in ds.variables else None

    def bounds(ds, dim):
        if dim in ds.variables and "bounds" in ds[dim].attrs and ds[dim].attrs["bounds"] in ds:
            return np.asarray(ds[ds[dim].attrs["bounds"]].values, dtype=np.float64)
        return None

    lat, lon = coord(ds0, dims["lat"]), coord(ds0, dims["lon"])
    if lat is None or lon is None:
        raise ValueError(f"{where0}: latitude/longitude coordinate values are missing")
    grid = source_grid(lat, lon, lat_bounds=bounds(ds0, dims["lat"]),
                       lon_bounds=bounds(ds0, dims["lon"]), lat_name=dims["lat"],
                       lon_name=dims["lon"], where=f"file {first.path}")
    level = None
    if "level" in dims:
        level = _level_info(ds0, dims["level"], first.da.sizes[dims["level"]],
                            f"file {first.path}, variable '{first.name}'")
    factor, offset = unit_conversion(spec.quantity, _attr(first.da, "units"),
                                     where=f"file {first.path}",
                                     variable=first.name)
    index: list[tuple[int, int]] = []
    for iseg, seg in enumerate(segments):
        sd = seg.dims
        w = f"file {seg.path}, variable '{seg.name}'"
        if iseg:
            if set(sd) != set(dims):
                raise ValueError(f"{w}: dimensions {tuple(seg.da.dims)} differ from those in file "
                                 f"{first.path}")
            same = (np.array_equal(coord(seg.ds, sd["lat"]), lat)
                    and np.array_equal(coord(seg.ds, sd["lon"]), lon))
            if not same:
                raise ValueError(
                    f"{w}: the horizontal grid differs from the one in file {first.path}"
                )
            if level is not None:
                lv = _level_info(seg.ds, sd["level"], seg.da.sizes[sd["level"]], w)
                if not (np.allclose(lv.a, level.a) and np.allclose(lv.b, level.b)):
                    raise ValueError(f"{w}: the levels differ from those in file {first.path}")
            if unit_conversion(spec.quantity, _attr(seg.da, "units"), where=f"file {seg.path}",
                               variable=seg.name) != (factor, offset):
                raise ValueError(f"{w}: units differ from those in file {first.path}")
        index += [(iseg, k) for k in range(seg.times.size)]
    times = np.concatenate([s.times for s in segments])
    d = np.diff(times)
    if np.any(d <= 0):
        k = int(np.argmax(d <= 0))
        a, b = index[k], index[k + 1]
        raise ValueError(
            f"files {segments[a[0]].path} and {segments[b[0]].path}, variable '{first.name}': "
            f"times must increase across files; record at {times[k]:.0f} s is followed by "
            f"{times[k + 1]:.0f} s "
            "(overlapping or repeated records)"
        )
    return _Variable(key, spec, segments, dims, grid, level, factor, offset, times, index)


# -------------------------------------------------------------------------------------------------
# reading
# -------------------------------------------------------------------------------------------------


def _finite_or_raise(values: np.ndarray, var: _Variable, k: int, allowed=None) -> np.ndarray:
    bad = ~np.isfinite(values)
    if allowed is not None:
        bad = bad & ~allowed
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{var.label()}: {int(bad.sum())} NaN/inf value(s) in the record at "
            f"{var.times[k]:.0f} s "
            f"(first at oriented index {idx} of (level,) lat, lon); expected finite values"
        )
    return values


def _plausible(values: np.ndarray, var: _Variable) -> None:
    lo, hi = var.spec.plausible
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    if vmin < lo or vmax > hi:
        raise ValueError(
            f"{var.label()}: values {vmin:.4g} .. {vmax:.4g} (after converting "
            f"'{_attr(var.segments[0].da, 'units')}' to SI) are outside the plausible range "
            f"{lo:g} .. {hi:g} for {var.key}; are the units attribute and the values consistent?"
        )


def _fill_below_ground(values: np.ndarray, p_levels: np.ndarray, ps_src: np.ndarray,
                       var: _Variable, k: int) -> tuple[np.ndarray, int]:
    """Fill NaN below the ground on pressure levels from the lowest valid level above."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return values, 0
    below = p_levels[:, None, None] > ps_src[None]
    _finite_or_raise(values, var, k, allowed=below)
    order = np.argsort(p_levels)  # top first
    v = values[order]
    b = bad[order]
    for j in range(1, v.shape[0]):
        v[j] = np.where(b[j], v[j - 1], v[j])
    out = np.empty_like(v)
    out[order] = v
    _finite_or_raise(out, var, k)
    return out, int(bad.sum())


def _model_levels_match(level: LevelInfo, grid: LatLonGrid) -> np.ndarray | None:
    """Index array putting source hybrid mids onto the model levels, if they are the same levels."""
    if level.kind != "hybrid" or level.a.size != grid.nlev:
        return None
    a, b = grid.levels.a, grid.levels.b
    am, bm = 0.5 * (a[:-1] + a[1:]), 0.5 * (b[:-1] + b[1:])
    for order in (np.arange(grid.nlev), np.arange(grid.nlev)[::-1]):
        if np.allclose(level.a[order], am, rtol=1e-6, atol=1e-3) and \
                np.allclose(level.b[order], bm, rtol=1e-6, atol=1e-9):
            return order
    return None


def _as_paths(paths) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = [os.fspath(p) for p in paths]
    if not out:
        raise ValueError("read_met: no met files given")
    for p in out:
        if not os.path.exists(p):
            raise FileNotFoundError(f"met file {p} does not exist")
    return out


def load_met(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    grid: LatLonGrid,
    reference_time,
    *,
    start=None,
    end=None,
    names: dict[str, str | None] | None = None,
    wind_regrid: str = "bilinear",
    kz_profile: BoundaryLayerProfile | None = None,
    kh: float | None = None,
) -> MetOnGrid:
    """Read, check, regrid and vertically interpolate met files onto the model grid (NumPy float64).

    Args:
        paths: one file or several (variables may be split over files, e.g. surface and
            pressure-level files, and records over consecutive files).
        grid: model grid.
        reference_time: date of ``t = 0`` of the run (ISO string, datetime, numpy.datetime64,
            cftime).
        start, end: optional window (dates, or seconds since ``reference_time``): the records
            bracketing ``[start, end]`` are read; the met must cover the window.
        names: canonical name -> file variable name, overriding the table; ``None`` skips an
            optional variable.
        wind_regrid: ``"bilinear"`` (default) or ``"conservative"`` horizontal remapping of winds.
        kz_profile: profile turning the boundary-layer height into Kz when the file has no Kz.
        kh: constant horizontal diffusivity to attach [m2 s-1].

    Returns:
        :class:`~diffflux.met.arrays.MetOnGrid`.
    """
    names = dict(names or {})
    unknown = set(names) - set(VARIABLES)
    if unknown:
        raise ValueError(f"read_met: unknown variable key(s) {sorted(unknown)} in names=; "
                         f"expected some of {list(VARIABLES)}")
    for key in ("u", "v", "ps"):
        if key in names and names[key] is None:
            raise ValueError(f"read_met: '{key}' is required and cannot be skipped")
    if wind_regrid not in ("bilinear", "conservative"):
        raise ValueError(f"read_met: wind_regrid must be 'bilinear' or 'conservative', "
                         f"found {wind_regrid!r}")
    file_list = _as_paths(paths)
    where_files = (f"file {file_list[0]}" if len(file_list) == 1
                   else f"files {', '.join(file_list)}")
    label = file_list[0] if len(file_list) == 1 else f"{len(file_list)} files ({file_list[0]} ...)"
    with contextlib.ExitStack() as stack:
        datasets = []
        for p in file_list:
            try:
                ds = xr.open_dataset(p)
            except Exception as exc:  # noqa: BLE001 - re-raised with the file name
                raise ValueError(f"file {p}: cannot be opened as netCDF ({exc})") from exc
            stack.callback(ds.close)
            datasets.append((p, ds))
        variables: dict[str, _Variable] = {}
        for key, spec in VARIABLES.items():
            if key in names and names[key] is None:
                continue
            var = _open_variable(key, spec, datasets, names.get(key), reference_time)
            if var is None:
                if spec.required or key in names:
                    tried = [names[key]] if key in names else list(spec.names)
                    std = f" or standard_name {list(spec.standard_names)}" if spec.standard_names \
                        and key not in names else ""
                    raise ValueError(
                        f"{where_files}: "
                        f"no variable for '{key}' found; tried names {tried}{std} "
                        f"(pass names={{'{key}': 'your_name'}} to point to it)"
                    )
                continue
            variables[key] = var
        return _load(variables, grid, reference_time, start, end, wind_regrid, kz_profile, kh,
                     label)


def _window(times: np.ndarray, start, end, reference_time, label: str) -> np.ndarray:
    def sec(x):
        return float(seconds_since([x], reference_time, where="read_met: start/end")[0]) \
            if not isinstance(x, (int, float)) else float(x)

    i0, i1 = 0, times.size - 1
    if start is not None:
        s = sec(start)
        if s < times[0]:
            raise ValueError(f"{label}: the met starts at {times[0]:.0f} s after the reference "
                             "time, "
                             f"after the requested start {s:.0f} s")
        i0 = int(np.searchsorted(times, s, side="right") - 1)
    if end is not None:
        e = sec(end)
        if e > times[-1]:
            raise ValueError(f"{label}: the met ends at {times[-1]:.0f} s after the reference "
                             "time, "
                             f"before the requested end {e:.0f} s")
        i1 = int(np.searchsorted(times, e, side="left"))
    if i1 < i0:
        raise ValueError(f"{label}: empty window start={start!r}, end={end!r}")
    return np.arange(i0, i1 + 1)


def _load(variables: dict[str, _Variable], grid: LatLonGrid, reference_time, start, end,
          wind_regrid: str, kz_profile, kh, label: str) -> MetOnGrid:
    u = variables["u"]
    rec = _window(u.times, start, end, reference_time, u.label())
    times = u.times[rec]
    # record index of every variable for the wind times
    rec_of: dict[str, np.ndarray] = {}
    for key, var in variables.items():
        pos = np.searchsorted(var.times, times)
        near = var.times[np.minimum(pos, var.times.size - 1)]
        ok = (pos < var.times.size) & (np.abs(near - times) < 0.5)
        if not ok.all():
            j = int(np.argmin(ok))
            raise ValueError(
                f"{var.label()}: no record at {times[j]:.0f} s after the reference time, where the "
                f"winds ({u.label()}) have one; all variables must share the wind times"
            )
        rec_of[key] = pos
    regridders: dict[bytes, HorizontalRegridder] = {}

    def regridder(var: _Variable) -> HorizontalRegridder:
        key = var.grid.lat_edges.tobytes() + b"|" + var.grid.lon_edges.tobytes()
        if key not in regridders:
            regridders[key] = HorizontalRegridder.build(var.grid, grid)
        return regridders[key]

    def same_grid(a: SourceGrid, b: SourceGrid) -> bool:
        return a.lat.shape == b.lat.shape and a.lon.shape == b.lon.shape and \
            np.allclose(a.lat, b.lat) and np.allclose(a.lon, b.lon)

    nt = times.size
    out: dict[str, list[np.ndarray]] = {k: [] for k in variables}
    notes: list[str] = []
    filled = {k: 0 for k in variables}
    outside = {k: 0 for k in variables}
    psv = variables["ps"]
    for n in range(nt):
        ps_src = psv.record(int(rec_of["ps"][n]))
        _finite_or_raise(ps_src, psv, int(rec_of["ps"][n]))
        _plausible(ps_src, psv)
        ps_m = regridder(psv).conservative(ps_src, oriented=True)
        out["ps"].append(ps_m)
        p_int = np.asarray(grid.pressure_interfaces(ps_m))
        p_mid = 0.5 * (p_int[:-1] + p_int[1:])
        for key, var in variables.items():
            if key == "ps":
                continue
            k = int(rec_of[key][n])
            f = var.record(k)
            on_plev = var.level is not None and var.level.kind == "pressure"
            if on_plev and not np.all(np.isfinite(f)):
                if not same_grid(var.grid, psv.grid):
                    _finite_or_raise(f, var, k)
                f, nf = _fill_below_ground(f, var.level.a, ps_src, var, k)
                filled[key] += nf
            else:
                _finite_or_raise(f, var, k)
            _plausible(f, var)
            rg = regridder(var)
            if key in ("u", "v") and wind_regrid == "bilinear":
                h = rg.bilinear(f, oriented=True)
            else:
                h = rg.conservative(f, oriented=True)
            if var.level is None:
                out[key].append(h)
                continue
            interfaces = key in ("kz", "conv_mflux")
            if not interfaces:
                order = _model_levels_match(var.level, grid)
                if order is not None:
                    out[key].append(h[order])
                    continue
                target = p_mid
            else:
                target = p_int[1:-1]
            p_src = var.level.pressures(ps_m)
            keep = np.all(p_src.reshape(p_src.shape[0], -1) > 0, axis=1)
            if not keep.any():
                raise ValueError(f"{var.label()}: no level with positive pressure")
            if target.shape[0] == 0:
                vals = np.zeros((0,) + h.shape[1:])
            else:
                vals, nout = interpolate_log_pressure(h[keep], p_src[keep], target)
                outside[key] += nout
            if interfaces:
                z = np.zeros((1,) + h.shape[1:])
                vals = np.concatenate([z, vals, z], axis=0)
            out[key].append(vals)
    arrays = {k: np.stack(v) for k, v in out.items()}
    for key, count in filled.items():
        if count:
            msg = (f"{variables[key].label()}: {count} missing value(s) below the ground filled "
                   "from the lowest valid pressure level above")
            notes.append(msg)
            warnings.warn(msg, stacklevel=3)
    for key, count in outside.items():
        if count:
            size = arrays[key].size
            msg = (f"{variables[key].label()}: {count} of {size} model-level values lie outside "
                   "the source pressure range and take the nearest source level's value")
            notes.append(msg)
            warnings.warn(msg, stacklevel=3)
    if "conv_mflux" in arrays:
        cm = arrays["conv_mflux"]
        if cm.min() < -0.01 * max(cm.max(), 0.0) - 1e-12:
            raise ValueError(
                f"{variables['conv_mflux'].label()}: values down to {cm.min():.3g} kg m-2 s-1; "
                "expected an upward-positive updraft mass flux (downward-positive conventions are "
                "not supported)"
            )
        arrays["conv_mflux"] = cm * grid.area[None, None]
    kz = arrays.get("kz")
    if kz is None and "blh" in arrays:
        kz = kz_from_blh(grid, arrays["ps"], arrays["blh"], arrays.get("temperature"), kz_profile)
        notes.append("Kz derived from the boundary-layer height")
    files = sorted({s.path for v in variables.values() for s in v.segments})
    return MetOnGrid(
        times=times,
        ps=arrays["ps"],
        u=arrays["u"],
        v=arrays["v"],
        temperature=arrays.get("temperature"),
        kz=kz,
        conv_mflux=arrays.get("conv_mflux"),
        omega=arrays.get("omega"),
        blh=arrays.get("blh"),
        kh=kh,
        source=", ".join(files) if files else label,
        notes=tuple(notes),
    )


def read_met(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    grid: LatLonGrid,
    reference_time,
    *,
    start=None,
    end=None,
    names: dict[str, str | None] | None = None,
    balance: bool = True,
    wind_regrid: str = "bilinear",
    kz_profile: BoundaryLayerProfile | None = None,
    kh: float | None = None,
    dtype=None,
    report: bool = False,
):
    """Read CF netCDF met files into a met source on ``grid``.

    See :func:`load_met` for the arguments; ``balance``, ``dtype`` and ``report`` are those of
    :func:`~diffflux.met.arrays.build_met`. With balancing (default) the result is a
    :class:`~diffflux.met.balance.BalancedMet` whose fluxes are constant over each met interval: run
    the transport with a time step that divides the met interval and starts on a met time, and
    initialise the air mass from ``met.fields(t0).ps``.

    Example::

        met = read_met(["era5_pl_2020-01.nc", "era5_sfc_2020-01.nc"], grid, "2020-01-01")
        state = model.initial_state(chi0, met.fields(0.0).ps)
    """
    mog = load_met(paths, grid, reference_time, start=start, end=end, names=names,
                   wind_regrid=wind_regrid, kz_profile=kz_profile, kh=kh)
    return build_met(grid, mog, balance=balance, dtype=dtype, report=report)


__all__ = ["VARIABLES", "load_met", "parse_units", "read_met", "unit_conversion"]
