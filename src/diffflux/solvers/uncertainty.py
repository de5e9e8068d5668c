"""Posterior uncertainty: exact and low-rank (Lanczos) posterior covariances, linear functionals, DOFS,
chi-square diagnostics and randomise-then-optimise ensembles.

Notation (whitened space): ``x = x_b + S z`` with ``S S^T = B``; ``G = R^-1/2 H S`` ``(m, n)`` the Jacobian of
the
whitened residual. The posterior covariance of ``z`` is ``A_z = (I + G^T G)^-1`` and of ``x`` is
``A_x = S A_z S^T = (B^-1 + H^T R^-1 H)^-1``. For a linear functional ``phi = a^T x`` (a regional or annual
total, a parameter) with whitened weights ``w = S^T a``: prior variance ``|w|^2``, posterior variance
``w^T A_z w``. With the leading eigenpairs ``(lambda_i, v_i)`` of ``G^T G`` (from Lanczos),

    ``A_z ~= I - sum_i lambda_i / (1 + lambda_i) v_i v_i^T``

which is exact when all eigenpairs with ``lambda_i > 0`` are included, and otherwise over-estimates the
posterior variance (a conservative bound). References: Fisher & Courtier (1995) ECMWF TM 220;
Chevallier et al. (2005) JGR 110 D24309 (Lanczos-based posterior errors of CO2 fluxes); Bousserez & Henze
(2018) QJRMS 144 (low-rank posterior covariance, DOFS); Rodgers (2000) Inverse Methods for Atmospheric
Sounding (averaging kernel, DOFS); Bardsley et al. (2014) SIAM J. Sci. Comput. 36 (randomise-then-optimise).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from diffflux.solvers._types import LeastSquaresCost, flat_residual, ravel
from diffflux.solvers.krylov import lanczos_eigenpairs

__all__ = [
    "ExactPosterior",
    "LowRankPosterior",
    "dofs_from_eigvals",
    "innovation_chi_square",
    "lanczos_posterior",
    "randomise_then_optimise",
    "reduced_chi_square",
    "uncertainty_reduction",
]


def _as_rows(w) -> jax.Array:
    w = jnp.asarray(w)
    return w[None, :] if w.ndim == 1 else w


class ExactPosterior(eqx.Module):
    """Full posterior products of the exact solver.

    Attributes:
        jacobian: ``G`` ``(m, n)``, whitened residual Jacobian at the optimum.
        cov_z: ``A_z = (I + G^T G)^-1`` ``(n, n)`` [1].
        averaging_kernel_z: ``I - A_z`` ``(n, n)`` (whitened space; ``dz_hat / dz_true``).
        dofs: degrees of freedom for signal ``trace(I - A_z) = sum lambda/(1 + lambda)``.
        hessian_eigvals: eigenvalues ``lambda`` of ``G^T G`` ``(n,)``, descending.
        sqrt_b: ``S = dx/dz`` ``(N, n)`` if the cost had ``unwhiten``, else ``None``.
        cov_x: ``A_x = S A_z S^T`` ``(N, N)`` [unit of x squared] or ``None``.
        averaging_kernel_x: ``S (I - A_z) S^-1`` ``(N, N)`` when ``S`` is square, else ``None``.
    """

    jacobian: jax.Array
    cov_z: jax.Array
    averaging_kernel_z: jax.Array
    dofs: jax.Array
    hessian_eigvals: jax.Array
    sqrt_b: jax.Array | None = None
    cov_x: jax.Array | None = None
    averaging_kernel_x: jax.Array | None = None

    @classmethod
    def from_jacobian(cls, g_mat: jax.Array, s_mat: jax.Array | None = None) -> ExactPosterior:
        n = g_mat.shape[1]
        lam, v = jnp.linalg.eigh(g_mat.T @ g_mat)
        lam = jnp.maximum(lam, 0.0)
        cov_z = (v / (1.0 + lam)[None, :]) @ v.T
        ak = (v * (lam / (1.0 + lam))[None, :]) @ v.T
        cov_x = ak_x = None
        if s_mat is not None:
            cov_x = s_mat @ cov_z @ s_mat.T
            if s_mat.shape[0] == n:
                ak_x = jnp.linalg.solve(s_mat.T, (s_mat @ ak).T).T
        return cls(g_mat, cov_z, ak, jnp.sum(lam / (1.0 + lam)), lam[::-1], s_mat, cov_x, ak_x)

    def functional_covariance(self, w) -> jax.Array:
        """Posterior covariance ``W A_z W^T`` ``(k, k)`` of functionals, whitened weights ``W`` ``(k, n)``."""
        w = _as_rows(w)
        return w @ self.cov_z @ w.T

    def functional_variance(self, w) -> jax.Array:
        """Posterior variances ``(k,)`` of functionals with whitened weights ``W = (S^T a)^T`` ``(k, n)``."""
        return jnp.diag(self.functional_covariance(w))


class LowRankPosterior(eqx.Module):
    """Low-rank posterior from ``k`` leading eigenpairs of the data-misfit Hessian ``G^T G``.

    Attributes:
        eigvals: ``(k,)`` eigenvalues ``lambda_i >= 0`` (0 entries are unused slots).
        eigvecs: ``(n, k)`` orthonormal eigenvectors in whitened space.
    """

    eigvals: jax.Array
    eigvecs: jax.Array

    @property
    def _shrink(self):
        return self.eigvals / (1.0 + self.eigvals)

    @property
    def dofs(self) -> jax.Array:
        """DOFS captured by the kept eigenpairs, ``sum lambda/(1 + lambda)`` (a lower bound)."""
        return jnp.sum(self._shrink)

    def cov_z_matvec(self, u) -> jax.Array:
        """``A_z u ~= u - V diag(lambda/(1+lambda)) V^T u``."""
        return u - self.eigvecs @ (self._shrink * (self.eigvecs.T @ u))

    def functional_variance(self, w) -> jax.Array:
        """Posterior variances ``(k_f,)`` of functionals, whitened weights ``W = (S^T a)^T`` ``(k_f, n)``."""
        w = _as_rows(w)
        p = w @ self.eigvecs
        return jnp.sum(w * w, axis=1) - jnp.sum(p * p * self._shrink[None, :], axis=1)

    def sample(self, key: jax.Array, n_samples: int) -> jax.Array:
        """Posterior deviations ``z - z_hat ~ N(0, A_z)``, ``(n_samples, n)``, of the low-rank ``A_z``.

        Uses ``A_z^1/2 = I - V diag(1 - (1 + lambda)^-1/2) V^T`` (symmetric square root).
        """
        e = jax.random.normal(key, (n_samples, self.eigvecs.shape[0]), self.eigvecs.dtype)
        c = 1.0 - 1.0 / jnp.sqrt(1.0 + self.eigvals)
        return e - ((e @ self.eigvecs) * c[None, :]) @ self.eigvecs.T


def lanczos_posterior(cost: LeastSquaresCost, z: Any, k: int, key: jax.Array) -> LowRankPosterior:
    """Low-rank posterior at ``z`` from ``k`` Lanczos eigenpairs of ``G^T G`` (matrix-free, ``k`` products).

    ``G^T G v`` is one JVP plus one VJP of the whitened residual, linearised at ``z`` (the optimum); the
    start vector is random (``key``), so the Krylov space is not tied to one right-hand side as the
    CONGRAD pairs of :class:`~diffflux.solvers.GaussNewtonCG` are. With ``k = n`` the result is exact.

    Args:
        cost: a :class:`LeastSquaresCost`.
        z: linearisation point (pytree), usually ``Result.z``.
        k: number of eigenpairs (``<= n``).
        key: PRNG key for the start vector.
    """
    if not isinstance(cost, LeastSquaresCost):
        raise TypeError(f"lanczos_posterior: needs a LeastSquaresCost, found {type(cost).__name__}")

    zf, unravel = ravel(z)
    if k < 1:
        raise ValueError(f"lanczos_posterior: k must be >= 1, found {k}")
    lam, vec = _lanczos(flat_residual(cost, unravel), zf, jax.random.normal(key, zf.shape, zf.dtype),
                        min(int(k), zf.shape[0]))
    return LowRankPosterior(lam, vec)


@eqx.filter_jit
def _lanczos(res, zf, v0, k: int):
    """``k`` Lanczos pairs of ``G^T G`` at ``zf`` (``res`` an argument: no recompilation for new data)."""
    _, jvp = jax.linearize(res, zf)
    vjp = jax.linear_transpose(jvp, zf)
    lam, vec = lanczos_eigenpairs(lambda v: vjp(jvp(v))[0], v0, k)
    return jnp.maximum(lam, 0.0), vec


def dofs_from_eigvals(eigvals) -> jax.Array:
    """Degrees of freedom for signal ``sum lambda_i / (1 + lambda_i)`` (Rodgers 2000, eq. 2.80)."""
    lam = jnp.maximum(jnp.asarray(eigvals), 0.0)
    return jnp.sum(lam / (1.0 + lam))


def uncertainty_reduction(var_post, var_prior) -> jax.Array:
    """``1 - sigma_post / sigma_prior`` from variances (same shapes)."""
    return 1.0 - jnp.sqrt(jnp.asarray(var_post) / jnp.asarray(var_prior))


def reduced_chi_square(cost_at_optimum, n_obs: int) -> jax.Array:
    """``2 J(z_hat) / m``; for a linear-Gaussian problem it equals :func:`innovation_chi_square` and has
    expectation 1 when ``B`` and ``R`` are consistent with the data (Tarantola 2005, sec. 3.2; Michalak
    et al. 2005 JGR 110 D24107)."""
    if n_obs <= 0:
        raise ValueError(f"reduced_chi_square: n_obs must be > 0, found {n_obs}")
    return 2.0 * jnp.asarray(cost_at_optimum) / n_obs


def innovation_chi_square(g_mat: jax.Array, d_w: jax.Array) -> jax.Array:
    """``d^T (H B H^T + R)^-1 d / m`` from whitened innovations ``d_w = R^-1/2 (y - H x_b)`` ``(m,)`` and
    ``G`` ``(m, n)``: ``d_w^T (I + G G^T)^-1 d_w / m``."""
    m = g_mat.shape[0]
    a = jnp.eye(m, dtype=g_mat.dtype) + g_mat @ g_mat.T
    return d_w @ jnp.linalg.solve(a, d_w) / m


def randomise_then_optimise(
    cost: LeastSquaresCost,
    z0: Any,
    key: jax.Array,
    n_members: int,
    solver=None,
    *,
    batch_size: int | None = None,
):
    """Posterior samples by randomise-then-optimise, batched with ``jax.vmap`` over members.

    Member ``i`` minimises ``1/2 |z - zeta_i|^2 + 1/2 |r(z) + eps_i|^2`` with ``zeta_i, eps_i ~ N(0, I)``
    (a perturbed prior ``x_b + S zeta_i`` and perturbed observations ``y - R^1/2 eps_i``), by a fixed number
    of Gauss-Newton/CG outer iterations (``solver.max_iter``, a jittable loop). For a linear observation map
    the minimisers are exact samples of ``N(z_hat, A_z)``; for nonlinear maps they approximate the posterior
    (Bardsley et al. 2014; Chevallier et al. 2007 JGR 112 D09307 for the Monte-Carlo inversion).

    Args:
        cost: a :class:`LeastSquaresCost`.
        z0: starting point (pytree), e.g. the posterior mean or zeros.
        key: PRNG key.
        n_members: ensemble size.
        solver: a :class:`~diffflux.solvers.GaussNewtonCG` (default ``GaussNewtonCG(max_iter=1)``, exact
            for linear problems).
        batch_size: members per vmapped batch (``jax.lax.map``; bounds memory), ``None`` = all at once.

    Returns:
        Samples of ``z`` with a leading member axis (same pytree structure as ``z0``).
    """
    from diffflux.solvers.minimise import GaussNewtonCG, _FlatLS, _gn_update

    solver = GaussNewtonCG(max_iter=1) if solver is None else solver
    if not isinstance(solver, GaussNewtonCG):
        raise TypeError(f"randomise_then_optimise: supports GaussNewtonCG, found {type(solver).__name__}")
    if not isinstance(cost, LeastSquaresCost):
        raise TypeError(f"randomise_then_optimise: needs a LeastSquaresCost, found {type(cost).__name__}")
    if n_members < 1:
        raise ValueError(f"randomise_then_optimise: n_members must be >= 1, found {n_members}")
    solver = dataclasses.replace(solver, n_eigs=0)  # Ritz pairs are not needed per member
    zf, unravel = ravel(z0)
    res = flat_residual(cost, unravel)
    m = jax.eval_shape(res, zf).shape[0]
    k1, k2 = jax.random.split(key)
    zeta = jax.random.normal(k1, (n_members, zf.shape[0]), zf.dtype)
    eps = jax.random.normal(k2, (n_members, m), zf.dtype)

    def member(args):
        zp, e = args
        fun = _FlatLS(res, zp, e)

        def outer(_, z):
            dz, _info, j, _g = solver.inner(fun, z)
            return _gn_update(fun, z, dz, j)[0]

        return jax.lax.fori_loop(0, solver.max_iter, outer, zf)

    run = jax.jit(lambda a, b: jax.lax.map(member, (a, b), batch_size=batch_size or n_members))
    zs = run(zeta, eps)
    return jax.vmap(unravel)(zs)
