"""Met sources built from plain arrays or from Python functions of (time, lon, lat[, pressure]).

* :func:`met_from_arrays`: winds, surface pressure and optional fields given as arrays at a few
  record times (on the model grid, or on any global lon-lat grid with ``lat``/``lon`` given, then
  regridded); returns a time-interpolating met source, mass-balanced by default
  (:mod:`diffflux.met.balance`).
* :func:`met_from_functions`: pure JAX functions evaluated on the model grid at the time the
  transport asks for (inside the scan), with the same mass-flux balancing done in JAX.
* :class:`MetOnGrid` + :func:`build_met`: the common last stage, also used by the netCDF reader.

Array layout everywhere: ``(time, level, lat, lon)``, level 0 at the surface, latitudes south to
north and longitudes ``grid.lon`` (cell centres from -180 degrees) on the model grid.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid
from diffflux.met.balance import (
    BalancedMet,
    BalanceReport,
    balance_mass_fluxes_jax,
    balanced_met,
    mass_fluxes_from_winds_np,
)
from diffflux.met.fields import FunctionMet, InterpolatedMet, MetFields
from diffflux.met.massflux import mass_fluxes_from_winds
from diffflux.met.profiles import BoundaryLayerProfile, standard_atmosphere_temperature
from diffflux.met.regrid import HorizontalRegridder, source_grid

# -------------------------------------------------------------------------------------------------
# time
# -------------------------------------------------------------------------------------------------


def _reference_datetime64(reference_time) -> np.datetime64:
    if isinstance(reference_time, np.datetime64):
        return reference_time.astype("datetime64[ns]")
    if isinstance(reference_time, (str, _dt.datetime)):
        return np.datetime64(reference_time, "ns")
    if hasattr(reference_time, "calendar"):  # a cftime date in a real-world calendar
        r = reference_time
        return np.datetime64(_dt.datetime(r.year, r.month, r.day, r.hour, r.minute, r.second), "ns")
    raise ValueError(f"reference_time: cannot interpret {reference_time!r} as a date")


def seconds_since(times, reference_time, *, where: str = "times") -> np.ndarray:
    """Convert times to float64 seconds since ``reference_time``.

    Args:
        times: numbers (already seconds), ``numpy.datetime64`` values, ``datetime`` objects or
            cftime dates (non-standard calendars such as ``noleap``).
        reference_time: ISO 8601 string, ``datetime``, ``numpy.datetime64`` or cftime date; may be
            None only when ``times`` are numbers.
        where: description for error messages.
    """
    arr = np.atleast_1d(np.asarray(times))
    if arr.dtype.kind in "US":  # ISO strings
        try:
            arr = arr.astype("datetime64[ns]")
        except ValueError as exc:
            raise ValueError(f"{where}: cannot read {arr.tolist()} as ISO dates") from exc
    if np.issubdtype(arr.dtype, np.number):
        return arr.astype(np.float64)
    if reference_time is None:
        raise ValueError(f"{where}: times are dates ({arr.dtype}); a reference_time is needed to "
                         "convert them to seconds")
    first = arr.flat[0]
    if hasattr(first, "calendar"):  # cftime dates: subtract in their own calendar
        r = reference_time
        if isinstance(r, (str, np.datetime64)):
            r = np.datetime64(r, "us").astype(_dt.datetime)
        if not hasattr(r, "calendar") or r.calendar != first.calendar:
            r = type(first)(r.year, r.month, r.day, r.hour, r.minute, r.second,
                            calendar=first.calendar)
        return np.array([(t - r).total_seconds() for t in arr.flat]).reshape(arr.shape)
    if np.issubdtype(arr.dtype, np.datetime64) or isinstance(first, _dt.datetime):
        ref = _reference_datetime64(reference_time)
        return (arr.astype("datetime64[ns]") - ref) / np.timedelta64(1, "s")
    raise ValueError(f"{where}: cannot interpret times of type {type(first).__name__}")


def check_times(times: np.ndarray, *, where: str) -> None:
    """Raise unless ``times`` are finite and strictly increasing."""
    if times.ndim != 1 or times.size < 1:
        raise ValueError(
            f"{where}: expected a 1-D array of at least one time, found shape {times.shape}"
        )
    if not np.all(np.isfinite(times)):
        raise ValueError(f"{where}: times contain non-finite values")
    d = np.diff(times)
    if np.any(d <= 0):
        k = int(np.argmax(d <= 0))
        raise ValueError(
            f"{where}: times must be strictly increasing; found {times[k]:.6g} s followed by "
            f"{times[k + 1]:.6g} s (records {k} and {k + 1})"
        )


# -------------------------------------------------------------------------------------------------
# the common container and builder
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class MetOnGrid:
    """Met records on the model grid (NumPy float64, SI units, surface level first).

    Attributes:
        times: ``(nt,)`` record times [s since the reference time].
        ps: ``(nt, nlat, nlon)`` surface pressure [Pa].
        u, v: ``(nt, nlev, nlat, nlon)`` eastward/northward wind at cell centres [m s-1].
        temperature: ``(nt, nlev, nlat, nlon)`` [K] or None.
        kz: ``(nt, nlev + 1, nlat, nlon)`` vertical diffusivity at interfaces [m2 s-1] or None.
        conv_mflux: ``(nt, nlev + 1, nlat, nlon)`` upward convective mass flux through interfaces
            [kg s-1] (zero at surface and top) or None.
        omega: ``(nt, nlev, nlat, nlon)`` pressure velocity [Pa s-1] or None. Diagnostic only: the
            transport derives vertical fluxes from continuity.
        blh: ``(nt, nlat, nlon)`` boundary-layer height [m] or None (diagnostic; Kz derives from
            it).
        kh: horizontal eddy diffusivity [m2 s-1] (a constant) or None.
        source: description (file names) for messages.
        notes: things the builder did that a user should know (extrapolation counts, conversions).
    """

    times: np.ndarray
    ps: np.ndarray
    u: np.ndarray
    v: np.ndarray
    temperature: np.ndarray | None = None
    kz: np.ndarray | None = None
    conv_mflux: np.ndarray | None = None
    omega: np.ndarray | None = None
    blh: np.ndarray | None = None
    kh: float | None = None
    source: str = "arrays"
    notes: tuple[str, ...] = ()


def build_met(
    grid: LatLonGrid,
    met: MetOnGrid,
    *,
    balance: bool = True,
    dtype=None,
    report: bool = False,
):
    """Turn records on the model grid into a met source for the transport.

    Mass fluxes come from the winds (:func:`~diffflux.met.massflux.mass_fluxes_from_winds`
    discretisation, in float64). With ``balance`` (default) they are made consistent with the
    surface pressure tendency (:mod:`diffflux.met.balance`) and served piecewise-constant per met
    interval by a :class:`~diffflux.met.balance.BalancedMet`; without it an
    :class:`~diffflux.met.fields.InterpolatedMet` interpolates the raw record fluxes linearly (the
    model air mass then drifts away from the met ``ps``).

    Args:
        grid: model grid.
        met: the records.
        balance: apply the mass-flux balancing.
        dtype: array dtype of the met source (default: JAX's default float).
        report: also return the :class:`~diffflux.met.balance.BalanceReport` (None without
            balancing).

    Returns:
        the met source, or ``(source, report)`` with ``report=True``.
    """
    dtype = dtype or jnp.result_type(float)
    mfx, mfy = mass_fluxes_from_winds_np(grid, met.u, met.v, met.ps)
    nt = met.times.size
    kh = None if met.kh is None else np.full((nt, 1, 1, 1), float(met.kh))
    extra = dict(temperature=met.temperature, kz=met.kz, conv_mflux=met.conv_mflux, kh=kh)
    rep: BalanceReport | None = None
    if balance:
        src, rep = balanced_met(grid, met.times, met.ps, mfx, mfy, dtype=dtype, where=met.source,
                                **extra)
    else:
        def arr(a):
            return None if a is None else jnp.asarray(a, dtype=dtype)

        stack = MetFields(ps=arr(met.ps), mfx=arr(mfx), mfy=arr(mfy),
                          **{k: arr(v) for k, v in extra.items()})
        src = InterpolatedMet(times=jnp.asarray(met.times, dtype=dtype), stack=stack)
    return (src, rep) if report else src


# -------------------------------------------------------------------------------------------------
# arrays
# -------------------------------------------------------------------------------------------------


def _check_array(name: str, a, shape: tuple[int, ...], where: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{where}: variable '{name}' must have shape {shape}, found {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{where}: variable '{name}' has {int(bad.sum())} non-finite value(s) (NaN/inf), first "
            f"at index {idx}; expected finite values"
        )
    return a


def kz_from_blh(grid: LatLonGrid, ps, blh, temperature=None,
                profile: BoundaryLayerProfile | None = None) -> np.ndarray:
    """Kz ``(nt, nlev + 1, nlat, nlon)`` [m2 s-1] at model interfaces from the boundary-layer
    height.

    Interface heights follow hydrostatically from ``temperature`` (``(nt, nlev, nlat, nlon)`` [K],
    or the U.S. standard atmosphere when None); see
    :class:`~diffflux.met.profiles.BoundaryLayerProfile`.
    """
    profile = profile or BoundaryLayerProfile()
    ps = np.asarray(ps, dtype=np.float64)
    p_int = np.stack([np.asarray(grid.pressure_interfaces(p)) for p in ps])  # (nt, nlev+1, ...)
    if temperature is None:
        temperature = standard_atmosphere_temperature(0.5 * (p_int[:, :-1] + p_int[:, 1:]))
    out = np.stack([
        profile.kz_on_interfaces(p_int[n], np.asarray(temperature[n]), np.asarray(blh[n]))
        for n in range(ps.shape[0])
    ])
    return out


def met_from_arrays(
    grid: LatLonGrid,
    times,
    u,
    v,
    ps,
    *,
    temperature=None,
    kz=None,
    blh=None,
    conv_mflux=None,
    omega=None,
    kh: float | None = None,
    lat=None,
    lon=None,
    reference_time=None,
    balance: bool = True,
    kz_profile: BoundaryLayerProfile | None = None,
    wind_regrid: str = "bilinear",
    dtype=None,
    report: bool = False,
):
    """A time-interpolating met source from arrays.

    Args:
        grid: model grid.
        times: ``(nt,)`` record times: seconds since the run reference time, or dates
            (``datetime64``/``datetime``) together with ``reference_time``.
        u, v: ``(nt, nlev, ny, nx)`` winds at cell centres [m s-1] on model levels.
        ps: ``(nt, ny, nx)`` surface pressure [Pa].
        temperature: ``(nt, nlev, ny, nx)`` [K] or None.
        kz: ``(nt, nlev + 1, ny, nx)`` [m2 s-1] at interfaces, or None.
        blh: ``(nt, ny, nx)`` boundary-layer height [m]; used for Kz (``kz_profile``) when ``kz`` is
            None.
        conv_mflux: ``(nt, nlev + 1, ny, nx)`` upward convective mass flux [kg m-2 s-1] at
            interfaces, zero at the surface and top; converted to kg s-1 per cell.
        omega: ``(nt, nlev, ny, nx)`` [Pa s-1], kept as a diagnostic only.
        kh: constant horizontal diffusivity [m2 s-1] or None.
        lat, lon: source-grid centres [degrees] when the arrays are not on the model grid (then
            ``ny, nx = len(lat), len(lon)``; scalars are remapped conservatively, winds with
            ``wind_regrid`` = ``"bilinear"`` or ``"conservative"``); None = model grid (``ny, nx =
            nlat, nlon``, latitudes south to north, longitudes ``grid.lon``).
        reference_time: reference date when ``times`` are dates.
        balance: mass-flux balancing (see :func:`build_met`).
        kz_profile: Kz profile for ``blh``.
        dtype: dtype of the met source.
        report: also return the balancing report.

    Returns:
        :class:`~diffflux.met.balance.BalancedMet` (``balance=True``) or
        :class:`~diffflux.met.fields.InterpolatedMet`; with ``report=True`` a ``(met, report)``
        pair.
    """
    where = "met_from_arrays"
    t = seconds_since(times, reference_time, where=f"{where}: times")
    check_times(t, where=f"{where}: times")
    nt, nlev = t.size, grid.nlev
    if (lat is None) != (lon is None):
        raise ValueError(f"{where}: give both lat and lon (source grid) or neither (model grid)")
    if lat is None:
        ny, nx = grid.nlat, grid.nlon
        regridder = None
    else:
        src = source_grid(lat, lon, where=where)
        ny, nx = src.shape
        regridder = HorizontalRegridder.build(src, grid)
    if wind_regrid not in ("bilinear", "conservative"):
        raise ValueError(f"{where}: wind_regrid must be 'bilinear' or 'conservative', "
                         f"found {wind_regrid!r}")

    def get(name, a, levels):
        if a is None:
            return None
        shape = (nt,) + ((levels,) if levels else ()) + (ny, nx)
        a = _check_array(name, a, shape, where)
        if regridder is None:
            return a
        if name in ("u", "v") and wind_regrid == "bilinear":
            return regridder.bilinear(a)
        return regridder.conservative(a)

    ps_g = get("ps", ps, 0)
    if np.any(ps_g <= grid.levels.p_top):
        raise ValueError(f"{where}: variable 'ps' must exceed the model-top pressure "
                         f"{grid.levels.p_top:g} Pa everywhere (expected Pa), "
                         f"found min {ps_g.min():g}")
    u_g, v_g = get("u", u, nlev), get("v", v, nlev)
    temp_g = get("temperature", temperature, nlev)
    if temp_g is not None and np.any(temp_g <= 0):
        raise ValueError(f"{where}: variable 'temperature' must be positive (expected K), "
                         f"found min {temp_g.min():g}")
    kz_g = get("kz", kz, nlev + 1)
    blh_g = get("blh", blh, 0)
    if kz_g is None and blh_g is not None:
        kz_g = kz_from_blh(grid, ps_g, blh_g, temp_g, kz_profile)
    conv_g = get("conv_mflux", conv_mflux, nlev + 1)
    if conv_g is not None:
        edge = np.abs(conv_g[:, [0, -1]]).max()
        if edge > 0:
            raise ValueError(
                f"{where}: variable 'conv_mflux' must be zero at the surface and model-top "
                f"interfaces (no mass leaves the column), found |value| up to {edge:g} kg m-2 s-1"
            )
        conv_g = conv_g * grid.area[None, None]
    omega_g = get("omega", omega, nlev)
    met = MetOnGrid(times=t, ps=ps_g, u=u_g, v=v_g, temperature=temp_g, kz=kz_g, conv_mflux=conv_g,
                    omega=omega_g, blh=blh_g, kh=kh, source=where)
    return build_met(grid, met, balance=balance, dtype=dtype, report=report)


# -------------------------------------------------------------------------------------------------
# functions
# -------------------------------------------------------------------------------------------------


def _arity(fn: Callable, name: str, allowed: tuple[int, ...]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume the longest form
        return max(allowed)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return max(allowed)
    n = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.default is p.empty)
    if n not in allowed:
        forms = " or ".join(
            {3: f"{name}(t, lon, lat)", 4: f"{name}(t, lon, lat, p)"}[k] for k in allowed
        )
        raise ValueError(f"met_from_functions: {name} must be callable as {forms}; it takes {n} "
                         "required positional argument(s)")
    return n


def met_from_functions(
    grid: LatLonGrid,
    u_fn: Callable,
    v_fn: Callable,
    ps_fn: Callable,
    *,
    temperature_fn: Callable | None = None,
    kz_fn: Callable | None = None,
    blh_fn: Callable | None = None,
    conv_mflux_fn: Callable | None = None,
    kh: float | None = None,
    balance: bool = True,
    kz_profile: BoundaryLayerProfile | None = None,
) -> FunctionMet:
    """Met from pure JAX functions, evaluated on the model grid at each transport step.

    Every function receives the time ``t`` [s since the run reference time] (a traced scalar), cell
    centre longitudes ``lon`` and latitudes ``lat`` [degrees] and, for 3-D fields, the pressure
    ``p`` [Pa] where the field is wanted; arguments broadcast against each other and the result is
    broadcast to the field shape:

    * ``ps_fn(t, lon, lat) -> (nlat, nlon)`` surface pressure [Pa]; lon/lat are ``(nlat, nlon)``;
    * ``u_fn``, ``v_fn``, ``temperature_fn``: ``(t, lon, lat, p)`` with ``p`` the layer mid
        pressures
      ``(nlev, nlat, nlon)`` and lon/lat ``(1, nlat, nlon)``, or ``(t, lon, lat)`` for fields
      constant in the vertical; winds [m s-1], temperature [K];
    * ``kz_fn(t, lon, lat, p)`` [m2 s-1] and ``conv_mflux_fn(t, lon, lat, p)`` [kg m-2 s-1, upward]
      with ``p`` the interface pressures ``(nlev + 1, nlat, nlon)``; their surface and top values
      are replaced by zero (no flux through the ground or the model top);
    * ``blh_fn(t, lon, lat)`` boundary-layer height [m], turned into Kz by ``kz_profile`` when
      ``kz_fn`` is None.

    With ``balance`` (default) the horizontal mass fluxes get the minimal correction that makes the
    column divergence equal ``-(A/g) d ps_fn / dt`` (the time derivative by forward-mode autodiff,
    minus its global mean since the transport conserves global air mass; see
    :mod:`diffflux.met.balance`), so the transported air mass follows ``ps_fn`` to the accuracy of
    the midpoint rule in time (second order in ``dt``).

    Returns:
        a :class:`~diffflux.met.fields.FunctionMet`.
    """
    na = {name: _arity(f, name, (3, 4)) for name, f in
          (("u_fn", u_fn), ("v_fn", v_fn), ("temperature_fn", temperature_fn), ("kz_fn", kz_fn),
           ("conv_mflux_fn", conv_mflux_fn)) if f is not None}
    _arity(ps_fn, "ps_fn", (3,))
    if blh_fn is not None:
        _arity(blh_fn, "blh_fn", (3,))
    profile = kz_profile or BoundaryLayerProfile()
    lon2_np = np.broadcast_to(grid.lon[None, :], (grid.nlat, grid.nlon))
    lat2_np = np.broadcast_to(grid.lat[:, None], (grid.nlat, grid.nlon))
    nlev = grid.nlev
    area_np = grid.area

    def fn(t):
        t = jnp.asarray(t)
        dtype = t.dtype if jnp.issubdtype(t.dtype, jnp.floating) else jnp.result_type(float)
        t = t.astype(dtype)
        lon2 = jnp.asarray(lon2_np, dtype)
        lat2 = jnp.asarray(lat2_np, dtype)
        lon3, lat3 = lon2[None], lat2[None]

        def ps_of(tt):
            return jnp.broadcast_to(jnp.asarray(ps_fn(tt, lon2, lat2), dtype), lat2.shape)

        ps = ps_of(t)
        p_int = grid.pressure_interfaces(ps)
        p_mid = 0.5 * (p_int[:-1] + p_int[1:])

        def field3(name, f, p, nz):
            if na[name] == 4:
                out = f(t, lon3, lat3, p)
            else:
                out = f(t, lon3, lat3)
            return jnp.broadcast_to(jnp.asarray(out, dtype), (nz, grid.nlat, grid.nlon))

        u = field3("u_fn", u_fn, p_mid, nlev)
        v = field3("v_fn", v_fn, p_mid, nlev)
        mfx, mfy = mass_fluxes_from_winds(grid, u, v, ps)
        if balance:
            _, dps = jax.jvp(ps_of, (t,), (jnp.ones_like(t),))
            tend = jnp.asarray(area_np / GRAVITY, dtype) * dps
            mfx, mfy = balance_mass_fluxes_jax(grid, mfx, mfy, tend, ps)
        temperature = (field3("temperature_fn", temperature_fn, p_mid, nlev)
                       if temperature_fn is not None else None)

        def zero_ends(k):
            z = jnp.zeros_like(k[:1])
            return jnp.concatenate([z, k[1:-1], z], axis=0)

        kz = None
        if kz_fn is not None:
            kz = zero_ends(field3("kz_fn", kz_fn, p_int, nlev + 1))
        elif blh_fn is not None:
            blh = jnp.broadcast_to(jnp.asarray(blh_fn(t, lon2, lat2), dtype), lat2.shape)
            temp = (temperature if temperature is not None
                    else standard_atmosphere_temperature(p_mid))
            kz = profile.kz_on_interfaces(p_int, temp, blh)
        conv = None
        if conv_mflux_fn is not None:
            conv = zero_ends(field3("conv_mflux_fn", conv_mflux_fn, p_int, nlev + 1))
            conv = conv * jnp.asarray(area_np, dtype)[None]
        khv = None if kh is None else jnp.asarray(kh, dtype)
        return MetFields(ps=ps, mfx=mfx, mfy=mfy, temperature=temperature, kz=kz,
                         conv_mflux=conv, kh=khv)

    return FunctionMet(fn=fn)


__all__ = [
    "BalancedMet",
    "MetOnGrid",
    "build_met",
    "check_times",
    "kz_from_blh",
    "met_from_arrays",
    "met_from_functions",
    "seconds_since",
]
