"""Budgets: regional totals in reporting units, periods, uncertainties from flux covariances, output."""

import csv

import numpy as np
import pytest

from diffflux.constants import SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid
from diffflux.regions import budget, region_mask

GRID = LatLonGrid.from_resolution(10.0, 10.0)


def test_uniform_flux_gives_analytic_totals():
    f = np.full((GRID.nlat, GRID.nlon), 1e-8)  # mol m-2 s-1 of CO2
    b = budget(f, GRID, "CO2", ["globe", "NH", "lat:30S-30N"])
    area = 4 * np.pi * GRID.radius**2
    pgc = 1e-8 * area * 12.011e-3 * SECONDS_PER_YEAR / 1e12
    assert b.unit == "PgC/yr" and b.periods == ("all",)
    assert b.total[:, 0] == pytest.approx([pgc, pgc / 2, pgc / 2], rel=1e-12)
    n2o = budget(f, GRID, "N2O", "globe")
    assert n2o.unit == "TgN/yr" and n2o.total[0, 0] == pytest.approx(
        1e-8 * area * 2 * 14.007e-3 * SECONDS_PER_YEAR / 1e9, rel=1e-12)


def test_periods_and_durations(rng):
    f = rng.random((3, GRID.nlat, GRID.nlon)) * 1e-9
    d = np.array([31.0, 28.0, 31.0]) * 86400
    b = budget(f, GRID, "CH4", ["ar6:EAS", "country:USA"], durations=d,
               periods={"JF": [0, 1], "all": [0, 1, 2]})
    m = region_mask(GRID, "ar6:EAS")
    rate = np.einsum("tyx,yx->t", f, m * GRID.area) * 16.043e-3 * SECONDS_PER_YEAR / 1e9
    assert b.total[0, 0] == pytest.approx((rate[0] * d[0] + rate[1] * d[1]) / (d[0] + d[1]), rel=1e-10)
    assert b.amount[0, 1] == pytest.approx((rate * d).sum() / SECONDS_PER_YEAR, rel=1e-10)
    default = budget(f, GRID, "CH4", "globe")
    assert default.periods == ("record 0", "record 1", "record 2", "all")


def test_uncertainty_dense_diagonal_and_operator_agree(rng):
    nt = 2
    n = nt * GRID.nlat * GRID.nlon
    f = rng.random((nt, GRID.nlat, GRID.nlon)) * 1e-8
    sd = rng.random(n) * 1e-9
    regions = ["NH", "ar6:EAS", "basin:Pacific"]
    dense = budget(f, GRID, "CO2", regions, covariance=np.diag(sd**2))
    diag = budget(f, GRID, "CO2", regions, covariance=(sd**2).reshape(f.shape))
    op = budget(f, GRID, "CO2", regions, covariance=lambda v: sd**2 * v)
    assert np.allclose(dense.sigma, diag.sigma, rtol=1e-12) and np.allclose(op.sigma, diag.sigma, rtol=1e-12)
    assert np.allclose(dense.covariance, op.covariance, rtol=1e-10, atol=1e-30)
    # analytic: sigma^2 = s^2 sum_t w_t^2 sum_xy (m A)^2 sd^2 with equal weights w_t = 1/2
    s = 12.011e-3 * SECONDS_PER_YEAR / 1e12
    m = region_mask(GRID, "ar6:EAS")
    var = s**2 * 0.25 * ((m * GRID.area)[None] ** 2 * (sd**2).reshape(f.shape)).sum()
    assert diag.sigma[1, -1] == pytest.approx(np.sqrt(var), rel=1e-12)
    # a full correlation: the NH sigma equals the sum of the NH standard deviations (perfectly correlated)
    full = budget(f[0], GRID, "CO2", "NH", covariance=np.outer(sd[:f[0].size], sd[:f[0].size]))
    g = region_mask(GRID, "NH") * GRID.area
    assert full.sigma[0, 0] == pytest.approx(s * (g.ravel() * sd[:f[0].size]).sum(), rel=1e-12)


def test_outputs(tmp_path, rng):
    f = rng.random((GRID.nlat, GRID.nlon)) * 1e-9
    b = budget(f, GRID, "HFC-134a", ["globe", "country:JPN"], covariance=np.full(f.shape, 1e-24),
               durations=[SECONDS_PER_YEAR])
    b.to_csv(tmp_path / "b.csv")
    rows = list(csv.DictReader(open(tmp_path / "b.csv")))
    assert rows[1]["region"] == "country:JPN" and rows[1]["unit"] == "Gg/yr" and float(rows[1]["sigma"]) > 0
    assert float(rows[0]["amount"]) == pytest.approx(float(rows[0]["total"]), rel=1e-12)
    ds = b.to_dataset()
    assert ds["total"].dims == ("region", "period") and ds["total"].attrs["units"] == "Gg/yr"
    assert "country:JPN" in str(b)


def test_bad_input():
    f = np.zeros((GRID.nlat, GRID.nlon))
    with pytest.raises(ValueError, match="flux must be"):
        budget(np.zeros((3, 4)), GRID, "CO2")
    with pytest.raises(ValueError, match="covariance must be"):
        budget(f, GRID, "CO2", covariance=np.zeros((5, 5)))
    with pytest.raises(KeyError, match="unknown region 'Mordor'"):
        budget(f, GRID, "CO2", ["Mordor"])
    with pytest.raises(ValueError, match="unknown species"):
        budget(f, GRID, "XYZ")


def test_land_share_masks_keep_island_totals():
    """Emissions on Japan's land: an area-fraction mask at 1 degree misses the coastal cells' sea part,
    the land-share mask does not."""
    from diffflux import geography

    g1 = LatLonGrid.from_resolution(1.0, 1.0)
    jpn = geography.country_raster() == geography.country("JPN").indices[0]
    dens = np.where(jpn, 1e-7, 0.0)  # mol m-2 s-1 on Japan's raster cells
    flux = geography.aggregate_raster(dens, g1)
    truth = 1e-7 * geography.country_area("JPN") * 12.011e-3 * SECONDS_PER_YEAR / 1e12
    by_area = budget(flux, g1, "CO2", "JPN").total[0, 0]
    by_land = budget(flux, g1, "CO2", "JPN", share="land").total[0, 0]
    assert by_area < 0.8 * truth
    assert by_land == pytest.approx(truth, rel=0.01)
    share = region_mask(g1, "JPN", share="land")
    assert share.max() <= 1.0 and np.all(share[region_mask(g1, "land") == 0] == 0)
