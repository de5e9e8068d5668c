"""Drivers from netCDF (units, errors), parameter/maps validation, and fluxes for the transport."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from diffflux.grid import LatLonGrid
from diffflux.models.biosphere.climate import ClimatologyDrivers, climatology_maps, sample_cells
from diffflux.models.biosphere.drivers import WEATHER_FIELDS, SurfaceMaps
from diffflux.models.biosphere.fluxes import FLUX_KEYS, BiosphereFluxes
from diffflux.models.biosphere.params import BiosphereParams, check_positive
from diffflux.models.biosphere.pft import pft_index
from diffflux.models.biosphere.reader import read_surface_maps, read_weather

GRID = LatLonGrid.from_resolution(20.0, 30.0)


@pytest.fixture(scope="module")
def coarse():
    maps, drivers = climatology_maps(GRID)
    return maps, drivers


def _weather_file(path, maps, drivers, ndays=20, **overrides):
    w = jax.vmap(drivers.weather)(jnp.arange(ndays))
    full = {
        k: np.full((ndays, GRID.nlat, GRID.nlon), np.nan) for k in ("tas", "rsds", "pr", "vpd", "dtr", "tsl")
    }
    for name, key in (
        ("tas", "tair"),
        ("rsds", "swdown"),
        ("pr", "precip"),
        ("vpd", "vpd"),
        ("dtr", "trange"),
        ("tsl", "tsoil"),
    ):
        full[name][:, maps.cell_j, maps.cell_i] = np.asarray(getattr(w, key))
        full[name] = np.nan_to_num(full[name], nan=280.0 if name in ("tas", "tsl") else 1.0)
    units = {"tas": "K", "rsds": "W m-2", "pr": "kg m-2 s-1", "vpd": "Pa", "dtr": "K", "tsl": "K"}
    # file layout: latitude north to south, longitude 0..360 (the reader reorders)
    lon360 = (GRID.lon + 360.0) % 360.0
    order = np.argsort(lon360)
    ds = xr.Dataset(
        {
            n: (("time", "lat", "lon"), v[:, ::-1, :][:, :, order], {"units": units[n]})
            for n, v in full.items()
        },
        coords={"time": np.arange(ndays), "lat": GRID.lat[::-1], "lon": lon360[order]},
    )
    for name, (values, attrs) in overrides.items():
        ds[name] = (("time", "lat", "lon"), values(ds[name].values) if callable(values) else values, attrs)
    ds.to_netcdf(path)
    return w


def test_weather_file_round_trip(tmp_path, coarse):
    maps, drivers = coarse
    path = tmp_path / "weather.nc"
    w = _weather_file(path, maps, drivers)
    got = read_weather(path, maps)
    for key in ("tair", "swdown", "precip", "vpd", "trange", "tsoil"):
        np.testing.assert_allclose(got.fields[key], getattr(w, key), rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(got.fields["daylength"], w.daylength, rtol=1e-12)


def test_celsius_labelled_kelvin_is_an_error(tmp_path, coarse):
    maps, drivers = coarse
    path = tmp_path / "bad.nc"
    _weather_file(path, maps, drivers, tas=(lambda v: v - 273.15, {"units": "K"}))
    with pytest.raises(ValueError, match="'tas'.*look like degrees Celsius"):
        read_weather(path, maps)


def test_celsius_is_converted(tmp_path, coarse):
    maps, drivers = coarse
    path = tmp_path / "c.nc"
    w = _weather_file(path, maps, drivers, tas=(lambda v: v - 273.15, {"units": "degC"}))
    np.testing.assert_allclose(read_weather(path, maps).fields["tair"], w.tair, rtol=1e-12)


def test_negative_precipitation_and_unknown_units_are_errors(tmp_path, coarse):
    maps, drivers = coarse
    path = tmp_path / "neg.nc"
    _weather_file(path, maps, drivers, pr=(lambda v: v - 1.0, {"units": "kg m-2 s-1"}))
    with pytest.raises(ValueError, match="precipitation has .* negative values"):
        read_weather(path, maps)
    path = tmp_path / "units.nc"
    _weather_file(path, maps, drivers, rsds=(lambda v: v, {"units": "furlongs"}))
    with pytest.raises(ValueError, match="'rsds': unknown units 'furlongs'"):
        read_weather(path, maps)


def test_surface_map_errors(tmp_path):
    frac = np.zeros((2, GRID.nlat, GRID.nlon))
    frac[0] = 0.7
    frac[1] = 0.6
    ds = xr.Dataset(
        {"pft_fraction": (("pft", "lat", "lon"), frac)},
        coords={"pft": ["TrEF", "XYZ"], "lat": GRID.lat, "lon": GRID.lon},
    )
    ds.to_netcdf(tmp_path / "m1.nc")
    with pytest.raises(ValueError, match=r"unknown PFT codes \['XYZ'\]; valid codes are TrEF"):
        read_surface_maps(tmp_path / "m1.nc", GRID)
    ds = ds.assign_coords(pft=["TrEF", "C3G"])
    ds.to_netcdf(tmp_path / "m2.nc")
    with pytest.raises(ValueError, match="sum to more than one"):
        read_surface_maps(tmp_path / "m2.nc", GRID)
    ds["pft_fraction"] = ds["pft_fraction"] * 0.5
    ds.to_netcdf(tmp_path / "m3.nc")
    maps = read_surface_maps(tmp_path / "m3.nc", GRID)
    np.testing.assert_allclose(maps.pft_fraction[:, pft_index("TrEF")], 0.35)


def test_validation_of_maps_and_params():
    maps, _ = sample_cells()
    bad = maps.pft_fraction.copy()
    bad[0] += 0.5
    with pytest.raises(ValueError, match="pft_fraction.*sum to one"):
        SurfaceMaps(**{**vars(maps), "pft_fraction": bad})
    with pytest.raises(ValueError, match="wetland_fraction.*\\[0, 1\\]"):
        SurfaceMaps(**{**vars(maps), "wetland_fraction": maps.wetland_fraction - 1.0})
    with pytest.raises(KeyError, match="valid codes are TrEF"):
        pft_index("oak")
    p = BiosphereParams.ones()
    with pytest.raises(KeyError, match="unknown parameter.*'pmaxx'.*PFT parameters: pmax"):
        p.filter_spec(["pmaxx"])
    spec = p.filter_spec(["pmax", "k_soil"])
    assert spec.pft["pmax"] and spec.glob["k_soil"] and not spec.pft["qe"]
    with pytest.raises(ValueError, match=r"pft\['qe'\].*> 0"):
        check_positive(BiosphereParams(pft={**p.pft, "qe": -p.pft["qe"]}, glob=p.glob))


def test_downscaled_fluxes_integrate_to_daily_totals(small):
    bio, drivers = small
    params = BiosphereParams.ones()
    _, daily, _ = jax.jit(lambda s: bio.simulate(params, s, drivers, 3))(bio.initial_state(params))
    fl = BiosphereFluxes(daily=daily, maps=bio.maps, drivers=drivers, day0=0)
    steps = 24
    at = jax.jit(lambda t: fl.at(t, steps))
    for day in (0, 2):
        sub = [at(day * 86400.0 + k * 3600.0) for k in range(steps)]
        mean = fl.daily_mean(day)
        assert set(mean) == set(FLUX_KEYS)
        for key in FLUX_KEYS:
            avg = sum(s[key] for s in sub) / steps
            np.testing.assert_allclose(avg, mean[key], rtol=1e-10, atol=1e-20, err_msg=key)
    # GPP has a diurnal cycle: night-time NEE is a source, midday a sink in the tropical forest cell
    j, i = bio.maps.cell_j[0], bio.maps.cell_i[0]
    lon = bio.maps.grid.lon[i]
    noon = (12.0 - lon / 15.0) % 24.0
    nee_noon = at(86400.0 + np.floor(noon) * 3600.0)["CO2:biosphere"][j, i]
    nee_night = at(86400.0 + ((noon + 12.0) % 24.0) * 3600.0)["CO2:biosphere"][j, i]
    assert float(nee_noon) < 0.0 < float(nee_night)


def test_climatology_drivers_are_physical(coarse):
    maps, drivers = coarse
    assert isinstance(drivers, ClimatologyDrivers)
    w = jax.vmap(drivers.weather)(jnp.arange(0, 365, 5))
    for key in WEATHER_FIELDS:
        assert bool(jnp.isfinite(getattr(w, key)).all()), key
    assert float(w.precip.min()) >= 0.0 and float(w.swdown.min()) >= 0.0
    assert float(w.tair.min()) > 200.0 and float(w.tair.max()) < 320.0
    assert np.allclose(maps.pft_fraction.sum(axis=1) <= 1.0 + 1e-9, True)
