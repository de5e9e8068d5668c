"""Horizontal regridding (conservative, bilinear) and log-pressure vertical interpolation."""

import numpy as np
import pytest

from diffflux.grid import LatLonGrid
from diffflux.met.regrid import (
    HorizontalRegridder,
    interpolate_log_pressure,
    regrid_bilinear,
    regrid_conservative,
    source_grid,
)


def _era_like(ny=15, nx=30):
    """Pole-centred rows (90 .. -90, north to south), longitudes 0 .. 360 - dx."""
    return np.linspace(90.0, -90.0, ny), np.arange(nx) * 360.0 / nx


@pytest.mark.parametrize("target", [(24, 12), (48, 24), (8, 4)])
@pytest.mark.parametrize("source", ["era", "offset"])
def test_conservative_preserves_global_integral(target, source, rng):
    grid = LatLonGrid(*target)
    if source == "era":
        lat, lon = _era_like()
    else:  # a regular grid with its own offset, not nested in the target
        lat = -90.0 + (np.arange(14) + 0.5) * 180.0 / 14
        lon = 3.7 + np.arange(22) * 360.0 / 22
    src = source_grid(lat, lon)
    field = rng.random((2, lat.size, lon.size)) * 1.0e5
    out = HorizontalRegridder.build(src, grid).conservative(field)
    a_src = src.area(grid.radius)
    total_src = (src.orient(field) * a_src).sum(axis=(-2, -1))
    total = (out * grid.area).sum(axis=(-2, -1))
    assert np.all(np.abs(total / total_src - 1.0) < 1e-12)
    assert a_src.sum() == pytest.approx(4.0 * np.pi * grid.radius**2, rel=1e-14)


def test_conservative_constant_and_identity(rng):
    grid = LatLonGrid(24, 12)
    lat, lon = _era_like()
    out = regrid_conservative(np.full((lat.size, lon.size), 7.0), lat, lon, grid)
    assert np.allclose(out, 7.0, rtol=1e-14)
    # the model grid itself, written north to south with 0..360 longitudes, is copied exactly
    order = np.argsort(grid.lon % 360.0)
    field = rng.random((grid.nlat, grid.nlon))
    in_file = field[::-1][:, order]
    src = source_grid(grid.lat[::-1], (grid.lon % 360.0)[order])
    rg = HorizontalRegridder.build(src, grid)
    assert rg.identity
    assert np.array_equal(rg.conservative(in_file), field)
    assert np.array_equal(rg.bilinear(in_file), field)


def test_conservative_nested_averages():
    """A 2x finer nested grid averages exactly onto the coarse cells (area weights)."""
    coarse, fine = LatLonGrid(12, 6), LatLonGrid(24, 12)
    f = np.arange(fine.nlat * fine.nlon, dtype=float).reshape(fine.nlat, fine.nlon)
    out = regrid_conservative(f, fine.lat, fine.lon, coarse)
    a = fine.area
    blocks = (6, 2, 12, 2)
    expected = (f * a).reshape(blocks).sum(axis=(1, 3)) / a.reshape(blocks).sum(axis=(1, 3))
    assert np.allclose(out, expected, rtol=1e-13)


def test_bilinear_reproduces_linear_fields():
    grid = LatLonGrid(36, 18)
    lat = -85.0 + 10.0 * np.arange(18)
    lon = np.arange(24) * 15.0
    # linear in latitude: exact between source rows, constant beyond the outermost rows
    f = np.broadcast_to(2.0 * lat[:, None] + 1.0, (18, 24))
    out = regrid_bilinear(f, lat, lon, grid)
    inside = np.abs(grid.lat) <= 85.0
    assert np.allclose(out[inside], 2.0 * grid.lat[inside, None] + 1.0, rtol=1e-13)
    assert np.allclose(out[~inside], np.where(grid.lat[~inside] > 0, 171.0, -169.0)[:, None])
    # cos(lon) is interpolated periodically across the 0/360 seam with second-order error
    g = np.broadcast_to(np.cos(np.deg2rad(lon))[None], (18, 24))
    err = np.abs(regrid_bilinear(g, lat, lon, grid) - np.cos(np.deg2rad(grid.lon))[None]).max()
    assert err < (np.deg2rad(15.0) ** 2) / 8 * 1.01


def test_lat_bounds_half_polar_cells():
    """GEOS-Chem-like 4 x 5 grid with half-size polar cells, read through CF bounds."""
    lat = np.concatenate([[-89.0], np.arange(-86.0, 87.0, 4.0), [89.0]])
    edges = np.concatenate([[-90.0], np.arange(-88.0, 89.0, 4.0), [90.0]])
    bounds = np.stack([edges[:-1], edges[1:]], axis=1)
    lon = -180.0 + 5.0 * np.arange(72)
    src = source_grid(lat, lon, lat_bounds=bounds)
    assert np.allclose(src.lat_edges, edges)
    grid = LatLonGrid(72, 45)
    f = np.random.default_rng(0).random((lat.size, lon.size))
    out = HorizontalRegridder.build(src, grid).conservative(f)
    assert (out * grid.area).sum() == pytest.approx((f * src.area(grid.radius)).sum(), rel=1e-12)


def test_source_grid_errors():
    lat, lon = _era_like()
    with pytest.raises(ValueError, match="does not cover the globe.*lat"):
        source_grid(np.linspace(-60.0, 60.0, 13), lon, where="file x.nc")
    with pytest.raises(ValueError, match="x.nc: grid does not cover the globe: coordinate 'lon'"):
        source_grid(lat, np.arange(10) * 12.0, where="file x.nc")
    with pytest.raises(ValueError, match="'lat' is not strictly monotonic.*index 2"):
        source_grid(np.array([-80.0, -40.0, 0.0, -10.0, 40.0, 80.0]), lon)
    with pytest.raises(ValueError, match=r"must lie in \[-90, 90\]"):
        source_grid(np.linspace(-95.0, 95.0, 20), lon)
    with pytest.raises(ValueError, match="repeats a longitude"):
        source_grid(lat, np.arange(31) * 12.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        source_grid(np.zeros((3, 3)), lon)


def test_interpolate_log_pressure():
    p_src = np.array([100e2, 1000e2, 500e2, 10e2, 850e2])  # any order
    vals = 3.0 + 2.0 * np.log(p_src)
    rng = np.random.default_rng(1)
    p_tgt = rng.uniform(20e2, 990e2, size=(4, 3, 5))
    out, n_out = interpolate_log_pressure(vals[:, None, None] + 0 * p_tgt[:1], p_src, p_tgt)
    assert n_out == 0
    assert np.allclose(out, 3.0 + 2.0 * np.log(p_tgt), rtol=1e-13)
    # column-varying source pressures (hybrid levels) and points outside the range
    ps = np.array([[1.0e5, 0.9e5]])
    p_col = np.array([0.2, 0.5, 0.9])[:, None, None] * ps[None]
    v_col = np.log(p_col)
    tgt = np.array([0.1, 0.3, 0.95])[:, None, None] * ps[None]
    out, n_out = interpolate_log_pressure(v_col, p_col, tgt)
    assert n_out == 4  # levels 0.1 ps and 0.95 ps in both columns
    assert np.allclose(out[1], np.log(tgt[1]), rtol=1e-14)
    assert np.allclose(out[0], np.log(p_col[0])) and np.allclose(out[2], np.log(p_col[2]))
