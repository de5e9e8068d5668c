"""CF-1.8 xarray datasets from model arrays.

Dims follow the house order ``(time, [tracer,] level, lat, lon)``; each tracer becomes its own variable.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import xarray as xr

from diffflux.grid import LatLonGrid


def grid_coords(grid: LatLonGrid) -> dict[str, xr.DataArray]:
    """CF coordinate variables (lon, lat, level, and their bounds) for ``grid``."""
    lev = np.arange(grid.nlev)
    p_ref = grid.levels.reference_pressures()
    return {
        "lon": xr.DataArray(grid.lon, dims="lon", attrs={
            "units": "degrees_east", "standard_name": "longitude", "long_name": "cell-centre longitude",
            "bounds": "lon_bnds"}),
        "lat": xr.DataArray(grid.lat, dims="lat", attrs={
            "units": "degrees_north", "standard_name": "latitude", "long_name": "cell-centre latitude",
            "bounds": "lat_bnds"}),
        "level": xr.DataArray(lev, dims="level", attrs={
            "long_name": "model level index, 0 at the surface", "positive": "up"}),
        "p_ref": xr.DataArray(p_ref, dims="level", attrs={
            "units": "Pa", "long_name": "layer mid pressure for a 1000 hPa surface pressure"}),
    }


def mixing_ratio_dataset(
    grid: LatLonGrid,
    chi,
    names: list[str],
    *,
    times=None,
    scale: list[float] | None = None,
    units: list[str] | None = None,
    reference_time: _dt.datetime | None = None,
    attrs: dict | None = None,
    level_index: list[int] | None = None,
) -> xr.Dataset:
    """Mixing ratios as a CF dataset.

    Args:
        grid: model grid.
        chi: ``(ntime, ntr, nlev, nlat, nlon)`` or ``(ntr, nlev, nlat, nlon)`` [mol mol-1].
        names: tracer names (variable names), length ``ntr``.
        times: ``(ntime,)`` seconds since ``reference_time`` (required with a time axis).
        scale, units: per tracer multiplier and unit string for the output (default 1 and "mol mol-1";
            e.g. ``1e6, "ppm"``).
        reference_time: datetime of ``t = 0`` (default 2000-01-01).
        attrs: global attributes to add.
        level_index: model levels that ``chi`` holds (default: all levels of ``grid``).
    """
    chi = np.asarray(chi)
    has_time = chi.ndim == 5
    if chi.ndim not in (4, 5):
        raise ValueError(f"mixing_ratio_dataset: chi must be 4-D or 5-D, found shape {chi.shape}")
    ntr = chi.shape[1] if has_time else chi.shape[0]
    if len(names) != ntr:
        raise ValueError(f"mixing_ratio_dataset: {len(names)} names for {ntr} tracers")
    scale = scale or [1.0] * ntr
    units = units or ["mol mol-1"] * ntr
    ref = reference_time or _dt.datetime(2000, 1, 1)
    coords = grid_coords(grid)
    if level_index is not None:
        coords["level"] = coords["level"].isel(level=list(level_index))
        coords["p_ref"] = coords["p_ref"].isel(level=list(level_index))
    dims = ("level", "lat", "lon")
    if has_time:
        if times is None or len(times) != chi.shape[0]:
            raise ValueError("mixing_ratio_dataset: times must be given, one per output time")
        coords["time"] = xr.DataArray(np.asarray(times, dtype=np.float64), dims="time", attrs={
            "units": f"seconds since {ref:%Y-%m-%d %H:%M:%S}", "standard_name": "time",
            "calendar": "standard"})
        dims = ("time",) + dims
    data = {}
    for k, name in enumerate(names):
        arr = chi[:, k] if has_time else chi[k]
        data[name] = xr.DataArray(arr * scale[k], dims=dims, attrs={
            "units": units[k], "long_name": f"{name} dry-air mole fraction",
            "cell_methods": "area: mean"})
    ds = xr.Dataset(data, coords=coords)
    ds["lon_bnds"] = xr.DataArray(np.stack([grid.lon_edges[:-1], grid.lon_edges[1:]], -1),
                                  dims=("lon", "nv"))
    ds["lat_bnds"] = xr.DataArray(np.stack([grid.lat_edges[:-1], grid.lat_edges[1:]], -1),
                                  dims=("lat", "nv"))
    ds["cell_area"] = xr.DataArray(grid.area, dims=("lat", "lon"), attrs={
        "units": "m2", "standard_name": "cell_area"})
    ds.attrs.update({"Conventions": "CF-1.8", "source": "diffflux transport model",
                     "grid": grid.describe()})
    if attrs:
        ds.attrs.update(attrs)
    return ds
