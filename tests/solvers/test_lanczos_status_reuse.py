"""Lanczos past the rank of the data-misfit Hessian; failure statuses kept on disk; the compiled step reused
across calls (new data, other stopping settings)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.solvers import (
    LBFGS,
    GaussNewtonCG,
    LeastSquaresCost,
    Status,
    lanczos_eigenpairs,
    lanczos_posterior,
    minimise,
)


@pytest.mark.parametrize("k", [9, 10, 25, 40])
def test_lanczos_beyond_the_rank_stays_orthogonal_and_exact(k):
    """``G^T G`` of 8 observations and 40 controls has rank 8: the Krylov space of a random start vector
    is exhausted after 9 steps. More steps must restart orthogonally (before the fix they produced
    Ritz values far above the largest eigenvalue), keep the 8 exact eigenvalues and give the exact
    posterior variances of functionals."""
    rng = np.random.default_rng(3)
    g = rng.standard_normal((8, 40)) * np.array([30, 10, 5, 2, 1, 0.5, 0.1, 0.01])[:, None]
    gj = jnp.asarray(g)
    lam_exact = np.linalg.eigvalsh(g.T @ g)[::-1]
    lam, vec = jax.jit(lanczos_eigenpairs, static_argnums=(0, 2))(
        lambda v: gj.T @ (gj @ v), jax.random.normal(jax.random.key(0), (40,)), k)
    q = np.asarray(vec)
    np.testing.assert_allclose(q.T @ q, np.eye(k), atol=1e-10)
    np.testing.assert_allclose(np.asarray(lam)[:8], lam_exact[:8], rtol=1e-9)
    assert np.all(np.abs(np.asarray(lam)[8:]) < 1e-9 * lam_exact[0])
    cost = LeastSquaresCost(residual=lambda z: gj @ z - 1.0)
    post = lanczos_posterior(cost, jnp.zeros(40), k, jax.random.key(1))
    w = rng.standard_normal((5, 40))
    exact = np.einsum("ki,ij,kj->k", w, np.linalg.inv(np.eye(40) + g.T @ g), w)
    np.testing.assert_allclose(np.asarray(post.functional_variance(jnp.asarray(w))), exact, rtol=1e-8)


@jax.custom_jvp
def _wrong(z):
    return jnp.sum((z - 1.0) ** 2)


@_wrong.defjvp
def _wrong_jvp(primals, tangents):
    (z,), (t,) = primals, tangents
    return _wrong(z), -jnp.vdot(2.0 * (z - 1.0), t)  # a gradient with the wrong sign


@jax.custom_jvp
def _wrong_res(z):
    return z - 1.0


@_wrong_res.defjvp
def _wrong_res_jvp(primals, tangents):
    (z,), (t,) = primals, tangents
    return _wrong_res(z), -t  # a Jacobian with the wrong sign


def test_line_search_failure_keeps_last_good_state_on_disk(tmp_path):
    ck = tmp_path / "ls.npz"
    res = minimise(_wrong, jnp.zeros(3), LBFGS(max_iter=50), checkpoint_path=ck)
    assert res.status == Status.LINE_SEARCH_FAILED and not res.converged
    assert "line search failed" in res.message and "NOT converged" in res.message
    assert res.value <= 3.0 + 1e-12  # never worse than the start
    with np.load(ck) as f:
        assert int(f["status"]) == Status.LINE_SEARCH_FAILED
        np.testing.assert_array_equal(f["z"], np.asarray(res.z))
    # Gauss-Newton: the step along a wrong Jacobian never decreases the cost; step halving gives up
    ck2 = tmp_path / "gn.npz"
    res = minimise(LeastSquaresCost(residual=_wrong_res), jnp.zeros(3), GaussNewtonCG(), checkpoint_path=ck2)
    assert res.status == Status.LINE_SEARCH_FAILED and not res.converged
    np.testing.assert_array_equal(np.asarray(res.z), 0.0)  # the last good state: the start
    with np.load(ck2) as f:
        assert int(f["status"]) == Status.LINE_SEARCH_FAILED and np.all(f["z"] == 0.0)


class _Linear(eqx.Module):
    """``r(z) = (H z - y) / sigma`` with its data as pytree leaves."""

    h: jax.Array
    y: jax.Array
    sigma: jax.Array

    def __call__(self, z):
        return (self.h @ z - self.y) / self.sigma


def test_compiled_step_reused_for_new_data_and_stopping_settings():
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.standard_normal((30, 12)))
    res = _Linear(h, jnp.asarray(rng.standard_normal(30)), jnp.full(30, 0.5))
    compiles = []

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    first = minimise(LeastSquaresCost(residual=res), jnp.zeros(12), LBFGS(gtol=1e-10))
    assert first.converged and first.n_traces == 1
    other = LeastSquaresCost(residual=eqx.tree_at(lambda r: r.y, res, -res.y))
    z0 = jnp.zeros(12)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        again = minimise(other, z0, LBFGS(gtol=1e-12, max_iter=150))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert again.n_traces == 0 and compiles == []
    # and it solved the new data, not the old
    a = np.eye(12) + np.asarray(h.T @ h) / 0.25
    z_new = np.linalg.solve(a, np.asarray(h.T @ -res.y) / 0.25)
    assert again.converged, again.message
    np.testing.assert_allclose(np.asarray(again.z), z_new, atol=1e-6)
