"""Linear-Gaussian inversion (n=50, m=80, correlated B, diagonal R) against the analytic posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.inversion.covariance import DenseCovariance, Scaled
from diffflux.solvers import (
    LBFGS,
    Exact,
    GaussNewtonCG,
    LeastSquaresCost,
    innovation_chi_square,
    lanczos_eigenpairs,
    lanczos_posterior,
    minimise,
    randomise_then_optimise,
    reduced_chi_square,
    uncertainty_reduction,
)

N, M = 50, 80


@pytest.fixture(scope="module")
def lg():
    rng = np.random.default_rng(2024)
    h = rng.standard_normal((M, N)) / np.sqrt(N)
    t = np.arange(N)
    corr = np.exp(-np.abs(t[:, None] - t[None]) / 5.0)
    sig = 0.5 + rng.random(N)
    b = sig[:, None] * corr * sig[None]
    sr = 0.2 + 0.3 * rng.random(M)
    r = np.diag(sr**2)
    xb = rng.standard_normal(N)
    x_true = xb + np.linalg.cholesky(b) @ rng.standard_normal(N)
    y = h @ x_true + sr * rng.standard_normal(M)
    xa = xb + b @ h.T @ np.linalg.solve(h @ b @ h.T + r, y - h @ xb)
    a = np.linalg.inv(np.linalg.inv(b) + h.T @ np.linalg.inv(r) @ h)
    bop = Scaled(sig, DenseCovariance(corr))
    s = np.asarray(bop.sqrt_to_dense())
    hj, yj, srj, xbj = map(jnp.asarray, (h, y, sr, xb))

    def unwhiten(z):
        return xbj + bop.sqrt_matvec(z)

    cost = LeastSquaresCost(residual=lambda z: (hj @ unwhiten(z) - yj) / srj, unwhiten=unwhiten)
    g = (h @ s) / sr[:, None]
    results = {
        "lbfgs": minimise(cost, jnp.zeros(N), LBFGS(max_iter=500, gtol=1e-10)),
        "cg": minimise(cost, jnp.zeros(N), GaussNewtonCG(cg_maxiter=N, n_eigs=10)),
        "exact": minimise(cost, jnp.zeros(N), Exact()),
    }
    return dict(h=h, b=b, r=r, sr=sr, xb=xb, y=y, xa=xa, a=a, s=s, g=g, bop=bop, cost=cost, res=results)


@pytest.mark.parametrize("name", ["lbfgs", "cg", "exact"])
def test_solvers_reach_analytic_posterior_mean(lg, name):
    res = lg["res"][name]
    assert res.converged, res.message
    x = lg["xb"] + np.asarray(lg["bop"].sqrt_matvec(res.z))
    rel = np.linalg.norm(x - lg["xa"]) / np.linalg.norm(lg["xa"])
    print(f"{name}: {res.iterations} iterations, status {res.status.name}, relative error {rel:.2e}")
    assert rel <= 1e-6
    assert res.n_traces == 1
    assert len(res.history_value) == res.iterations + 1
    assert res.history_value[-1] <= res.history_value[0]


def test_exact_posterior_covariance_averaging_kernel_dofs(lg):
    post = lg["res"]["exact"].posterior
    a = lg["a"]
    assert np.abs(np.asarray(post.cov_x) - a).max() <= 1e-12 * np.abs(a).max()
    # whitened covariance: S A_z S^T = A, and A_z = (I + G^T G)^-1
    az = np.linalg.inv(np.eye(N) + lg["g"].T @ lg["g"])
    assert np.abs(np.asarray(post.cov_z) - az).max() <= 1e-12
    # averaging kernel A H^T R^-1 H and DOFS = its trace
    ak = a @ lg["h"].T @ np.linalg.inv(lg["r"]) @ lg["h"]
    assert np.abs(np.asarray(post.averaging_kernel_x) - ak).max() <= 1e-10 * np.abs(ak).max()
    np.testing.assert_allclose(float(post.dofs), np.trace(ak), rtol=1e-12)
    assert 0 < float(post.dofs) < N
    np.testing.assert_allclose(np.asarray(post.jacobian), lg["g"], atol=1e-12)


def test_linear_functional_uncertainty_exact_and_lanczos(lg):
    """Regional totals a^T x: exact variance, and Lanczos low-rank variance converging with the rank."""
    s, g, a_post = lg["s"], lg["g"], lg["a"]
    a_fun = np.zeros((3, N))
    a_fun[0, :10] = 1.0  # "region 1 total"
    a_fun[1, 20:35] = 1.0
    a_fun[2, 7] = 1.0  # a single parameter
    var_true = np.einsum("ki,ij,kj->k", a_fun, a_post, a_fun)
    var_prior = np.einsum("ki,ij,kj->k", a_fun, lg["b"], a_fun)
    w = a_fun @ s  # whitened weights (S^T a)^T
    exact = lg["res"]["exact"].posterior
    np.testing.assert_allclose(np.asarray(exact.functional_variance(w)), var_true, rtol=1e-10)
    ur = np.asarray(uncertainty_reduction(exact.functional_variance(w), var_prior))
    np.testing.assert_allclose(ur, 1 - np.sqrt(var_true / var_prior), rtol=1e-10)
    assert np.all((ur > 0) & (ur < 1))

    gj = jnp.asarray(g)

    def hvp(v):
        return gj.T @ (gj @ v)

    # dense-G Lanczos agrees with the matrix-free one (JVP/VJP of the observation map) at full rank
    lam_d, _ = jax.jit(lanczos_eigenpairs, static_argnums=(0, 2))(
        hvp, jax.random.normal(jax.random.key(0), (N,)), N
    )
    errs = []
    for k in (10, 30, N):
        lr = lanczos_posterior(lg["cost"], lg["res"]["exact"].z, k, jax.random.key(0))
        if k == N:
            np.testing.assert_allclose(
                np.asarray(lr.eigvals), np.maximum(np.asarray(lam_d), 0), rtol=1e-8, atol=1e-10
            )
        var = np.asarray(lr.functional_variance(w))
        assert np.all(var >= var_true * (1 - 1e-10))  # truncation is conservative (over-estimates)
        errs.append(np.max(np.abs(var - var_true) / var_true))
    print("Lanczos relative variance error vs rank 10/30/50:", errs)
    assert errs[0] > errs[1] > errs[2]
    assert errs[-1] < 1e-9  # all eigenpairs: exact
    # CONGRAD Ritz pairs from the CG solve: leading Hessian eigenvalues equal the exact ones
    lam_exact = np.asarray(exact.hessian_eigvals)
    ritz = np.asarray(lg["res"]["cg"].posterior.eigvals)
    np.testing.assert_allclose(ritz[:5], lam_exact[:5], rtol=1e-8)
    np.testing.assert_allclose(
        float(lg["res"]["cg"].posterior.dofs), np.sum(lam_exact[:10] / (1 + lam_exact[:10])), rtol=1e-6
    )


def test_chi_square_diagnostics(lg):
    res = lg["res"]["exact"]
    d_w = (lg["y"] - lg["h"] @ lg["xb"]) / lg["sr"]
    chi_inno = float(innovation_chi_square(jnp.asarray(lg["g"]), jnp.asarray(d_w)))
    chi_cost = float(reduced_chi_square(res.value, M))
    np.testing.assert_allclose(chi_cost, chi_inno, rtol=1e-10)
    assert 0.5 < chi_cost < 1.5  # consistent B and R: expectation 1, std sqrt(2/m) = 0.16
    with pytest.raises(ValueError, match="n_obs"):
        reduced_chi_square(1.0, 0)


def test_randomise_then_optimise_ensemble_covariance(lg):
    n_mem = 400
    zhat = lg["res"]["exact"].z
    samples = np.asarray(
        randomise_then_optimise(
            lg["cost"], jnp.zeros(N), jax.random.key(7), n_mem, GaussNewtonCG(max_iter=1, cg_maxiter=N)
        )
    )
    assert samples.shape == (n_mem, N)
    az = np.asarray(lg["res"]["exact"].posterior.cov_z)
    mean = samples.mean(0)
    cov = np.cov(samples.T)
    se_mean = np.sqrt(np.diag(az) / n_mem)
    assert np.all(np.abs(mean - np.asarray(zhat)) < 5 * se_mean)
    se = np.sqrt((np.outer(np.diag(az), np.diag(az)) + az**2) / n_mem)  # Wishart standard errors
    assert np.all(np.abs(cov - az) < 5 * se), np.max(np.abs(cov - az) / se)
    # the check has power: the prior covariance (identity) is rejected
    assert np.any(np.abs(cov - np.eye(N)) > 5 * se)
    # physical space: variance of a regional total within 15 % (sampling error ~ sqrt(2/400) = 7 %)
    a = np.zeros(N)
    a[:10] = 1.0
    xs = samples @ lg["s"].T
    np.testing.assert_allclose(np.var(xs @ a, ddof=1), a @ lg["a"] @ a, rtol=0.15)


def test_lanczos_leading_modes_suffice_for_low_rank_information(lg):
    """With 12 observations G^T G has rank 12: 14 Lanczos pairs give regional-total variances within 1 %."""
    h, s, sr, xb = lg["h"][:12], lg["s"], lg["sr"][:12], lg["xb"]
    hj, yj, srj, sj, xbj = map(jnp.asarray, (h, lg["y"][:12], sr, s, xb))
    cost = LeastSquaresCost(residual=lambda z: (hj @ (xbj + sj @ z) - yj) / srj)
    a_post = np.linalg.inv(np.linalg.inv(lg["b"]) + h.T @ np.diag(sr**-2) @ h)
    a_fun = np.zeros((2, N))
    a_fun[0, :10] = 1.0
    a_fun[1, 20:35] = 1.0
    var_true = np.einsum("ki,ij,kj->k", a_fun, a_post, a_fun)
    lr = lanczos_posterior(cost, jnp.zeros(N), 14, jax.random.key(3))
    var = np.asarray(lr.functional_variance(a_fun @ s))
    np.testing.assert_allclose(var, var_true, rtol=0.01)
    assert np.sum(np.asarray(lr.eigvals) > 1e-8) == 12
