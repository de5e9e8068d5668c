"""Conservative regridding between rectilinear grids (diffflux.met.regrid.ConservativeRegridder)."""

import itertools

import numpy as np
import pytest

from diffflux.grid import LatLonGrid
from diffflux.met.regrid import ConservativeRegridder, RectilinearGrid, rectilinear_grid

RES = {"0.25": (0.25, 0.25), "0.5": (0.5, 0.5), "1": (1.0, 1.0), "2x2.5": (2.0, 2.5), "4x5": (4.0, 5.0)}


def _file_like(dlat, dlon):
    """A global grid as files often store it: latitudes north to south, longitudes 0..360."""
    lat = (90.0 - (np.arange(int(round(180 / dlat))) + 0.5) * dlat)
    lon = (np.arange(int(round(360 / dlon))) + 0.5) * dlon
    return rectilinear_grid(lat, lon)


def _check_totals(src, target, rng, ntime=1):
    field = rng.random((ntime,) + src.shape) * 1e-8
    rg = ConservativeRegridder.build(src, target)
    a_src = src.area(1.0)
    total_src = (src.orient(field) * a_src).sum(axis=(-2, -1))
    a_tgt = RectilinearGrid.from_model(target).area(1.0)
    dens = rg.density(field)
    assert np.all(np.abs((dens * a_tgt).sum(axis=(-2, -1)) / total_src - 1.0) <= 1e-12)
    # per-cell totals: the same numbers read as totals are redistributed, and their sum is kept
    tot = rg.totals(field)
    assert np.all(np.abs(tot.sum(axis=(-2, -1)) / field.sum(axis=(-2, -1)) - 1.0) <= 1e-12)
    assert dens.min() >= 0.0


@pytest.mark.parametrize("pair", list(itertools.permutations(RES, 2)))
def test_global_totals_preserved_between_standard_grids(pair, rng):
    src = _file_like(*RES[pair[0]])
    target = LatLonGrid.from_resolution(*RES[pair[1]])
    _check_totals(src, target, rng)


@pytest.mark.parametrize("other", ["1", "4x5"])
def test_global_totals_preserved_to_and_from_tenth_degree(other, rng):
    tenth = _file_like(0.1, 0.1)
    _check_totals(tenth, LatLonGrid.from_resolution(*RES[other]), rng)
    _check_totals(_file_like(*RES[other]), LatLonGrid.from_resolution(0.1, 0.1), rng)


def test_checkerboard_nested_and_unnested():
    fine = RectilinearGrid.regular(1.0, 1.0)
    ny, nx = fine.shape
    board = (np.add.outer(np.arange(ny), np.arange(nx)) % 2).astype(float)
    # 1 -> 2 degrees: each coarse cell holds two ones and two zeros in every row pair: exactly 0.5
    two = ConservativeRegridder.build(fine, LatLonGrid.from_resolution(2.0, 2.0)).density(board)
    assert np.allclose(two, 0.5, rtol=0, atol=1e-14)
    # and back: a constant stays constant
    back = ConservativeRegridder.build(RectilinearGrid.regular(2.0, 2.0),
                                       LatLonGrid.from_resolution(1.0, 1.0))
    assert np.allclose(back.density(two), 0.5, rtol=0, atol=1e-14)
    # 2 x 2.5 checkerboard onto 1 degree (not nested in longitude): compare with brute-force overlaps
    src = RectilinearGrid.regular(2.0, 2.5)
    sb = (np.add.outer(np.arange(src.shape[0]), np.arange(src.shape[1])) % 2).astype(float)
    tgt = LatLonGrid.from_resolution(1.0, 1.0)
    out = ConservativeRegridder.build(src, tgt).density(sb)
    lon_t = tgt.lon_edges
    expected_row = np.zeros(tgt.nlon)
    for i in range(tgt.nlon):
        for k in range(src.shape[1]):
            ov = min(lon_t[i + 1], src.lon_edges[k + 1]) - max(lon_t[i], src.lon_edges[k])
            expected_row[i] += max(ov, 0.0) * (k % 2)
    expected_row /= 1.0
    j = 37  # target row inside source row 18 (latitudes -53..-52 in -54..-52)
    assert np.allclose(out[j], expected_row, atol=1e-13)
    assert np.allclose(out[j + 2], 1.0 - expected_row, atol=1e-13)  # next source row flips the parity


def test_regional_totals_preserved(rng):
    """A box made of whole cells of both grids keeps its total."""
    src = _file_like(0.5, 0.5)
    tgt = LatLonGrid.from_resolution(4.0, 5.0)
    field = rng.random(src.shape)
    out = ConservativeRegridder.build(src, tgt).density(field)
    f = src.orient(field)
    a = src.area(1.0)
    def box(lat, lon):
        return ((lat >= 10.0) & (lat < 50.0))[:, None] & ((lon >= 100.0) & (lon < 140.0))[None]
    lon_src = (src.lon + 180.0) % 360.0 - 180.0
    total_src = (f * a)[box(src.lat, lon_src)].sum()
    a_t = RectilinearGrid.from_model(tgt).area(1.0)
    total_tgt = (out * a_t)[box(tgt.lat, tgt.lon)].sum()
    assert total_tgt == pytest.approx(total_src, rel=1e-12)


def test_regional_source_grid_and_date_line(rng):
    # an Asian inventory domain, 0.25 degree
    lat = np.arange(-10.0, 55.0, 0.25) + 0.125
    lon = np.arange(60.0, 150.0, 0.25) + 0.125
    src = rectilinear_grid(lat, lon)
    assert not src.is_global
    tgt = LatLonGrid.from_resolution(1.0, 1.0)
    field = rng.random(src.shape)
    rg = ConservativeRegridder.build(src, tgt)
    out = rg.density(field)
    a_t = RectilinearGrid.from_model(tgt).area(1.0)
    assert (out * a_t).sum() == pytest.approx((field * src.area(1.0)).sum(), rel=1e-12)
    outside = ~(((tgt.lat > -10) & (tgt.lat < 55))[:, None] & ((tgt.lon > 60) & (tgt.lon < 150))[None])
    assert np.all(out[outside] == 0.0)
    assert np.allclose(rg.coverage()[~outside], 1.0)
    # a window across the date line (170 E .. 170 W written as 170..190)
    src2 = rectilinear_grid(np.array([0.5, 1.5]), np.arange(170.5, 190.0, 1.0))
    out2 = ConservativeRegridder.build(src2, tgt).density(np.ones(src2.shape))
    assert (out2 * a_t).sum() == pytest.approx(src2.area(1.0).sum(), rel=1e-12)
    cols = np.flatnonzero(out2.sum(axis=0) > 0)
    assert set(np.round(tgt.lon[cols] % 360.0, 1)) == set(np.arange(170.5, 190.0, 1.0))


def test_grids_that_do_not_tile_raise():
    lat = np.array([-45.0, 45.0])
    lon = np.arange(0.0, 360.0, 90.0) + 45.0
    with pytest.raises(ValueError, match="do not tile: a gap"):
        rectilinear_grid(lat, lon, lat_bounds=np.array([[-90.0, 0.0], [10.0, 90.0]]))
    with pytest.raises(ValueError, match="do not tile: an overlap"):
        rectilinear_grid(lat, lon, lat_bounds=np.array([[-90.0, 10.0], [0.0, 90.0]]))
    with pytest.raises(ValueError, match="more than 360"):
        rectilinear_grid(lat, lon, lon_bounds=np.array([[0.0, 100.0], [100, 190], [190, 280], [280, 370]]))
    with pytest.raises(ValueError, match="repeats a longitude"):
        rectilinear_grid(lat, np.arange(0.0, 361.0, 90.0))
    with pytest.raises(ValueError, match="irregularly spaced"):
        rectilinear_grid(lat, np.array([10.0, 20.0, 50.0, 200.0]))
    with pytest.raises(ValueError, match="not strictly monotonic"):
        rectilinear_grid(lat, np.array([10.0, 30.0, 20.0]))
    with pytest.raises(ValueError, match="not global"):
        rectilinear_grid(np.array([0.5, 1.5]), np.array([0.5, 1.5]), require_global=True)
