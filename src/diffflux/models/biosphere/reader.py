"""Read biosphere drivers and surface maps from CF netCDF files (I/O edge; NumPy and xarray).

Weather file: daily (or any regular) time axis, variables found by CF ``standard_name`` first, then by
the usual CMIP short name:

==================================================  ===========  =====================  ==========
standard_name                                       short name   unit expected          required
==================================================  ===========  =====================  ==========
air_temperature                                     tas          K                      yes
surface_downwelling_shortwave_flux_in_air           rsds         W m-2                  yes
precipitation_flux                                  pr           kg m-2 s-1 (mm d-1)    yes
water_vapor_saturation_deficit_in_air               vpd          Pa (hPa, kPa)          one of
relative_humidity                                   hurs         % or 1                 these two
air_temperature_diurnal_range (no CF name)          dtr          K                      no (10 K)
soil_temperature                                    tsl          K                      no (= tas)
mole_fraction_of_carbon_dioxide_in_air              co2          mol mol-1 (ppm)        no (415 ppm)
mole_fraction_of_methane_in_air                     ch4          mol mol-1 (ppb)        no (1900 ppb)
==================================================  ===========  =====================  ==========

Temperatures given in degC (unit ``degC``/``C``) are converted; a temperature variable labelled K whose
values look like Celsius is an error. Surface-map file (optional; defaults from the built-in rules):
``pft_fraction(pft, lat, lon)`` with a ``pft`` coordinate of PFT codes (see
:data:`~diffflux.models.biosphere.pft.PFT_CODES`), ``land_fraction`` (``sftlf``; % or 1),
``wetland_fraction``, ``paddy_fraction``, ``n_input`` [g N m-2 yr-1 or kg N ha-1 yr-1]. Fields on another
global lon-lat grid are regridded conservatively to the model grid.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid
from diffflux.met.regrid import regrid_conservative
from diffflux.models.biosphere.climate import (
    CH4_DEFAULT,
    CO2_DEFAULT,
    climatology_maps,
    insolation,
    saturation_vapour_pressure,
)
from diffflux.models.biosphere.drivers import WEATHER_FIELDS, ArrayDrivers, SurfaceMaps, validate_weather
from diffflux.models.biosphere.pft import NPFT, PFT_CODES

_NAMES = {
    "tair": ("air_temperature", "tas"),
    "swdown": ("surface_downwelling_shortwave_flux_in_air", "rsds"),
    "precip": ("precipitation_flux", "pr"),
    "vpd": ("water_vapor_saturation_deficit_in_air", "vpd"),
    "hurs": ("relative_humidity", "hurs"),
    "trange": (None, "dtr"),
    "tsoil": ("soil_temperature", "tsl"),
    "co2": ("mole_fraction_of_carbon_dioxide_in_air", "co2"),
    "ch4": ("mole_fraction_of_methane_in_air", "ch4"),
}

_UNITS = {
    "tair": {
        "K": (1.0, 0.0),
        "kelvin": (1.0, 0.0),
        "degC": (1.0, 273.15),
        "C": (1.0, 273.15),
        "celsius": (1.0, 273.15),
        "degree_Celsius": (1.0, 273.15),
    },
    "swdown": {"W m-2": (1.0, 0.0), "W/m2": (1.0, 0.0), "W m**-2": (1.0, 0.0)},
    "precip": {
        "kg m-2 s-1": (1.0, 0.0),
        "kg/m2/s": (1.0, 0.0),
        "mm s-1": (1.0, 0.0),
        "mm d-1": (1.0 / 86400.0, 0.0),
        "mm/day": (1.0 / 86400.0, 0.0),
        "mm day-1": (1.0 / 86400.0, 0.0),
    },
    "vpd": {"Pa": (1.0, 0.0), "hPa": (100.0, 0.0), "kPa": (1000.0, 0.0)},
    "hurs": {"%": (0.01, 0.0), "percent": (0.01, 0.0), "1": (1.0, 0.0), "": (1.0, 0.0)},
    "trange": {"K": (1.0, 0.0), "degC": (1.0, 0.0), "C": (1.0, 0.0)},
    "co2": {"mol mol-1": (1.0, 0.0), "1": (1.0, 0.0), "ppm": (1e-6, 0.0), "1e-6": (1e-6, 0.0)},
    "ch4": {"mol mol-1": (1.0, 0.0), "1": (1.0, 0.0), "ppb": (1e-9, 0.0), "1e-9": (1e-9, 0.0)},
}
_UNITS["tsoil"] = _UNITS["tair"]


def _find(ds, key):
    std, short = _NAMES[key]
    for name, var in ds.data_vars.items():
        if std is not None and var.attrs.get("standard_name") == std:
            return name
    return short if short in ds.data_vars else None


def _convert(ds, name, key, path):
    var = ds[name]
    units = str(var.attrs.get("units", "")).strip()
    table = _UNITS[key]
    if units not in table:
        raise ValueError(
            f"{path}: variable {name!r}: unknown units {units!r}; expected one of {sorted(table)}"
        )
    scale, offset = table[units]
    values = np.asarray(var.values, dtype=np.float64) * scale + offset
    if key in ("tair", "tsoil") and offset == 0.0 and np.nanmax(values) < 150.0:
        raise ValueError(
            f"{path}: variable {name!r} is labelled {units!r} but its values ({np.nanmin(values):.1f} to "
            f"{np.nanmax(values):.1f}) look like degrees Celsius; fix the units attribute"
        )
    return values


def _coords(ds, path):
    lat = next((c for c in ("lat", "latitude") if c in ds.coords), None)
    lon = next((c for c in ("lon", "longitude") if c in ds.coords), None)
    if lat is None or lon is None:
        raise ValueError(f"{path}: needs 'lat'/'latitude' and 'lon'/'longitude' coordinates")
    return np.asarray(ds[lat].values, np.float64), np.asarray(ds[lon].values, np.float64)


def _to_grid(values, lat, lon, grid, path):
    same = (
        values.shape[-2:] == (grid.nlat, grid.nlon)
        and np.allclose(np.sort(lat), grid.lat)
        and np.allclose(np.sort((lon + 180.0) % 360.0 - 180.0), grid.lon)
    )
    if same:
        order_lat = np.argsort(lat)
        order_lon = np.argsort((lon + 180.0) % 360.0 - 180.0)
        return values[..., order_lat, :][..., order_lon]
    return regrid_conservative(values, lat, lon, grid, where=str(path))


def read_weather(path, maps: SurfaceMaps) -> ArrayDrivers:
    """Daily weather from ``path`` on the land cells of ``maps`` (errors name the file and variable)."""
    import xarray as xr

    path = Path(path)
    with xr.open_dataset(path) as ds:
        lat, lon = _coords(ds, path)
        fields: dict[str, np.ndarray] = {}
        for key in ("tair", "swdown", "precip", "trange", "tsoil", "vpd", "hurs", "co2", "ch4"):
            name = _find(ds, key)
            if name is None:
                continue
            v = _convert(ds, name, key, path)
            if v.ndim == 3:
                v = _to_grid(v, lat, lon, maps.grid, path)[:, maps.cell_j, maps.cell_i]
            elif v.ndim == 1:
                v = np.broadcast_to(v[:, None], (v.shape[0], maps.ncell))
            else:
                raise ValueError(
                    f"{path}: variable {name!r} must be (time, lat, lon) or (time,), found dims "
                    f"{ds[name].dims}"
                )
            if np.isnan(v).any():
                raise ValueError(
                    f"{path}: variable {name!r} has {int(np.isnan(v).sum())} NaN values on land cells"
                )
            fields[key] = v
    for key in ("tair", "swdown", "precip"):
        if key not in fields:
            std, short = _NAMES[key]
            raise ValueError(
                f"{path}: missing required variable {key} (standard_name {std!r} or name {short!r})"
            )
    nt = fields["tair"].shape[0]
    if (fields["precip"] < 0).any():
        bad = fields["precip"][fields["precip"] < 0]
        raise ValueError(
            f"{path}: variable precipitation has {bad.size} negative values (min {bad.min():.3g} "
            f"kg m-2 s-1); precipitation must be >= 0"
        )
    fields.setdefault("trange", np.full((nt, maps.ncell), 10.0))
    fields.setdefault("tsoil", fields["tair"])
    fields.setdefault("co2", np.full((nt, maps.ncell), CO2_DEFAULT))
    fields.setdefault("ch4", np.full((nt, maps.ncell), CH4_DEFAULT))
    if "vpd" not in fields:
        if "hurs" not in fields:
            raise ValueError(f"{path}: needs vapour-pressure deficit ('vpd') or relative humidity ('hurs')")
        rh = fields.pop("hurs")
        if rh.min() < 0 or rh.max() > 1.0 + 1e-6:
            raise ValueError(
                f"{path}: relative humidity must lie in [0, 1] after unit conversion, found "
                f"[{rh.min():.3g}, {rh.max():.3g}] (check the units attribute: % or 1)"
            )
        fields["vpd"] = np.asarray(saturation_vapour_pressure(fields["tair"] + fields["trange"] / 4.0)) * (
            1.0 - rh
        )
    fields.pop("hurs", None)
    lat_cells = maps.grid.lat[maps.cell_j]
    day = np.arange(nt) % 365
    _, daylength = insolation(lat_cells[None, :], day[:, None].astype(np.float64))
    fields["daylength"] = np.asarray(daylength)
    validate_weather(fields, str(path))
    return ArrayDrivers(fields={k: jnp.asarray(fields[k]) for k in WEATHER_FIELDS})


def read_surface_maps(path, grid: LatLonGrid) -> SurfaceMaps:
    """Surface maps from ``path``; missing optional fields come from the built-in rules."""
    import xarray as xr

    path = Path(path)
    default, _ = climatology_maps(grid)
    with xr.open_dataset(path) as ds:
        lat, lon = _coords(ds, path)
        if "pft_fraction" not in ds:
            raise ValueError(f"{path}: missing variable 'pft_fraction' (pft, lat, lon)")
        var = ds["pft_fraction"]
        if "pft" not in var.dims:
            raise ValueError(f"{path}: 'pft_fraction' needs a 'pft' dimension, found {var.dims}")
        codes = [str(c) for c in ds["pft"].values] if "pft" in ds.coords else []
        unknown = [c for c in codes if c not in PFT_CODES]
        if not codes or unknown:
            raise ValueError(
                f"{path}: variable 'pft_fraction': unknown PFT codes {unknown or '(none given)'}; "
                f"valid codes are {', '.join(PFT_CODES)}"
            )
        frac_src = np.asarray(var.transpose("pft", ...).values, np.float64)
        frac = _to_grid(frac_src, lat, lon, grid, path)
        land_name = next((n for n in ("land_fraction", "sftlf") if n in ds), None)
        if land_name is not None:
            land = np.asarray(ds[land_name].values, np.float64)
            if str(ds[land_name].attrs.get("units", "1")) in ("%", "percent"):
                land = land / 100.0
            land = _to_grid(land, lat, lon, grid, path)
        else:
            from diffflux.geography import land_fraction

            land = land_fraction(grid)
        cell_j, cell_i = np.nonzero(land > 1e-3)
        pft = np.zeros((cell_j.size, NPFT))
        for k, code in enumerate(codes):
            pft[:, PFT_CODES.index(code)] = frac[k][cell_j, cell_i]
        total = pft.sum(axis=1)
        if (total > 1.0 + 1e-6).any():
            raise ValueError(
                f"{path}: variable 'pft_fraction': fractions sum to more than one in "
                f"{int((total > 1 + 1e-6).sum())} land cells (max {total.max():.4f})"
            )

        def optional(name, fallback, scale_units=None):
            if name not in ds:
                lookup = {
                    (j, i): k for k, (j, i) in enumerate(zip(default.cell_j, default.cell_i, strict=True))
                }
                return np.array(
                    [
                        fallback[lookup[(j, i)]] if (j, i) in lookup else 0.0
                        for j, i in zip(cell_j, cell_i, strict=True)
                    ]
                )
            v = np.asarray(ds[name].values, np.float64)
            if scale_units is not None:
                v = v * scale_units.get(str(ds[name].attrs.get("units", "")), 1.0)
            return _to_grid(v, lat, lon, grid, path)[cell_j, cell_i]

        wet = optional("wetland_fraction", default.wetland_fraction)
        paddy = optional("paddy_fraction", default.paddy_fraction)
        n_in = optional("n_input", default.n_input, {"kg N ha-1 yr-1": 0.1, "kg ha-1 yr-1": 0.1})
    return SurfaceMaps.with_loam(
        grid,
        cell_j,
        cell_i,
        land_fraction=np.clip(land[cell_j, cell_i], 0, 1),
        pft_fraction=pft,
        wetland_fraction=wet,
        paddy_fraction=paddy,
        n_input=n_in,
    )
