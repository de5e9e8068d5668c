"""Linear-Gaussian twin on the whole chain (default suite): every solver reaches the analytic posterior
mean, Lanczos/Gauss-Newton/exact posterior variances of regional totals agree with the analytic ones, no
recompilation across iterations (nor for new observations), a killed run resumes to the same answer, and
non-finite observations end in a clear ``NAN`` status with the state on disk.

The twin: 30 x 36 degrees, 2 levels, 2 days of 6-hour steps, CO2 only, additive ocean and NEE corrections
with correlated priors (500 km land / 1000 km ocean), a global initial offset, flask and continuous sites,
no checkpointing (8 steps), and ``R`` scaled by 0.02 so that the fluxes are constrained (with the default
0.5-0.8 ppm mismatch two days of 44 records barely inform them). ``H`` is affine, so the analytic posterior
comes from the explicit Jacobian (columns ``H(e_k) - H(0)`` of the compiled forward model, no AD).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.inversion import budget_table, invert, regional_totals, standard_region_masks
from diffflux.inversion import cost as C
from diffflux.inversion.problem import standard_twin
from diffflux.solvers import LBFGS, Exact, GaussNewtonCG, Status

TWIN = dict(resolution=(30.0, 36.0), nlev=2, days=2, steps_per_day=4, species=("CO2",), flux_forms="additive",
            horizontal_diffusion=False, satellite_step_seconds=None, checkpoint=None,
            correlation_km=(500.0, 1000.0), seed=4)
R_SCALE = 0.02
SOLVERS = {
    # stop on the gradient (the cost-change criterion fires at |g| ~ 4e-10 |g0|, which leaves ~4e-6 in z)
    "lbfgs": LBFGS(gtol=1e-12, ftol=0.0, max_iter=500),
    "gauss_newton_cg": GaussNewtonCG(cg_maxiter=100, cg_rtol=1e-12, n_eigs=60),
    "exact": Exact(),
}
REGIONS = ("globe", "NH", "SH", "land", "ocean", "ar6:ENA", "ar6:WCE", "ar6:EAS")


class _Compiles:
    """Counts XLA backend compilations while registered."""

    def __init__(self):
        self.n = 0

    def __call__(self, event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            self.n += 1


@pytest.fixture(scope="module")
def lin():
    tw = standard_twin(**TWIN)
    p = tw.problem
    sigma = p.obs_error.sigma * R_SCALE
    p = eqx.tree_at(lambda q: q.obs_error.sigma, p, sigma)
    y = tw.y_true + sigma * jnp.asarray(np.random.default_rng(21).standard_normal(sigma.shape))
    p = p.with_observations(y)
    n = p.control.size
    z0 = jnp.zeros(n)
    h0 = np.asarray(C.observe(p, z0))
    cols = np.stack([np.asarray(C.observe(p, z0.at[k].set(1.0))) - h0 for k in range(n)], axis=1)
    s = np.asarray(sigma)
    g = cols / s[:, None]
    d = (np.asarray(y) - h0) / s
    a = np.eye(n) + g.T @ g
    z_a = np.linalg.solve(a, g.T @ d)
    cov_z = np.linalg.inv(a)
    # the premise of the closed form: the chain is affine in z
    h_a = np.asarray(C.observe(p, jnp.asarray(z_a)))
    np.testing.assert_allclose(h_a, h0 + cols @ z_a, rtol=0, atol=1e-12 * np.abs(h_a).max())
    return dict(twin=tw, problem=p, g=g, z_a=z_a, cov_z=cov_z)


@pytest.fixture(scope="module")
def runs(lin):
    """Each solver through ``invert``; XLA compilations between the first and the last iteration."""
    out = {}
    for name, solver in SOLVERS.items():
        counter = _Compiles()
        marks = []
        jax.monitoring.register_event_duration_secs_listener(counter)
        try:
            res = invert(lin["problem"], solver,
                         callback=lambda k, j, g, m=marks, c=counter: m.append((k, c.n)))
        finally:
            jax.monitoring.unregister_event_duration_listener(counter)
        out[name] = (res, marks)
    return out


@pytest.mark.parametrize("name", list(SOLVERS))
def test_solvers_reach_analytic_posterior_mean(lin, runs, name):
    res, marks = runs[name]
    r = res.solver_result
    rel = np.linalg.norm(np.asarray(res.z) - lin["z_a"]) / np.linalg.norm(lin["z_a"])
    print(f"{name}: {r.iterations} iterations to {r.status.name} (cost {r.history_value[0]:.6g} -> "
          f"{r.value:.6g}, |g| {r.history_grad_norm[0]:.3g} -> {r.grad_norm:.3g}), relative error vs the "
          f"analytic posterior mean {rel:.2e}; n = {lin['problem'].control.size}, m = {res.y.size}"
          + (f"; CG iterations of the last outer iteration {r.info['cg_iterations_last']}"
             if "cg_iterations_last" in r.info else ""))
    assert r.converged, r.message
    assert rel <= 1e-6
    # no recompilation across iterations: the step is traced once and nothing compiles after iteration 1
    assert r.n_traces == 1
    assert [k for k, _ in marks] == list(range(1, r.iterations + 1))
    assert marks[-1][1] == marks[0][1], f"{marks[-1][1] - marks[0][1]} compilations after iteration 1"


def test_no_recompilation_for_new_observations(lin, runs):
    """A second inversion of the same problem structure (other observations) reuses the compiled step."""
    p = lin["problem"]
    y2 = p.y + p.obs_error.sigma * jnp.asarray(np.random.default_rng(5).standard_normal(p.y.shape))
    counter = _Compiles()
    jax.monitoring.register_event_duration_secs_listener(counter)
    try:
        res = invert(p.with_observations(y2), SOLVERS["lbfgs"])
    finally:
        jax.monitoring.unregister_event_duration_listener(counter)
    r = res.solver_result
    print(f"new observations: {r.iterations} iterations to {r.status.name}, {counter.n} compilations")
    assert r.n_traces == 0 and r.iterations > 10 and r.value < 1e-3 * r.history_value[0]
    assert counter.n == 0, f"{counter.n} compilations for new observations"


def test_posterior_variances_of_regional_totals(lin, runs):
    """Posterior sigma of regional totals: exact solver and Lanczos (``k`` = rank + 8) equal the analytic
    ``w^T (I + G^T G)^-1 w`` (``w`` from unit perturbations of the totals, no AD) to <= 1 %; the
    Gauss-Newton CG (CONGRAD) Ritz pairs give the leading Hessian eigenvalues to <= 1 % and, their Krylov
    space being the one of the right-hand side, the variances of the constrained totals to <= 5 %."""
    p = lin["problem"]
    tw = lin["twin"]
    n = p.control.size
    masks = standard_region_masks(p.transport.grid, REGIONS)
    exact = runs["exact"][0]
    rows_x = budget_table(p, exact.z, exact, masks=masks, z_true=tw.z_true)
    rows_l = budget_table(p, exact.z, None, masks=masks, n_lanczos=lin["g"].shape[0] + 8)
    rows_c = budget_table(p, runs["gauss_newton_cg"][0].z, runs["gauss_newton_cg"][0], masks=masks)
    assert len(rows_x) == len(REGIONS) * 3  # ocean, nee, CO2 total per region
    # analytic: totals are affine in z; weights by unit perturbations through regional_totals
    cv = p.control

    def totals(z):
        t = regional_totals(p, cv.unwhiten(jnp.asarray(z)), masks)
        return np.array([float(t[(r["region"], r["component"])]) for r in rows_x])

    t0 = totals(np.zeros(n))
    w = np.stack([totals(np.eye(n)[k]) - t0 for k in range(n)], axis=1)  # (K, n)
    var_prior = np.sum(w**2, axis=1)
    var_post = np.einsum("ki,ij,kj->k", w, lin["cov_z"], w)
    mean_post = t0 + w @ lin["z_a"]
    col = {k: np.array([r[k] for r in rows_x])
           for k in ("prior", "posterior", "prior_sigma", "posterior_sigma", "truth")}
    np.testing.assert_allclose(col["prior"], t0, rtol=1e-12, atol=1e-12 * np.abs(t0).max())
    np.testing.assert_allclose(col["posterior"], mean_post, rtol=1e-6, atol=1e-9 * np.abs(t0).max())
    np.testing.assert_allclose(col["prior_sigma"] ** 2, var_prior, rtol=1e-8)
    np.testing.assert_allclose(col["posterior_sigma"] ** 2, var_post, rtol=1e-8)
    lz = np.array([r["posterior_sigma"] for r in rows_l]) ** 2
    cg = np.array([r["posterior_sigma"] for r in rows_c]) ** 2
    reduction = 1.0 - np.sqrt(var_post / var_prior)
    well = reduction > 0.05
    print("uncertainty reduction of the regional totals:",
          {f"{r['region']}/{r['component']}": round(float(u), 3) for r, u in zip(rows_x, reduction)})
    assert well.sum() >= 5, "the test needs constrained totals"
    err_l = np.abs(lz / var_post - 1.0)
    err_c = np.abs(cg / var_post - 1.0)
    print(f"Lanczos vs analytic posterior variance: max rel. error {err_l.max():.2e}; CONGRAD pairs: "
          f"{err_c[well].max():.2e} on the {well.sum()} totals with > 5 % uncertainty reduction")
    assert err_l.max() <= 0.01
    assert err_c[well].max() <= 0.05
    # leading modes: CONGRAD Ritz values and the exact solver's eigenvalues match the explicit Hessian's
    lam = np.linalg.eigvalsh(lin["g"].T @ lin["g"])[::-1]
    print("leading eigenvalues of G^T G:", lam[:6].round(3), "CONGRAD:",
          np.asarray(runs["gauss_newton_cg"][0].solver_result.posterior.eigvals)[:6].round(3))
    np.testing.assert_allclose(np.asarray(runs["gauss_newton_cg"][0].solver_result.posterior.eigvals)[:5],
                               lam[:5], rtol=0.01)
    np.testing.assert_allclose(np.asarray(exact.solver_result.posterior.hessian_eigvals)[:10], lam[:10],
                               rtol=1e-8)
    # truth (one draw): posterior errors consistent with the posterior sigma
    zscore = (col["posterior"] - col["truth"]) / col["posterior_sigma"]
    print("(posterior - truth) / posterior sigma:", zscore.round(2))
    assert np.all(np.abs(zscore) < 3.0)


def test_killed_run_resumes_to_the_same_answer(lin, runs, tmp_path):
    """L-BFGS on the chain interrupted (KeyboardInterrupt in the progress callback) at iteration 7 with
    checkpoints every 3 iterations resumes from iteration 6 and ends where the uninterrupted run ended."""
    p = lin["problem"]
    ref = runs["lbfgs"][0].solver_result
    ck = tmp_path / "lbfgs.npz"

    def killer(k, j, g):
        if k == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        invert(p, SOLVERS["lbfgs"], callback=killer, checkpoint_path=ck, checkpoint_every=3)
    with np.load(ck) as f:
        assert int(f["iteration"]) == 6 and int(f["status"]) == Status.RUNNING
    seen = []
    res = invert(p, SOLVERS["lbfgs"], callback=lambda k, j, g: seen.append(k), checkpoint_path=ck,
                 checkpoint_every=3).solver_result
    assert seen[0] == 7  # continued, not restarted
    assert res.status == ref.status and res.iterations == ref.iterations
    np.testing.assert_allclose(np.asarray(res.z), np.asarray(ref.z), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.history_value, ref.history_value, rtol=1e-13)
    with np.load(ck) as f:
        assert int(f["status"]) == ref.status and int(f["iteration"]) == ref.iterations


def test_non_finite_observations_stop_with_nan_status(lin, runs, tmp_path):
    """A NaN among the observations makes the cost non-finite: status NAN, a message saying so, not
    converged, and the last good state (here the start) on disk; never a silent "converged"."""
    p = lin["problem"]
    bad = p.with_observations(p.y.at[3].set(jnp.nan))
    ck = tmp_path / "nan.npz"
    out = invert(bad, SOLVERS["lbfgs"], checkpoint_path=ck)
    r = out.solver_result
    assert r.status == Status.NAN and not out.converged and r.iterations == 0
    assert "non-finite" in r.message and "NOT converged" in out.summary()
    with np.load(ck) as f:
        assert int(f["status"]) == Status.NAN
        assert np.all(np.isfinite(f["z"]))


def test_iteration_budget_spent_is_not_converged(lin, runs, tmp_path):
    """Too few iterations: MAX_ITER, "NOT converged" in the summary, the state on disk (the compiled step
    of the converged run is reused: the stopping settings are not part of it)."""
    ck = tmp_path / "short.npz"
    out = invert(lin["problem"], LBFGS(gtol=1e-12, max_iter=2), checkpoint_path=ck)
    r = out.solver_result
    assert r.status == Status.MAX_ITER and not out.converged and r.n_traces == 0
    assert "NOT converged" in out.summary()
    with np.load(ck) as f:
        assert int(f["status"]) == Status.MAX_ITER and int(f["iteration"]) == 2
        np.testing.assert_array_equal(f["z"], np.asarray(out.z))
