"""Covariance operators: square root, symmetry, SPD, dense references, correlation lengths, 1-degree scale."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.grid import LatLonGrid, great_circle_distance
from diffflux.inversion.covariance import (
    BlockDiagonal,
    DenseCovariance,
    Diagonal,
    Kronecker,
    LandOceanCorrelation,
    Scaled,
    SpatialCorrelation,
    TemporalCorrelation,
)

GRID = LatLonGrid(nlon=12, nlat=8)  # 30 x 22.5 degrees, 96 cells
MONTH = 30.0 * 86400.0


def _dense_ref(grid, length, kind):
    la, lo = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    d = great_circle_distance(la.ravel()[:, None], lo.ravel()[:, None], la.ravel()[None], lo.ravel()[None])
    if kind == "exponential":
        return np.exp(-d / length)
    chord = 2 * grid.radius * np.sin(d / (2 * grid.radius))
    return np.exp(-0.5 * (chord / length) ** 2)


def _check_operator(op, ref=None, tol=1e-12):
    """S S^T = B, B symmetric PD, diag, inverse and transpose consistent with dense matrices."""
    b = np.asarray(op.to_dense())
    s = np.asarray(op.sqrt_to_dense())
    scale = np.abs(b).max()
    assert np.abs(s @ s.T - b).max() <= tol * scale
    assert np.abs(b - b.T).max() <= tol * scale
    assert np.linalg.eigvalsh(b).min() > 0
    np.testing.assert_allclose(np.asarray(op.diag()).reshape(-1), np.diag(b), rtol=1e-10, atol=tol * scale)
    if ref is not None:
        assert np.abs(b - ref).max() <= tol * scale
    rng = np.random.default_rng(1)
    x = rng.standard_normal(op.shape)
    st = np.asarray(op.sqrt_T_matvec(jnp.asarray(x))).reshape(-1)
    np.testing.assert_allclose(st, s.T @ x.reshape(-1), atol=tol * np.sqrt(scale) * 10)
    if op.z_shape == op.shape:  # whitening round trip S^-1 S z = z
        zz = rng.standard_normal(op.shape)
        back = np.asarray(op.inv_sqrt_matvec(op.sqrt_matvec(jnp.asarray(zz))))
        np.testing.assert_allclose(back, zz, atol=1e-7 * np.abs(zz).max())
    try:
        xi = np.asarray(op.inv_matvec(jnp.asarray(x))).reshape(-1)
    except NotImplementedError:
        return b
    np.testing.assert_allclose(b @ xi, x.reshape(-1), atol=1e-8 * np.abs(x).max())
    return b


@pytest.mark.parametrize("kind", ["exponential", "gaussian"])
def test_spatial_matches_dense_reference(kind):
    ref = _dense_ref(GRID, 2000e3, kind)
    c = SpatialCorrelation(GRID, 2000e3, kind)
    _check_operator(c, ref, tol=1e-12)
    # symmetric square root
    s = np.asarray(c.sqrt_to_dense())
    assert np.abs(s - s.T).max() < 1e-12
    # odd number of latitudes (no equatorial-reflection split of the eigenproblems)
    odd = LatLonGrid(nlon=10, nlat=7)
    _check_operator(SpatialCorrelation(odd, 2500e3, kind), _dense_ref(odd, 2500e3, kind), tol=1e-12)


def test_spatial_correlation_length_is_honoured():
    # exponential: correlation e^-1 at the great-circle distance L, measured on a 4-degree grid
    grid = LatLonGrid(nlon=90, nlat=45)
    length = 1000e3
    e = jnp.zeros(grid.shape[1:]).at[22, 0].set(1.0)  # the equatorial row
    d = great_circle_distance(grid.lat[22], grid.lon[0], grid.lat, grid.lon[:, None]).T  # (nlat, nlon)
    c = SpatialCorrelation(grid, length)
    col = np.asarray(jax.jit(lambda o, v: o.matvec(v))(c, e))  # correlation of every cell with (22, 0)
    np.testing.assert_allclose(col, np.exp(-d / length), atol=1e-10)
    # distance where the correlation along the row crosses e^-1 (log-linear interpolation): L within 1 %
    row = col[22, : grid.nlon // 2]
    k = int(np.argmax(row < np.exp(-1.0)))
    lr = np.log(row)
    d_e = d[22, k - 1] + (lr[k - 1] + 1.0) / (lr[k - 1] - lr[k]) * (d[22, k] - d[22, k - 1])
    assert abs(d_e / length - 1) < 0.01
    # Gaussian: e^-1/2 at L (in chordal distance)
    g = SpatialCorrelation(grid, length, "gaussian")
    colg = np.asarray(jax.jit(lambda o, v: o.matvec(v))(g, e))
    chord = 2 * grid.radius * np.sin(d / (2 * grid.radius))
    np.testing.assert_allclose(colg, np.exp(-0.5 * (chord / length) ** 2), atol=1e-10)


def test_temporal_kronecker_scaled_blockdiag_dense():
    t = (np.arange(4) + 0.5) * MONTH
    tc = TemporalCorrelation(t, 2 * MONTH)
    grid = LatLonGrid(nlon=8, nlat=6)
    ref_t = np.exp(-np.abs(t[:, None] - t[None]) / (2 * MONTH))
    _check_operator(tc, ref_t)
    sp = SpatialCorrelation(grid, 1500e3)
    kr = Kronecker(tc, sp)
    assert kr.shape == (4, 6, 8)
    ref_k = np.kron(ref_t, _dense_ref(grid, 1500e3, "exponential"))
    _check_operator(kr, ref_k, tol=1e-11)
    sig = 1e-8 * (1 + np.random.default_rng(2).random((4, 6, 8)))  # mol m-2 s-1
    sc = Scaled(sig, kr)
    bs = _check_operator(sc, sig.reshape(-1)[:, None] * ref_k * sig.reshape(-1)[None], tol=1e-11)
    assert bs.shape == (192, 192)
    bd = BlockDiagonal(
        {"nee": sc, "pmax": Diagonal(np.array([0.2, 0.3])), "ic": DenseCovariance([[2.0, 1.0], [1.0, 2.0]])}
    )
    b = np.asarray(bd.to_dense())
    s = np.asarray(bd.sqrt_to_dense())
    assert b.shape == (196, 196)
    assert np.abs(s @ s.T - b).max() < 1e-12 * np.abs(b).max()
    assert np.allclose(b[192:194, 192:194], np.diag([0.04, 0.09]))
    x = {"nee": jnp.ones((4, 6, 8)), "pmax": jnp.ones(2), "ic": jnp.ones(2)}
    np.testing.assert_allclose(np.asarray(bd.flatten(bd.matvec(x))), b @ np.ones(196), rtol=1e-12)
    with pytest.raises(ValueError, match="expected blocks"):
        bd.matvec({"nee": x["nee"]})


def test_land_ocean_blend_is_spd_correlation():
    rng = np.random.default_rng(3)
    f = rng.random((GRID.nlat, GRID.nlon))
    f[0] = 0.0  # pure ocean row
    f[-1] = 1.0  # pure land row
    lo = LandOceanCorrelation(GRID, 1000e3, 3000e3, land_fraction=f)
    assert lo.z_shape == (2, 8, 12)
    wl, wo = np.sqrt(f.reshape(-1)), np.sqrt(1 - f.reshape(-1))
    ref = (
        wl[:, None] * _dense_ref(GRID, 1000e3, "exponential") * wl[None]
        + wo[:, None] * _dense_ref(GRID, 3000e3, "exponential") * wo[None]
    )
    b = _check_operator(lo, ref)
    np.testing.assert_allclose(np.diag(b), 1.0, atol=1e-12)  # a correlation matrix
    # pure ocean and pure land cells are uncorrelated; ocean cells use the ocean length
    assert np.abs(b[:12, -12:]).max() < 1e-14
    np.testing.assert_allclose(b[:12, :12], _dense_ref(GRID, 3000e3, "exponential")[:12, :12], atol=1e-12)
    with pytest.raises(NotImplementedError):
        lo.inv_matvec(jnp.ones((8, 12)))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="not positive definite"):
        DenseCovariance([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="not symmetric"):
        DenseCovariance([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        Diagonal([1.0, 0.0])
    with pytest.raises(ValueError, match="length must be"):
        SpatialCorrelation(GRID, -5.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        TemporalCorrelation([0.0, 1.0], 1.0, kind="spherical")
    with pytest.raises(ValueError, match="land_fraction must have shape"):
        LandOceanCorrelation(GRID, 1e6, 2e6, land_fraction=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="expected x of shape"):
        SpatialCorrelation(GRID, 1e6).matvec(jnp.ones((8, 11)))


def test_one_degree_twelve_months_matrix_free():
    """64800 cells x 12 months: build + apply B^1/2 without dense matrices (a dense B would be 4.8 TB)."""
    grid = LatLonGrid.from_resolution(1, 1)
    t0 = time.perf_counter()
    sp = SpatialCorrelation(grid, 500e3)
    build = time.perf_counter() - t0
    nbytes = sum(a.nbytes for a in jax.tree.leaves(sp))
    assert nbytes < 100e6  # (nlon/2+1) nlat^2 floats, not (nlat nlon)^2
    op = Scaled(0.5, Kronecker(TemporalCorrelation((np.arange(12) + 0.5) * MONTH, 2 * MONTH), sp))
    z = jax.random.normal(jax.random.key(0), op.z_shape)
    f = jax.jit(lambda o, v: o.sqrt_matvec(v))
    x = f(op, z).block_until_ready()
    t0 = time.perf_counter()
    x = f(op, z).block_until_ready()
    apply_s = time.perf_counter() - t0
    assert x.shape == (12, 180, 360) and bool(jnp.all(jnp.isfinite(x)))
    # S = S^T here (symmetric factors, uniform sigma): <S z, z'> = <z, S^T z'>
    z2 = jax.random.normal(jax.random.key(1), op.z_shape)
    lhs, rhs = jnp.vdot(x, z2), jnp.vdot(z, jax.jit(lambda o, v: o.sqrt_T_matvec(v))(op, z2))
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    # the variance implied by the operator is sigma^2 everywhere
    np.testing.assert_allclose(np.asarray(jax.jit(lambda o: o.diag())(op)), 0.25, rtol=1e-10)
    # wall times are printed, not asserted (the CI machine is shared); the memory bound above is the guarantee
    print(
        f"1-degree spatial build {build:.2f} s, {nbytes / 1e6:.0f} MB; 12-month B^1/2 apply {apply_s:.3f} s"
    )
