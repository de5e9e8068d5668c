"""OSSE designs (flask, continuous, aircraft, satellite tracks), pseudo-observations from a truth run,
super-observations and the station catalogue."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from obs_helpers import windy_met

from diffflux.grid import LatLonGrid
from diffflux.met import Climatology
from diffflux.observations import (
    aggregate,
    aircraft_design,
    concat_tables,
    continuous_design,
    cos_solar_zenith,
    flask_design,
    get_station,
    is_land,
    load_station_catalogue,
    local_solar_hour,
    make_table,
    read_osse,
    satellite_design,
    simulate,
    station_ids,
    sun_synchronous_track,
    write_osse,
)
from diffflux.transport import PPM, Transport


def test_flask_design_weekly_at_fixed_local_time():
    ds = flask_design(["MLO", "ZEP", "CGO"], "2021-01-01", "2021-03-01", hour_lst=14.0)
    for site in ("MLO", "ZEP", "CGO"):
        sub = ds.where(ds["site"] == site, drop=True)
        st = get_station(site)
        np.testing.assert_allclose(local_solar_hour(sub["time"].values, st.longitude), 14.0, atol=1 / 3600)
        gaps = np.diff(sub["time"].values).astype("timedelta64[s]").astype(float) / 86400
        np.testing.assert_allclose(gaps, 7.0, atol=1e-9)
        np.testing.assert_allclose(sub["altitude"].values, st.elevation_m + st.inlet_height_m)
        assert sub.sizes["obs"] in (8, 9)


def test_continuous_design_afternoon_only():
    full = continuous_design(["HAT", "BRW"], "2021-05-01", "2021-05-03T23:00")
    pm = continuous_design(["HAT", "BRW"], "2021-05-01", "2021-05-03T23:00", afternoon_only=True)
    assert full.sizes["obs"] == 2 * 72
    for site in ("HAT", "BRW"):
        sub = pm.where(pm["site"] == site, drop=True)
        h = local_solar_hour(sub["time"].values, get_station(site).longitude)
        assert np.all((h >= 12) & (h < 16))
        assert sub.sizes["obs"] == 3 * 4  # four whole UTC hours per day fall in [12, 16) local time


def test_aircraft_profiles():
    ds = aircraft_design(
        "NWR", ["2021-07-01T15:00", "2021-07-08T15:00"], [8000, 1000, 4000, 6000], seconds_per_level=300
    )
    assert ds.sizes["obs"] == 8
    np.testing.assert_array_equal(ds["altitude"].values[:4], [1000, 4000, 6000, 8000])
    assert ds["time"].values[3] - ds["time"].values[0] == np.timedelta64(900, "s")
    assert set(ds["sampling"].values) == {"aircraft"}


def test_sun_synchronous_track_and_satellite_sampling():
    t, lat, lon = sun_synchronous_track("2021-03-20", "2021-03-21", step_seconds=5.0)
    assert abs(lat.max() - (180 - 98.2)) < 0.05
    asc = np.flatnonzero((lat[:-1] < 0) & (lat[1:] >= 0))
    assert asc.size >= 14  # ~14.6 orbits per day
    lst = local_solar_hour(t[asc], lon[asc])
    np.testing.assert_allclose(lst, 13.5, atol=0.02)
    land = lambda la, lo: (lo > -20) & (lo < 150) & (la > -35)  # noqa: E731 - a stand-in mask
    ds = satellite_design("2021-03-20", "2021-03-21", footprints=4, swath_km=20.0, mask=land, nret=10)
    assert ds.sizes["obs"] > 100 and ds.sizes["level_ret"] == 10
    assert np.all(
        cos_solar_zenith(ds["time"].values, ds["latitude"].values, ds["longitude"].values)
        >= np.cos(np.deg2rad(70.0)) - 1e-12
    )
    assert np.all(land(ds["latitude"].values, ds["longitude"].values))
    np.testing.assert_allclose(ds["pressure_weight"].sum("level_ret"), 1.0, rtol=1e-14)
    # gridded mask form
    grid = LatLonGrid.from_resolution(10, 10)
    mask = np.zeros((grid.nlat, grid.nlon), bool)
    mask[:, grid.nlon // 2 :] = True  # eastern hemisphere
    ds2 = satellite_design("2021-03-20", "2021-03-20T12:00", mask=(grid, mask), nret=5)
    assert np.all(ds2["longitude"].values >= 0)
    # default: sunlit land only (packaged Natural Earth raster)
    ds3 = satellite_design("2021-03-20", "2021-03-21", nret=5)
    lat3, lon3 = ds3["latitude"].values, ds3["longitude"].values
    assert ds3.sizes["obs"] > 100 and np.all(is_land(lat3, lon3))
    assert not np.any((np.abs(lat3) < 10) & (lon3 > -150) & (lon3 < -130))  # central Pacific
    assert is_land([19.5362, 0.0, 36.05], [-155.5763, -30.0, 140.12]).tolist() == [True, False, True]


def test_solar_zenith_matches_the_climatology():
    grid = LatLonGrid.from_resolution(10, 10)
    clim = Climatology(grid)
    for t in (3.3e6, 1.7e7, 2.9e7):
        when = np.datetime64("2021-01-01T00:00:00") + np.timedelta64(int(t), "s")
        mine = cos_solar_zenith(when, grid.lat[:, None], grid.lon[None, :])
        np.testing.assert_allclose(mine, np.asarray(clim.cos_solar_zenith(t)), atol=2e-3)


@pytest.fixture(scope="module")
def truth():
    grid = LatLonGrid(16, 8)
    met, ps = windy_met(grid)
    model = Transport(grid, advection=PPM(), vertical_diffusion=None)
    rng = np.random.default_rng(5)
    chi = 400e-6 + 10e-6 * rng.uniform(0, 1, (1,) + grid.shape)
    return grid, met, model, model.initial_state(jnp.asarray(chi), ps), chi


def test_simulate_pseudo_observations_and_round_trip(truth, tmp_path):
    grid, met, model, st0, chi = truth
    ref = np.datetime64("2021-01-01T00:00:00")
    start = ref + np.timedelta64(9 * 86400, "s")
    design = concat_tables(
        [
            continuous_design(
                ["MLO", "HAT", "ALT", "CPT"], start, start + np.timedelta64(6, "h"), uncertainty=0.5e-6
            ),
            aircraft_design("RYO", [start + np.timedelta64(3600, "s")], [500, 2000, 5000]),
            satellite_design(
                start - np.timedelta64(2, "h"), start + np.timedelta64(10, "h"), step_seconds=120.0, nret=6
            ),
        ]
    )
    kw = dict(tracers=["CO2"], reference_time=ref, t0=9 * 86400.0, dt=1800.0, nsteps=12)
    table, y = simulate(model, met, st0, design, noise=False, **kw)
    np.testing.assert_array_equal(table["value"].values, y)
    assert "dropped" in table.attrs["osse_report"]  # satellite records outside the 6-hour window
    assert np.all((y >= chi.min() - 1e-12) & (y <= chi.max() + 1e-12))  # monotone transport, no sources
    noisy, y2 = simulate(model, met, st0, design, seed=11, **kw)
    again, _ = simulate(model, met, st0, design, seed=11, **kw)
    other, _ = simulate(model, met, st0, design, seed=12, **kw)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(noisy["value"].values, again["value"].values)
    assert np.all(noisy["value"].values != other["value"].values)
    z = (noisy["value"].values - y) / noisy["uncertainty"].values
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and 0.7 < z.std() < 1.3
    write_osse(noisy, tmp_path)
    back, rep = read_osse(tmp_path)
    assert rep.n_dropped == 0
    xr.testing.assert_equal(back.drop_attrs(), noisy.drop_attrs())


def test_hourly_means_and_model_side_aggregation():
    t0 = np.datetime64("2021-02-01T00:00:00", "ns")
    secs = np.arange(0, 3 * 3600, 600)  # 10-minute records over 3 hours
    val = 400e-6 + 1e-7 * np.arange(secs.size)
    ds = make_table(
        t0 + (secs * 1e9).astype("timedelta64[ns]"),
        36.05,
        140.12,
        val,
        0.3e-6,
        "CO2",
        altitude=250.0,
        site="TKB",
        sampling="continuous",
    )
    sup, agg = aggregate(ds, period="1h")
    assert sup.sizes["obs"] == 3 and list(sup["count"].values) == [6, 6, 6]
    np.testing.assert_allclose(sup["value"].values, val.reshape(3, 6).mean(1), rtol=1e-14)
    np.testing.assert_allclose(sup["uncertainty"].values, 0.3e-6 / np.sqrt(6), rtol=1e-14)
    assert sup["time"].values[0] == t0 + np.timedelta64(1500, "s")
    y = jnp.asarray(val)
    np.testing.assert_allclose(agg(y), sup["value"].values, rtol=1e-14)
    g = jax.grad(lambda y: jnp.sum(agg(y) * jnp.arange(1.0, 4.0)))(y)
    np.testing.assert_allclose(g, np.repeat([1.0, 2.0, 3.0], 6) / 6.0, rtol=1e-14)
    daily, _ = aggregate(ds, period="1D", uncertainty="correlated")
    assert daily.sizes["obs"] == 1 and daily["uncertainty"].values[0] == pytest.approx(0.3e-6)


def test_satellite_gridding_to_model_cells():
    grid = LatLonGrid.from_resolution(10, 10)
    ds = satellite_design("2021-04-01", "2021-04-02", step_seconds=4.0, nret=4)
    sup, agg = aggregate(ds, period="1D", grid=grid)
    assert int(sup["count"].sum()) == ds.sizes["obs"] and sup.sizes["obs"] < ds.sizes["obs"]
    assert np.all(np.isin(np.round(sup["latitude"].values, 9), np.round(grid.lat, 9)))
    assert np.all(np.isin(np.round(sup["longitude"].values, 9), np.round(grid.lon, 9)))
    np.testing.assert_array_equal(np.asarray(agg.count), sup["count"].values)


def test_station_catalogue():
    cat = load_station_catalogue()
    ids = list(cat["site"].values)
    assert len(ids) >= 100 and len(set(ids)) == len(ids)
    for sid in (
        "MLO",
        "BRW",
        "SMO",
        "SPO",
        "ALT",
        "ZEP",
        "ASK",
        "CGO",
        "MHD",
        "JFJ",
        "THD",
        "RPB",
        "KUM",
        "NWR",
        "WLG",
        "CPT",
        "AMS",
        "HAT",
        "COI",
        "RYO",
        "MNM",
        "YON",
        "AMY",
        "GSN",
        "LLN",
        "HTM",
        "CBW",
    ):
        assert sid in ids
    assert np.all(np.abs(cat["latitude"]) <= 90) and np.all(np.abs(cat["longitude"]) <= 180)
    assert np.all(cat["inlet_height"] >= 0) and np.all(cat["elevation"] > -10)
    assert get_station("tkb").id == "TK" and get_station("mlo").elevation_m == 3397
    assert get_station("SPO").latitude < -89.9
    tccon = load_station_catalogue(network="TCCON")
    assert tccon.sizes["site"] >= 25 and np.all(tccon["inlet_height"] == 0)
    for net in ("ICOS", "AGAGE", "NIES", "JMA", "GAW"):
        assert load_station_catalogue(network=net).sizes["site"] >= 3
    assert load_station_catalogue(type="tower").sizes["site"] >= 20
    with pytest.raises(KeyError, match="valid ids: MLO, BRW"):
        get_station("XYZ")
    assert station_ids()[0] == "MLO"
