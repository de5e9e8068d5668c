"""Packaged geography: fractions on model grids conserve the raster's areas; lookups fail helpfully."""

import numpy as np
import pytest

from diffflux import geography
from diffflux.grid import LatLonGrid

# Published total areas [M km2] (UN Statistics Division / CIA World Factbook); USA: land area, as the
# Natural Earth polygon excludes the Great Lakes' water.
PUBLISHED = {"RUS": 17.098, "CAN": 9.985, "USA": 9.147, "CHN": 9.597, "BRA": 8.516, "AUS": 7.692}


@pytest.mark.parametrize("res", [(4.0, 5.0), (2.0, 2.5), (1.0, 1.0), (0.75, 0.9)])
def test_fractions_conserve_raster_area(res):
    grid = LatLonGrid.from_resolution(*res)
    for code in ("RUS", "JPN", "FJI"):
        frac = geography.country_fraction(grid, code)
        assert frac.min() >= 0.0 and frac.max() <= 1.0
        total = float((frac * grid.area).sum())
        assert total == pytest.approx(geography.country_area(code), rel=1e-10)
    land = geography.land_fraction(grid)
    assert 0.27 < float((land * grid.area).sum() / grid.area.sum()) < 0.29


@pytest.mark.parametrize("code", sorted(PUBLISHED))
def test_country_area_at_one_degree_within_5_percent(code):
    grid = LatLonGrid.from_resolution(1.0, 1.0)
    area = float((geography.country_fraction(grid, code) * grid.area).sum()) / 1e12
    assert area == pytest.approx(PUBLISHED[code], rel=0.05)


def test_unknown_country_lists_valid_codes():
    with pytest.raises(KeyError, match="valid ISO alpha-3 codes are: .*JPN"):
        geography.country("Atlantis")
    assert geography.country("jpn").name == "Japan"


def test_land_fraction_known_points():
    grid = LatLonGrid.from_resolution(1.0, 1.0)
    land = geography.land_fraction(grid)
    j = np.searchsorted(grid.lat_edges, [0.0 - 0.5, 50.5, -30.5]) - 1
    i = np.searchsorted(grid.lon_edges, [-150.5, 10.5, 135.5]) - 1
    assert land[j[0], i[0]] == 0.0  # central Pacific
    assert land[j[1], i[1]] == pytest.approx(1.0)  # Germany
    assert land[j[2], i[2]] == pytest.approx(1.0)  # central Australia
