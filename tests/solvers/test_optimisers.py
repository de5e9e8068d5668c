"""Optimisers on nonlinear problems with known minima; status codes; no recompilation; checkpoint/resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.solvers import LBFGS, Adam, Exact, GaussNewtonCG, LeastSquaresCost, Status, minimise


def rosenbrock(z):
    """Extended Rosenbrock, minimum 0 at z = 1 (Nocedal & Wright 2006, eq. 2.22)."""
    return jnp.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1.0 - z[:-1]) ** 2)


def _nonlinear_ls(seed=0, n=8, m=12):
    """Whitened nonlinear least squares 1/2|z|^2 + 1/2|f(z) - y|^2 with y built so that z* is stationary."""
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.standard_normal((m, n)) / np.sqrt(n))
    zs = jnp.asarray(0.5 * rng.standard_normal(n))

    def f(z):
        return h @ (z + 0.3 * jnp.sin(z)) + 0.1 * (h @ z) ** 2

    jac = jax.jacfwd(f)(zs)
    # stationarity z* + J^T (f(z*) - y) = 0  <=  f(z*) - y = -J (J^T J)^-1 z*
    y = f(zs) + jac @ jnp.linalg.solve(jac.T @ jac, zs)
    return LeastSquaresCost(residual=lambda z: f(z) - y), zs


@pytest.mark.parametrize("solver", [LBFGS(gtol=1e-10, max_iter=300), GaussNewtonCG(cg_maxiter=8), Exact()])
def test_nonlinear_least_squares_known_minimum(solver):
    flat, zs = _nonlinear_ls()
    cost = LeastSquaresCost(residual=lambda z: flat.residual(jnp.concatenate([z["a"], z["b"]])))
    res = minimise(cost, {"a": jnp.zeros(5), "b": jnp.zeros(3)}, solver)  # pytree control vector
    assert res.converged, res.message
    z = jnp.concatenate([res.z["a"], res.z["b"]])
    np.testing.assert_allclose(np.asarray(z), np.asarray(zs), atol=1e-7)
    assert res.n_traces == 1


def test_lbfgs_rosenbrock_and_no_recompilation():
    traces = {"n": 0}
    seen = []

    def cost(z):
        traces["n"] += 1  # Python side effect: counts traces of the cost, not evaluations
        return rosenbrock(z)

    res = minimise(
        cost,
        jnp.full(6, -1.0),
        LBFGS(max_iter=500, gtol=1e-10),
        callback=lambda k, j, g: seen.append((k, traces["n"])),
    )
    assert res.converged, res.message
    np.testing.assert_allclose(np.asarray(res.z), 1.0, atol=1e-6)
    assert res.iterations > 20
    # traces after the first iteration == traces at the end: the step was compiled once
    assert seen[0][1] == seen[-1][1] == traces["n"]
    assert res.n_traces == 1
    assert [k for k, _ in seen] == list(range(1, res.iterations + 1))
    assert np.all(np.diff(res.history_value) <= 1e-12)  # L-BFGS with Wolfe line search is monotone


def test_adam_reaches_known_minimum():
    c = jnp.linspace(-1.0, 2.0, 5)

    def cost(z):
        d = z - c
        return 0.5 * jnp.sum(d**2) + 0.1 * jnp.sum(d**4)

    res = minimise(cost, jnp.zeros(5), Adam(learning_rate=0.05, max_iter=3000, gtol=1e-4))
    assert res.status == Status.CONVERGED_GRAD, res.message
    np.testing.assert_allclose(np.asarray(res.z), np.asarray(c), atol=1e-3)
    assert res.n_traces == 1


def test_max_iter_status():
    res = minimise(rosenbrock, jnp.full(6, -1.0), LBFGS(max_iter=3))
    assert res.status == Status.MAX_ITER and not res.converged
    assert "NOT converged" in res.message
    assert res.iterations == 3 and len(res.history_grad_norm) == 4


def test_nan_status_keeps_last_finite_iterate(tmp_path):
    def cost(z):
        return jnp.sum((z - 3.0) ** 2) + jnp.where(z[0] > 1.0, jnp.nan, 0.0)

    ck = tmp_path / "nan.npz"
    res = minimise(cost, jnp.zeros(2), Adam(learning_rate=0.3, max_iter=100), checkpoint_path=ck)
    assert res.status == Status.NAN and not res.converged
    assert np.all(np.isfinite(np.asarray(res.z))) and float(res.z[0]) <= 1.0
    assert res.iterations >= 2 and np.isfinite(res.value)
    # the last good state is on disk
    with np.load(ck) as f:
        np.testing.assert_array_equal(f["z"], np.asarray(res.z))
        assert int(f["status"]) == Status.NAN
    # NaN already at the start
    res0 = minimise(lambda z: jnp.sum(z) * jnp.nan, jnp.zeros(2))
    assert res0.status == Status.NAN and res0.iterations == 0
    # NaN in a least-squares residual
    bad = LeastSquaresCost(residual=lambda z: jnp.log(z - 1.0))
    assert minimise(bad, jnp.zeros(3), GaussNewtonCG()).status == Status.NAN


def test_line_search_failure_is_reported():
    @jax.custom_jvp
    def wrong(z):
        return jnp.sum((z - 1.0) ** 2)

    @wrong.defjvp
    def _wrong_jvp(primals, tangents):
        (z,), (t,) = primals, tangents
        return wrong(z), -jnp.vdot(2.0 * (z - 1.0), t)  # gradient with the wrong sign

    res = minimise(wrong, jnp.zeros(3), LBFGS(max_iter=50))
    assert res.status == Status.LINE_SEARCH_FAILED and not res.converged
    assert res.value <= 3.0 + 1e-12  # not worse than the start


def test_bad_inputs():
    with pytest.raises(TypeError, match="needs a LeastSquaresCost"):
        minimise(rosenbrock, jnp.zeros(3), GaussNewtonCG())
    empty = LeastSquaresCost(residual=lambda z: jnp.zeros((0,)))
    with pytest.raises(ValueError, match="empty observation set"):
        minimise(empty, jnp.zeros(3), Exact())
    with pytest.raises(ValueError, match="empty"):
        minimise(rosenbrock, {})
    with pytest.raises(TypeError, match="solver must be"):
        minimise(rosenbrock, jnp.zeros(3), "lbfgs")


class _Kill(Exception):
    pass


@pytest.mark.parametrize(
    "solver,every,kill_at",
    [
        (LBFGS(max_iter=400, gtol=1e-10), 4, 10),
        (Adam(learning_rate=0.02, max_iter=60), 5, 23),
    ],
)
def test_checkpoint_resume_reaches_same_answer(tmp_path, solver, every, kill_at):
    z0 = jnp.full(6, -1.0)
    ref = minimise(rosenbrock, z0, solver)
    ck = tmp_path / "run.npz"

    def killer(k, j, g):
        if k == kill_at:
            raise _Kill(f"simulated kill at iteration {k}")

    with pytest.raises(_Kill):
        minimise(rosenbrock, z0, solver, callback=killer, checkpoint_path=ck, checkpoint_every=every)
    with np.load(ck) as f:
        assert int(f["iteration"]) == kill_at - kill_at % every
        assert int(f["status"]) == Status.RUNNING
    res = minimise(rosenbrock, z0, solver, checkpoint_path=ck, checkpoint_every=every)
    assert res.status == ref.status and res.iterations == ref.iterations
    np.testing.assert_allclose(np.asarray(res.z), np.asarray(ref.z), rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.history_value, ref.history_value, rtol=1e-13, atol=1e-300)
    # a finished run's checkpoint returns the same result without iterating
    again = minimise(rosenbrock, z0, solver, checkpoint_path=ck)
    assert again.iterations == ref.iterations and again.n_traces == 0
    np.testing.assert_array_equal(np.asarray(again.z), np.asarray(res.z))
    # a checkpoint of another solver / size is refused with a clear message
    with pytest.raises(ValueError, match="written by solver|control vector has"):
        minimise(rosenbrock, jnp.zeros(7), solver, checkpoint_path=ck)
