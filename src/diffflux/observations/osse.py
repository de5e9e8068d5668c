"""Observing-system simulation experiments: sampling designs, pseudo-observations from a truth run, files.

1. A *design* is an observation table whose values are placeholders (0) and whose ``uncertainty`` is the
   1-sigma noise to add: :func:`flask_design` (weekly flasks at a fixed local solar time),
   :func:`continuous_design` (hourly, optionally afternoon-only by local solar time),
   :func:`aircraft_design` (vertical profiles over a site) and :func:`satellite_design` (columns along
   sun-synchronous tracks with a cross-track swath, sunlit, over land by default (the packaged Natural
   Earth land raster of :mod:`diffflux.geography`) or any mask).
2. :func:`simulate` runs the truth transport, samples it inside the scan
   (:func:`diffflux.observations.sample_run`) and adds Gaussian noise ``N(0, uncertainty^2)`` from a seeded
   generator.
3. :func:`write_osse` writes the result in the formats the readers accept (ObsPack-style netCDF per site,
   the CSV format, lite-file netCDF per platform and species); :func:`read_osse` reads such a directory.

Times: designs carry UTC ``datetime64``; the run clock is seconds since ``reference_time`` (for the
built-in :class:`~diffflux.met.Climatology`, 1 January 00 UTC of the year). Design times are whole
seconds, so files round-trip exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import equinox as eqx
import numpy as np
import xarray as xr

from diffflux.constants import EARTH_RADIUS
from diffflux.grid import LatLonGrid
from diffflux.observations.catalogue import Station, get_station
from diffflux.observations.readers import (
    read_csv,
    read_obspack_dir,
    read_satellite,
    write_csv,
    write_obspack,
    write_satellite,
)
from diffflux.observations.table import (
    OBS_DIM,
    FilterReport,
    concat_tables,
    make_table,
    select,
    to_arrays,
)

_SECOND = np.timedelta64(1, "s")
DEFAULT_PRIOR = {"CO2": 400e-6, "CH4": 1.85e-6}
"""Constant a-priori profiles of the synthetic satellite design [mol mol-1]."""


def _stations(sites) -> list[Station]:
    return [s if isinstance(s, Station) else get_station(s) for s in sites]


def _days(start, end) -> np.ndarray:
    s = np.datetime64(start, "D")
    e = np.datetime64(end, "D")
    return np.arange(s, e + np.timedelta64(1, "D"), np.timedelta64(1, "D"))


def _lst_to_utc(day, hour_lst: float, lon: float) -> np.datetime64:
    """UTC time of local solar time ``hour_lst`` [h] on ``day`` at longitude ``lon`` [deg] (whole seconds)."""
    sec = int(round((hour_lst - lon / 15.0) * 3600.0))
    return np.datetime64(day, "s") + sec * _SECOND


def local_solar_hour(time, lon) -> np.ndarray:
    """Mean local solar time [h, 0..24) of UTC ``time`` (datetime64) at longitude ``lon`` [deg]."""
    t = np.asarray(time).astype("datetime64[s]")
    utc_h = (t - t.astype("datetime64[D]")).astype(np.int64) / 3600.0
    return np.mod(utc_h + np.asarray(lon) / 15.0, 24.0)


def cos_solar_zenith(time, lat, lon) -> np.ndarray:
    """Cosine of the solar zenith angle at UTC ``time`` and (``lat``, ``lon``) [deg] (NumPy).

    Declination ``23.44 deg sin(2 pi (doy - 79) / 365.25)`` and hour angle from mean local solar time, the
    same approximations as :meth:`diffflux.met.Climatology.cos_solar_zenith`.
    """
    t = np.asarray(time).astype("datetime64[s]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[s]")
    doy = (t - year_start).astype(np.int64) / 86400.0
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 79.0) / 365.25)
    hour_angle = np.deg2rad(15.0 * (local_solar_hour(t, lon) - 12.0))
    phi = np.deg2rad(lat)
    return np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)


def is_land(lat, lon) -> np.ndarray:
    """Whether points (``lat``, ``lon`` [degrees]) lie on land, from the packaged 1/12-degree Natural Earth
    land raster of :mod:`diffflux.geography` (nearest raster cell; lakes are not land)."""
    from diffflux.geography import land_raster, raster_resolution

    res = raster_resolution()
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.mod(np.asarray(lon, dtype=np.float64) + 180.0, 360.0)
    j = np.clip(np.floor((lat + 90.0) * res).astype(np.int64), 0, 180 * res - 1)
    i = np.clip(np.floor(lon * res).astype(np.int64), 0, 360 * res - 1)
    return land_raster()[j, i]


# ------------------------------------------------------------------------------------------------
# designs
# ------------------------------------------------------------------------------------------------


def _point_design(records: list[tuple], species: str, uncertainty: float, sampling: str) -> xr.Dataset:
    if not records:
        raise ValueError(f"{sampling} design: no records in the requested window")
    t, site, lat, lon, alt = zip(*records)
    return make_table(
        np.array(t, "datetime64[ns]"),
        lat,
        lon,
        np.zeros(len(t)),
        uncertainty,
        species,
        altitude=alt,
        site=np.array(site),
        kind="point",
        sampling=sampling,
    )


def flask_design(
    sites: Sequence,
    start,
    end,
    *,
    species: str = "CO2",
    every_days: int = 7,
    hour_lst: float = 14.0,
    uncertainty: float = 0.2e-6,
) -> xr.Dataset:
    """Flask samples every ``every_days`` days at ``hour_lst`` local solar time at each site.

    Args:
        sites: station ids (catalogue) or :class:`Station` objects.
        start, end: window (datetime-like); samples fall inside ``[start, end]``.
        uncertainty: 1-sigma noise [mol mol-1] (0.2 ppm default, flask CO2).
    """
    s0, s1 = np.datetime64(start, "s"), np.datetime64(end, "s")
    rec = []
    for st in _stations(sites):
        for day in _days(start, end)[::every_days]:
            t = _lst_to_utc(day, hour_lst, st.longitude)
            if s0 <= t <= s1:
                rec.append((t, st.id, st.latitude, st.longitude, st.sampling_altitude))
    return _point_design(sorted(rec, key=lambda r: (r[0], r[1])), species, uncertainty, "flask")


def continuous_design(
    sites: Sequence,
    start,
    end,
    *,
    species: str = "CO2",
    every_hours: int = 1,
    afternoon_only: bool = False,
    afternoon: tuple[float, float] = (12.0, 16.0),
    uncertainty: float = 1.0e-6,
) -> xr.Dataset:
    """Continuous in-situ records every ``every_hours`` hours (on the UTC hour) at each site.

    ``afternoon_only`` keeps records whose local solar time lies in ``[afternoon[0], afternoon[1])`` hours
    (the well-mixed daytime boundary layer that inversions usually assimilate). Default noise 1 ppm (a
    typical model-data mismatch for hourly CO2).
    """
    s0, s1 = np.datetime64(start, "s"), np.datetime64(end, "s")
    hours = np.arange(s0.astype("datetime64[h]"), s1 + _SECOND, np.timedelta64(every_hours, "h")).astype(
        "datetime64[s]"
    )
    hours = hours[(hours >= s0) & (hours <= s1)]
    rec = []
    for st in _stations(sites):
        use = hours
        if afternoon_only:
            h = local_solar_hour(hours, st.longitude)
            use = hours[(h >= afternoon[0]) & (h < afternoon[1])]
        rec.extend((t, st.id, st.latitude, st.longitude, st.sampling_altitude) for t in use)
    return _point_design(sorted(rec, key=lambda r: (r[0], r[1])), species, uncertainty, "continuous")


def aircraft_design(
    site,
    times: Sequence,
    altitudes: Sequence[float],
    *,
    species: str = "CO2",
    seconds_per_level: float = 120.0,
    uncertainty: float = 0.3e-6,
) -> xr.Dataset:
    """Vertical profiles over ``site``: for each start time, one sample per altitude [m a.s.l.] (ascending,
    ``seconds_per_level`` apart, so a profile takes ``len(altitudes) x seconds_per_level``)."""
    st = _stations([site])[0]
    rec = []
    for t0 in times:
        base = np.datetime64(t0, "s")
        for k, alt in enumerate(sorted(altitudes)):
            t = base + int(round(k * seconds_per_level)) * _SECOND
            rec.append((t, st.id, st.latitude, st.longitude, float(alt)))
    return _point_design(rec, species, uncertainty, "aircraft")


def sun_synchronous_track(
    start,
    end,
    *,
    step_seconds: float = 10.0,
    inclination: float = 98.2,
    period_minutes: float = 98.8,
    equator_crossing_lst: float = 13.5,
    phase: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-satellite points of a circular sun-synchronous orbit (OCO-2-like defaults).

    Argument of latitude ``u = 2 pi (t - start) / P + phase``; ``lat = asin(sin i sin u)``, longitude from
    the node ``atan2(cos i sin u, cos u)``. The node of a sun-synchronous orbit keeps its local solar time,
    so its Earth-fixed longitude is ``15 deg/h (LST_node - UTC)``: ascending crossings happen at
    ``equator_crossing_lst`` local time.

    Returns:
        ``(time datetime64[s] (n,), lat (n,), lon (n,))`` [degrees], lon in [-180, 180).
    """
    s0, s1 = np.datetime64(start, "s"), np.datetime64(end, "s")
    secs = np.arange(0.0, (s1 - s0).astype(np.int64) + 1e-9, step_seconds)
    secs = np.round(secs).astype(np.int64)
    t = s0 + secs * _SECOND
    i = np.deg2rad(inclination)
    u = 2 * np.pi * secs / (period_minutes * 60.0) + phase
    lat = np.rad2deg(np.arcsin(np.sin(i) * np.sin(u)))
    dlon = np.arctan2(np.cos(i) * np.sin(u), np.cos(u))
    utc_h = (t - t.astype("datetime64[D]")).astype(np.int64) / 3600.0
    # node longitude such that the node has local solar time LST_node = equator_crossing_lst
    node = np.deg2rad(15.0 * (equator_crossing_lst - utc_h))
    lon = np.rad2deg(np.mod(node + dlon + np.pi, 2 * np.pi) - np.pi)
    return t, lat, lon


def satellite_design(
    start,
    end,
    *,
    species: str = "CO2",
    platform: str = "OSSE-SAT",
    step_seconds: float = 10.0,
    swath_km: float = 10.0,
    footprints: int = 1,
    min_cos_sza: float = math.cos(math.radians(70.0)),
    mask: Callable | tuple | str | None = "land",
    nret: int = 20,
    surface_pressure: float = 1.0e5,
    top_pressure: float = 100.0,
    averaging_kernel: Callable | None = None,
    prior: float | None = None,
    uncertainty: float = 1.0e-6,
    **track,
) -> xr.Dataset:
    """Satellite-like column soundings along a sun-synchronous track (see :func:`sun_synchronous_track`).

    Args:
        start, end: window.
        step_seconds: along-track spacing [s] (about 68 km per 10 s).
        swath_km, footprints: cross-track swath width [km] and number of footprints across it.
        min_cos_sza: keep sunlit soundings with ``cos(SZA) >= min_cos_sza`` (default SZA <= 70 degrees).
        mask: which soundings to keep besides sunlight: ``"land"`` (default; nadir/glint-free land
            soundings, :func:`is_land`), a function ``mask(lat, lon) -> bool array``, a tuple
            ``(grid, array (nlat, nlon) bool)`` looked up at the nearest model cell, or None (keep all).
        nret: retrieval levels, equally spaced in pressure from ``surface_pressure`` to ``top_pressure`` [Pa].
        averaging_kernel: ``a(p / ps)`` [1] (default ``0.45 + 0.55 sqrt(p / ps)``, falling from 1 at the
            surface to about 0.5 at the top, the shape of OCO-2 XCO2 kernels).
        prior: constant a-priori profile [mol mol-1] (default :data:`DEFAULT_PRIOR`).
        uncertainty: 1-sigma noise [mol mol-1].
        **track: passed to :func:`sun_synchronous_track` (inclination, period_minutes, equator_crossing_lst,
            phase).
    """
    t, lat, lon = sun_synchronous_track(start, end, step_seconds=step_seconds, **track)
    # heading from successive points, cross-track offsets in the local tangent plane
    if footprints > 1:
        dlat = np.gradient(lat)
        dlon = np.gradient(np.unwrap(np.deg2rad(lon))) * np.cos(np.deg2rad(lat))
        dlon = np.rad2deg(dlon)
        norm = np.hypot(dlat, dlon) + 1e-300
        east, north = dlat / norm, -dlon / norm  # unit vector to the right of the track
        offs = np.rad2deg(np.linspace(-0.5, 0.5, footprints) * swath_km * 1e3 / EARTH_RADIUS)
        coslat = np.maximum(np.cos(np.deg2rad(lat)), 1e-6)
        lat, lon = (
            np.concatenate([lat + o * north for o in offs]),
            np.concatenate([lon + o * east / coslat for o in offs]),
        )
        t = np.concatenate([t] * footprints)
    lat = np.clip(lat, -89.999, 89.999)
    lon = np.mod(lon + 180.0, 360.0) - 180.0
    keep = cos_solar_zenith(t, lat, lon) >= min_cos_sza
    if isinstance(mask, str):
        if mask != "land":
            raise ValueError(
                f"satellite_design: mask must be 'land', a function, (grid, array) or None; found {mask!r}"
            )
        keep &= is_land(lat, lon)
    elif mask is not None:
        if callable(mask):
            keep &= np.asarray(mask(lat, lon), bool)
        else:
            grid, arr = mask
            j = np.clip(((lat + 90.0) / (180.0 / grid.nlat)).astype(int), 0, grid.nlat - 1)
            i = np.clip(((lon + 180.0) / (360.0 / grid.nlon)).astype(int), 0, grid.nlon - 1)
            keep &= np.asarray(arr, bool)[j, i]
    t, lat, lon = t[keep], lat[keep], lon[keep]
    order = np.argsort(t, kind="stable")
    t, lat, lon = t[order], lat[order], lon[order]
    n = t.size
    if n == 0:
        raise ValueError("satellite_design: no sunlit, unmasked soundings in the window")
    p = np.linspace(surface_pressure, top_pressure, nret)
    edges = np.concatenate([[surface_pressure], 0.5 * (p[1:] + p[:-1]), [top_pressure]])
    w = (edges[:-1] - edges[1:]) / (surface_pressure - top_pressure)
    ak = (averaging_kernel or (lambda s: 0.45 + 0.55 * np.sqrt(s)))(p / surface_pressure)
    x0 = DEFAULT_PRIOR.get(species, 0.0) if prior is None else prior
    col = {
        "ret_pressure": np.broadcast_to(p, (n, nret)),
        "averaging_kernel": np.broadcast_to(ak, (n, nret)),
        "pressure_weight": np.broadcast_to(w, (n, nret)),
        "prior_profile": np.full((n, nret), x0),
        "prior_value": np.full(n, float(np.sum(w * x0))),
    }
    return make_table(
        t.astype("datetime64[ns]"),
        lat,
        lon,
        np.zeros(n),
        uncertainty,
        species,
        site=platform,
        kind="column",
        sampling="satellite",
        column=col,
    )


# ------------------------------------------------------------------------------------------------
# pseudo-observations and files
# ------------------------------------------------------------------------------------------------


def sort_table(ds: xr.Dataset) -> xr.Dataset:
    """Canonical record order: time, then site, species, altitude, pressure (stable)."""
    keys = (
        np.nan_to_num(ds["pressure"].values),
        np.nan_to_num(ds["altitude"].values),
        ds["species"].values.astype(str),
        ds["site"].values.astype(str),
        ds["time"].values.astype(np.int64),
    )
    return ds.isel({OBS_DIM: np.lexsort(keys)})


def simulate(
    model,
    met,
    state,
    design: xr.Dataset,
    *,
    tracers: Sequence[str],
    reference_time,
    t0: float,
    dt: float,
    nsteps: int,
    flux=None,
    noise: bool = True,
    seed: int = 0,
    grid: LatLonGrid | None = None,
) -> tuple[xr.Dataset, np.ndarray]:
    """Pseudo-observations from a truth run.

    Args:
        model, met, state, flux: the truth transport (as for :func:`diffflux.transport.run`).
        design: design table(s) (values ignored; ``uncertainty`` = noise sigma).
        tracers: species of the state's tracer axis.
        reference_time: datetime of ``t = 0`` of the run clock.
        t0, dt, nsteps: run window [s], [s], steps; design records outside it are dropped (reported).
        noise: add ``N(0, uncertainty^2)`` noise.
        seed: seed of :func:`numpy.random.default_rng`.
        grid: model grid (default ``model.grid``).

    Returns:
        ``(table, truth)``: the design with ``value`` = truth + noise (sorted, see :func:`sort_table`) and the
        noise-free model values ``(nobs,)`` [mol mol-1]. ``table.attrs['osse_report']`` says what was dropped.
    """
    from diffflux.observations.operators import build_operator

    grid = grid or model.grid
    ref = np.datetime64(reference_time, "ns")
    start = ref + np.round(t0 * 1e9).astype(np.int64).astype("timedelta64[ns]")
    end = start + np.round(nsteps * dt * 1e9).astype(np.int64).astype("timedelta64[ns]")
    design, report = select(sort_table(design), start=start, end=end, good_only=False)
    arrays = to_arrays(design, tracers, ref, dtype=state.air.dtype)
    op = build_operator(arrays, grid, t0=t0, dt=dt, nsteps=nsteps)

    truth = np.asarray(_truth_values(model, met, state, op, flux), dtype=np.float64)
    value = truth.copy()
    if noise:
        rng = np.random.default_rng(seed)
        value = value + rng.standard_normal(truth.size) * design["uncertainty"].values
    out = design.copy()
    out["value"] = (OBS_DIM, value, dict(design["value"].attrs))
    out.attrs["osse_report"] = str(report)
    out.attrs["osse_seed"] = int(seed) if noise else -1
    return out, truth


@eqx.filter_jit
def _truth_values(model, met, state, op, flux):
    """Model equivalents of a truth run (jitted once per model/met/shape configuration)."""
    from diffflux.observations.sampling import sample_run

    return sample_run(model, met, state, op, flux=flux)[1]


def write_osse(ds: xr.Dataset, directory) -> dict[str, list[Path]]:
    """Write an OSSE table: point records as ObsPack-style files (``obspack/``) and one CSV
    (``points.csv``), column records as lite files ``satellite_{platform}_{species}.nc``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {"obspack": [], "csv": [], "satellite": []}
    kind = ds["kind"].values.astype(str)
    pts = ds.isel({OBS_DIM: np.flatnonzero(kind == "point")})
    if pts.sizes[OBS_DIM]:
        pts = pts.drop_dims("level_ret", errors="ignore").drop_vars("prior_value", errors="ignore")
        out["obspack"] = write_obspack(pts, directory / "obspack")
        out["csv"] = [write_csv(pts, directory / "points.csv")]
    cols = ds.isel({OBS_DIM: np.flatnonzero(kind == "column")})
    keys = np.array(
        [f"{a}\t{b}" for a, b in zip(cols["site"].values.astype(str), cols["species"].values.astype(str))]
    )
    for key in dict.fromkeys(keys):
        site, sp = key.split("\t")
        sub = cols.isel({OBS_DIM: np.flatnonzero(keys == key)})
        out["satellite"].append(write_satellite(sub, directory / f"satellite_{site}_{sp}.nc"))
    return out


def read_osse(
    directory, *, points: str = "obspack", on_bad: str = "raise"
) -> tuple[xr.Dataset, FilterReport]:
    """Read a directory written by :func:`write_osse` (points from ``"obspack"`` files or the ``"csv"``)."""
    directory = Path(directory)
    tables, report = [], None
    if points == "obspack" and (directory / "obspack").exists():
        t, report = read_obspack_dir(directory / "obspack", on_bad=on_bad)
        tables.append(t)
    elif points == "csv" and (directory / "points.csv").exists():
        t, report = read_csv(directory / "points.csv", on_bad=on_bad)
        tables.append(t)
    for f in sorted(directory.glob("satellite_*.nc")):
        t, r = read_satellite(f, on_bad=on_bad)
        tables.append(t)
        report = r if report is None else report.merge(r)
    if not tables:
        raise FileNotFoundError(f"read_osse: no observation files in {directory}")
    return sort_table(concat_tables(tables)), report
