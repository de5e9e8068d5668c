"""Conjugate gradient with Lanczos (CONGRAD) and a plain Lanczos eigen-solver, pure JAX (jit/vmap-able).

Both act on flat vectors ``(n,)`` and a symmetric positive definite ``matvec`` (e.g. the whitened Gauss-Newton
Hessian ``A = I + G^T G``, applied matrix-free by one JVP and one VJP of the observation map).

References:
    Fisher (1998) Minimization algorithms for variational data assimilation, ECMWF Seminar (CONGRAD:
    CG whose normalised residuals are the Lanczos vectors, re-orthogonalised, and whose coefficients give the
    Lanczos tridiagonal matrix and hence the leading Hessian eigenpairs).
    Paige (1972); Golub & Van Loan, Matrix Computations, sections 10.1-10.2 (CG/Lanczos equivalence).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["CGInfo", "cg_lanczos", "lanczos_eigenpairs"]


class CGInfo(NamedTuple):
    """Diagnostics of :func:`cg_lanczos`.

    Attributes:
        iterations: CG iterations done (int scalar).
        residual_norm: ``|b - A x|`` recurrence estimate at exit.
        ritz_values: ``(n_eigs,)`` leading Ritz values ``theta`` of ``A`` (descending; 0 where unused).
        ritz_vectors: ``(n, n_eigs)`` corresponding orthonormal Ritz vectors (0 columns where unused).
    """

    iterations: jax.Array
    residual_norm: jax.Array
    ritz_values: jax.Array
    ritz_vectors: jax.Array


def _tridiag(alpha, beta, k):
    """Lanczos tridiagonal ``(maxiter, maxiter)`` from CG coefficients, rows/cols ``>= k`` zeroed."""
    maxiter = alpha.shape[0]
    idx = jnp.arange(maxiter)
    valid = idx < k
    a_prev = jnp.concatenate([jnp.ones(1, alpha.dtype), alpha[:-1]])
    b_prev = jnp.concatenate([jnp.zeros(1, beta.dtype), beta[:-1]])
    d = jnp.where(valid, 1.0 / alpha + b_prev / a_prev, 0.0)
    e = jnp.where(idx + 1 < k, -jnp.sqrt(jnp.abs(beta)) / alpha, 0.0)[:-1]
    return jnp.diag(d) + jnp.diag(e, 1) + jnp.diag(e, -1)


def cg_lanczos(
    matvec: Callable[[jax.Array], jax.Array],
    b: jax.Array,
    *,
    maxiter: int,
    rtol: float,
    n_eigs: int = 0,
) -> tuple[jax.Array, CGInfo]:
    """Solve ``A x = b`` (``A`` SPD) by CG from ``x = 0`` with re-orthogonalised residuals (CONGRAD).

    Stops when ``|r_k| <= rtol |b|`` or after ``maxiter`` iterations. The normalised residuals
    ``q_k = r_k / |r_k|`` are the Lanczos vectors; they are stored ``(n, maxiter + 1)`` and each new residual
    is Gram-Schmidt re-orthogonalised against them twice (so memory is ``n (maxiter + 1)`` floats).
    The Lanczos matrix has ``T_kk = 1/alpha_k + beta_{k-1}/alpha_{k-1}``, ``T_k,k+1 = -sqrt(beta_k)/alpha_k``;
    its eigenpairs ``(theta, y)`` give Ritz pairs ``(theta, Q y)`` of ``A``.

    Args:
        matvec: ``v -> A v`` on ``(n,)``.
        b: right-hand side ``(n,)``.
        maxiter: maximum iterations (static).
        rtol: relative residual tolerance.
        n_eigs: number of leading Ritz pairs to return (static, ``<= maxiter``).

    Returns:
        ``(x, CGInfo)``.
    """
    n = b.shape[0]
    n_eigs = min(n_eigs, maxiter)
    dt = b.dtype
    bnorm = jnp.linalg.norm(b)
    safe = jnp.where(bnorm > 0, bnorm, 1.0)
    q = jnp.zeros((n, maxiter + 1), dt).at[:, 0].set(b / safe)
    carry0 = (
        jnp.zeros_like(b),  # x
        b,  # r
        b,  # p
        jnp.vdot(b, b),  # rr
        q,
        jnp.ones(maxiter, dt),  # alpha
        jnp.zeros(maxiter, dt),  # beta
        jnp.asarray(0, jnp.int32),
    )
    tol2 = (rtol * bnorm) ** 2

    def cond(c):
        return (c[7] < maxiter) & (c[3] > tol2) & (bnorm > 0)

    def body(c):
        x, r, p, rr, q, alpha, beta, k = c
        ap = matvec(p)
        a = rr / jnp.vdot(p, ap)
        x = x + a * p
        r = r - a * ap
        for _ in range(2):  # classical Gram-Schmidt twice ("twice is enough")
            r = r - q @ (q.T @ r)
        rr_new = jnp.vdot(r, r)
        bt = rr_new / rr
        q = q.at[:, k + 1].set(r / jnp.sqrt(jnp.where(rr_new > 0, rr_new, 1.0)))
        p = r + bt * p
        return (x, r, p, rr_new, q, alpha.at[k].set(a), beta.at[k].set(bt), k + 1)

    x, r, p, rr, q, alpha, beta, k = jax.lax.while_loop(cond, body, carry0)
    if n_eigs > 0:
        t = _tridiag(alpha, beta, k)
        theta, y = jnp.linalg.eigh(t)
        theta, y = theta[::-1][:n_eigs], y[:, ::-1][:, :n_eigs]
        used = theta > 0.0  # padded (unused) rows give theta = 0; A = I + G^T G has theta >= 1
        vecs = (q[:, :maxiter] @ y) * used[None, :]
        theta = jnp.where(used, theta, 0.0)
    else:
        theta, vecs = jnp.zeros((0,), dt), jnp.zeros((n, 0), dt)
    return x, CGInfo(k, jnp.sqrt(rr), theta, vecs)


def lanczos_eigenpairs(
    matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, k: int
) -> tuple[jax.Array, jax.Array]:
    """Leading ``k`` eigenpairs of a symmetric operator by ``k`` Lanczos steps with full re-orthogonalisation.

    Args:
        matvec: ``v -> M v`` on ``(n,)`` (e.g. ``G^T G v``, the data-misfit Hessian in whitened space).
        v0: start vector ``(n,)`` (random for an unbiased Krylov space).
        k: Lanczos steps = number of Ritz pairs (static, ``<= n``); with ``k = n`` the pairs are exact.

    Returns:
        ``(eigvals (k,), eigvecs (n, k))``, descending. Cost: ``k`` products plus ``O(n k^2)``.

    Breakdown: when the Krylov space is (numerically) invariant, e.g. ``k`` exceeds the rank of a
    data-misfit Hessian plus one, the new residual ``|w|`` falls below ``1e-8 |M q_j|`` or ``1e-12`` of the
    largest ``|M q|`` seen; Gram-Schmidt on such a residual is dominated by round-off (it would not give an
    orthogonal vector), so the next Lanczos vector is a pseudo-random one orthogonalised against the
    basis, with a zero coupling ``beta`` (the tridiagonal matrix splits into blocks and the Ritz values of
    the exhausted block stay exact).
    """
    n = v0.shape[0]
    k = min(k, n)
    q0 = v0 / jnp.linalg.norm(v0)
    q = jnp.zeros((n, k), v0.dtype).at[:, 0].set(q0)

    def orth(q, w):
        for _ in range(2):  # classical Gram-Schmidt twice ("twice is enough" without heavy cancellation)
            w = w - q @ (q.T @ w)
        return w

    def body(j, c):
        q, alpha, beta, scale = c
        w0 = matvec(q[:, j])
        a = jnp.vdot(q[:, j], w0)
        w = orth(q, w0)
        bnorm = jnp.linalg.norm(w)
        w0norm = jnp.linalg.norm(w0)
        scale = jnp.maximum(scale, w0norm)
        ok = (bnorm > 1e-8 * w0norm) & (bnorm > 1e-12 * scale)
        # restart vector: dense and pseudo-random (a unit vector may lie in the basis), orthogonalised
        idx = jnp.arange(n, dtype=v0.dtype)
        alt = orth(q, jnp.sin(12.9898 * idx + 78.233 * (j + 1.0)) + 0.5 * jnp.cos(3.1 * idx * (j + 2.0)))
        nxt = jnp.where(ok, w / jnp.where(ok, bnorm, 1.0), alt / jnp.linalg.norm(alt))
        q = jnp.where(j + 1 < k, q.at[:, jnp.minimum(j + 1, k - 1)].set(nxt), q)
        return q, alpha.at[j].set(a), beta.at[j].set(jnp.where(ok, bnorm, 0.0)), scale

    zeros = jnp.zeros(k, v0.dtype)
    q, alpha, beta, _ = jax.lax.fori_loop(0, k, body, (q, zeros, zeros, jnp.zeros((), v0.dtype)))
    t = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    w, y = jnp.linalg.eigh(t)
    return w[::-1], q @ y[:, ::-1]
