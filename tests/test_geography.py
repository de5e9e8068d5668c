"""Packaged geography: fractions on model grids conserve the raster's areas; lookups fail helpfully."""

import numpy as np
import pytest

from diffflux import geography
from diffflux.grid import LatLonGrid

# Published total areas [M km2] (UN Statistics Division / CIA World Factbook). USA: land, inland water and
# the US share of the Great Lakes (US Census 2010: 9.147 + 0.222 + 0.157), which the Natural Earth polygon
# holds; it leaves out coastal and territorial water. ATA: Antarctica without its ice shelves (about 14.0
# with them, less 1.56 of ice shelves, Rignot et al. 2013), as Natural Earth draws it. SWE, FIN, USA and ATA
# lost rows to the swapped scan lines of the first build of the raster (SWE came out at 0.32).
PUBLISHED = {
    "RUS": 17.098,
    "CAN": 9.985,
    "USA": 9.526,
    "CHN": 9.597,
    "BRA": 8.516,
    "AUS": 7.692,
    "SWE": 0.450,
    "FIN": 0.338,
    "ATA": 12.4,
}


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


# -------------------------------------------------------------------------------------------------
# the raster itself: no scan line with land and sea swapped, polar cap present, plausible totals
# -------------------------------------------------------------------------------------------------


def _row_fractions(mask):
    return mask.mean(axis=1)


@pytest.mark.parametrize("layer", ["land", "country"])
def test_adjacent_rows_change_smoothly(layer):
    # neighbouring 5-arc-minute rows of Natural Earth differ by at most 0.03 in land fraction; a row whose
    # land and sea are swapped jumps by |1 - 2 f| (up to 0.64 in the first build)
    mask = geography.land_raster() if layer == "land" else geography.country_raster() > 0
    frac = _row_fractions(mask)
    lat, _ = geography.raster_centres()
    step = np.abs(np.diff(frac))
    worst = int(np.argmax(step))
    assert step[worst] < 0.06, f"{layer} fraction jumps by {step[worst]:.3f} at {lat[worst]:.3f} degrees"


def test_one_degree_bands_agree_with_their_neighbours():
    land = geography.land_raster()
    res = geography.raster_resolution()
    band = _row_fractions(land).reshape(180, res).mean(axis=1)
    deviation = np.abs(band[1:-1] - 0.5 * (band[:-2] + band[2:]))
    worst = int(np.argmax(deviation))
    assert deviation[worst] < 0.1, f"band {worst + 1 - 90} N deviates by {deviation[worst]:.3f}"


def test_land_and_country_layers_agree_row_by_row():
    agree = (geography.land_raster() == (geography.country_raster() > 0)).mean(axis=1)
    assert agree.min() > 0.95


def test_arctic_circle_band_is_mostly_land():
    # 65-69 N: Eurasia from Scandinavia to Chukotka, Alaska, Canada, Greenland: about three quarters land
    land = geography.land_raster()
    lat, _ = geography.raster_centres()
    area = geography.raster_cell_area()
    rows = (lat > 65.0) & (lat < 69.0)
    share = float((land[rows].sum(axis=1) * area[rows]).sum() / (area[rows].sum() * land.shape[1]))
    assert share > 0.5
    assert 0.65 < share < 0.85


@pytest.mark.parametrize(
    "lat, lon, is_land",
    [
        (67.0, 0.0, False),  # Norwegian Sea
        (71.2, -150.0, False),  # off Alaska's north coast
        (71.2, -140.0, False),  # Beaufort Sea
        (71.25, -179.5, True),  # Wrangel Island (its ring crosses the antimeridian)
        (68.0, -178.0, True),  # Chukotka (Russia east of 180)
        (66.0, -160.0, True),  # Alaska
        (66.0, 20.0, True),  # Sweden
        (71.2, -40.0, True),  # Greenland
        (-86.0, 0.0, True),  # Antarctic plateau
        (-89.9, -150.0, True),  # South Pole
    ],
)
def test_land_raster_known_points(lat, lon, is_land):
    res = geography.raster_resolution()
    row, col = int((lat + 90.0) * res), int((lon + 180.0) * res)
    assert bool(geography.land_raster()[row, col]) is is_land


def test_antarctic_cap_is_land():
    # Natural Earth's southernmost coastal vertex is at 85.19 S (Ross Ice Shelf grounding line); south of it
    # every cell is land and Antarctica, up to the pole
    lat, _ = geography.raster_centres()
    cap = lat < -85.25
    assert geography.land_raster()[cap].all()
    assert np.isin(geography.country_raster()[cap], geography.country("ATA").indices).all()
    frac = _row_fractions(geography.land_raster())
    assert frac[(lat >= -85.25) & (lat < -84.0)].min() > 0.9


def test_global_land_area():
    # all land 148.94 M km2 (CIA World Factbook) less the Antarctic ice shelves (1.56) and the Caspian Sea
    # (0.37), which Natural Earth's land layer leaves out (other lakes are land): 147.0 M km2
    area = float((geography.land_raster().sum(axis=1) * geography.raster_cell_area()).sum()) / 1e12
    assert area == pytest.approx(148.94 - 1.56 - 0.37, rel=0.01)
