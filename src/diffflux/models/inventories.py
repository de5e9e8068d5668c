"""Emission inventories: read any lat-lon netCDF inventory, regrid it conservatively, write one; and the
built-in default distributions of the embedded run.

Reading (:func:`read_inventory`; I/O edge code, NumPy/xarray, run once before the differentiable chain):

* **Grids**: any rectilinear lon-lat grid, global or regional (e.g. an Asian inventory), of any
  resolution; longitudes 0..360 or -180..180 (or a window across the date line), latitudes either
  way; cell edges from CF bounds when present, else mid-points between centres. Grids whose cells do
  not tile (bounds with gaps or overlaps, more than 360 degrees of longitude, repeated meridians,
  irregular spacing without bounds) raise a ValueError. See :func:`diffflux.met.regrid.rectilinear_grid`.
* **Regridding**: first-order conservative with exact spherical overlap areas
  (:class:`diffflux.met.regrid.ConservativeRegridder`): flux densities are area-averaged, per-cell
  totals are split by overlap area. The global total, and the total over any region made of whole cells
  of both grids, is preserved to round-off (float64, ~1e-13 relative); emissions of a regional inventory
  are zero outside its domain.
* **Units**: the CF ``units`` attribute is parsed by :mod:`diffflux.models.units` (flux densities per
  m2/km2/cm2, or per-cell totals; per s/h/day/month/yr; mass of the species, of an element such as C or N,
  or moles/molecules) and converted with the species' molar mass to mol m-2 s-1. Per-month units use
  the length of each record's calendar month.
* **Sectors**: separate variables (default: every data variable on the lat/lon grid), or one variable
  with a sector dimension (any extra dimension; labels from its coordinate). ``sectors=`` selects;
  missing ones raise an error listing the available ones.
* **Time**: none (one record), annual or monthly records (any number); record bounds from the CF
  ``bounds`` of the time coordinate, else inferred (monthly spacing -> calendar months, yearly spacing ->
  calendar years, one record -> the calendar year of its date).
* **Checks**: negative values raise unless ``allow_negative`` (net fluxes); NaN/missing values raise
  unless ``missing="zero"`` (then they are counted and reported in :attr:`Inventory.n_missing`).

Writing (:func:`write_inventory`) produces a CF file in any of those unit forms that reads back.

Built-in defaults (:func:`default_inventory`): annual-mean distributions for the embedded run, built
from the packaged 1/12-degree country raster (:mod:`diffflux.geography`): documented national totals of
the largest emitters (:data:`NATIONAL_TOTALS`) are spread over each country's cells with the latitude
weight :func:`latitude_weight`; the remainder of the documented global total (:data:`GLOBAL_TOTALS`) is
spread over all other countries' cells (Antarctica excluded) with the same weight. The fine field is
aggregated to the model grid with exact overlap areas, so the global total is exact on any grid.
Simplifications: no seasonal cycle; no point sources or population/night-light proxies (cities are
not resolved); international shipping and aviation (in the global fossil total) are spread over land
with the remainder.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from diffflux import geography
from diffflux.constants import EARTH_RADIUS, SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid
from diffflux.met.regrid import ConservativeRegridder, RectilinearGrid, rectilinear_grid
from diffflux.models.units import FluxUnits, parse_flux_units
from diffflux.species import Species, get_species

# -------------------------------------------------------------------------------------------------
# the Inventory object
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Inventory:
    """Emission fields on the model grid.

    Attributes:
        component: flux component name (``"fossil"``, ``"anthropogenic"``, ``"fire"``, ``"wetland"``...).
        species: the species.
        grid: model grid.
        sectors: sector names ``(nsector,)``.
        flux: ``(ntime, nsector, nlat, nlon)`` flux density [mol m-2 s-1], positive = emission,
            cell-centred on ``grid`` (rows south to north, columns from 180 W).
        time_bounds: ``(ntime, 2)`` record start/end as ``datetime64[s]``, or None (one record valid at
            any time: a climatology or an annual mean).
        source: file path or description.
        n_missing: number of missing (NaN) source values set to zero (``missing="zero"``).
    """

    component: str
    species: Species
    grid: LatLonGrid
    sectors: tuple[str, ...]
    flux: np.ndarray
    time_bounds: np.ndarray | None
    source: str
    n_missing: int = 0

    @property
    def ntime(self) -> int:
        return self.flux.shape[0]

    def total_flux(self) -> np.ndarray:
        """Sum over sectors ``(ntime, nlat, nlon)`` [mol m-2 s-1]."""
        return self.flux.sum(axis=1)

    def global_totals(self) -> np.ndarray:
        """``(ntime, nsector)`` global totals in the species' reporting unit (e.g. TgCH4/yr)."""
        return self.species.flux_to_reporting(np.einsum("tsyx,yx->ts", self.flux, self.grid.area))

    def record_edges(self, reference_time) -> np.ndarray | None:
        """``(ntime + 1,)`` record edges [s since ``reference_time``] (None without a time axis);
        records must be contiguous."""
        if self.time_bounds is None:
            return None
        ref = np.datetime64(reference_time, "s")
        tb = (self.time_bounds - ref) / np.timedelta64(1, "s")
        if self.ntime > 1 and not np.allclose(tb[1:, 0], tb[:-1, 1]):
            raise ValueError(f"{self.source}: records are not contiguous in time; no single edge list exists")
        return np.concatenate([tb[:, 0], tb[-1:, 1]]).astype(np.float64)

    def sector(self, name: str) -> np.ndarray:
        """``(ntime, nlat, nlon)`` flux of one sector [mol m-2 s-1]."""
        if name not in self.sectors:
            raise KeyError(f"{self.source}: no sector {name!r}; available sectors: {', '.join(self.sectors)}")
        return self.flux[:, self.sectors.index(name)]


# -------------------------------------------------------------------------------------------------
# reading
# -------------------------------------------------------------------------------------------------

_LAT_NAMES = ("lat", "latitude", "nav_lat", "y", "lat_0")
_LON_NAMES = ("lon", "longitude", "nav_lon", "x", "lon_0")
_TIME_NAMES = ("time", "valid_time", "t", "Time", "date", "month")
_AUXILIARY = ("area", "cell_area", "gridcell_area", "grid_area", "mask", "land_mask", "landmask")


def _find_coord(ds: xr.Dataset, kind: str) -> str | None:
    units = {"lat": ("degrees_north", "degree_north", "degree_n", "degrees_n"),
             "lon": ("degrees_east", "degree_east", "degree_e", "degrees_e")}
    names = {"lat": _LAT_NAMES, "lon": _LON_NAMES, "time": _TIME_NAMES}[kind]
    for dim in ds.dims:
        if dim in ds.variables:
            c = ds[dim]
            if kind in units and str(c.attrs.get("units", "")).lower() in units[kind]:
                return str(dim)
            if str(c.attrs.get("standard_name", "")).lower() == {"lat": "latitude", "lon": "longitude",
                                                                  "time": "time"}[kind]:
                return str(dim)
            if kind == "time" and np.issubdtype(c.dtype, np.datetime64):
                return str(dim)
    for dim in ds.dims:
        if dim in names:
            return str(dim)
    return None


def _to_datetime64(values) -> np.ndarray:
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.datetime64):
        return v.astype("datetime64[s]")
    out = []
    for x in v.ravel():  # cftime objects (non-standard calendars)
        out.append(np.datetime64(_dt.datetime(x.year, x.month, x.day, x.hour, x.minute, x.second), "s"))
    return np.asarray(out).reshape(v.shape)


def _month_start(t: np.datetime64) -> np.datetime64:
    return t.astype("datetime64[M]").astype("datetime64[s]")


def _infer_time_bounds(times: np.ndarray, where: str) -> np.ndarray:
    """Record bounds from record times: calendar months, calendar years, or mid-points."""
    months = times.astype("datetime64[M]")
    years = times.astype("datetime64[Y]")
    if times.size == 1:
        return np.array([[years[0].astype("datetime64[s]"), (years[0] + 1).astype("datetime64[s]")]])
    dt_days = np.diff(times).astype("timedelta64[s]").astype(np.float64) / 86400.0
    if np.all((dt_days >= 27.5) & (dt_days <= 31.5)) and np.unique(months).size == times.size:
        start = months.astype("datetime64[s]")
        return np.stack([start, (months + 1).astype("datetime64[s]")], axis=1)
    if np.all((dt_days >= 364.5) & (dt_days <= 366.5)) and np.unique(years).size == times.size:
        return np.stack([years.astype("datetime64[s]"), (years + 1).astype("datetime64[s]")], axis=1)
    sec = (times - times[0]) / np.timedelta64(1, "s")
    mid = 0.5 * (sec[1:] + sec[:-1])
    edges = np.concatenate([[sec[0] - (mid[0] - sec[0])], mid, [sec[-1] + (sec[-1] - mid[-1])]])
    e = times[0] + (edges * 1e0).astype("timedelta64[s]")
    return np.stack([e[:-1], e[1:]], axis=1)


def _time_bounds(ds: xr.Dataset, tdim: str, where: str) -> np.ndarray:
    raw = np.asarray(ds[tdim].values)
    if np.issubdtype(raw.dtype, np.number):
        raise ValueError(
            f"{where}: time coordinate '{tdim}' holds plain numbers ({raw[:3].tolist()}...) with units "
            f"'{ds[tdim].attrs.get('units', '')}', not dates; expected CF time units such as "
            f"'days since 2000-01-01' (for a monthly climatology, give the months of one year)"
        )
    times = _to_datetime64(raw)
    if np.any(np.diff(times) <= np.timedelta64(0, "s")):
        raise ValueError(f"{where}: time coordinate '{tdim}' does not increase strictly")
    bname = ds[tdim].attrs.get("bounds")
    if bname and bname in ds.variables:
        tb = _to_datetime64(ds[bname].values)
        if tb.shape != (times.size, 2):
            raise ValueError(
                f"{where}: time bounds '{bname}' must have shape ({times.size}, 2), found {tb.shape}"
            )
        return tb
    return _infer_time_bounds(times, where)


def _month_seconds(time_bounds: np.ndarray | None, ntime: int) -> np.ndarray | None:
    """Seconds of the calendar month of each record (for per-month units)."""
    if time_bounds is None:
        return None
    mid = time_bounds[:, 0] + (time_bounds[:, 1] - time_bounds[:, 0]) / 2
    start = mid.astype("datetime64[M]")
    return ((start + 1).astype("datetime64[s]") - start.astype("datetime64[s]")).astype(np.float64)


def _bounds_of(ds: xr.Dataset, dim: str):
    name = ds[dim].attrs.get("bounds") if dim in ds.variables else None
    for cand in ([name] if name else []) + [f"{dim}_bnds", f"{dim}_bounds", f"{dim}_bnd"]:
        if cand and cand in ds.variables:
            return np.asarray(ds[cand].values, dtype=np.float64)
    return None


def _select_variables(ds: xr.Dataset, lat: str, lon: str, tdim: str | None, variables, where: str):
    """Return ``[(sector, DataArray)]`` with dims ordered (time?, lat, lon)."""
    bounds_vars = {ds[d].attrs.get("bounds") for d in ds.dims if d in ds.variables}
    if variables is None:
        # auxiliary fields (cell areas, masks) are not emission sectors
        cands = [str(v) for v in ds.data_vars
                 if lat in ds[v].dims and lon in ds[v].dims and v not in bounds_vars
                 and str(v).lower() not in _AUXILIARY
                 and ds[v].attrs.get("standard_name") not in ("cell_area", "land_binary_mask")]
        if not cands:
            raise ValueError(f"{where}: no data variable on the '{lat}'/'{lon}' grid")
        variables = cands
    if isinstance(variables, str):
        variables = [variables]
    mapping = dict(variables) if isinstance(variables, Mapping) else {v: v for v in variables}
    out = []
    for sector, var in mapping.items():
        if var not in ds.variables:
            raise ValueError(
                f"{where}: variable '{var}' not found; data variables: {', '.join(map(str, ds.data_vars))}"
            )
        da = ds[var]
        extra = [d for d in da.dims if d not in (lat, lon, tdim)]
        if len(extra) > 1:
            raise ValueError(
                f"{where}: variable '{var}' has dimensions {da.dims}; expected (time?, sector?, lat, lon)"
            )
        if extra:
            sdim = extra[0]
            labels = ([str(x.decode() if isinstance(x, bytes) else x) for x in ds[sdim].values]
                      if sdim in ds.variables else [f"{var}_{k}" for k in range(da.sizes[sdim])])
            for k, label in enumerate(labels):
                out.append((label, da.isel({sdim: k}), var))
        else:
            out.append((str(sector), da, var))
    return out


def read_inventory(
    source,
    species: str | Species,
    grid: LatLonGrid,
    *,
    variables: Sequence[str] | Mapping[str, str] | str | None = None,
    sectors: Sequence[str] | None = None,
    component: str = "anthropogenic",
    allow_negative: bool = False,
    missing: str = "error",
    units: str | None = None,
) -> Inventory:
    """Read an emission inventory and regrid it conservatively to ``grid``.

    Args:
        source: netCDF path (or an open ``xarray.Dataset``).
        species: the emitted species (molar mass and mass bases for the unit conversion).
        grid: model grid.
        variables: data variables to read (each a sector), or a mapping sector -> variable; default all
            data variables on the lat/lon grid. A variable with an extra dimension gives one sector per
            entry of that dimension.
        sectors: sector names to keep (error listing the available ones if any is missing).
        component: the flux component this inventory provides (for the composer and budgets).
        allow_negative: accept negative values (net fluxes); otherwise they raise.
        missing: ``"error"`` (default) or ``"zero"``: NaN/missing values raise, or count as zero (counted in
            :attr:`Inventory.n_missing`).
        units: override the file's ``units`` attribute (the same string for every variable).

    Returns:
        :class:`Inventory` with ``flux (ntime, nsector, nlat, nlon)`` [mol m-2 s-1].
    """
    sp = get_species(species)
    if missing not in ("error", "zero"):
        raise ValueError(f"read_inventory: missing must be 'error' or 'zero', found {missing!r}")
    if isinstance(source, xr.Dataset):
        ds, where, close = source, str(source.encoding.get("source", "<dataset>")), False
    else:
        where = os.fspath(source)
        if not os.path.exists(where):
            raise FileNotFoundError(f"read_inventory: inventory file {where} does not exist")
        ds, close = xr.open_dataset(where), True
    try:
        return _read(ds, sp, grid, where, variables, sectors, component, allow_negative, missing, units)
    finally:
        if close:
            ds.close()


def _read(ds, sp, grid, where, variables, sectors, component, allow_negative, missing, units_override):
    lat, lon = _find_coord(ds, "lat"), _find_coord(ds, "lon")
    if lat is None or lon is None:
        raise ValueError(
            f"{where}: no latitude/longitude coordinates found (looked for units degrees_north/east, "
            f"standard_name, or names {_LAT_NAMES} / {_LON_NAMES}); dimensions: {dict(ds.sizes)}"
        )
    tdim = _find_coord(ds, "time")
    src = rectilinear_grid(ds[lat].values, ds[lon].values, lat_bounds=_bounds_of(ds, lat),
                           lon_bounds=_bounds_of(ds, lon), lat_name=lat, lon_name=lon, where=where)
    time_bounds = _time_bounds(ds, tdim, where) if tdim is not None else None
    ntime = 1 if tdim is None else ds.sizes[tdim]
    month_s = _month_seconds(time_bounds, ntime)
    regridder = ConservativeRegridder.build(src, grid)
    fields, names, n_missing = [], [], 0
    for sector, da, var in _select_variables(ds, lat, lon, tdim, variables, where):
        dims = ((tdim,) if tdim is not None else ()) + (lat, lon)
        if tdim is not None and tdim not in da.dims:
            da = da.expand_dims({tdim: ntime})
        values = np.asarray(da.transpose(*dims).values, dtype=np.float64)
        if tdim is None:
            values = values[None]
        label = f"variable '{var}'" + (f" sector '{sector}'" if sector != var else "")
        bad = ~np.isfinite(values)
        if bad.any():
            if missing == "error":
                raise ValueError(
                    f"{where}: {label} has {int(bad.sum())} missing or non-finite values (NaN/_FillValue); "
                    f"expected finite emissions everywhere, or pass missing='zero' to treat them as zero"
                )
            n_missing += int(bad.sum())
            values = np.where(bad, 0.0, values)
        if not allow_negative and np.any(values < 0):
            k = np.unravel_index(int(np.argmin(values)), values.shape)
            lat_v = float(np.asarray(ds[lat].values)[k[1]])
            lon_v = float(np.asarray(ds[lon].values)[k[2]])
            raise ValueError(
                f"{where}: {label} has {int((values < 0).sum())} negative values (minimum {values[k]:.4g} "
                f"at lat {lat_v:g}, lon {lon_v:g}, record {k[0]}); emissions of component '{component}' must "
                f"be >= 0 (pass allow_negative=True for net fluxes)"
            )
        fu: FluxUnits = parse_flux_units(units_override or da.attrs.get("units"), sp, where=where,
                                         variable=var)
        factor = np.asarray(fu.factor(month_s if fu.is_monthly else None), dtype=np.float64)
        factor = factor.reshape((-1, 1, 1)) if factor.ndim else factor
        si = values * factor  # mol m-2 s-1 or mol s-1 per cell, file order
        if fu.per_area:
            out = regridder.density(si)
        else:  # per-cell totals [mol s-1] split by overlap area, then per m2 of the model cells
            out = regridder.totals(si) / grid.area
        fields.append(out)
        names.append(sector)
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: duplicate sector names {names}")
    if sectors is not None:
        want = [str(s) for s in sectors]
        absent = [s for s in want if s not in names]
        if absent:
            raise ValueError(
                f"{where}: sector(s) {', '.join(absent)} not found; available sectors: {', '.join(names)}"
            )
        fields = [fields[names.index(s)] for s in want]
        names = want
    flux = np.stack(fields, axis=1)
    return Inventory(component=component, species=sp, grid=grid, sectors=tuple(names), flux=flux,
                     time_bounds=time_bounds, source=where, n_missing=n_missing)


# -------------------------------------------------------------------------------------------------
# writing
# -------------------------------------------------------------------------------------------------


def write_inventory(
    path,
    flux,
    species: str | Species,
    grid: LatLonGrid | RectilinearGrid,
    *,
    sectors: Sequence[str] = ("total",),
    time_bounds=None,
    units: str = "kg m-2 s-1",
    sector_dimension: bool = False,
    lat_descending: bool = False,
    lon_0_360: bool = False,
    write_bounds: bool = True,
    attrs: Mapping | None = None,
) -> str:
    """Write emission fields as a CF netCDF inventory that :func:`read_inventory` reads back.

    Args:
        path: output file.
        flux: ``(ntime, nsector, ny, nx)`` or ``(nsector, ny, nx)`` flux density [mol m-2 s-1] on ``grid``
            (ascending latitudes, longitudes ascending from the grid's first edge).
        species: the species.
        grid: the grid of ``flux`` (a model grid or any global :class:`RectilinearGrid`).
        sectors: sector names.
        time_bounds: ``(ntime, 2)`` datetime64 record bounds (required with a time axis).
        units: output units, any form accepted by the reader (e.g. ``"kg m-2 s-1"``, ``"Mg month-1"`` per
            cell, ``"g C m-2 month-1"``, ``"mol m-2 s-1"``).
        sector_dimension: one variable ``emissions(time, sector, lat, lon)`` instead of one per sector.
        lat_descending, lon_0_360: write latitudes north to south / longitudes in 0..360 (to exercise
            readers; the data are reordered accordingly).
        write_bounds: write ``lat_bnds``/``lon_bnds``.
        attrs: extra global attributes.

    Returns:
        The path written.
    """
    sp = get_species(species)
    g = RectilinearGrid.from_model(grid) if isinstance(grid, LatLonGrid) else grid
    f = np.asarray(flux, dtype=np.float64)
    has_time = f.ndim == 4
    if f.ndim == 3:
        f = f[None]
    if f.ndim != 4 or f.shape[1] != len(sectors) or f.shape[2:] != g.shape:
        raise ValueError(
            f"write_inventory: flux must be (ntime, {len(sectors)}, {g.shape[0]}, {g.shape[1]}) or "
            f"({len(sectors)}, {g.shape[0]}, {g.shape[1]}) [mol m-2 s-1], found {np.shape(flux)}"
        )
    tb = None
    if has_time:
        if time_bounds is None:
            raise ValueError("write_inventory: time_bounds are required for a time axis")
        tb = np.asarray(time_bounds).astype("datetime64[s]")
        if tb.shape != (f.shape[0], 2):
            raise ValueError(f"write_inventory: time_bounds must be ({f.shape[0]}, 2), found {tb.shape}")
    fu = parse_flux_units(units, sp, where=os.fspath(path), variable="(output)")
    month_s = _month_seconds(tb, f.shape[0]) if fu.is_monthly else None
    factor = np.asarray(fu.factor(month_s), dtype=np.float64)
    factor = factor.reshape((-1, 1, 1, 1)) if factor.ndim else factor
    out = f / factor
    if not fu.per_area:
        out = out * g.area(grid.radius if isinstance(grid, LatLonGrid) else EARTH_RADIUS)[None, None]
    lat_e, lon_e = g.lat_edges.copy(), g.lon_edges.copy()
    lat_c, lon_c = g.lat, g.lon
    if lon_0_360:
        lon_c_w = lon_c % 360.0
        order = np.argsort(lon_c_w, kind="stable")
        out = out[..., order]
        lo = lon_e[:-1][order] % 360.0
        lon_b = np.stack([lo, lo + np.diff(lon_e)[order]], axis=1)
        lon_c = lon_c_w[order]
    else:
        lon_b = np.stack([lon_e[:-1], lon_e[1:]], axis=1)
    lat_b = np.stack([lat_e[:-1], lat_e[1:]], axis=1)
    if lat_descending:
        out = out[..., ::-1, :]
        lat_c, lat_b = lat_c[::-1], lat_b[::-1, ::-1]
    coords = {
        "lat": ("lat", lat_c, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", lon_c, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    data = {}
    if write_bounds:
        coords["lat"][2]["bounds"] = "lat_bnds"
        coords["lon"][2]["bounds"] = "lon_bnds"
        data["lat_bnds"] = (("lat", "nv"), lat_b)
        data["lon_bnds"] = (("lon", "nv"), lon_b)
    dims = ("lat", "lon")
    if has_time:
        ref = tb[0, 0]
        mid = tb[:, 0] + (tb[:, 1] - tb[:, 0]) / 2
        coords["time"] = ("time", mid.astype("datetime64[ns]"),
                          {"standard_name": "time", "bounds": "time_bnds"})
        data["time_bnds"] = (("time", "nv"), tb.astype("datetime64[ns]"))
        dims = ("time",) + dims
        del ref
    var_attrs = {"units": units, "long_name": f"{sp.name} emissions"}
    if sector_dimension:
        coords["sector"] = ("sector", np.asarray(list(sectors), dtype=object))
        arr = out if has_time else out[0]
        vdims = (("time",) if has_time else ()) + ("sector", "lat", "lon")
        data["emissions"] = (vdims, arr, var_attrs)
    else:
        for k, s in enumerate(sectors):
            data[str(s)] = (dims, out[:, k] if has_time else out[0, k], dict(var_attrs))
    ds = xr.Dataset(data, coords=coords, attrs={"Conventions": "CF-1.8", "species": sp.name,
                                                 **(dict(attrs) if attrs else {})})
    if has_time:
        for v in ("time", "time_bnds"):
            ds[v].encoding.update(units="seconds since 2000-01-01 00:00:00", dtype="float64")
    ds.to_netcdf(path)
    return os.fspath(path)


# -------------------------------------------------------------------------------------------------
# built-in defaults
# -------------------------------------------------------------------------------------------------

GLOBAL_TOTALS: dict[str, tuple[float, str]] = {
    # species: (global total in the species' reporting unit per year, source)
    "CO2": (10.1, "GCB 2024 (Friedlingstein et al. 2025, Earth Syst. Sci. Data 17, 965-1039): fossil CO2 "
                  "emissions incl. cement in 2023, 10.1 +/- 0.5 PgC/yr (about 37 GtCO2/yr)"),
    "CH4": (365.0, "Global Methane Budget 2024 (Saunois et al. 2025, Earth Syst. Sci. Data 17, 1873-1958): "
                   "direct anthropogenic emissions 2010-2019, 350-380 TgCH4/yr across top-down and "
                   "bottom-up estimates; mid-range value"),
    "N2O": (7.3, "Global N2O Budget (Tian et al. 2020, Nature 586, 248-256): anthropogenic emissions "
                 "2007-2016, 7.3 (4.2-11.4) TgN/yr"),
    "HFC-134a": (250.0, "WMO (2022) Scientific Assessment of Ozone Depletion, ch. 2: global HFC-134a "
                        "emissions about 250 Gg/yr around 2020 (from AGAGE/NOAA observations)"),
    "HFC-125": (80.0, "WMO (2022) ch. 2: global HFC-125 emissions about 80 Gg/yr around 2020 (approximate)"),
    "HFC-32": (60.0, "WMO (2022) ch. 2: global HFC-32 emissions about 60 Gg/yr around 2020 (approximate)"),
    "SF6": (9.0, "WMO (2022) ch. 2 / Laube et al. (2022): global SF6 emissions about 9 Gg/yr around 2020"),
}
"""Documented global totals of the built-in default inventories (reporting units per year)."""

NATIONAL_TOTALS: dict[str, tuple[dict[str, float], str]] = {
    "CO2": ({
        "CHN": 11900.0, "USA": 4900.0, "IND": 3100.0, "RUS": 1800.0, "JPN": 990.0, "IRN": 820.0,
        "SAU": 740.0, "IDN": 730.0, "KOR": 620.0, "DEU": 600.0, "CAN": 550.0, "BRA": 480.0,
        "MEX": 480.0, "TUR": 440.0, "ZAF": 400.0, "AUS": 380.0, "VNM": 350.0, "GBR": 310.0,
        "ITA": 300.0, "POL": 290.0, "FRA": 280.0,
    }, "MtCO2/yr; territorial fossil CO2 emissions in 2023 from the GCB 2024 national data set, rounded to "
       "two significant figures (approximate)"),
    "CH4": ({
        "CHN": 65.0, "IND": 33.0, "USA": 27.0, "RUS": 25.0, "BRA": 21.0, "IDN": 15.0, "PAK": 9.0,
        "IRN": 8.0, "MEX": 7.0, "NGA": 7.0, "AUS": 5.0, "CAN": 5.0,
    }, "TgCH4/yr; anthropogenic CH4 of the largest emitters around 2020 after EDGAR v8.0 (Crippa et al. "
       "2023), rounded (approximate)"),
    "N2O": ({
        "CHN": 1.1, "IND": 0.55, "USA": 0.5, "BRA": 0.35, "RUS": 0.2, "IDN": 0.15, "ARG": 0.12,
        "AUS": 0.1, "PAK": 0.1,
    }, "TgN/yr; anthropogenic N2O of the largest emitters around 2020 after EDGAR v8.0 and Tian et al. "
       "(2020), rounded (approximate)"),
}
"""National totals of the largest emitters used by the default proxy: (code -> value, unit and source).
Species without a table (HFCs, SF6) follow the fossil-CO2 pattern (refrigeration, air conditioning and
electrical equipment scale with economic activity)."""

DEFAULT_COMPONENT = {"CO2": "fossil"}
"""Component name of each built-in default inventory (``"anthropogenic"`` otherwise)."""

LATITUDE_WEIGHT_FULL = 50.0
"""Latitude [degrees] up to which the default proxy weight is 1."""
LATITUDE_WEIGHT_SCALE = 8.0
"""e-folding scale [degrees] of the default proxy weight poleward of :data:`LATITUDE_WEIGHT_FULL`."""


def latitude_weight(lat) -> np.ndarray:
    """Relative emission density of the default proxy at latitude ``lat`` [degrees]:
    ``1`` for ``|lat| <= 50``, ``exp(-((|lat| - 50) / 8)^2)`` beyond (little activity in the Arctic: Russia's
    and Canada's emissions concentrate in their southern parts)."""
    x = np.maximum(np.abs(np.asarray(lat, dtype=np.float64)) - LATITUDE_WEIGHT_FULL, 0.0)
    return np.exp(-((x / LATITUDE_WEIGHT_SCALE) ** 2))


def _national_table(sp: Species) -> dict[str, float]:
    """National totals in the species' reporting unit per year (CO2 table converted from MtCO2)."""
    key = sp.name if sp.name in NATIONAL_TOTALS else "CO2"
    table, _ = NATIONAL_TOTALS[key]
    if key == "CO2":  # MtCO2/yr -> mol s-1 -> PgC/yr
        co2 = get_species("CO2")
        return {c: co2.flux_to_reporting(v * 1e9 / co2.molar_mass / SECONDS_PER_YEAR)
                for c, v in table.items()}
    return dict(table)


def default_density_raster(species: str | Species) -> np.ndarray:
    """The default emission density on the packaged 1/12-degree raster ``(2160, 4320)`` [mol m-2 s-1]."""
    sp = get_species(species)
    if sp.name not in GLOBAL_TOTALS:
        raise ValueError(
            f"default_inventory: no built-in default for {sp.name}; available: {', '.join(GLOBAL_TOTALS)}"
        )
    total = sp.flux_from_reporting(GLOBAL_TOTALS[sp.name][0])  # mol s-1
    raster = geography.country_raster()
    lat, _ = geography.raster_centres()
    cell_area = geography.raster_cell_area()
    w_row = latitude_weight(lat) * cell_area  # weight x area per cell of each row [m2]
    nidx = int(raster.max()) + 1
    # per country index: sum over its cells of weight x area
    wsum = np.bincount(raster.ravel(), weights=np.broadcast_to(w_row[:, None], raster.shape).ravel(),
                       minlength=nidx)
    rate = np.zeros(nidx)  # mol s-1 per unit (weight x area), per country index
    listed = np.zeros(nidx, dtype=bool)
    if sp.name in NATIONAL_TOTALS:
        national = _national_table(sp)
    else:  # follow the fossil CO2 pattern, scaled to this species' total
        co2 = get_species("CO2")
        share = {c: v / GLOBAL_TOTALS["CO2"][0] for c, v in _national_table(co2).items()}
        national = {c: s * GLOBAL_TOTALS[sp.name][0] for c, s in share.items()}
    assigned = 0.0
    for code, value in national.items():
        idx = list(geography.country(code).indices)
        tot = sp.flux_from_reporting(value)
        rate[idx] = tot / wsum[idx].sum()
        listed[idx] = True
        assigned += tot
    remainder = total - assigned
    if remainder < 0:
        raise ValueError(f"default_inventory: national totals of {sp.name} exceed the global total")
    others = ~listed
    others[0] = False  # no country (ocean)
    ata = list(geography.country("ATA").indices)
    others[ata] = False
    rate[others] = remainder / wsum[others].sum()
    return rate[raster] * latitude_weight(lat)[:, None]


def default_inventory(species: str | Species, grid: LatLonGrid) -> Inventory:
    """Built-in annual-mean default emissions of ``species`` on ``grid`` (see the module docstring).

    Available for CO2 (fossil), CH4, N2O (anthropogenic), HFC-134a, HFC-125, HFC-32 and SF6; the global
    totals and their sources are :data:`GLOBAL_TOTALS`. One record, one sector (the component name), no
    time axis.
    """
    sp = get_species(species)
    dens = default_density_raster(sp)
    field = geography.aggregate_raster(dens, grid)
    component = DEFAULT_COMPONENT.get(sp.name, "anthropogenic")
    return Inventory(component=component, species=sp, grid=grid, sectors=(component,),
                     flux=field[None, None], time_bounds=None,
                     source=f"built-in default ({GLOBAL_TOTALS[sp.name][1]})")
