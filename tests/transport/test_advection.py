"""Flux-form advection: conservation, consistency, positivity, FFSL behaviour, float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import divergent_met

from diffflux.constants import M_AIR
from diffflux.grid import LatLonGrid
from diffflux.transport import PPM, PiecewiseLinear, Transport, TransportState, run
from diffflux.transport.advection import sweep_x as _sweep_x
from diffflux.transport.advection import sweep_y as _sweep_y
from diffflux.transport.advection import sweep_z as _sweep_z
from diffflux.transport.advection import vertical_mass_flux

sweep_x, sweep_y, sweep_z = jax.jit(_sweep_x), jax.jit(_sweep_y), jax.jit(_sweep_z)

RECONS = [PPM(), PiecewiseLinear("mc"), PiecewiseLinear(None)]


def _random_state(grid, rng, ntr=2, dtype=np.float64):
    ps = np.full((grid.nlat, grid.nlon), 1e5)
    m = np.asarray(grid.air_mass(ps), dtype=dtype)
    chi = rng.uniform(0.0, 1.0, (ntr,) + m.shape).astype(dtype)
    chi[1] = 400e-6  # uniform tracer
    return TransportState.from_mixing_ratio(jnp.asarray(chi), jnp.asarray(m)), ps


@pytest.mark.parametrize("recon", RECONS, ids=lambda r: repr(r))
def test_conservation_uniformity_positivity(grid3d, rng, recon):
    met, ps = divergent_met(grid3d)
    model = Transport(grid3d, advection=recon, vertical_diffusion=None)
    st0, _ = _random_state(grid3d, rng)
    st0 = model.initial_state(st0.mixing_ratio(), ps)
    st, _ = jax.jit(lambda s: run(model, met, s, dt=1800.0, nsteps=100))(st0)
    mass0 = np.asarray(st0.tracer).sum(axis=(1, 2, 3))
    mass1 = np.asarray(st.tracer).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(mass1, mass0, rtol=1e-12)
    chi = np.asarray(st.mixing_ratio())
    assert np.max(np.abs(chi[1] / 400e-6 - 1.0)) < 1e-12
    # air mass moved by the divergent flow, yet remains a consistent hybrid column
    air = np.asarray(st.air)
    assert np.max(np.abs(air / np.asarray(st0.air) - 1)) > 1e-4
    assert np.abs(air.sum() / np.asarray(st0.air).sum() - 1) < 1e-12
    if recon.is_linear:
        return
    # monotone schemes: bounded by the initial range (round-off only)
    assert chi[0].min() >= -1e-14 and chi[0].max() <= 1.0 + 1e-12


def test_air_mass_stays_hybrid(grid3d):
    """After a step the air mass is the hybrid-level distribution of the implied surface pressure."""
    met, ps = divergent_met(grid3d)
    model = Transport(grid3d, vertical_diffusion=None)
    st0 = model.initial_state(jnp.ones((1,) + grid3d.shape), ps)
    st = jax.jit(lambda s: model.step(s, met.fields(0.0), 1800.0))(st0)
    col = np.asarray(st.air).sum(0)
    ps_new = col * 9.80665 / grid3d.area + grid3d.levels.p_top
    np.testing.assert_allclose(np.asarray(st.air), np.asarray(grid3d.air_mass(ps_new)), rtol=1e-11)


def test_vertical_flux_closes_column(grid3d):
    met, _ = divergent_met(grid3d)
    f = met.fields(0.0)
    fz = vertical_mass_flux(f.mfx, f.mfy, grid3d.levels.b)
    assert fz.shape == (grid3d.nlev + 1, grid3d.nlat, grid3d.nlon)
    assert float(jnp.abs(fz[0]).max()) == 0.0 and float(jnp.abs(fz[-1]).max()) == 0.0


def _eulerian_x(q, m, F, recon):
    """Reference periodic Eulerian sweep (valid for |C| <= 1)."""
    from diffflux.transport.advection import ghost_periodic
    from diffflux.transport.reconstruction import mean_left, mean_right

    chi = q * M_AIR / m[None]
    aL, aR, a6 = recon.edges(ghost_periodic(chi, recon.halo, -1), m.shape[-1], -1)
    lft = [jnp.roll(v, 1, axis=-1) for v in (aL, aR, a6)]
    c_pos = jnp.clip(F / jnp.roll(m, 1, -1), 0, 1)
    c_neg = jnp.clip(-F / m, 0, 1)
    f = F / M_AIR * jnp.where(F > 0, mean_right(*lft, c_pos), mean_left(aL, aR, a6, c_neg))
    return q + f - jnp.roll(f, -1, -1), m + F - jnp.roll(F, -1, -1)


@pytest.mark.parametrize("recon", RECONS, ids=lambda r: repr(r))
def test_ffsl_equals_eulerian_below_one(rng, recon):
    m = jnp.asarray(rng.uniform(1.0, 2.0, (3, 5, 20)))
    q = jnp.asarray(rng.uniform(0.0, 1.0, (2, 3, 5, 20)))
    F = jnp.asarray(rng.uniform(-0.45, 0.45, (3, 5, 20)))
    q1, m1 = sweep_x(q, m, F, recon)
    q2, m2 = jax.jit(_eulerian_x)(q, m, F, recon)
    np.testing.assert_allclose(q1, q2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m1, m2, rtol=1e-14)


@pytest.mark.parametrize("shift", [1, 3, 7, -2, -11, 25])
@pytest.mark.parametrize("recon", RECONS, ids=lambda r: repr(r))
def test_ffsl_integer_courant_is_exact_shift(rng, recon, shift):
    """Uniform air mass and a zonal Courant number that is an integer k: the row shifts by k cells."""
    n = 20
    m = jnp.ones((1, 4, n))
    q = jnp.asarray(rng.uniform(0.0, 1.0, (1, 1, 4, n))) / M_AIR
    F = jnp.full((1, 4, n), float(shift))
    q1, m1 = sweep_x(q, m, F, recon)
    np.testing.assert_allclose(q1, jnp.roll(q, shift, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(m1, m)


def test_ffsl_large_courant_conserves_and_bounds(rng):
    n = 36
    m = jnp.asarray(rng.uniform(0.5, 1.5, (2, 3, n)))
    q = jnp.asarray(rng.uniform(0.0, 1.0, (1, 2, 3, n))) * m[None] / M_AIR
    F = jnp.full((2, 3, n), 7.3)  # uniform flux: non-divergent sweep, mass unchanged
    q1, m1 = sweep_x(q, m, F, PPM())
    np.testing.assert_allclose(q1.sum(-1), q.sum(-1), rtol=1e-13)
    chi1 = q1 * M_AIR / m1[None]
    assert float(chi1.min()) >= -1e-14 and float(chi1.max()) <= 1 + 1e-12


def test_meridional_and_vertical_sweeps_conserve(rng):
    m = jnp.asarray(rng.uniform(1.0, 2.0, (6, 8, 16)))
    q = jnp.asarray(rng.uniform(0.0, 1.0, (2, 6, 8, 16)))
    Fy = jnp.asarray(rng.uniform(-0.4, 0.4, (6, 9, 16))).at[:, 0].set(0).at[:, -1].set(0)
    Fz = jnp.asarray(rng.uniform(-0.4, 0.4, (7, 8, 16))).at[0].set(0).at[-1].set(0)
    for sweep, F in ((sweep_y, Fy), (sweep_z, Fz)):
        q1, m1 = sweep(q, m, F, PPM())
        np.testing.assert_allclose(q1.sum(axis=(1, 2, 3)), q.sum(axis=(1, 2, 3)), rtol=1e-13)
        np.testing.assert_allclose(m1.sum(), m.sum(), rtol=1e-13)


def test_float32_path(grid3d, rng):
    met, ps = divergent_met(grid3d, dtype=jnp.float32)
    model = Transport(grid3d, vertical_diffusion=None)
    st0 = model.initial_state(jnp.asarray(rng.uniform(0, 1, (1,) + grid3d.shape), jnp.float32),
                              jnp.asarray(ps, jnp.float32))
    assert st0.tracer.dtype == jnp.float32
    st, _ = jax.jit(lambda s: run(model, met, s, dt=1800.0, nsteps=100))(st0)
    assert st.tracer.dtype == jnp.float32
    rel = abs(float(st.tracer.astype(jnp.float64).sum()) / float(st0.tracer.astype(jnp.float64).sum()) - 1)
    assert rel < 1e-5
    assert bool(jnp.all(jnp.isfinite(st.tracer)))


def _bell_after_revolution(alpha, nlon=64, nlat=32, nsteps=128):
    import math

    from diffflux.grid import great_circle_distance
    from diffflux.met import ConstantMet, MetFields, mass_fluxes_from_streamfunction

    g = LatLonGrid(nlon, nlat)
    a = g.radius
    u0 = 2 * math.pi * a / (12 * 86400)
    lat_e = np.deg2rad(g.lat_edges)[:, None]
    lon_e = np.deg2rad(g.lon_edges[:-1])[None, :]
    psi = -a * u0 * (np.sin(lat_e) * math.cos(alpha) - np.cos(lon_e) * np.cos(lat_e) * math.sin(alpha))
    ps = np.full((g.nlat, g.nlon), 1e5)
    mfx, mfy = mass_fluxes_from_streamfunction(g, psi, g.levels.thickness(ps))
    met = ConstantMet(MetFields(ps=jnp.asarray(ps), mfx=mfx, mfy=mfy))
    r = great_circle_distance(g.lat[:, None], g.lon[None, :], 0.0, -90.0)
    h = np.where(r < a / 3, 0.5 * (1 + np.cos(np.pi * r / (a / 3))), 0.0)
    model = Transport(g, vertical_diffusion=None)
    st, _ = jax.jit(lambda s: run(model, met, s, dt=12 * 86400 / nsteps, nsteps=nsteps))(
        model.initial_state(h[None, None], ps))
    chi = np.asarray(st.mixing_ratio()[0, 0])
    return np.sqrt(np.sum(g.area * (chi - h) ** 2) / np.sum(g.area * h**2)), chi


def test_pole_crossing_no_worse_than_equatorial():
    """Solid-body rotation over the poles (Williamson case 1) is as accurate as along the equator."""
    import math

    l2_eq, _ = _bell_after_revolution(0.0)
    l2_pole, chi = _bell_after_revolution(math.pi / 2 - 0.05)
    assert l2_eq < 0.6
    assert l2_pole <= 1.5 * l2_eq
    assert chi.min() > -1e-14


@pytest.mark.parametrize("fmax", [0.45, 3.5])
def test_split_zonal_sweep_matches_ffsl(rng, fmax):
    """Eulerian mid rows + FFSL polar rows == FFSL everywhere (including the Courant >= 1 fallback)."""
    from diffflux.transport.advection import sweep_x_ffsl

    m = jnp.asarray(rng.uniform(1.0, 2.0, (3, 10, 16)))
    q = jnp.asarray(rng.uniform(0.0, 1.0, (2, 3, 10, 16)))
    F = jnp.asarray(rng.uniform(-fmax, fmax, (3, 10, 16)))
    q1, m1 = jax.jit(_sweep_x, static_argnums=4)(q, m, F, PPM(), 2)
    q2, m2 = jax.jit(sweep_x_ffsl)(q, m, F, PPM())
    np.testing.assert_allclose(q1, q2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m1, m2, rtol=1e-13)


def test_too_small_grid_is_refused():
    from diffflux.grid import LatLonGrid

    with pytest.raises(ValueError, match="needs at least 3 cells"):
        Transport(LatLonGrid(4, 2), vertical_diffusion=None)
