"""The cost function through the whole chain (biosphere -> composer -> transport -> sampling): Taylor test,
adjoint dot-product test, a short nonlinear twin with an optax L-BFGS loop, no recompilation, bad input.

One small joint twin (15 x 20 degrees, 2 levels, 2 days of 6-hour steps, CO2 + CH4) is shared by all tests,
so the chain compiles once for the cost gradient and once for the linearised operator.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffflux.inversion import cost as C
from diffflux.inversion.problem import Problem, bias_index, standard_twin
from diffflux.transport import TransportState


@pytest.fixture(scope="module")
def twin():
    return standard_twin(resolution=(15.0, 20.0), nlev=2, days=2, steps_per_day=4, spinup=0,
                         horizontal_diffusion=False, satellite_step_seconds=1800.0, seed=3)


@pytest.fixture(scope="module")
def point(twin):
    """A linearisation point away from the prior and a direction touching every block."""
    n = twin.problem.control.size
    rng = np.random.default_rng(11)
    z = 0.5 * twin.z_true + 0.3 * jnp.asarray(rng.standard_normal(n))
    d = jnp.asarray(rng.standard_normal(n))
    return z, d


def test_standard_twin_setup(twin):
    p, info = twin.problem, twin.info
    assert info["species"] == ("CO2", "CH4")
    assert set(p.control.names) == {"flux:fossil", "flux:ocean", "flux:nee", "flux:ch4_anthropogenic",
                                    "flux:wetland", "biosphere", "initial", "bias"}
    assert p.bio_links == (("nee", "CO2:biosphere"), ("wetland", "CH4:wetland"))
    sp = twin.table["species"].values.astype(str)
    samp = twin.table["sampling"].values.astype(str)
    assert {"flask", "continuous", "satellite"} <= set(samp) and set(sp) == {"CO2", "CH4"}
    # pseudo-observations = truth + noise of the R sigma: standardised residuals ~ N(0, 1)
    e = (np.asarray(p.y) - np.asarray(twin.y_true)) / np.asarray(p.obs_error.sigma)
    assert abs(e.mean()) < 4 / np.sqrt(e.size) and 0.7 < e.std() < 1.3
    # the truth differs from the prior run by more than the noise
    jb, jo = C.terms(p, jnp.zeros(p.control.size))
    assert float(jb) == 0.0 and float(jo) > 1.5 * (0.5 * e.size)  # noise alone: Jo ~ nobs / 2
    jb_t, jo_t = C.terms(p, twin.z_true)
    assert abs(float(jo_t) - 0.5 * float(np.sum(e**2))) < 1e-8 * float(jo_t)
    # the biosphere parameters enter: the truth's multipliers differ from one
    mult = np.exp(np.asarray(twin.x_true["biosphere"]))
    assert np.all(mult > 0) and np.std(mult) > 0.05


def test_taylor_joint_problem(twin, point):
    """|J(z + h d) - J(z) - h g.d| = O(h^2) over four decades of h, for the joint nonlinear problem."""
    p = twin.problem
    z, d = point
    f = C.make_value_and_grad(p)
    hs = 10.0 ** -np.arange(1.0, 6.0)
    r, slope = C.taylor_test(f, z, d, hs)
    print("Taylor remainders", r, "slope", slope)
    assert 1.9 < slope < 2.1, (r, slope)
    assert np.all(np.diff(np.log10(r)) < -1.8)  # each decade of h: two decades of remainder
    # every block of the control vector reaches the cost
    _, g = f(z)
    for name, gb in p.control.unflatten(g).items():
        assert float(jnp.max(jnp.abs(gb))) > 0.0, name
    # the test has power: a gradient wrong by 1 % gives first order at small h
    gw = g * (1.0 + 1e-2)

    def wrong(zz):
        j, gg = f(zz)
        return j, gw
    r_bad, slope_bad = C.taylor_test(wrong, z, d, hs)
    assert r_bad[-2] / r_bad[-1] < 20.0, r_bad  # the correct gradient: ~100 per decade


def test_adjoint_dot_product(twin, point):
    """<L dz, w> = <dz, L^T w> for the linearised chain z -> H(x(z)), float64, <= 1e-12 relative."""
    p = twin.problem
    z, dz = point
    w = jnp.asarray(np.random.default_rng(5).standard_normal(p.obs_error.nobs))
    lhs, rhs, rel = C.dot_product_test(p, z, dz, w)
    print("dot product", lhs, rhs, rel)
    assert abs(lhs) > 0
    assert rel <= 1e-12


def test_lbfgs_twin_no_recompile(twin):
    """A plain optax L-BFGS loop (Armijo backtracking) on the joint twin: the cost falls to the noise
    level, the biosphere parameter error shrinks, and no iteration compiles anything."""
    p = twin.problem
    f = C.make_value_and_grad(p)
    opt = optax.scale_by_lbfgs(memory_size=10)
    update = jax.jit(opt.update)
    z = jnp.zeros(p.control.size)
    state = opt.init(z)
    J0, g = f(z)
    J = J0
    compiles = []

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    history = [float(J0)]
    for it in range(25):
        dvec, state = update(g, state, z)
        if it == 1:
            jax.monitoring.register_event_duration_secs_listener(listener)
        slope = float(jnp.vdot(g, dvec))
        step = 1.0
        for _ in range(30):
            zn = z - step * dvec
            Jn, gn = f(zn)
            if float(Jn) <= float(J) - 1e-4 * step * slope:
                break
            step *= 0.5
        z, J, g = zn, Jn, gn
        history.append(float(J))
    jax.monitoring.unregister_event_duration_listener(listener)
    nobs = p.obs_error.nobs
    _, jo = C.terms(p, z)
    print("L-BFGS cost", history[::5], "Jo", float(jo), "nobs", nobs)
    assert compiles == [], f"{len(compiles)} compilations inside the optimisation loop"
    assert history[-1] < 0.5 * history[0]
    assert float(jnp.linalg.norm(g)) < 1e-3 * float(jnp.linalg.norm(f(jnp.zeros_like(z))[1]))
    # at the minimum of a (near-)linear Gaussian problem 2 J_min ~ chi2 with nobs degrees of freedom
    assert abs(2.0 * history[-1] - nobs) < 4.0 * np.sqrt(2.0 * nobs), (2 * history[-1], nobs)
    # the analysis is closer to the truth than the prior where the observations inform: noise-free model
    # equivalents, the initial offsets and the satellite biases (whitened errors)
    cv = p.control
    y_prior = C.observe(p, jnp.zeros_like(z))
    y_post = C.observe(p, z)
    rms = lambda a: float(jnp.sqrt(jnp.mean(((a - twin.y_true) / p.obs_error.sigma) ** 2)))  # noqa: E731
    print("noise-free misfit / sigma: prior", rms(y_prior), "posterior", rms(y_post))
    assert rms(y_post) < 0.5 * rms(y_prior)
    zt, za = cv.unflatten(twin.z_true), cv.unflatten(z)
    for name in ("initial", "bias", "biosphere"):
        e0 = float(jnp.linalg.norm(zt[name]))
        e1 = float(jnp.linalg.norm(za[name] - zt[name]))
        print(f"{name}: whitened error prior {e0:.3f} posterior {e1:.3f}")
        if name != "biosphere":  # parameters are barely constrained by 2 days of 118 records
            assert e1 < e0, name


@pytest.fixture(scope="module")
def linear_twin():
    """Linear-Gaussian twin: additive flux corrections (ocean, NEE) with correlated priors (part A's
    covariance operators when present), initial offset and satellite bias, a linear transport: ``H`` is
    affine, so the posterior mean has a closed form."""
    try:
        import diffflux.inversion.covariance  # noqa: F401

        corr = (500.0, 1000.0)
    except ImportError:
        corr = None
    return standard_twin(resolution=(30.0, 36.0), nlev=2, days=1, steps_per_day=4, species=("CO2",),
                         flux_forms="additive", horizontal_diffusion=False, satellite_step_seconds=1800.0,
                         correlation_km=corr, seed=4)


@pytest.mark.slow
def test_linear_gaussian_twin_solver_reaches_analytic_mean(linear_twin):
    """diffflux.solvers' L-BFGS on the problem's LeastSquaresCost reaches the analytic posterior mean
    ``z_a = (I + G^T G)^-1 G^T d`` (``G`` = whitened Jacobian, ``d`` = whitened innovation) to 1e-6."""
    solvers = pytest.importorskip("diffflux.solvers")
    p = linear_twin.problem
    n = p.control.size
    z0 = jnp.zeros(n)
    h0 = C.observe(p, z0)
    # columns of the (affine) chain by unit perturbations: exact up to round-off for a linear problem
    cols = np.stack([np.asarray(C.observe(p, z0.at[k].set(1.0)) - h0) for k in range(n)], axis=1)
    sig = np.asarray(p.obs_error.sigma)
    G = cols / sig[:, None]
    d = (np.asarray(p.y) - np.asarray(h0)) / sig
    z_a = np.linalg.solve(np.eye(n) + G.T @ G, G.T @ d)
    # linearity check of the chain itself (the premise of the closed form)
    h2 = np.asarray(C.observe(p, jnp.asarray(z_a)))
    np.testing.assert_allclose(h2, np.asarray(h0) + cols @ z_a, rtol=0, atol=1e-12 * np.abs(h2).max())
    res = solvers.minimise(p.least_squares(), z0, solvers.LBFGS(gtol=1e-10, max_iter=300))
    print("L-BFGS", res.status, res.iterations, "n", n, "nobs", p.obs_error.nobs)
    assert res.converged, res.message
    err = np.linalg.norm(np.asarray(res.z) - z_a) / np.linalg.norm(z_a)
    print("relative error vs analytic posterior mean", err)
    assert err < 1e-6


def test_problem_bad_input(twin):
    p = twin.problem
    st = TransportState.from_mixing_ratio(p.chi0, p.air0)
    base = dict(control=p.control, composer=p.composer, transport=p.transport, met=p.met, initial_state=st,
                operator=p.operator, y=p.y, obs_error=p.obs_error, bias_group=p.bias_group,
                biosphere=p.biosphere, drivers=p.drivers, bio_state=p.bio_state, bio_params=p.bio_params,
                bio_links=p.bio_links, tracers=p.tracers)
    Problem.create(**base)  # the valid one builds
    with pytest.raises(ValueError, match=r"y must have shape"):
        Problem.create(**{**base, "y": p.y[:-1]})
    with pytest.raises(ValueError, match="non-finite"):
        Problem.create(**{**base, "y": p.y.at[0].set(jnp.nan)})
    with pytest.raises(KeyError, match="unknown component 'nope'"):
        Problem.create(**{**base, "bio_links": (("nope", "CO2:biosphere"),)})
    with pytest.raises(KeyError, match="unknown biosphere flux"):
        Problem.create(**{**base, "bio_links": (("nee", "CO2:ocean"),)})
    with pytest.raises(ValueError, match="a bias block needs bias_group"):
        Problem.create(**{**base, "bias_group": None})
    with pytest.raises(ValueError, match="without a biosphere"):
        Problem.create(**{**base, "biosphere": None})
    with pytest.raises(ValueError, match="initial state has 1 tracers"):
        Problem.create(**{**base, "initial_state": TransportState(tracer=st.tracer[:1], air=st.air)})
    with pytest.raises(ValueError, match="match no observation"):
        bias_index(twin.table, ["OSSE-SAT:CO2", "NOSUCHSITE"])
    with pytest.raises(ValueError, match="z must have shape"):
        C.value_and_grad(p, jnp.zeros(3))
    with pytest.raises(ValueError, match="species must be among"):
        standard_twin(species=("N2O",))


def test_invert_entry_point(twin):
    """invert(problem, LBFGS) lowers the cost and the misfit, reports status, chi-square and labels."""
    from diffflux.inversion import invert
    from diffflux.solvers import LBFGS

    p = twin.problem
    progress = []
    out = invert(p, LBFGS(max_iter=6), callback=lambda k, J, g: progress.append((k, J, g)))
    assert out.solver_result.n_traces == 1 and len(progress) >= 1
    assert out.cost_posterior < 0.6 * out.cost_prior
    rms = lambda a: float(np.sqrt(np.mean(a**2)))  # noqa: E731
    assert rms(out.y_posterior - out.y) < rms(out.y_prior - out.y)
    assert out.reduced_chi_square == pytest.approx(2 * out.cost_posterior / p.obs_error.nobs)
    assert len(out.labels) == p.control.size and set(out.x) == set(p.control.names)
    assert "status" in out.summary()
