"""Implicit vertical diffusion and explicit horizontal diffusion."""

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid, standard_levels
from diffflux.met import MetFields
from diffflux.transport import HorizontalDiffusion, ImplicitVerticalDiffusion, Transport
from diffflux.transport.diffusion import thomas_solve


def test_thomas_matches_dense(rng):
    n = 7
    lo = rng.uniform(-1, 0, n)
    up = rng.uniform(-1, 0, n)
    d = 3 + rng.uniform(0, 1, n)
    b = rng.standard_normal((2, n, 3))
    x = thomas_solve(jnp.asarray(lo[:, None]), jnp.asarray(d[:, None]), jnp.asarray(up[:, None]),
                     jnp.asarray(b))
    A = np.diag(d) + np.diag(lo[1:], -1) + np.diag(up[:-1], 1)
    ref = np.stack([np.linalg.solve(A, b[k]) for k in range(2)])
    np.testing.assert_allclose(x, ref, rtol=1e-12)


def _column_model():
    g = LatLonGrid(8, 6, standard_levels("L25"))
    ps = jnp.full((g.nlat, g.nlon), 1e5)
    zeros_x = jnp.zeros(g.shape)
    zeros_y = jnp.zeros((g.nlev, g.nlat + 1, g.nlon))
    met = MetFields(ps=ps, mfx=zeros_x, mfy=zeros_y, temperature=jnp.full(g.shape, 260.0),
                    kz=jnp.full((g.nlev + 1, g.nlat, g.nlon), 50.0))
    return g, Transport(g, vertical_diffusion=ImplicitVerticalDiffusion()), met


def test_vertical_diffusion_conserves_and_mixes(rng):
    g, model, met = _column_model()
    chi = jnp.asarray(rng.uniform(0, 1, (2,) + g.shape)).at[1].set(3.0)
    st = model.initial_state(chi, met.ps)
    step = jax.jit(lambda s: model.step(s, met, 3600.0))
    st1 = st
    for _ in range(50):
        st1 = step(st1)
    np.testing.assert_allclose(st1.tracer.sum(axis=1), st.tracer.sum(axis=1), rtol=1e-13)
    c = np.asarray(st1.mixing_ratio())
    assert np.abs(c[1] / 3 - 1).max() < 1e-13  # uniform stays uniform
    # the lowest ~2 km (mixing time H^2/Kz ~ 1 day) is well mixed after 50 h; the stratosphere is not
    assert c[0, :5].std(axis=0).max() < np.asarray(chi[0, :5]).std(axis=0).max() * 0.2


def test_vertical_diffusion_discrete_mode_decay():
    """A generalised eigenvector of the diffusion operator decays by 1/(1 + dt lambda) per step."""
    g, model, met = _column_model()
    st = model.initial_state(jnp.ones((1,) + g.shape), met.ps)
    m = st.air
    p_int = model._pressure_interfaces(m)
    E = model.vertical_diffusion.exchange(m, met.kz, met.temperature, p_int,
                                          jnp.asarray(g.area))
    mc, Ec = np.asarray(m[:, 0, 0]), np.asarray(E[:, 0, 0])
    n = g.nlev
    K = np.zeros((n, n))
    for k in range(n):
        K[k, k] = Ec[k] + Ec[k + 1]
        if k + 1 < n:
            K[k, k + 1] = K[k + 1, k] = -Ec[k + 1]
    # K v = lambda M v  ->  symmetric form
    Mh = np.diag(mc**-0.5)
    lam, w = np.linalg.eigh(Mh @ K @ Mh)
    v = Mh @ w[:, 3]
    dt = 1800.0
    chi = np.broadcast_to(v[:, None, None], g.shape)[None]
    st = st.__class__(tracer=jnp.asarray(chi) * m[None], air=m)  # amplitude scale irrelevant
    st1 = jax.jit(lambda s: model.step(s, met, dt))(st)
    ratio = np.asarray(st1.tracer[0, :, 0, 0]) / np.asarray(st.tracer[0, :, 0, 0])
    np.testing.assert_allclose(ratio, 1.0 / (1.0 + dt * lam[3]), rtol=1e-9)


def test_horizontal_diffusion_conserves(rng):
    g = LatLonGrid(36, 18)
    ps = jnp.full((g.nlat, g.nlon), 1e5)
    m = g.air_mass(ps)
    q = jnp.asarray(rng.uniform(0, 1, (1,) + g.shape)) * m[None]
    dp = m * 9.80665 / jnp.asarray(g.area)[None]
    hd = HorizontalDiffusion()
    q1 = jax.jit(lambda q: hd(q, m, 1e6, dp, g, 3600.0))(q)
    np.testing.assert_allclose(q1.sum(), q.sum(), rtol=1e-13)
    assert float(q1.min()) >= 0.0
    u = jnp.ones_like(q) * m[None]
    np.testing.assert_allclose(hd(u, m, 1e6, dp, g, 3600.0), u, rtol=1e-13)


def test_vertical_diffusion_float32_conserves_over_many_steps(rng):
    """Flux-form application keeps float32 column totals to round-off over 2000 steps of strong mixing
    (applying the solved mixing ratios directly drifted by ~1e-4 here)."""
    nlev, ny, nx = 25, 6, 8
    m = jnp.asarray(rng.uniform(1e3, 5e3, (nlev, ny, nx)), jnp.float32)
    E = jnp.asarray(rng.uniform(0.5, 20.0, (nlev + 1, ny, nx)), jnp.float32).at[0].set(0).at[-1].set(0)
    q = jnp.asarray(rng.uniform(0.1, 1.0, (2, nlev, ny, nx)), jnp.float32)
    diff = ImplicitVerticalDiffusion()
    final = jax.jit(lambda q: jax.lax.fori_loop(0, 2000, lambda _, x: diff(x, m, E, 3600.0), q))(q)
    before = np.asarray(q, np.float64).sum(axis=(1, 2, 3))
    after = np.asarray(final, np.float64).sum(axis=(1, 2, 3))
    assert np.max(np.abs(after / before - 1.0)) < 2e-6
    chi = np.asarray(final) / np.asarray(m)[None]
    assert np.max(np.ptp(chi, axis=1)) < 1e-3 * np.max(chi)  # columns well mixed
