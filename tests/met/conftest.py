"""Builders of small met data sets (arrays and ERA5/MERRA-2-like netCDF files) for the met tests."""

import numpy as np
import pytest
import xarray as xr

from diffflux.grid import LatLonGrid, standard_levels

REF = np.datetime64("2020-01-01T00:00", "ns")
HOUR = np.timedelta64(3600, "s")


def analytic_met(grid: LatLonGrid, nt: int = 3, dt_hours: float = 6.0):
    """Divergent, time-varying winds, surface pressure with moving waves, temperature and BLH.

    Returns a dict of arrays on the model grid (south-to-north, lon from -180) and times [s].
    """
    times = np.arange(nt) * dt_hours * 3600.0
    lat = np.deg2rad(grid.lat)[None, None, :, None]
    lon = np.deg2rad(grid.lon)[None, None, None, :]
    t = times[:, None, None, None]
    lev = np.linspace(1.0, 2.0, grid.nlev)[None, :, None, None]
    u = 15.0 * np.cos(lat) * lev * (1.0 + 0.3 * np.sin(lon + t / 86400.0))
    v = 6.0 * np.cos(lat) * np.sin(2.0 * lon - t / 43200.0) * (2.5 - lev)
    ps = 1.0e5 + 600.0 * np.cos(lat[:, 0]) * np.sin(lon[:, 0] + t[:, 0] / 40000.0) \
        + 300.0 * np.sin(lat[:, 0]) * np.cos(t[:, 0] / 30000.0)
    p_mid = np.stack([np.asarray(grid.levels.interfaces(p)) for p in ps])
    p_mid = 0.5 * (p_mid[:, 1:] + p_mid[:, :-1])
    temperature = 200.0 + 12.0 * np.log(p_mid / 100.0) + 5.0 * np.cos(lat)
    wave = 1.0 + 0.5 * np.sin(lon[:, 0] + t[:, 0] / 86400.0)
    blh = 800.0 + 500.0 * np.cos(lat[:, 0]) ** 2 * wave
    return dict(times=times, u=u, v=v, ps=ps, temperature=temperature, blh=blh)


def model_level_dataset(grid: LatLonGrid, met: dict, *, flip_lat=True, lon360=True, top_first=True,
                        names=None, ps_units="Pa", with_blh=True):
    """An ERA5-model-level-like dataset: hybrid interfaces hyai/hybi, latitude north to south,
    longitudes 0..360, level 1 at the top, variables u, v, t, sp (and blh)."""
    names = {"u": "u", "v": "v", "temperature": "t", "ps": "sp", "blh": "blh", **(names or {})}
    lat = grid.lat
    lon = grid.lon
    lat_idx = np.arange(grid.nlat)[::-1] if flip_lat else np.arange(grid.nlat)
    if lon360:
        lon_idx = np.argsort(lon % 360.0)
        lon_vals = (lon % 360.0)[lon_idx]
    else:
        lon_idx = np.arange(grid.nlon)
        lon_vals = lon
    lev_idx = np.arange(grid.nlev)[::-1] if top_first else np.arange(grid.nlev)
    hyai = grid.levels.a[::-1] if top_first else grid.levels.a
    hybi = grid.levels.b[::-1] if top_first else grid.levels.b

    def arr3(a):
        return a[:, lev_idx][:, :, lat_idx][..., lon_idx]

    def arr2(a):
        return a[:, lat_idx][..., lon_idx]

    time = REF + (met["times"] * 1e9).astype("timedelta64[ns]")
    dims3 = ("time", "level", "latitude", "longitude")
    dims2 = ("time", "latitude", "longitude")
    ps = arr2(met["ps"]) / (100.0 if ps_units == "hPa" else 1.0)
    data = {
        names["u"]: (dims3, arr3(met["u"]), {"units": "m s**-1", "long_name": "U component"}),
        names["v"]: (dims3, arr3(met["v"]), {"units": "m s**-1"}),
        names["temperature"]: (dims3, arr3(met["temperature"]), {"units": "K"}),
        names["ps"]: (dims2, ps, {"units": ps_units}),
        "hyai": (("nhyi",), hyai, {"units": "Pa"}),
        "hybi": (("nhyi",), hybi, {"units": "1"}),
    }
    if with_blh:
        data[names["blh"]] = (dims2, arr2(met["blh"]), {"units": "m"})
    ds = xr.Dataset(
        data,
        coords={
            "time": ("time", time),
            "level": ("level", np.arange(1, grid.nlev + 1)),
            "latitude": ("latitude", lat[lat_idx], {"units": "degrees_north"}),
            "longitude": ("longitude", lon_vals, {"units": "degrees_east"}),
        },
    )
    return ds


PLEVELS_HPA = np.array([1050.0, 1000.0, 925.0, 850.0, 700.0, 500.0, 300.0, 200.0, 100.0, 50.0,
                        20.0, 10.0, 5.0, 2.0])


def pressure_level_dataset(nlat=18, nlon=36, nt=3, plevels_hpa=PLEVELS_HPA, ps_hpa=1000.0):
    """A MERRA-2/ERA5-like pressure-level dataset on its own 10-degree grid (north to south,
    0..350 E) whose fields are linear in ln p: T = 200 + 12 ln(p / 100 Pa), u = 5 + 2 ln(p / 100
        Pa),
    v = 1 - 0.5 ln(p / 100 Pa)."""
    lat = 90.0 - (np.arange(nlat) + 0.5) * 180.0 / nlat
    lon = np.arange(nlon) * 360.0 / nlon
    times = REF + np.arange(nt) * 6 * HOUR
    lp = np.log(plevels_hpa * 100.0 / 100.0)[None, :, None, None]
    shape = (nt, plevels_hpa.size, nlat, nlon)
    t = np.broadcast_to(200.0 + 12.0 * lp, shape).copy()
    u = np.broadcast_to(5.0 + 2.0 * lp, shape).copy()
    v = np.broadcast_to(1.0 - 0.5 * lp, shape).copy()
    ps = np.full((nt, nlat, nlon), ps_hpa * 100.0)
    dims3 = ("time", "lev", "lat", "lon")
    return xr.Dataset(
        {
            "T": (dims3, t, {"units": "K"}),
            "U": (dims3, u, {"units": "m/s"}),
            "V": (dims3, v, {"units": "m/s"}),
            "PS": (("time", "lat", "lon"), ps, {"units": "Pa"}),
        },
        coords={
            "time": ("time", times),
            "lev": ("lev", plevels_hpa, {"units": "hPa", "positive": "down"}),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


@pytest.fixture
def grid_l10():
    return LatLonGrid(24, 12, standard_levels("L10"))


@pytest.fixture
def builders():
    """The data-set builders of this module, as a namespace."""

    class B:
        analytic = staticmethod(analytic_met)
        model_levels = staticmethod(model_level_dataset)
        pressure_levels = staticmethod(pressure_level_dataset)
        ref = REF

    return B
