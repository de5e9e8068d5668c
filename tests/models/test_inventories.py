"""Inventory units, reading/writing/regridding, bad input, built-in default distributions."""

import numpy as np
import pytest
import xarray as xr

from diffflux.constants import AVOGADRO, SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid
from diffflux.met.regrid import RectilinearGrid
from diffflux.models.inventories import (
    GLOBAL_TOTALS,
    NATIONAL_TOTALS,
    default_inventory,
    read_inventory,
    write_inventory,
)
from diffflux.models.prescribed import read_fire, read_prescribed
from diffflux.models.units import MEAN_MONTH, parse_flux_units
from diffflux.regions import region_mask
from diffflux.species import get_species

M_C, M_N = 12.011e-3, 14.007e-3


@pytest.mark.parametrize(
    "units, species, expected, per_area",
    [
        ("kg m-2 s-1", "CO2", 1.0 / 44.009e-3, True),
        ("kg/m2/s", "CH4", 1.0 / 16.043e-3, True),
        ("g C m-2 month-1", "CO2", 1e-3 / M_C / MEAN_MONTH, True),
        ("gC/m2/month", "CH4", 1e-3 / M_C / MEAN_MONTH, True),
        ("kg N m-2 s-1", "N2O", 1.0 / (2 * M_N), True),
        ("TgN/yr", "N2O", 1e9 / (2 * M_N) / SECONDS_PER_YEAR, False),
        ("Mg month-1", "CH4", 1e3 / 16.043e-3 / MEAN_MONTH, False),
        ("mg m-2 s-1", "CH4", 1e-6 / 16.043e-3, True),
        ("kt yr-1 gridcell-1", "SF6", 1e6 / 146.05e-3 / SECONDS_PER_YEAR, False),
        ("molecules cm-2 s-1", "CH4", 1e4 / AVOGADRO, True),
        ("kg CH4 m**-2 s**-1", "CH4", 1.0 / 16.043e-3, True),
        ("kg km^-2 yr^-1", "CO2", 1e-6 / 44.009e-3 / SECONDS_PER_YEAR, True),
        ("mol m-2 s-1", "HFC-134a", 1.0, True),
    ],
)
def test_unit_conversions(units, species, expected, per_area):
    fu = parse_flux_units(units, get_species(species), where="f.nc", variable="v")
    assert fu.per_area is per_area
    assert float(fu.factor()) == pytest.approx(expected, rel=2e-4)


@pytest.mark.parametrize("units, match", [
    ("kg m-2", "time unit"), ("furlongs s-1", "unknown unit 'furlongs'"), ("kg N m-2 s-1", "contains no N"),
    ("kg m-3 s-1", "per area"), (None, "no units attribute"), ("kg CH4 m-2 s-1", "does not match species"),
])
def test_unknown_or_wrong_units_raise(units, match):
    with pytest.raises(ValueError, match=f"emis.nc: variable 'co2'.*{match}"):
        parse_flux_units(units, get_species("CO2"), where="emis.nc", variable="co2")


def _monthly_bounds(year=2020):
    starts = np.array([f"{year}-{m:02d}-01" for m in range(1, 13)], dtype="datetime64[M]")
    return np.stack([starts, starts + 1], axis=1).astype("datetime64[s]")


@pytest.mark.parametrize("units, kwargs", [
    ("kg m-2 s-1", {}),
    ("Mg month-1", {"lat_descending": True, "lon_0_360": True}),
    ("g C m-2 month-1", {"sector_dimension": True, "write_bounds": False}),
    ("molecules cm-2 s-1", {"lat_descending": True}),
])
def test_round_trip_monthly_sectors_any_orientation(tmp_path, rng, units, kwargs):
    src = RectilinearGrid.regular(2.0, 2.5)
    sp = get_species("CH4")
    flux = rng.random((12, 2) + src.shape) * 1e-9  # mol m-2 s-1
    path = write_inventory(tmp_path / "inv.nc", flux, sp, src, sectors=("energy", "agriculture"),
                           time_bounds=_monthly_bounds(), units=units, **kwargs)
    grid = LatLonGrid.from_resolution(4.0, 5.0)
    inv = read_inventory(path, sp, grid)
    assert inv.sectors == ("energy", "agriculture") and inv.flux.shape == (12, 2, 45, 72)
    total_src = (flux * src.area(grid.radius)).sum(axis=(-2, -1))
    total = (inv.flux * grid.area).sum(axis=(-2, -1))
    # per-month units are converted with each month's own length (February 2020: 29 days)
    assert np.all(np.abs(total / total_src - 1.0) < 1e-12)
    assert np.array_equal(inv.time_bounds, _monthly_bounds())
    edges = inv.record_edges("2020-01-01")
    assert edges[0] == 0.0 and edges[2] - edges[1] == 29 * 86400.0
    same = read_inventory(path, sp, LatLonGrid.from_resolution(2.0, 2.5))  # identical grid: exact copy
    assert np.allclose(same.flux, flux, rtol=1e-12, atol=0)


def test_regional_inventory_and_country_total(tmp_path):
    """An Asian 0.25-degree inventory with emissions only in Japan's cells keeps Japan's total."""
    lat = np.arange(20.0, 50.0, 0.25) + 0.125
    lon = np.arange(120.0, 150.0, 0.25) + 0.125
    grid1 = LatLonGrid.from_resolution(1.0, 1.0)
    japan = region_mask(LatLonGrid.from_resolution(0.25, 0.25), "JPN")
    j0 = int(np.searchsorted(LatLonGrid.from_resolution(0.25, 0.25).lat, lat[0]))
    i0 = int(np.searchsorted(LatLonGrid.from_resolution(0.25, 0.25).lon, lon[0]))
    field = japan[j0:j0 + lat.size, i0:i0 + lon.size] * 1e-7  # kg m-2 s-1 of CO2 on Japan's land
    ds = xr.Dataset({"co2_excl_short": (("latitude", "longitude"), field[::-1], {"units": "kg m-2 s-1"})},
                    coords={"latitude": ("latitude", lat[::-1], {"units": "degrees_north"}),
                            "longitude": ("longitude", lon, {"units": "degrees_east"})})
    ds.to_netcdf(tmp_path / "asia.nc")
    inv = read_inventory(tmp_path / "asia.nc", "CO2", grid1, component="fossil")
    src_total = (field * RectilinearGrid(np.r_[lat - 0.125, lat[-1] + 0.125],
                                         np.r_[lon - 0.125, lon[-1] + 0.125]).area(grid1.radius)).sum()
    assert (inv.flux[0, 0] * grid1.area).sum() * 44.009e-3 == pytest.approx(src_total, rel=1e-12)
    assert inv.time_bounds is None and inv.sectors == ("co2_excl_short",)


def _simple_file(path, values, units="kg m-2 s-1", name="emi", lat_bounds=None):
    lat = np.array([-45.0, 45.0])
    lon = np.array([-135.0, -45.0, 45.0, 135.0])
    data = {name: (("lat", "lon"), values, {"units": units})}
    coords = {"lat": ("lat", lat, {"units": "degrees_north"}), "lon": ("lon", lon, {"units": "degrees_east"})}
    if lat_bounds is not None:
        coords["lat"][2]["bounds"] = "lat_bnds"
        data["lat_bnds"] = (("lat", "nv"), lat_bounds)
    xr.Dataset(data, coords=coords).to_netcdf(path)
    return path


def test_bad_inventories_raise_clear_errors(tmp_path):
    grid = LatLonGrid.from_resolution(4.0, 5.0)
    ok = np.ones((2, 4)) * 1e-9
    neg = ok.copy()
    neg[1, 2] = -3e-9
    p = _simple_file(tmp_path / "neg.nc", neg)
    with pytest.raises(ValueError, match=r"neg.nc: variable 'emi' has 1 negative values \(minimum -3e-09 "
                                         r"at lat 45, lon 45.*must be >= 0"):
        read_inventory(p, "CH4", grid)
    assert read_prescribed(p, "CO2", grid, "nee").flux.min() < 0  # net fluxes may be negative
    with pytest.raises(ValueError, match="negative"):
        read_fire(p, "CO2", grid)
    p = _simple_file(tmp_path / "units.nc", ok, units="kg m-2 furlong-1")
    with pytest.raises(ValueError, match="units.nc: variable 'emi' has units 'kg m-2 furlong-1'"):
        read_inventory(p, "CH4", grid)
    p = _simple_file(tmp_path / "gap.nc", ok, lat_bounds=np.array([[-90.0, -5.0], [5.0, 90.0]]))
    with pytest.raises(ValueError, match="gap.nc: cells of 'lat' do not tile: a gap of 10 degrees"):
        read_inventory(p, "CH4", grid)
    p = _simple_file(tmp_path / "sec.nc", ok)
    with pytest.raises(ValueError, match="sector.s. energy, waste not found; available sectors: emi"):
        read_inventory(p, "CH4", grid, sectors=["energy", "waste"])
    nan = ok.copy()
    nan[0, 0] = np.nan
    p = _simple_file(tmp_path / "nan.nc", nan)
    with pytest.raises(ValueError, match="1 missing or non-finite values"):
        read_inventory(p, "CH4", grid)
    inv = read_inventory(p, "CH4", grid, missing="zero")
    assert inv.n_missing == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_inventory(tmp_path / "absent.nc", "CH4", grid)


# ---- built-in defaults ------------------------------------------------------------------------------

# documented global totals (reporting units per year) and their sources, repeated here on purpose: a
# change of a default must be deliberate (and the source updated)
DOCUMENTED = {"CO2": (10.1, "GCB 2024"), "CH4": (365.0, "Global Methane Budget 2024"),
              "N2O": (7.3, "Tian et al. 2020"), "HFC-134a": (250.0, "WMO (2022)"),
              "HFC-125": (80.0, "WMO (2022)"), "HFC-32": (60.0, "WMO (2022)"), "SF6": (9.0, "WMO (2022)")}


@pytest.fixture(scope="module")
def grid1():
    return LatLonGrid.from_resolution(1.0, 1.0)


@pytest.mark.parametrize("species", list(DOCUMENTED))
def test_default_global_totals_match_documented_sources(species, grid1):
    value, source = DOCUMENTED[species]
    assert GLOBAL_TOTALS[species][0] == value and source in GLOBAL_TOTALS[species][1]
    inv = default_inventory(species, grid1)
    assert inv.flux.min() >= 0.0
    assert inv.global_totals()[0, 0] == pytest.approx(value, rel=1e-12)
    f = inv.flux[0, 0]
    assert np.all(f[grid1.lat < -60.0] == 0.0)  # nothing over Antarctica
    j, i = np.searchsorted(grid1.lat, 0.0), np.searchsorted(grid1.lon, -150.0)
    assert f[j, i] == 0.0  # central Pacific


def test_default_totals_in_documented_ranges(grid1):
    co2 = get_species("CO2")
    gt_co2 = co2.flux_from_reporting(GLOBAL_TOTALS["CO2"][0]) * co2.molar_mass * SECONDS_PER_YEAR / 1e12
    assert 36.0 < gt_co2 < 38.0  # ~37 GtCO2/yr
    assert 350.0 <= GLOBAL_TOTALS["CH4"][0] <= 380.0
    assert 6.5 <= GLOBAL_TOTALS["N2O"][0] <= 8.0


@pytest.mark.parametrize("species, code", [("CO2", "CHN"), ("CO2", "USA"), ("CO2", "JPN"), ("CH4", "IND"),
                                           ("N2O", "BRA")])
def test_default_national_totals_at_one_degree(species, code, grid1):
    inv = default_inventory(species, grid1)
    sp = inv.species
    # land-share masks: a coastal cell's emissions belong to the country that owns its land
    mask = region_mask(grid1, f"country:{code}", share="land")
    national = sp.flux_to_reporting((inv.flux[0, 0] * mask * grid1.area).sum())
    table, _ = NATIONAL_TOTALS[species]
    expected = table[code]
    if species == "CO2":  # table in MtCO2/yr
        expected = sp.flux_to_reporting(expected * 1e9 / sp.molar_mass / SECONDS_PER_YEAR)
    assert national == pytest.approx(expected, rel=0.04)  # border cells are shared with neighbours


def test_default_round_trips_through_the_reader(tmp_path):
    grid = LatLonGrid.from_resolution(4.0, 5.0)
    inv = default_inventory("CH4", grid)
    p = write_inventory(tmp_path / "ch4.nc", inv.flux[0], "CH4", grid, sectors=inv.sectors, units="Gg yr-1")
    back = read_inventory(p, "CH4", grid)
    assert np.allclose(back.flux, inv.flux, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="no built-in default for CO"):
        default_inventory("CO", grid)


def test_auxiliary_variables_skipped_and_numeric_time_rejected(tmp_path):
    grid = LatLonGrid.from_resolution(4.0, 5.0)
    lat = np.array([-45.0, 45.0])
    lon = np.array([-135.0, -45.0, 45.0, 135.0])
    ds = xr.Dataset(
        {"emi_ind": (("lat", "lon"), np.ones((2, 4)) * 1e-10, {"units": "kg m-2 s-1"}),
         "cell_area": (("lat", "lon"), np.ones((2, 4)), {"units": "m2"})},
        coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})})
    ds.to_netcdf(tmp_path / "aux.nc")
    assert read_inventory(tmp_path / "aux.nc", "CH4", grid).sectors == ("emi_ind",)
    ds2 = xr.Dataset({"emi": (("month", "lat", "lon"), np.ones((12, 2, 4)), {"units": "kg m-2 s-1"})},
                     coords={"month": np.arange(1, 13), "lat": ("lat", lat, {"units": "degrees_north"}),
                             "lon": ("lon", lon, {"units": "degrees_east"})})
    ds2.to_netcdf(tmp_path / "clim.nc")
    with pytest.raises(ValueError, match="time coordinate 'month' holds plain numbers.*CF time units"):
        read_inventory(tmp_path / "clim.nc", "CH4", grid)
