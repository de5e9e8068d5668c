import math

import numpy as np
import pytest

from diffflux.constants import EARTH_RADIUS, GRAVITY
from diffflux.grid import (
    HybridLevels,
    LatLonGrid,
    great_circle_distance,
    rotate_to_pole,
    sigma_levels,
    standard_levels,
)


@pytest.mark.parametrize("res", [(4, 5), (2, 2.5), (1, 1), (0.5, 0.625), (1.5, 1.5)])
def test_areas_sum_to_sphere(res):
    g = LatLonGrid.from_resolution(*res)
    total = g.area.sum()
    assert abs(total - 4 * math.pi * EARTH_RADIUS**2) / total < 1e-13


def test_centres_and_edges():
    g = LatLonGrid(72, 46)
    assert g.lon[0] == pytest.approx(-180 + 2.5)
    assert g.lat[0] == pytest.approx(-90 + 90 / 46)
    assert g.lat_edges[[0, -1]].tolist() == [-90.0, 90.0]
    assert g.dx_face_y[0] == 0 and g.dx_face_y[-1] == 0
    # area of a row matches the analytic zone area / nlon
    phi = np.deg2rad(g.lat_edges)
    zone = 2 * math.pi * EARTH_RADIUS**2 * (np.sin(phi[1:]) - np.sin(phi[:-1])) / g.nlon
    np.testing.assert_allclose(g.area_lat, zone, rtol=1e-12)


@pytest.mark.parametrize("name,nlev", [("L10", 10), ("L25", 25), ("L47", 47), ("2D", 1)])
def test_standard_levels(name, nlev):
    lev = standard_levels(name)
    assert lev.nlev == nlev
    assert lev.b[0] == 1 and lev.b[-1] == 0 and lev.a[0] == 0
    for ps in (5.5e4, 1e5, 1.05e5):
        dp = lev.thickness(np.float64(ps))
        assert np.all(dp > 0)
        assert dp.sum() == pytest.approx(ps - lev.p_top, rel=1e-12)


def test_air_mass_column():
    g = LatLonGrid.from_resolution(4, 5, "L25")
    ps = np.full((g.nlat, g.nlon), 98000.0)
    m = np.asarray(g.air_mass(ps))
    assert m.shape == (25, 45, 72)
    col = m.sum(0)
    np.testing.assert_allclose(col, (98000.0 - g.levels.p_top) * g.area / GRAVITY, rtol=1e-12)


def test_bad_grids():
    with pytest.raises(ValueError, match="divide 360"):
        LatLonGrid.from_resolution(4, 7)
    with pytest.raises(ValueError, match="even"):
        LatLonGrid(45, 20)
    with pytest.raises(ValueError, match="unknown level set"):
        standard_levels("L99")
    with pytest.raises(ValueError, match="surface"):
        HybridLevels(a=np.array([100.0, 0.0]), b=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="non-positive thickness"):
        HybridLevels(a=np.array([0.0, 0.0, 0.0]), b=np.array([1.0, 0.2, 0.0]) * [1, 6, 1])


def test_sigma_levels():
    lev = sigma_levels(4)
    np.testing.assert_allclose(lev.thickness(np.float64(1e5)), 2.5e4)


def test_great_circle():
    d = great_circle_distance(0.0, 0.0, 0.0, 90.0)
    assert d == pytest.approx(EARTH_RADIUS * math.pi / 2, rel=1e-12)
    assert great_circle_distance(90.0, 10.0, -90.0, 70.0) == pytest.approx(EARTH_RADIUS * math.pi)
    lat_r, _ = rotate_to_pole(40.0, 30.0, 40.0, 30.0)
    assert lat_r == pytest.approx(90.0)
