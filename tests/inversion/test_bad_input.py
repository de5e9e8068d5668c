"""Bad input of the inversion (issue 6): singular or non-positive-definite covariances, empty observation
sets, non-finite cost or gradient and line-search failure give a clear error, or a status and message with
the last good state on disk; never a silent "converged".

Covered elsewhere (not repeated here): indefinite / non-symmetric / zero-sigma covariance operators
(tests/inversion/test_covariance.py), zero or non-finite observation errors and prior sigmas
(tests/inversion/test_control.py), NaN observations at ``Problem.create`` (tests/inversion/test_problem.py),
NaN observations and a too small iteration budget through ``invert`` on the chain, with the state
on disk (tests/inversion/test_chain_solvers.py), NaN/line-search
statuses of the solvers on toy costs (tests/solvers/).
"""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.inversion import ControlVector, DenseCovariance, Scaled
from diffflux.inversion.control import bias_block, initial_block
from diffflux.inversion.problem import Problem, standard_twin
from diffflux.solvers import Exact, GaussNewtonCG, LeastSquaresCost, Status, minimise
from diffflux.transport import TransportState


@pytest.fixture(scope="module")
def tiny():
    return standard_twin(resolution=(30.0, 36.0), nlev=2, days=1, steps_per_day=4, species=("CO2",),
                         flux_forms="additive", horizontal_diffusion=False, satellite_step_seconds=None,
                         checkpoint=None, seed=1)


def test_singular_prior_covariance_warns_and_stays_usable():
    """A rank-deficient dense prior covariance is accepted with a warning naming the null directions;
    whitening and unwhitening stay finite and consistent."""
    with pytest.warns(UserWarning, match=r"singular \(2 of 3 eigenvalues"):
        cov = DenseCovariance(np.ones((3, 3)) * 1e-12)  # rank one: three sites with identical bias
    block = bias_block(["A", "B", "C"], cov=cov)
    cv = ControlVector.create([block])
    z = jnp.asarray([0.3, -1.0, 2.0])
    x = cv.unwhiten(z)
    assert bool(jnp.all(jnp.isfinite(x["bias"])))
    np.testing.assert_allclose(np.asarray(cv.flatten(cv.whiten(x))), np.asarray(z), rtol=1e-6)
    # the implied covariance is the matrix (to the 1e-12 relative floor)
    np.testing.assert_allclose(np.asarray(cov.to_dense()), 1e-12, rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DenseCovariance([[2.0, 1.0], [1.0, 2.0]])  # a regular matrix does not warn


@pytest.mark.parametrize("make, match", [
    (lambda: DenseCovariance([[0.0, 0.0], [0.0, 0.0]]), "not positive definite"),
    (lambda: DenseCovariance([[1.0, np.nan], [np.nan, 1.0]]), "NaN or inf"),
    (lambda: Scaled(np.array([1.0, -1.0]), DenseCovariance(np.eye(2))), "finite and > 0"),
    (lambda: initial_block(["CO2"], sigma=[np.inf]), "finite and > 0"),
])
def test_non_positive_definite_covariances_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_empty_observation_sets(tiny):
    p = tiny.problem
    st = TransportState.from_mixing_ratio(p.chi0, p.air0)
    empty = eqx.tree_at(lambda o: (o.point_pos, o.column_pos), p.operator,
                        (jnp.zeros((0,), jnp.int32), jnp.zeros((0,), jnp.int32)))
    assert empty.nobs == 0
    with pytest.raises(ValueError, match="Problem: no observations"):
        Problem.create(control=p.control, composer=p.composer, transport=p.transport, met=p.met,
                       initial_state=st, operator=empty, y=jnp.zeros((0,)), obs_error=p.obs_error)
    with pytest.raises(ValueError, match="no observations"):
        standard_twin(resolution=(30.0, 36.0), nlev=2, days=1, steps_per_day=4, species=("CO2",),
                      flux_forms="additive", flask_sites=(), continuous_sites=(), satellite_step_seconds=None)
    # a least-squares cost with no residuals never reaches a solver
    with pytest.raises(ValueError, match="empty observation set"):
        minimise(LeastSquaresCost(residual=lambda z: z[:0]), jnp.zeros(3), GaussNewtonCG())


def test_non_finite_gradient_is_not_converged(tmp_path):
    """A finite cost with a NaN gradient (at the start or after some iterations): status NAN, the last
    finite iterate returned and on disk, for the first-order and the Jacobian-based solvers."""

    @jax.custom_jvp
    def res(z):
        return z - 1.0

    @res.defjvp
    def _res_jvp(primals, tangents):
        (z,), (t,) = primals, tangents
        return res(z), jnp.where(z[0] > 0.5, jnp.nan, 1.0) * t  # the derivative breaks down past 0.5

    cost = LeastSquaresCost(residual=lambda z: res(z))
    for solver in (GaussNewtonCG(), Exact()):
        ck = tmp_path / f"{type(solver).__name__}.npz"
        out = minimise(cost, jnp.asarray([0.9, 0.0]), solver, checkpoint_path=ck)
        assert out.status == Status.NAN and not out.converged and "non-finite" in out.message
        assert out.iterations == 0
        with np.load(ck) as f:
            assert int(f["status"]) == Status.NAN and np.all(np.isfinite(f["z"]))

    def cost2(z):
        return 0.5 * jnp.sum(res(z) ** 2)

    from diffflux.solvers import Adam

    ck = tmp_path / "adam.npz"
    out = minimise(cost2, jnp.zeros(2), Adam(learning_rate=0.2, max_iter=100), checkpoint_path=ck)
    assert out.status == Status.NAN and out.iterations >= 2
    assert float(out.z[0]) <= 0.5 + 1e-12  # the last iterate with a finite gradient
    with np.load(ck) as f:
        np.testing.assert_array_equal(f["z"], np.asarray(out.z))
