"""CF-1.8 netCDF products of a run: ``fluxes.nc`` (gridded fluxes) and ``observations.nc`` (the observation
table with the observed values, model equivalents and residuals).

``fluxes.nc``
    Dims ``(time, lat, lon)``; ``time`` is the middle of each flux block with ``time_bnds`` its edges,
    ``lat``/``lon`` cell centres with ``lat_bnds``/``lon_bnds`` (:func:`diffflux.io.netcdf.grid_coords`),
    ``cell_area`` [m2]. One variable per species, component and role,
    ``<species>_<component>_<role>`` with role ``prior``, ``posterior``, ``truth``, ``prior_sigma``,
    ``posterior_sigma`` (1-sigma), in mol m-2 s-1, positive = to the atmosphere, the mean over the
    block and the cell (``cell_methods = "area: mean time: mean"``). Each variable names its species,
    component and role in attributes of those names, so readers need not parse variable names. Per
    species, ``<species>_total_<role>`` sums the components for ``prior``, ``posterior`` and ``truth``
    (components without a posterior or truth count with their prior: they were not optimised or not
    perturbed); CO2 totals carry the CF standard name ``surface_upward_mole_flux_of_carbon_dioxide``.

``observations.nc``
    The observation table (:mod:`diffflux.observations.table`, dim ``obs``) plus ``y`` (the values the
    run used), ``model_prior``, ``model_posterior``, ``model_truth`` (twins), ``sigma`` (total
    1-sigma error) and ``residual_prior`` / ``residual_posterior`` (``y - model``), all in mol mol-1
    (species are mixed along ``obs``; convert with :mod:`diffflux.species` reporting units).

Global attributes of both: ``Conventions = "CF-1.8"``, ``title``, ``source`` and ``diffflux_version``,
``diffflux_mode``, ``history`` (UTC time stamp and command), ``date_created``, and the full resolved
configuration in ``diffflux_config``. Only ``history`` and ``date_created`` differ between two writes of
the same record.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

import numpy as np
import xarray as xr

from diffflux.grid import LatLonGrid
from diffflux.io.netcdf import grid_coords
from diffflux.products.atomic import atomic_save
from diffflux.products.record import ROLES, RunRecord

FLUX_UNITS = "mol m-2 s-1"
MOLE_FRACTION_UNITS = "mol mol-1"
TOTAL = "total"
"""Component name of the per-species sums in ``fluxes.nc``."""
TIME_DEPENDENT_ATTRS = ("history", "date_created")
"""Global attributes that change from one write of the same record to the next."""

_FLUX_STANDARD_NAMES = {"CO2": "surface_upward_mole_flux_of_carbon_dioxide"}
"""CF standard names of total surface mole fluxes (the CF table has mole-flux names only for CO2)."""

_ROLE_TEXT = {
    "prior": "prior",
    "posterior": "posterior",
    "truth": "truth (twin experiment)",
    "prior_sigma": "prior 1-sigma uncertainty",
    "posterior_sigma": "posterior 1-sigma uncertainty",
}
_COMPRESS = {"zlib": True, "complevel": 4}


def safe_name(text: str) -> str:
    """A netCDF/CF-friendly name: letters, digits and underscores (``"HFC-134a"`` -> ``"HFC_134a"``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(text))


def flux_variable(species: str, component: str, role: str) -> str:
    """Name of a flux variable in ``fluxes.nc``."""
    return f"{safe_name(species)}_{safe_name(component)}_{role}"


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def global_attrs(record: RunRecord, product: str, *, created: str, command: str = "") -> dict:
    """Global attributes shared by the netCDF products (``product`` says which file)."""
    from diffflux import __version__

    return {
        "Conventions": "CF-1.8",
        "title": f"{record.title}: {product}",
        "source": f"diffflux {__version__}",
        "diffflux_version": __version__,
        "diffflux_mode": record.mode,
        "history": f"{created} {command or 'diffflux.products.write_products (Python API)'}",
        "date_created": created,
        "diffflux_config": record.config_toml,
    }


def _reference(record: RunRecord) -> np.datetime64:
    return np.asarray(record.time_bounds)[0, 0].astype("datetime64[s]")


def _time_units(ref: np.datetime64) -> str:
    return f"seconds since {str(ref.astype('datetime64[s]')).replace('T', ' ')}"


def _seconds_dtype(t, ref: np.datetime64) -> str:
    """``int32`` for whole seconds since ``ref`` that fit it (exact, and a classic netCDF type), else
    ``float64``."""
    ns = (np.asarray(t).astype("datetime64[ns]") - ref.astype("datetime64[ns]")).astype(np.int64)
    whole = np.all(ns % 1_000_000_000 == 0)
    return "int32" if whole and ns.size and np.abs(ns).max() // 1_000_000_000 < 2**31 else "float64"


def _grid_variables(grid: LatLonGrid) -> dict[str, xr.DataArray]:
    """lat, lon (coordinates), their bounds and the cell area (data variables: CF bounds and cell measures
    are not coordinates, and as xarray coordinates they would end up in a global ``coordinates``
    attribute)."""
    coords = grid_coords(grid)
    lat = coords["lat"].copy()
    lon = coords["lon"].copy()
    lat.attrs["axis"] = "Y"
    lon.attrs["axis"] = "X"
    return {
        "lat": lat,
        "lon": lon,
        "lat_bnds": xr.DataArray(np.stack([grid.lat_edges[:-1], grid.lat_edges[1:]], -1), dims=("lat", "nv")),
        "lon_bnds": xr.DataArray(np.stack([grid.lon_edges[:-1], grid.lon_edges[1:]], -1), dims=("lon", "nv")),
        "cell_area": xr.DataArray(
            grid.area,
            dims=("lat", "lon"),
            attrs={"units": "m2", "standard_name": "cell_area", "long_name": "grid-cell area"},
        ),
    }


def _flux_attrs(species: str, component: str, role: str) -> dict:
    what = f"{species} surface flux, {'sum of all components' if component == TOTAL else component}"
    attrs = {
        "units": FLUX_UNITS,
        "long_name": f"{what}, {_ROLE_TEXT[role]}",
        "cell_methods": "area: mean time: mean",
        "cell_measures": "area: cell_area",
        "comment": "positive = from the surface to the atmosphere; mean over each time block (time_bnds)",
        "species": species,
        "component": component,
        "role": role,
    }
    if component == TOTAL and role in ("prior", "posterior", "truth") and species in _FLUX_STANDARD_NAMES:
        attrs["standard_name"] = _FLUX_STANDARD_NAMES[species]
    return attrs


def fluxes_dataset(record: RunRecord, *, created: str, command: str = "") -> xr.Dataset:
    """The ``fluxes.nc`` dataset of ``record`` (see the module docstring)."""
    tb = np.asarray(record.time_bounds).astype("datetime64[s]")
    ref = _reference(record)
    units = _time_units(ref)
    # integer seconds: exact in the file and when decoded (float seconds decode 1 ns off); int32 (68 years)
    # because CF tools take the classic types only
    edges = (tb - ref).astype(np.int64)
    twice_mid = edges[:, 0] + edges[:, 1]
    mid = twice_mid // 2 if np.all(twice_mid % 2 == 0) else 0.5 * twice_mid
    if edges.max() < 2**31:
        edges = edges.astype(np.int32)
        mid = mid.astype(np.int32) if mid.dtype.kind == "i" else mid
    grid_vars = _grid_variables(record.grid)
    coords = {"lat": grid_vars.pop("lat"), "lon": grid_vars.pop("lon")}
    coords["time"] = xr.DataArray(
        mid,
        dims="time",
        attrs={
            "units": units,
            "calendar": "standard",
            "standard_name": "time",
            "axis": "T",
            "long_name": "middle of the flux time block",
            "bounds": "time_bnds",
        },
    )
    data = {"time_bnds": xr.DataArray(edges, dims=("time", "nv")), **grid_vars}
    dims = ("time", "lat", "lon")
    species_order: list[str] = []
    for f in record.fluxes:
        if f.species not in species_order:
            species_order.append(f.species)
        arrays = f.arrays()
        for role, arr in arrays.items():
            name = flux_variable(f.species, f.component, role)
            if name in data:
                raise ValueError(f"fluxes.nc: two flux fields map to the variable name {name!r}")
            arr = np.asarray(arr)
            attrs = _flux_attrs(f.species, f.component, role)
            sigma = {"prior": "prior_sigma", "posterior": "posterior_sigma"}.get(role)
            if sigma in arrays:
                attrs["ancillary_variables"] = flux_variable(f.species, f.component, sigma)
            data[name] = xr.DataArray(
                arr if arr.dtype.kind == "f" else arr.astype(np.float64), dims=dims, attrs=attrs
            )
    for sp in species_order:
        comps = [f for f in record.fluxes if f.species == sp]
        for role in ("prior", "posterior", "truth"):
            if all(getattr(f, role) is None for f in comps):
                continue
            name = flux_variable(sp, TOTAL, role)
            if name in data:
                raise ValueError(f"fluxes.nc: a component of {sp} is called {TOTAL!r}, a reserved name")
            total = sum(
                np.asarray(getattr(f, role) if getattr(f, role) is not None else f.prior, np.float64)
                for f in comps
            )
            data[name] = xr.DataArray(total, dims=dims, attrs=_flux_attrs(sp, TOTAL, role))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(global_attrs(record, "gridded surface fluxes", created=created, command=command))
    ds.attrs["grid"] = record.grid.describe()
    ds.attrs["time_coverage_start"] = str(tb[0, 0])
    ds.attrs["time_coverage_end"] = str(tb[-1, 1])
    return ds


def observations_dataset(record: RunRecord, *, created: str, command: str = "") -> xr.Dataset:
    """The ``observations.nc`` dataset of ``record`` (requires ``record.observations``)."""
    obs = record.observations
    if obs is None:
        raise ValueError("observations_dataset: the record has no observations")
    ds = obs.table.copy()
    ds.attrs = {}
    mf = MOLE_FRACTION_UNITS

    def add(name, values, long_name):
        if values is not None:
            ds[name] = ("obs", np.asarray(values, dtype=np.float64), {"units": mf, "long_name": long_name})

    add("y", obs.y, "observed dry-air mole fraction used by the run (pseudo-observation in a twin)")
    add("model_prior", obs.prior, "model equivalent at the prior")
    add("model_posterior", obs.posterior, "model equivalent at the posterior")
    add("model_truth", obs.truth, "noise-free model equivalent of the truth (twin experiment)")
    add("sigma", obs.sigma, "total observation error, 1-sigma (measurement + model-data mismatch)")
    add("residual_prior", np.asarray(obs.y) - np.asarray(obs.prior), "observed minus prior model")
    if obs.posterior is not None:
        add(
            "residual_posterior",
            np.asarray(obs.y) - np.asarray(obs.posterior),
            "observed minus posterior model",
        )
    ds["time"].attrs.update({"standard_name": "time", "long_name": "sampling time (UTC)"})
    ds["altitude"].attrs.update({"standard_name": "altitude", "positive": "up"})
    if "qc" in ds:
        ds["qc"].attrs.update({"units": "1"})
    ds = ds.set_coords([k for k in ("time", "latitude", "longitude", "altitude") if k in ds])
    ds.attrs.update(
        global_attrs(record, "observations and model equivalents", created=created, command=command)
    )
    ds.attrs["featureType"] = "point"
    return ds


def _encoding(ds: xr.Dataset, reference: np.datetime64 | None = None) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        e: dict = {}
        if var.dtype.kind == "f":
            if name in ds.dims or name.endswith("_bnds") or name == "cell_area":
                e["_FillValue"] = None
            elif var.ndim >= 2 or var.size > 1000:
                e.update(_COMPRESS)
        if var.dtype.kind in "UO":
            e["dtype"] = "S1"  # classic char arrays: vlen strings trip older CF tools
        if name == "time" and var.dtype.kind == "M":
            dtype = _seconds_dtype(var.values, reference)
            e.update(
                {"units": _time_units(reference), "calendar": "standard", "dtype": dtype, "_FillValue": None}
            )
        if e:
            enc[name] = e
    return enc


def _to_netcdf(ds: xr.Dataset, path: Path, encoding: dict) -> Path:
    return atomic_save(
        path, lambda tmp: ds.to_netcdf(tmp, mode="w", engine="netcdf4", format="NETCDF4", encoding=encoding)
    )


def write_fluxes(
    record: RunRecord, path: str | os.PathLike, *, created: str | None = None, command: str = ""
) -> Path:
    """Write ``fluxes.nc`` atomically; returns the path."""
    ds = fluxes_dataset(record, created=created or utc_now(), command=command)
    return _to_netcdf(ds, Path(path), _encoding(ds))


def write_observations(
    record: RunRecord, path: str | os.PathLike, *, created: str | None = None, command: str = ""
) -> Path:
    """Write ``observations.nc`` atomically; returns the path."""
    ds = observations_dataset(record, created=created or utc_now(), command=command)
    return _to_netcdf(ds, Path(path), _encoding(ds, _reference(record)))


def read_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Open a product and load it into memory (the file is closed on return)."""
    with xr.open_dataset(path) as ds:
        return ds.load()


def grid_of(ds: xr.Dataset) -> LatLonGrid:
    """The model grid of a ``fluxes.nc`` dataset (regular global grids only, as diffflux writes)."""
    return LatLonGrid(nlon=int(ds.sizes["lon"]), nlat=int(ds.sizes["lat"]))


def flux_variables(ds: xr.Dataset, *, include_total: bool = False) -> dict[tuple[str, str], dict[str, str]]:
    """``{(species, component): {role: variable name}}`` of a ``fluxes.nc`` dataset, in file order."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for name, var in ds.data_vars.items():
        sp, comp, role = (var.attrs.get(k) for k in ("species", "component", "role"))
        if sp is None or role not in ROLES or (comp == TOTAL and not include_total):
            continue
        out.setdefault((str(sp), str(comp)), {})[str(role)] = str(name)
    return out


def block_weights(ds: xr.Dataset) -> np.ndarray:
    """``(ntime,)`` weights of the time blocks of a ``fluxes.nc`` dataset (their durations, summing to 1)."""
    b = ds["time_bnds"].values
    d = (b[:, 1] - b[:, 0]) / np.timedelta64(1, "s") if b.dtype.kind == "M" else (b[:, 1] - b[:, 0])
    d = np.asarray(d, dtype=np.float64)
    return d / d.sum()
