"""Semi-Lagrangian zonal sweep: departure cells by the shift walk, gathers, gradients, batching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import M_AIR
from diffflux.transport import PPM, PiecewiseLinear
from diffflux.transport.advection import departure_cells, sweep_x_ffsl


def _departure_reference(m, F):
    """Departure cells from a NumPy binary search on the periodically continued edges (float64)."""
    m = np.asarray(m, np.float64)
    F = np.asarray(F, np.float64)
    n = m.shape[-1]
    Mc = np.concatenate([np.zeros(m.shape[:-1] + (1,)), np.cumsum(m, axis=-1)], axis=-1)
    J = np.empty(F.shape, np.int64)
    for idx in np.ndindex(F.shape[:-1]):
        mc, mtot = Mc[idx], Mc[idx][-1]
        for i in range(n):
            D = mc[i] - F[idx + (i,)]
            w = np.floor(D / mtot)
            j = np.searchsorted(mc[1:], D - w * mtot, side="right")
            J[idx + (i,)] = min(j, n - 1) + int(w) * n
    return J


@pytest.mark.parametrize("fmax", [0.4, 3.5, 30.0, 95.0])
def test_departure_cells_match_binary_search(rng, fmax):
    """The shift walk finds the same cell as a binary search, for Courant numbers up to ~3 circles."""
    n = 24
    m = rng.uniform(0.5, 1.5, (3, 4, n))
    F = rng.uniform(-fmax, fmax, (3, 4, n))
    F[0, 0, :3] = 0.0  # no flow through some faces
    J = np.asarray(jax.jit(departure_cells)(jnp.asarray(np.concatenate(
        [np.zeros((3, 4, 1)), np.cumsum(m, axis=-1)], axis=-1)), jnp.asarray(F)))
    np.testing.assert_array_equal(J, _departure_reference(m, F))


def test_departure_cells_exact_edges():
    """A departure point exactly on a cell edge belongs to the cell on its right (as searchsorted 'right')."""
    n = 8
    m = np.ones((1, n))
    Mc = jnp.asarray(np.concatenate([[[0.0]], np.cumsum(m, axis=-1)], axis=-1))
    for k in (1.0, 2.0, 5.0, -1.0, -3.0, 8.0, -8.0):
        F = jnp.full((1, n), k)
        J = np.asarray(departure_cells(Mc, F))
        # face i, flux k: the departure point i - k is the west edge of cell i - k
        np.testing.assert_array_equal(J[0], np.arange(n) - int(k))


@pytest.mark.parametrize("recon", [PPM(), PiecewiseLinear("mc")], ids=repr)
def test_ffsl_gradient_matches_finite_differences(rng, recon):
    """Reverse-mode gradient through the walk (integer cells, no gradient) and the gathers."""
    n = 16
    m = jnp.asarray(rng.uniform(0.8, 1.2, (2, 3, n)))
    q = jnp.asarray(rng.uniform(0.2, 1.0, (1, 2, 3, n))) * m[None] / M_AIR
    F = jnp.asarray(rng.uniform(1.3, 4.7, (2, 3, n)))  # Courant 1-5: whole cells + fractions
    w = jnp.asarray(rng.normal(size=q.shape))

    def J(q, F):
        q1, _ = sweep_x_ffsl(q, m, F, recon)
        return jnp.sum(w * q1)

    gq, gF = jax.jit(jax.grad(J, argnums=(0, 1)))(q, F)
    dq = jnp.asarray(rng.normal(size=q.shape)) * 1e-3 / M_AIR
    dF = jnp.asarray(rng.normal(size=F.shape)) * 1e-4
    for g, d, args in ((gq, dq, lambda e: (q + e * dq, F)), (gF, dF, lambda e: (q, F + e * dF))):
        h = 1e-3
        fd = (J(*args(h)) - J(*args(-h))) / (2 * h)
        np.testing.assert_allclose(float(jnp.vdot(g, d)), float(fd), rtol=1e-6)


def test_ffsl_vmap_matches_loop(rng):
    """Batched sweeps (the scenario batch) walk to the largest Courant number of the batch."""
    n = 20
    m = jnp.asarray(rng.uniform(0.8, 1.2, (2, 3, n)))
    qs = jnp.asarray(rng.uniform(0.0, 1.0, (3, 1, 2, 3, n))) * m[None, None] / M_AIR
    scale = jnp.asarray([0.5, 4.0, 12.0])[:, None, None, None]
    Fs = jnp.asarray(rng.uniform(-1.0, 1.0, (3, 2, 3, n))) * scale
    sweep = jax.jit(jax.vmap(lambda q, F: sweep_x_ffsl(q, m, F, PPM())))
    qb, mb = sweep(qs, Fs)
    for k in range(3):
        q1, m1 = sweep_x_ffsl(qs[k], m, Fs[k], PPM())
        np.testing.assert_allclose(qb[k], q1, rtol=1e-12, atol=1e-13 * float(jnp.max(q1)))
        np.testing.assert_allclose(mb[k], m1, rtol=1e-14)


def test_ffsl_float32(rng):
    """float32 sweep at Courant numbers up to 6 agrees with float64 to float32 round-off."""
    n = 36
    m = rng.uniform(0.8, 1.2, (2, 4, n))
    q = rng.uniform(0.2, 1.0, (1, 2, 4, n)) * m[None] / M_AIR
    F = rng.uniform(-6.0, 6.0, (2, 4, n))
    q64, _ = sweep_x_ffsl(jnp.asarray(q), jnp.asarray(m), jnp.asarray(F), PPM())
    q32, _ = sweep_x_ffsl(jnp.asarray(q, jnp.float32), jnp.asarray(m, jnp.float32),
                          jnp.asarray(F, jnp.float32), PPM())
    assert q32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(q32, np.float64), q64, rtol=2e-4, atol=1e-4 * float(np.max(q)))


def test_ffsl_forward_mode_and_linear_transpose(rng):
    """Gauss-Newton and Lanczos need jax.jvp and jax.linear_transpose of the transport: both must work
    through the walk (a while loop on integers) and the gathers at Courant numbers above one."""
    n = 16
    m = jnp.asarray(rng.uniform(0.8, 1.2, (2, 3, n)))
    F = jnp.asarray(rng.uniform(-4.5, 4.5, (2, 3, n)))
    lin = PiecewiseLinear(None)  # linear in q

    def sweep(q):
        return sweep_x_ffsl(q, m, F, lin)[0]

    q = jnp.asarray(rng.uniform(0.2, 1.0, (1, 2, 3, n))) * m[None] / M_AIR
    dq = jnp.asarray(rng.normal(size=q.shape))
    _, tangent = jax.jit(lambda a, b: jax.jvp(sweep, (a,), (b,)))(q, dq)
    np.testing.assert_allclose(tangent, sweep(dq), rtol=1e-12, atol=1e-12 * float(jnp.max(jnp.abs(tangent))))
    y = jnp.asarray(rng.normal(size=q.shape))
    (ty,) = jax.jit(jax.linear_transpose(sweep, q))(y)
    np.testing.assert_allclose(float(jnp.vdot(y, sweep(dq))), float(jnp.vdot(ty, dq)), rtol=1e-12)
