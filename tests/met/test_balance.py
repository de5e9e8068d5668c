"""Mass-flux balancing: exact column budget, minimal (potential) correction, NumPy/JAX agreement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid, standard_levels
from diffflux.met import mass_fluxes_from_streamfunction, mass_fluxes_from_winds
from diffflux.met.balance import (
    PoissonOperator,
    balance_mass_fluxes,
    balance_mass_fluxes_jax,
    balanced_met,
    column_divergence,
    fix_global_mass,
    mass_fluxes_from_winds_np,
)

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def setup(rng):
    grid = LatLonGrid(32, 16, standard_levels("L10"))
    shape = (grid.nlev, grid.nlat, grid.nlon)
    u = 10.0 * rng.standard_normal(shape)
    v = 10.0 * rng.standard_normal(shape)
    ps = 1.0e5 + 300.0 * rng.standard_normal((grid.nlat, grid.nlon))
    mfx, mfy = mass_fluxes_from_winds_np(grid, u, v, ps)
    tend = rng.standard_normal((grid.nlat, grid.nlon)) * grid.area * 1e-3 / GRAVITY
    tend -= grid.area * tend.sum() / grid.area.sum()
    return grid, u, v, ps, mfx, mfy, tend


def test_numpy_winds_match_core(setup):
    grid, u, v, ps, mfx, mfy, _ = setup
    jx, jy = mass_fluxes_from_winds(grid, u, v, ps)
    assert np.allclose(mfx, jx, rtol=1e-14, atol=0)
    assert np.allclose(mfy, jy, rtol=1e-14, atol=1e-30)


def test_column_budget_is_exact(setup):
    grid, _, _, ps, mfx, mfy, tend = setup
    bx, by = balance_mass_fluxes(grid, mfx, mfy, tend, ps)
    div = column_divergence(bx, by)
    assert np.max(np.abs(div + tend)) < 1e-13 * np.abs(column_divergence(mfx, mfy)).max()
    assert np.all(by[:, 0] == 0) and np.all(by[:, -1] == 0)


def test_correction_is_a_potential_flow(setup):
    """dF_col = W G^T chi is orthogonal (in the W^-1 inner product) to every non-divergent flux."""
    grid, _, _, ps, mfx, mfy, tend = setup
    bx, by = balance_mass_fluxes(grid, mfx, mfy, tend, ps)
    dfx = (bx - mfx).sum(axis=0)
    dfy = (by - mfy).sum(axis=0)
    op = PoissonOperator.for_grid(grid)
    rng = np.random.default_rng(7)
    psi = rng.standard_normal((grid.nlat + 1, grid.nlon))
    psi[0], psi[-1] = psi[0, 0], psi[-1, 0]  # constant along the pole rows
    sx, sy = mass_fluxes_from_streamfunction(grid, psi, np.ones((1, grid.nlat, grid.nlon)))
    sx, sy = np.asarray(sx)[0], np.asarray(sy)[0]
    assert np.abs(column_divergence(sx[None], sy[None])).max() < 1e-12 * np.abs(sx).max()
    inner = (dfx * sx / op.wx[:, None]).sum() + (dfy[1:-1] * sy[1:-1] / op.wy[1:-1, None]).sum()
    norm = np.sqrt((dfx**2 / op.wx[:, None]).sum() * (sx**2 / op.wx[:, None]).sum())
    assert abs(inner) < 1e-12 * norm
    # ... and already consistent fluxes are left alone
    cx, cy = balance_mass_fluxes(grid, bx, by, tend, ps)
    assert np.max(np.abs(cx - bx)) < 1e-13 * np.abs(bx).max()
    assert np.max(np.abs(cy - by)) < 1e-13 * np.abs(by).max()


def test_layers_share_by_thickness(setup):
    grid, _, _, ps, mfx, mfy, tend = setup
    bx, _ = balance_mass_fluxes(grid, mfx, mfy, tend, ps)
    d = bx - mfx
    dp = np.asarray(grid.levels.thickness(ps))
    dpx = 0.5 * (dp + np.roll(dp, 1, axis=-1))
    ratio = d / dpx
    assert np.allclose(ratio, ratio[:1], rtol=1e-10, atol=1e-12 * np.abs(ratio).max())


def test_jax_matches_numpy_and_differentiates(setup):
    grid, _, _, ps, mfx, mfy, tend = setup
    bx, by = balance_mass_fluxes(grid, mfx, mfy, tend, ps, refine=0)
    f = jax.jit(lambda a, b, c, d: balance_mass_fluxes_jax(grid, a, b, c, d))
    jx, jy = f(jnp.asarray(mfx), jnp.asarray(mfy), jnp.asarray(tend), jnp.asarray(ps))
    assert np.max(np.abs(np.asarray(jx) - bx)) < 1e-12 * np.abs(bx).max()
    assert np.max(np.abs(np.asarray(jy) - by)) < 1e-12 * np.abs(by).max()

    def total(scale):
        x, y = balance_mass_fluxes_jax(grid, scale * jnp.asarray(mfx), jnp.asarray(mfy),
                                       jnp.asarray(tend), jnp.asarray(ps))
        return jnp.sum(x**2) + jnp.sum(y**2)

    g = jax.jit(jax.grad(total))(1.0)
    tj = jax.jit(total)
    fd = (tj(1.0 + 1e-6) - tj(1.0 - 1e-6)) / 2e-6
    assert float(g) == pytest.approx(float(fd), rel=1e-6)


def test_float32_balancing(setup):
    grid, _, _, ps, mfx, mfy, tend = setup
    f32 = jnp.float32
    f = jax.jit(lambda a, b, c, d: balance_mass_fluxes_jax(grid, a, b, c, d))
    jx, jy = f(jnp.asarray(mfx, f32), jnp.asarray(mfy, f32), jnp.asarray(tend, f32),
               jnp.asarray(ps, f32))
    assert jx.dtype == f32
    div = np.asarray(column_divergence(jx, jy), dtype=np.float64)
    assert np.max(np.abs(div + tend)) < 1e-4 * np.abs(column_divergence(mfx, mfy)).max()


def test_global_imbalance_is_refused(setup):
    grid, _, _, ps, mfx, mfy, tend = setup
    with pytest.raises(ValueError, match="does not sum to zero.*fix_global_mass"):
        balance_mass_fluxes(grid, mfx, mfy, tend + grid.area, ps)


def test_fix_global_mass(rng):
    grid = LatLonGrid(16, 8)
    ps = 1.0e5 + 100.0 * rng.standard_normal((3, 8, 16))
    fixed, off = fix_global_mass(grid, ps)
    gm = (fixed * grid.area).sum(axis=(1, 2))
    assert np.allclose(gm, gm[0], rtol=1e-15)
    assert off[0] == 0.0 and np.allclose(fixed - ps, off[:, None, None])


def test_balanced_met_time_structure(setup):
    grid, u, v, ps, *_ = setup
    times = np.array([0.0, 3600.0, 10800.0])
    ps3 = np.stack([ps, ps + 50.0 * np.sin(np.deg2rad(grid.lat))[:, None], ps])
    fx, fy = mass_fluxes_from_winds_np(grid, np.stack([u] * 3), np.stack([v, -v, v]), ps3)
    met, rep = balanced_met(grid, times, ps3, fx, fy)
    assert met.stack.mfx.shape[0] == 2 and met.stack.ps.shape[0] == 3
    assert rep.residual_after < 1e-12
    f_a, f_b = met.fields(4000.0), met.fields(10000.0)
    assert np.array_equal(f_a.mfx, f_b.mfx)  # piecewise constant within an interval
    assert np.allclose(met.fields(7200.0).ps, 0.5 * (ps3[1] + ps3[2]), rtol=1e-14)
    assert np.array_equal(met.fields(-5.0).mfx, met.stack.mfx[0])  # clamped
    # the interval flux drives the column mass exactly from record 1 to record 2
    div = np.asarray(column_divergence(f_a.mfx, f_a.mfy))
    dm = grid.area / GRAVITY * (ps3[2] - ps3[1])
    assert np.allclose(-div * 7200.0, dm, rtol=0, atol=1e-12 * np.abs(dm).max())


def test_check_steps(setup):
    grid, u, v, ps, *_ = setup
    times = np.array([0.0, 21600.0, 43200.0])
    fx, fy = mass_fluxes_from_winds_np(grid, np.stack([u] * 3), np.stack([v] * 3),
                                       np.stack([ps] * 3))
    met, _ = balanced_met(grid, times, np.stack([ps] * 3), fx, fy)
    met.check_steps(dt=1800.0, nsteps=24)
    met.check_steps(dt=3600.0, nsteps=6, t0=21600.0)
    with pytest.raises(ValueError, match="not a step boundary of dt=2500"):
        met.check_steps(dt=2500.0, nsteps=10)
    with pytest.raises(ValueError, match="leaves the met record"):
        met.check_steps(dt=3600.0, nsteps=13)
