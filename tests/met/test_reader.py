"""CF netCDF met reader: round trip, name/coordinate conventions, vertical interpolation, bad
input."""

import warnings

import jax
import numpy as np
import pytest
import xarray as xr

from diffflux.grid import LatLonGrid, sigma_levels, standard_levels
from diffflux.met.arrays import met_from_arrays
from diffflux.met.balance import BalancedMet
from diffflux.met.reader import load_met, parse_units, read_met, unit_conversion

jax.config.update("jax_enable_x64", True)

REF = "2020-01-01"


def _write(ds, path):
    ds.to_netcdf(path)
    return str(path)


def _assert_same_met(a, b, rtol=1e-12):
    for name in ("ps", "mfx", "mfy", "temperature", "kz"):
        x, y = getattr(a.stack, name), getattr(b.stack, name)
        if x is None:
            assert y is None
            continue
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape, name
        assert np.max(np.abs(x - y)) <= rtol * np.max(np.abs(y)), name
    assert np.allclose(a.times, b.times)


def test_round_trip_model_levels(tmp_path, grid_l10, builders):
    """ERA5-like file (N->S, 0..360 E, top level first, hyai/hybi) == the same arrays in memory."""
    m = builders.analytic(grid_l10, nt=3)
    ds = builders.model_levels(grid_l10, m)
    ds["w"] = 0.1 * ds["u"].copy()
    ds["w"].attrs = {"units": "Pa s**-1", "long_name": "Vertical velocity"}
    path = _write(ds, tmp_path / "era5_ml.nc")
    met = read_met(path, grid_l10, REF)
    ref = met_from_arrays(grid_l10, m["times"], m["u"], m["v"], m["ps"],
                          temperature=m["temperature"], blh=m["blh"])
    assert isinstance(met, BalancedMet)
    _assert_same_met(met, ref)
    mog = load_met(path, grid_l10, REF)
    assert np.array_equal(mog.ps, m["ps"])  # identical grids are copied, not remapped
    assert np.array_equal(mog.u, m["u"])
    assert np.allclose(mog.omega, 0.1 * m["u"], rtol=1e-15)  # read and kept as a diagnostic


def test_hpa_and_other_names(tmp_path, grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    a = _write(builders.model_levels(grid_l10, m), tmp_path / "a.nc")
    ds = builders.model_levels(grid_l10, m, flip_lat=False, lon360=False, top_first=False,
                               names={"u": "U", "v": "V", "temperature": "T", "ps": "PS",
                                      "blh": "PBLH"}, ps_units="hPa")
    b = _write(ds, tmp_path / "b.nc")
    ma, mb = load_met(a, grid_l10, REF), load_met(b, grid_l10, REF)
    for name in ("ps", "u", "v", "temperature", "kz"):
        assert np.allclose(getattr(ma, name), getattr(mb, name), rtol=1e-13, atol=0), name


def test_variables_split_over_files_and_time(tmp_path, grid_l10, builders):
    m = builders.analytic(grid_l10, nt=4)
    ds = builders.model_levels(grid_l10, m)
    whole = _write(ds, tmp_path / "whole.nc")
    p3d = [_write(ds[["u", "v", "t", "hyai", "hybi"]].isel(time=sl), tmp_path / f"pl{k}.nc")
           for k, sl in enumerate((slice(2, 4), slice(0, 2)))]
    sfc = _write(ds[["sp", "blh"]], tmp_path / "sfc.nc")
    one = load_met(whole, grid_l10, REF)
    split = load_met(p3d + [sfc], grid_l10, REF)
    assert np.array_equal(one.times, split.times)
    for name in ("ps", "u", "v", "temperature", "kz"):
        assert np.array_equal(getattr(one, name), getattr(split, name)), name
    # a window reads the bracketing records only
    win = load_met(whole, grid_l10, REF, start=7 * 3600.0, end=np.datetime64("2020-01-01T11:00"))
    assert np.array_equal(win.times, [6 * 3600.0, 12 * 3600.0])
    with pytest.raises(ValueError, match="ends at 64800 s"):
        load_met(whole, grid_l10, REF, end="2020-01-02")


def test_cesm_like_formula_terms(tmp_path, builders):
    """Hybrid mids via formula_terms with dimensionless a and P0 (CESM); lev also has hPa units."""
    grid = LatLonGrid(16, 8, standard_levels("L10"))
    m = builders.analytic(grid, nt=2)
    ds = builders.model_levels(grid, m, with_blh=False)
    a, b = grid.levels.a[::-1], grid.levels.b[::-1]
    hyam, hybm = 0.5 * (a[1:] + a[:-1]) / 1.0e5, 0.5 * (b[1:] + b[:-1])
    ds = ds.drop_vars(["hyai", "hybi"]).rename({"level": "lev", "u": "U", "v": "V", "t": "T",
                                                "sp": "PS"})
    ds = ds.assign_coords(lev=("lev", (hyam + hybm) * 1000.0, {
        "units": "hPa", "formula_terms": "a: hyam b: hybm p0: P0 ps: PS"}))
    ds["hyam"] = ("lev", hyam, {"units": "1"})
    ds["hybm"] = ("lev", hybm, {"units": "1"})
    ds["P0"] = ((), 1.0e5, {"units": "Pa"})
    mog = load_met(_write(ds, tmp_path / "cesm.nc"), grid, REF)
    assert np.allclose(mog.u, m["u"], rtol=1e-12)  # same hybrid levels: copied, not interpolated
    assert np.allclose(mog.temperature, m["temperature"], rtol=1e-12)


def test_pressure_levels_log_p_interpolation(tmp_path, builders):
    """Fields linear in ln p on pressure levels are reproduced exactly at the model mid
    pressures."""
    grid = LatLonGrid(16, 8, standard_levels("L10"))
    ds = builders.pressure_levels()
    # an upward convective mass flux on the pressure levels, linear in ln p between 850 and 200 hPa
    lp = np.log(ds["lev"].values * 100.0)
    prof = np.where((ds["lev"] <= 850.0) & (ds["lev"] >= 200.0), 0.01 * (lp - np.log(1e4)), 0.0)
    ds["CMFMC"] = (("time", "lev", "lat", "lon"),
                   np.broadcast_to(prof[None, :, None, None], ds["T"].shape).copy(),
                   {"units": "kg m-2 s-1"})
    ds["KZ"] = (("time", "lev", "lat", "lon"), np.full(ds["T"].shape, 5.0), {"units": "m2 s-1"})
    path = _write(ds, tmp_path / "merra_pl.nc")
    mog = load_met(path, grid, REF)
    p_int = np.asarray(grid.pressure_interfaces(mog.ps[0]))
    lp = np.log(0.5 * (p_int[:-1] + p_int[1:]) / 100.0)
    assert np.allclose(mog.temperature[0], 200.0 + 12.0 * lp, rtol=1e-13)
    assert np.allclose(mog.u[1], 5.0 + 2.0 * lp, rtol=1e-13)
    assert np.allclose(mog.v[2], 1.0 - 0.5 * lp, rtol=1e-12)
    assert np.allclose(mog.ps, 1.0e5, rtol=1e-14)
    assert mog.notes == ()
    # fluxes and Kz sit on the interior interfaces, zero at the surface and the top
    pi = p_int[1:-1]
    inside = (pi <= 850e2) & (pi >= 200e2)
    expected = np.where(inside, 0.01 * (np.log(pi) - np.log(1e4)), 0.0) * grid.area
    assert mog.conv_mflux.shape == (3, grid.nlev + 1, grid.nlat, grid.nlon)
    assert np.all(mog.conv_mflux[:, [0, -1]] == 0)
    assert np.allclose(mog.conv_mflux[0, 1:-1][inside], expected[inside], rtol=1e-12)
    assert np.allclose(mog.kz[:, 1:-1], 5.0, rtol=1e-14) and np.all(mog.kz[:, [0, -1]] == 0)


def test_pressure_levels_below_ground_missing_values(tmp_path, builders):
    grid = LatLonGrid(16, 8, sigma_levels(3))
    ds = builders.pressure_levels(ps_hpa=980.0)
    for name in ("T", "U", "V"):
        ds[name][:, :2] = np.nan  # 1050 and 1000 hPa lie below the 980 hPa surface
    path = _write(ds, tmp_path / "merra_pl_missing.nc")
    with pytest.warns(UserWarning, match="below the ground filled"):
        mog = load_met(path, grid, REF)
    assert np.all(np.isfinite(mog.temperature)) and any("below the ground" in n for n in mog.notes)
    ds2 = builders.pressure_levels(ps_hpa=980.0)
    ds2["T"][1, 5, 3, 4] = np.nan  # 500 hPa is above the ground: a real hole
    bad = _write(ds2, tmp_path / "hole.nc")
    with pytest.raises(ValueError, match=r"hole\.nc, variable 'T': 1 NaN/inf value"):
        load_met(bad, grid, REF)


def test_extrapolation_is_counted(tmp_path, builders):
    grid = LatLonGrid(16, 8, standard_levels("L25"))  # top at 1 hPa, above the 2 hPa source top
    path = _write(builders.pressure_levels(), tmp_path / "pl.nc")
    with pytest.warns(UserWarning, match="outside the source pressure range"):
        mog = load_met(path, grid, REF)
    assert any("nearest source level" in n for n in mog.notes)


def test_regridded_read_conserves_ps(tmp_path, builders):
    grid = LatLonGrid(12, 6, sigma_levels(2))
    ds = builders.pressure_levels(nlat=18, nlon=36)
    rng = np.random.default_rng(3)
    ds["PS"][:] = 1.0e5 + 500.0 * rng.standard_normal(ds["PS"].shape)
    mog = load_met(_write(ds, tmp_path / "ps.nc"), grid, REF)
    lat = np.deg2rad(ds["lat"].values)
    w_src = np.sin(np.deg2rad(np.minimum(ds["lat"].values + 5.0, 90.0))) - np.sin(
        np.deg2rad(np.maximum(ds["lat"].values - 5.0, -90.0)))
    assert np.all(np.abs(lat) < np.pi / 2)
    src_mean = (ds["PS"].values[0] * w_src[:, None]).sum() / (w_src.sum() * 36)
    gm = (mog.ps[0] * grid.area).sum() / grid.area.sum()
    assert gm == pytest.approx(src_mean, rel=1e-13)


# ---- units
# -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, quantity, expected", [
    ("m s-1", "velocity", (1.0, 0.0)),
    ("m/s", "velocity", (1.0, 0.0)),
    ("m s**-1", "velocity", (1.0, 0.0)),
    ("meters/second", "velocity", (1.0, 0.0)),
    ("Pa", "pressure", (1.0, 0.0)),
    ("hPa", "pressure", (100.0, 0.0)),
    ("mbar", "pressure", (100.0, 0.0)),
    ("K", "temperature", (1.0, 0.0)),
    ("degC", "temperature", (1.0, 273.15)),
    ("Pa s-1", "pressure_velocity", (1.0, 0.0)),
    ("km", "length", (1000.0, 0.0)),
    ("m2 s-1", "diffusivity", (1.0, 0.0)),
    ("m^2/s", "diffusivity", (1.0, 0.0)),
    ("kg m-2 s-1", "mass_flux", (1.0, 0.0)),
    ("kg/m2/s", "mass_flux", (1.0, 0.0)),
])
def test_unit_parsing(text, quantity, expected):
    assert unit_conversion(quantity, text, where="f", variable="x") == expected


def test_parse_units():
    assert parse_units("kg m**-2 s**-1") == {"kg": 1, "m": -2, "s": -1}
    assert parse_units("m.s-1") == {"m": 1, "s": -1}
    assert parse_units("%%") is None


# ---- bad input
# ------------------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path, builders):
    grid = LatLonGrid(16, 8, sigma_levels(2))
    m = builders.analytic(grid, nt=2)
    return grid, builders.model_levels(grid, m, with_blh=False), tmp_path


def _expect(ds, tmp_path, grid, *patterns, name="bad.nc", **kw):
    path = _write(ds, tmp_path / name)
    with pytest.raises(ValueError) as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_met(path, grid, REF, **kw)
    msg = str(err.value)
    assert name in msg, msg
    for p in patterns:
        assert p in msg, msg
    return msg


def test_missing_variable(good):
    grid, ds, tmp = good
    msg = _expect(ds.drop_vars("sp"), tmp, grid, "'ps'", "'sp'", "'PS'", "surface_air_pressure")
    assert "names=" in msg
    _expect(ds, tmp, grid, "'temperature'", "'air_T'", names={"temperature": "air_T"})


def test_missing_and_wrong_units(good):
    grid, ds, tmp = good
    no_units = ds.copy()
    no_units["u"].attrs.pop("units")
    _expect(no_units, tmp, grid, "variable 'u'", "no units attribute", "m s-1")
    wrong = ds.copy()
    wrong["sp"].attrs["units"] = "kg"
    _expect(wrong, tmp, grid, "variable 'sp'", "units 'kg'", "Pa")
    mislabelled = ds.copy()
    mislabelled["sp"].attrs["units"] = "Pa"
    mislabelled["sp"][:] = mislabelled["sp"].values / 100.0  # hPa values labelled Pa
    _expect(mislabelled, tmp, grid, "variable 'sp'", "plausible range")


def test_nan_and_inf(good):
    grid, ds, tmp = good
    bad = ds.copy(deep=True)
    bad["v"][1, 0, 2, 3] = np.inf
    _expect(bad, tmp, grid, "variable 'v'", "1 NaN/inf value", "21600 s")


def test_grid_not_global(good):
    grid, ds, tmp = good
    _expect(ds.isel(latitude=slice(1, -1)), tmp, grid, "does not cover the globe", "latitude")
    _expect(ds.isel(longitude=slice(0, 10)), tmp, grid, "does not cover the globe", "longitude")
    cyc = xr.concat([ds, ds.isel(longitude=[0]).assign_coords(longitude=[360.0 + ds.longitude[0]])],
                    dim="longitude", data_vars="minimal", coords="minimal", compat="override")
    _expect(cyc, tmp, grid, "repeats a longitude", "longitude", name="cyclic.nc")


def test_non_monotonic_coordinates(good):
    grid, ds, tmp = good
    perm = np.arange(ds.sizes["latitude"])
    perm[[2, 3]] = perm[[3, 2]]
    _expect(ds.isel(latitude=perm), tmp, grid, "'latitude' is not strictly monotonic")


def test_times_not_increasing(good):
    grid, ds, tmp = good
    _expect(ds.isel(time=[1, 0]), tmp, grid, "strictly increasing", "time")
    path_a = _write(ds, tmp / "a.nc")
    path_b = _write(ds.isel(time=[1]), tmp / "b.nc")
    with pytest.raises(ValueError, match=r"a\.nc and .*b\.nc|b\.nc and .*a\.nc"):
        load_met([path_a, path_b], grid, REF)


def test_times_differ_between_variables(good):
    grid, ds, tmp = good
    u = _write(ds[["u", "v", "t", "hyai", "hybi"]], tmp / "winds.nc")
    shifted = ds[["sp"]].assign_coords(time=ds.time + np.timedelta64(3, "h"))
    s = _write(shifted, tmp / "surface.nc")
    with pytest.raises(ValueError, match=r"surface\.nc, variable 'sp': no record at 0 s"):
        load_met([u, s], grid, REF)


def test_unknown_level_coordinate(good):
    grid, ds, tmp = good
    _expect(ds.drop_vars(["hyai", "hybi"]), tmp, grid, "cannot tell the pressure", "'level'")
