"""Tests of the convective mass-flux scheme (transport/convection.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import M_AIR
from diffflux.transport.convection import (
    ConvectiveMassFlux,
    convective_courant,
    convective_substeps,
)

jax.config.update("jax_enable_x64", True)

NLEV, NLAT, NLON = 8, 3, 4
# updraft mass flux at interfaces: entrains in levels 0-2, detrains in levels 3-5, zero above
PROFILE = np.array([0.0, 40.0, 70.0, 90.0, 60.0, 20.0, 0.0, 0.0, 0.0])
ENTRAINING = [0, 1, 2]
DETRAINING = [3, 4, 5]
ABOVE_TOP = [6, 7]


def _setup(dtype=np.float64, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.uniform(800.0, 1200.0, (NLEV, NLAT, NLON)).astype(dtype)
    amp = rng.uniform(0.5, 1.0, (1, NLAT, NLON))
    mu = (scale * PROFILE[:, None, None] * amp).astype(dtype)
    q = rng.uniform(0.1, 2.0, (2, NLEV, NLAT, NLON)).astype(dtype)
    return jnp.asarray(q), jnp.asarray(m), jnp.asarray(mu)


def _reference_step(q, m, mu, dt):
    """Straightforward per-column NumPy implementation of the same Tiedtke-type scheme."""
    q = np.array(q, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    out = q.copy()
    ntr, nlev, nlat, nlon = q.shape
    for t in range(ntr):
        for j in range(nlat):
            for i in range(nlon):
                chi = q[t, :, j, i] * M_AIR / m[:, j, i]
                M = mu[:, j, i]
                chi_u = np.zeros(nlev + 1)
                chi_u[0] = chi[0]
                for k in range(nlev):
                    ent = max(M[k + 1] - M[k], 0.0)
                    det = max(M[k] - M[k + 1], 0.0)
                    if M[k + 1] > 0:
                        chi_u[k + 1] = ((M[k] - det) * chi_u[k] + ent * chi[k]) / M[k + 1]
                    else:
                        chi_u[k + 1] = chi[k]
                for k in range(nlev):
                    ent = max(M[k + 1] - M[k], 0.0)
                    det = max(M[k] - M[k + 1], 0.0)
                    subs_in = M[k + 1] * chi[k + 1] if k + 1 < nlev else 0.0
                    dchi = det * chi_u[k] - ent * chi[k] + subs_in - M[k] * chi[k]
                    out[t, k, j, i] = q[t, k, j, i] + dt * dchi / M_AIR
    return out


def test_matches_reference_implementation():
    q, m, mu = _setup()
    dt = 5.0
    assert float(convective_courant(mu, m, dt)) < 1.0
    got = np.asarray(ConvectiveMassFlux()(q, m, mu, dt))
    ref = _reference_step(q, m, mu, dt)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    assert np.abs(got - np.asarray(q)).max() > 1e-3  # the step does something


def test_conserves_tracer_mass_to_round_off():
    q, m, mu = _setup()
    scheme = jax.jit(ConvectiveMassFlux(substeps=3))
    q0 = float(jnp.sum(q))
    for _ in range(200):
        q = scheme(q, m, mu, 20.0)
    per_tracer0 = np.asarray(_setup()[0].sum(axis=(1, 2, 3)))
    per_tracer = np.asarray(q.sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(per_tracer, per_tracer0, rtol=1e-13, atol=0)
    # column totals too (convection never moves tracer between columns)
    col0 = np.asarray(_setup()[0].sum(axis=1))
    np.testing.assert_allclose(np.asarray(q.sum(axis=1)), col0, rtol=1e-13, atol=0)
    assert abs(float(jnp.sum(q)) - q0) <= 1e-13 * q0


def test_uniform_mixing_ratio_stays_uniform():
    _, m, mu = _setup()
    chi = 3.7e-4
    q = jnp.broadcast_to(chi * m[None] / M_AIR, (2,) + m.shape)
    scheme = jax.jit(ConvectiveMassFlux(substeps=4))
    for _ in range(50):
        q = scheme(q, m, mu, 25.0)
    chi_out = np.asarray(q * M_AIR / m[None])
    assert np.abs(chi_out / chi - 1.0).max() <= 1e-13


def test_positive_and_monotone_under_the_limit():
    q, m, mu = _setup(seed=3)
    # largest dt allowed by the limit
    dt = 0.999 / float(convective_courant(mu, m, 1.0))
    chi0 = np.asarray(q * M_AIR / m[None])
    scheme = jax.jit(ConvectiveMassFlux())
    qs = jnp.zeros_like(q).at[:, 0].set(q[:, 0])  # only a surface source: zeros elsewhere
    for _ in range(30):
        q = scheme(q, m, mu, dt)
        qs = scheme(qs, m, mu, dt)
    chi = np.asarray(q * M_AIR / m[None])
    tol = 1e-13 * chi0.max()
    # discrete maximum principle per column: no new extrema
    assert np.all(chi.min(axis=1) >= chi0.min(axis=1) - tol)
    assert np.all(chi.max(axis=1) <= chi0.max(axis=1) + tol)
    assert float(qs.min()) >= -1e-13 * float(qs.max())


def test_unstable_step_raises_and_substeps_fix_it():
    q, m, mu = _setup()
    c1 = float(convective_courant(mu, m, 1.0))
    dt = 3.5 / c1
    with pytest.raises((RuntimeError, ValueError), match="convective Courant"):
        jax.block_until_ready(jax.jit(ConvectiveMassFlux())(q, m, mu, dt))
    n = convective_substeps(mu, m, dt)
    assert n == 4
    out = jax.jit(ConvectiveMassFlux(substeps=n))(q, m, mu, dt)
    assert float(out.min()) > 0.0
    # without the check an unstable step silently overshoots: that is why the check exists
    bad = ConvectiveMassFlux(check=False)(q, m, mu, 3.0 * dt)
    assert float(bad.min()) < 0.0
    with pytest.raises(ValueError, match="substeps"):
        ConvectiveMassFlux(substeps=0)


def test_surface_tracer_is_lifted_to_detrainment_levels():
    _, m, mu = _setup()
    q = jnp.zeros((1, NLEV, NLAT, NLON)).at[0, 0].set(1.0)
    dt = 0.9 / float(convective_courant(mu, m, 1.0))
    q1 = np.asarray(ConvectiveMassFlux()(q, m, mu, dt))[0]
    # one step: the updraft carries surface air straight to the detrainment levels; the entraining
    # levels above the surface and the levels above cloud top receive nothing (subsidence only
    # brings down clean air)
    for k in DETRAINING:
        assert np.all(q1[k] > 1e-3), k
    for k in ENTRAINING[1:] + ABOVE_TOP:
        assert np.abs(q1[k]).max() <= 1e-15, k  # zero up to round-off
    assert q1[DETRAINING].sum() > 0.05 * q1.sum()
    # after many steps the column tends to a uniform mixing ratio up to cloud top
    qn = q
    scheme = jax.jit(ConvectiveMassFlux())
    for _ in range(400):
        qn = scheme(qn, m, mu, dt)
    chi = np.asarray(qn[0] * M_AIR / m)
    cloud = chi[: DETRAINING[-1] + 1]
    assert np.abs(cloud / cloud.mean(axis=0) - 1).max() < 1e-3
    assert np.abs(chi[ABOVE_TOP]).max() <= 1e-14 * cloud.max()


def test_float32_path():
    q, m, mu = _setup(dtype=np.float32)
    scheme = jax.jit(ConvectiveMassFlux(substeps=3))
    q0 = np.asarray(q, dtype=np.float64).sum()
    for _ in range(100):
        q = scheme(q, m, mu, 20.0)
    assert q.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(q)))
    assert abs(np.asarray(q, dtype=np.float64).sum() / q0 - 1.0) < 1e-5
    chi = np.full(m.shape, 1e-6, np.float32)
    qu = jnp.asarray(chi * np.asarray(m) / np.float32(M_AIR))[None]
    out = scheme(qu, m, mu, 20.0)
    np.testing.assert_allclose(np.asarray(out * M_AIR / m[None]), 1e-6, rtol=1e-6)


def test_differentiable_against_finite_differences():
    q, m, mu = _setup()
    w = jnp.asarray(np.random.default_rng(7).normal(size=q.shape))
    scheme = ConvectiveMassFlux(substeps=3)

    def loss(q, mu):
        out = scheme(q, m, mu, 20.0)
        return jnp.sum(w * out**2)

    gq, gmu = jax.grad(loss, argnums=(0, 1))(q, mu)
    assert bool(jnp.all(jnp.isfinite(gq))) and bool(jnp.all(jnp.isfinite(gmu)))
    rng = np.random.default_rng(11)
    dq = jnp.asarray(rng.normal(size=q.shape))
    # perturb only where the updraft exists (Mu = 0 interfaces are kinks of max(.,0))
    dmu = jnp.asarray(rng.normal(size=mu.shape)) * (mu > 0)
    for eps in (1e-4, 1e-5):
        fd = (loss(q + eps * dq, mu + eps * dmu) - loss(q - eps * dq, mu - eps * dmu)) / (2 * eps)
        ad = jnp.sum(gq * dq) + jnp.sum(gmu * dmu)
        assert abs(float(fd - ad)) <= 1e-7 * abs(float(ad))
