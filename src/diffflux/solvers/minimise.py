"""One entry point, :func:`minimise`, and the solver strategies :class:`LBFGS`, :class:`Adam`,
:class:`GaussNewtonCG` and :class:`Exact`.

All solvers work on the flat whitened control vector (:func:`~diffflux.solvers._types.ravel` of ``z0``),
one jitted step per iteration driven by a Python loop (so progress callbacks, stopping tests and checkpoints
happen between iterations, and the step is traced once: :attr:`Result.n_traces`). The cost is an
*argument* of the jitted step (its arrays are pytree leaves, e.g. a :class:`~diffflux.inversion.Problem`
behind :meth:`~diffflux.inversion.Problem.least_squares`), so a later call on a problem of the same
structure (new observations, another twin member) or with other stopping settings (``max_iter``,
``gtol``, ``gtol_abs``, ``ftol`` act in the loop only) reuses the compiled step. Stopping criteria, in
order of precedence after each iteration ``k``:

1. non-finite cost, gradient or iterate -> ``NAN`` (the last finite iterate is returned and kept on disk);
2. ``|g_k| <= gtol |g_0|`` or ``|g_k| <= gtol_abs`` -> ``CONVERGED_GRAD``;
3. line search failure (L-BFGS zoom search: positive sufficient-decrease error; Gauss-Newton: no decrease
   after step halving) -> ``LINE_SEARCH_FAILED``;
4. ``|J_k - J_{k-1}| <= ftol max(|J_k|, |J_{k-1}|)`` -> ``CONVERGED_COST``;
5. ``k >= max_iter`` -> ``MAX_ITER``.

References:
    Nocedal & Wright (2006) Numerical Optimization, 2nd ed., ch. 7 (L-BFGS), 3.5 (zoom line search),
    10.3 (Gauss-Newton); Kingma & Ba (2015) Adam; Fisher (1998) ECMWF Seminar (CONGRAD);
    Courtier, Thepaut & Hollingsworth (1994) QJRMS 120 (incremental 4D-Var);
    Brasseur & Jacob (2017) Modeling of Atmospheric Chemistry, ch. 11 (analytical inversion, DOFS).
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffflux.solvers._types import _MESSAGES, LeastSquaresCost, Result, Status, flat_residual, ravel
from diffflux.solvers.checkpoint import load_checkpoint, save_checkpoint
from diffflux.solvers.krylov import cg_lanczos

__all__ = ["LBFGS", "AbstractSolver", "Adam", "Exact", "GaussNewtonCG", "minimise"]


class AbstractSolver(eqx.Module):
    """Strategy protocol: ``init`` a state (cheap, no cost evaluation), ``step`` once (jitted by
    :func:`minimise`), ``finalize``.

    ``step(fun, z, state) -> (z_new, state_new, value, grad_norm, ls_failed, value_in, grad_norm_in)`` where
    ``value`` and ``grad_norm`` are ``J`` and ``|dJ/dz|`` at ``z_new`` and ``*_in`` the same at ``z`` (so the
    initial cost and gradient come from the first step, without a separate compilation); ``fun`` maps the flat
    ``z`` to the cost (or is a :class:`_FlatLS` for the least-squares solvers).
    """

    max_iter: eqx.AbstractVar[int]
    gtol: eqx.AbstractVar[float]
    gtol_abs: eqx.AbstractVar[float]
    ftol: eqx.AbstractVar[float]

    needs_least_squares: bool = eqx.field(static=True, default=False, kw_only=True)

    @abc.abstractmethod
    def init(self, fun, z): ...

    @abc.abstractmethod
    def step(self, fun, z, state): ...

    def finalize(self, fun, z, state, unravel) -> tuple[Any, dict]:
        return None, {}


# ----------------------------------------------------------------------------------------------------------
class LBFGS(AbstractSolver):
    """Limited-memory BFGS with the zoom (strong Wolfe) line search, ``optax.lbfgs`` (the default).

    Args:
        max_iter: maximum iterations (each one gradient plus line-search evaluations).
        gtol: stop when ``|g| <= gtol |g_0|``.
        gtol_abs: stop when ``|g| <= gtol_abs``.
        ftol: stop when the relative cost change falls below ``ftol``.
        memory_size: number of stored correction pairs (Nocedal & Wright 2006, alg. 7.4).
        max_linesearch_steps: zoom line-search budget per iteration.
    """

    max_iter: int = eqx.field(static=True, default=200)
    gtol: float = eqx.field(static=True, default=1e-6)
    gtol_abs: float = eqx.field(static=True, default=0.0)
    ftol: float = eqx.field(static=True, default=1e-14)
    memory_size: int = eqx.field(static=True, default=10)
    max_linesearch_steps: int = eqx.field(static=True, default=30)

    def _opt(self):
        ls = optax.scale_by_zoom_linesearch(max_linesearch_steps=self.max_linesearch_steps)
        return optax.lbfgs(memory_size=self.memory_size, linesearch=ls)

    def init(self, fun, z):
        return self._opt().init(z)

    def step(self, fun, z, state):
        opt = self._opt()
        value, grad = optax.value_and_grad_from_state(fun)(z, state=state)
        updates, state = opt.update(grad, state, z, value=value, grad=grad, value_fn=fun)
        z = optax.apply_updates(z, updates)
        v_new = optax.tree_utils.tree_get(state, "value")
        g_new = optax.tree_utils.tree_get(state, "grad")
        info = optax.tree_utils.tree_get(state, "info")
        # failure: no sufficient decrease, or the whole budget spent without the curvature condition (then
        # the "accepted" step is a round-off-sized one that trivially passes Armijo: no progress at all)
        failed = (info.decrease_error > 0) | (
            (info.curvature_error > 0) & (info.num_linesearch_steps >= self.max_linesearch_steps)
        )
        return z, state, v_new, jnp.linalg.norm(g_new), failed, value, jnp.linalg.norm(grad)


class Adam(AbstractSolver):
    """Adam (``optax.adam``), for very large or noisy problems; no line search (Kingma & Ba 2015).

    Args:
        learning_rate: step size in whitened units (``z`` is O(1) under the prior).
        max_iter, gtol, gtol_abs, ftol: stopping criteria (see module docstring). Adam's cost is not
            monotone, so ``ftol`` defaults to 0 (off).
    """

    learning_rate: float = eqx.field(static=True, default=1e-2)
    max_iter: int = eqx.field(static=True, default=1000)
    gtol: float = eqx.field(static=True, default=1e-6)
    gtol_abs: float = eqx.field(static=True, default=0.0)
    ftol: float = eqx.field(static=True, default=0.0)

    def init(self, fun, z):
        # (optax state, J(z), dJ/dz(z), whether those two are valid yet): the first step evaluates them
        return (
            optax.adam(self.learning_rate).init(z),
            jnp.zeros((), z.dtype),
            jnp.zeros_like(z),
            jnp.asarray(False),
        )

    def step(self, fun, z, state):
        opt_state, v_in, g_in, valid = state
        v_in, g_in = jax.lax.cond(valid, lambda: (v_in, g_in), lambda: jax.value_and_grad(fun)(z))
        updates, opt_state = optax.adam(self.learning_rate).update(g_in, opt_state, z)
        z_new = optax.apply_updates(z, updates)
        v, g = jax.value_and_grad(fun)(z_new)
        out = (opt_state, v, g, jnp.asarray(True))
        return z_new, out, v, jnp.linalg.norm(g), jnp.asarray(False), v_in, jnp.linalg.norm(g_in)


# ----------------------------------------------------------------------------------------------------------
class _FlatLS(eqx.Module):
    """Least-squares cost on the flat ``z`` with optional prior offset ``zp`` and residual offset ``e``:
    ``J = 1/2 |z - zp|^2 + 1/2 |r(z) + e|^2`` (offsets are used by randomise-then-optimise)."""

    res: Callable
    zp: jax.Array | None = None
    e: jax.Array | None = None

    def residual(self, z):
        r = self.res(z)
        return r if self.e is None else r + self.e

    def prior_term(self, z):
        return z if self.zp is None else z - self.zp

    def __call__(self, z):
        dz, r = self.prior_term(z), self.residual(z)
        return 0.5 * jnp.vdot(dz, dz) + 0.5 * jnp.vdot(r, r)


def _gn_update(fun: _FlatLS, z, dz, j0):
    """Accept ``z + s dz``, the largest ``s in {1, 1/2, ..., 2^-10}`` not increasing ``J = j0``."""

    def cond(c):
        s, j, i = c
        return (i < 11) & ~(j <= j0 * (1 + 1e-14) + 1e-300)

    def body(c):
        s, _, i = c
        s = jnp.where(i == 0, 1.0, 0.5 * s)
        return s, fun(z + s * dz), i + 1

    s, j, i = jax.lax.while_loop(cond, body, (jnp.asarray(1.0, z.dtype), jnp.asarray(jnp.inf, z.dtype), 0))
    ok = j <= j0 * (1 + 1e-14) + 1e-300
    z_new = jnp.where(ok, z + s * dz, z)
    v, g = jax.value_and_grad(fun)(z_new)
    return z_new, v, jnp.linalg.norm(g), ~ok


class GaussNewtonCG(AbstractSolver):
    """Gauss-Newton (incremental 4D-Var) with an inner CONGRAD solve (CG + Lanczos, Fisher 1998).

    Outer iteration at ``z``: linearise ``r`` (``G = dr/dz`` by ``jax.linearize``, ``G^T`` by
    ``jax.linear_transpose``), solve ``(I + G^T G) dz = -(z + G^T r)`` by CG with re-orthogonalised
    residuals, then step (halved until ``J`` does not increase). For a linear observation map one outer
    iteration gives the exact minimiser up to the CG tolerance. The Lanczos (Ritz) pairs of the last inner
    solve give the leading eigenpairs of the data-misfit Hessian ``G^T G`` (``lambda = theta - 1``), returned
    as a :class:`~diffflux.solvers.uncertainty.LowRankPosterior` (Chevallier et al. 2005;
    Bousserez & Henze 2018).

    Args:
        max_iter: outer (Gauss-Newton) iterations.
        cg_maxiter: inner CG iterations (static; memory ``n (cg_maxiter + 1)`` floats, Lanczos vectors).
        cg_rtol: inner relative residual tolerance.
        n_eigs: Ritz pairs kept (``<= cg_maxiter``).
        gtol, gtol_abs, ftol: stopping criteria.
    """

    max_iter: int = eqx.field(static=True, default=10)
    cg_maxiter: int = eqx.field(static=True, default=100)
    cg_rtol: float = eqx.field(static=True, default=1e-10)
    n_eigs: int = eqx.field(static=True, default=20)
    gtol: float = eqx.field(static=True, default=1e-8)
    gtol_abs: float = eqx.field(static=True, default=0.0)
    ftol: float = eqx.field(static=True, default=1e-14)
    needs_least_squares: bool = eqx.field(static=True, default=True, kw_only=True)

    def init(self, fun, z):
        k = min(self.n_eigs, self.cg_maxiter)
        return (
            jnp.zeros((k,), z.dtype),  # Ritz values of the Hessian of the last solve with iterations
            jnp.zeros((z.shape[0], k), z.dtype),
            jnp.zeros((), jnp.int32),  # CG iterations of the last outer iteration
        )

    def inner(self, fun: _FlatLS, z):
        """One linearisation + CG-Lanczos solve; returns ``(dz, CGInfo, J(z), |dJ/dz|(z))``."""
        r, jvp = jax.linearize(fun.residual, z)
        vjp = jax.linear_transpose(jvp, z)
        dzp = fun.prior_term(z)
        grad = dzp + vjp(r)[0]
        j = 0.5 * jnp.vdot(dzp, dzp) + 0.5 * jnp.vdot(r, r)

        def hvp(v):
            return v + vjp(jvp(v))[0]

        dz, info = cg_lanczos(hvp, -grad, maxiter=self.cg_maxiter, rtol=self.cg_rtol, n_eigs=self.n_eigs)
        return dz, info, j, jnp.linalg.norm(grad)

    def step(self, fun, z, state):
        dz, info, j_in, gn_in = self.inner(fun, z)
        z_new, v, gn, failed = _gn_update(fun, z, dz, j_in)
        has = info.iterations > 0
        lam = jnp.where(has, jnp.maximum(info.ritz_values - 1.0, 0.0), state[0])
        vec = jnp.where(has, info.ritz_vectors, state[1])
        return z_new, (lam, vec, info.iterations.astype(jnp.int32)), v, gn, failed, j_in, gn_in

    def finalize(self, fun, z, state, unravel):
        from diffflux.solvers.uncertainty import LowRankPosterior

        return LowRankPosterior(eigvals=state[0], eigvecs=state[1]), {}


class Exact(AbstractSolver):
    """Exact (analytical) solver for small control vectors (IMI-style; Brasseur & Jacob 2017, ch. 11).

    Each outer iteration builds the Jacobian ``G = dr/dz`` ``(m, n)`` by ``n`` batched JVPs
    (``jax.vmap`` of ``jax.jvp`` over the identity) and solves the normal equations
    ``(I + G^T G) dz = -(z + G^T r)`` by Cholesky. At the optimum it returns an
    :class:`~diffflux.solvers.uncertainty.ExactPosterior`: whitened posterior covariance
    ``A_z = (I + G^T G)^-1``, averaging kernel ``I - A_z``, DOFS ``= trace(I - A_z)``, and, when the cost
    has ``unwhiten``, the physical ``A_x = S A_z S^T`` with ``S = dx/dz``. Memory ``O(m n + n^2)``.

    Args:
        max_iter: outer (Gauss-Newton) iterations (1-2 for a linear problem).
        gtol, gtol_abs, ftol: stopping criteria.
        jvp_batch: JVPs per ``vmap`` batch (bounds memory); ``None`` = all at once.
    """

    max_iter: int = eqx.field(static=True, default=10)
    gtol: float = eqx.field(static=True, default=1e-10)
    gtol_abs: float = eqx.field(static=True, default=0.0)
    ftol: float = eqx.field(static=True, default=1e-15)
    jvp_batch: int | None = eqx.field(static=True, default=None)
    needs_least_squares: bool = eqx.field(static=True, default=True, kw_only=True)

    def init(self, fun, z):
        return jnp.zeros((), z.dtype)

    def jacobian(self, f: Callable, z) -> jax.Array:
        """``df/dz`` ``(m, n)`` by batched forward-mode products (columns are JVPs with unit vectors)."""
        n = z.shape[0]
        eye = jnp.eye(n, dtype=z.dtype)

        def col(e):
            return jax.jvp(f, (z,), (e,))[1]

        if self.jvp_batch is None or self.jvp_batch >= n:
            return jax.vmap(col)(eye).T
        cols = jax.lax.map(col, eye, batch_size=self.jvp_batch)
        return cols.T

    def step(self, fun, z, state):
        g_mat = self.jacobian(fun.residual, z)
        r = fun.residual(z)
        dzp = fun.prior_term(z)
        grad = dzp + g_mat.T @ r
        j_in = 0.5 * jnp.vdot(dzp, dzp) + 0.5 * jnp.vdot(r, r)
        a = jnp.eye(z.shape[0], dtype=z.dtype) + g_mat.T @ g_mat
        dz = -jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), grad)
        z_new, v, gn, failed = _gn_update(fun, z, dz, j_in)
        return z_new, state, v, gn, failed, j_in, jnp.linalg.norm(grad)

    def finalize(self, fun, z, state, unravel, unwhiten=None):
        from diffflux.solvers.uncertainty import ExactPosterior

        g_mat, s_mat = _exact_jacobians(self, fun, z, unravel, unwhiten)
        return ExactPosterior.from_jacobian(g_mat, s_mat), {}


class _Unwhitened(eqx.Module):
    """``x(z)`` flattened, for the Jacobian ``S = dx/dz``."""

    unwhiten: Callable
    unravel: Callable

    def __call__(self, zz):
        return ravel(self.unwhiten(self.unravel(zz)))[0]


@eqx.filter_jit
def _exact_jacobians(solver, fun, z, unravel, unwhiten):
    """``G = dr/dz`` and (with ``unwhiten``) ``S = dx/dz`` at ``z``."""
    g_mat = solver.jacobian(fun.residual, z)
    s_mat = None if unwhiten is None else solver.jacobian(_Unwhitened(unwhiten, unravel), z)
    return g_mat, s_mat


# ----------------------------------------------------------------------------------------------------------
class _FlatCost(eqx.Module):
    """A general cost ``J(z)`` on the flat vector (a pytree: the cost's arrays are leaves)."""

    cost: Callable
    unravel: Callable

    def __call__(self, zz):
        return self.cost(self.unravel(zz))


_TRACES = [0]  # traces of the jitted step (all calls): a Python side effect that runs only while tracing


@eqx.filter_jit
def _jit_step(solver, fun, z, state):
    """One solver iteration, jitted once per (solver settings, cost structure, shapes)."""
    _TRACES[0] += 1
    z_new, state_new, v, gn, failed, v_in, gn_in = solver.step(fun, z, state)
    state_new = jax.tree.map(lambda new, old: jnp.asarray(new).astype(jnp.result_type(old)), state_new, state)
    return z_new.astype(z.dtype), state_new, v, gn, failed, v_in, gn_in


@eqx.filter_jit
def _value_and_grad_norm(fun, z):
    v, g = jax.value_and_grad(fun)(z)
    return v, jnp.linalg.norm(g)


def _strong(tree):
    """Strip weak types (and Python scalars) from a state so the jitted step is traced once."""
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), tree)


def minimise(
    cost: Callable | LeastSquaresCost,
    z0: Any,
    solver: AbstractSolver | None = None,
    *,
    callback: Callable[[int, float, float], None] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = True,
) -> Result:
    """Minimise ``cost(z)`` over the whitened control vector ``z`` (any pytree of float arrays).

    Args:
        cost: ``z -> J`` (scalar, differentiable), or a :class:`LeastSquaresCost` (required by
            :class:`GaussNewtonCG` and :class:`Exact`).
        z0: starting point (pytree); usually zeros (the prior).
        solver: a strategy object, default :class:`LBFGS`.
        callback: called after every iteration as ``callback(iteration, cost, grad_norm)`` (after the
            checkpoint of that iteration is written). An exception raised by it propagates (the checkpoint
            stays on disk: a killed run).
        checkpoint_path: ``.npz`` file; the state is saved every ``checkpoint_every`` iterations and at the
            end (the last good state on NaN). If it exists and ``resume``, the run continues from it.
        checkpoint_every: iterations between checkpoints.
        resume: resume from an existing checkpoint (default) or start afresh (overwriting it).

    Returns:
        :class:`Result`; inspect ``status`` (never silently "converged").

    Example::

        res = minimise(cost, jnp.zeros(n), LBFGS(max_iter=100, gtol=1e-8))
        if not res.converged:
            raise RuntimeError(res.message)
    """
    solver = LBFGS() if solver is None else solver
    if not isinstance(solver, AbstractSolver):
        raise TypeError(
            f"minimise: solver must be LBFGS(), Adam(), GaussNewtonCG() or Exact(), found {solver!r}"
        )
    if checkpoint_every < 1:
        raise ValueError(f"minimise: checkpoint_every must be >= 1, found {checkpoint_every}")
    zf, unravel = ravel(z0)
    if zf.size == 0:
        raise ValueError("minimise: the control vector z0 is empty")
    if not jnp.issubdtype(zf.dtype, jnp.floating):
        raise TypeError(f"minimise: z0 must be floating point, found dtype {zf.dtype}")
    zf = jnp.asarray(np.asarray(zf))
    unwhiten = None
    if solver.needs_least_squares:
        if not isinstance(cost, LeastSquaresCost):
            raise TypeError(
                f"minimise: {type(solver).__name__} needs a LeastSquaresCost (whitened residual r(z)), "
                f"found {type(cost).__name__}; use LBFGS or Adam for a general cost"
            )
        fun = _FlatLS(flat_residual(cost, unravel))
        unwhiten = cost.unwhiten
    else:
        fun = _FlatCost(cost, unravel)

    name = type(solver).__name__
    traces0 = _TRACES[0]
    # the stopping settings act in this loop, not in the step: one compiled step serves them all
    step_solver = dataclasses.replace(solver, max_iter=0, gtol=0.0, gtol_abs=0.0, ftol=0.0)

    def step(z, st):
        return _jit_step(step_solver, fun, z, st)

    state = _strong(solver.init(fun, zf))
    start = 0
    hv: list[float] = []
    hg: list[float] = []
    g0 = None
    if checkpoint_path is not None and resume and os.path.exists(checkpoint_path):
        ck = load_checkpoint(checkpoint_path, solver_name=name, z_template=zf, state_template=state)
        zf, state, start = ck["z"], ck["state"], ck["iteration"]
        hv, hg, g0 = ck["history_value"], ck["history_grad_norm"], ck["g0"]
        status = Status(ck["status"])
        if status != Status.RUNNING:
            return _result(solver, fun, zf, state, unravel, unwhiten, start, status, hv, hg, 0)

    def save(z, st, it, status):
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                solver_name=name,
                z=z,
                state=st,
                iteration=it,
                history_value=hv,
                history_grad_norm=hg,
                g0=g0,
                status=int(status),
            )

    status = Status.RUNNING
    k = start
    while status == Status.RUNNING:
        if k >= solver.max_iter:
            status = Status.MAX_ITER
            break
        z_new, state_new, v, gn, failed, v_in, gn_in = step(zf, state)
        if g0 is None:  # fresh start: the initial cost and gradient come from the first step
            g0 = float(gn_in)
            hv, hg = [float(v_in)], [g0]
            if not (np.isfinite(hv[0]) and np.isfinite(g0)):
                status = Status.NAN
                break
            if g0 == 0.0 or g0 <= solver.gtol_abs:
                status = Status.CONVERGED_GRAD
                break
        v, gn, failed = float(v), float(gn), bool(failed)
        finite = np.isfinite(v) and np.isfinite(gn) and bool(jnp.all(jnp.isfinite(z_new)))
        if not finite:
            status = Status.NAN
            break
        k += 1
        v_prev = hv[-1]
        if failed and v > v_prev:  # a failed line search that made things worse: keep the last good state
            v, gn = v_prev, hg[-1]
        else:
            zf, state = z_new, state_new
        hv.append(v)
        hg.append(gn)
        if gn <= solver.gtol * g0 or gn <= solver.gtol_abs:
            status = Status.CONVERGED_GRAD
        elif failed:
            status = Status.LINE_SEARCH_FAILED
        elif abs(v_prev - v) <= solver.ftol * max(abs(v), abs(v_prev)):
            status = Status.CONVERGED_COST
        elif k >= solver.max_iter:
            status = Status.MAX_ITER
        if k % checkpoint_every == 0 or status != Status.RUNNING:
            save(zf, state, k, status)
        if callback is not None:
            callback(k, v, gn)
    if g0 is None:  # max_iter == 0: no step was taken
        v0, gn0 = _value_and_grad_norm(fun, zf)
        g0 = float(gn0)
        hv, hg = [float(v0)], [g0]
    save(zf, state, k, status)
    return _result(solver, fun, zf, state, unravel, unwhiten, k, status, hv, hg, _TRACES[0] - traces0)


def _result(solver, fun, zf, state, unravel, unwhiten, k, status, hv, hg, n_traces) -> Result:
    posterior, info = None, {}
    if status != Status.NAN or np.all(np.isfinite(np.asarray(zf))):
        if isinstance(solver, Exact):
            posterior, info = solver.finalize(fun, zf, state, unravel, unwhiten)
        else:
            posterior, info = solver.finalize(fun, zf, state, unravel)
    if isinstance(solver, GaussNewtonCG):
        info = {**info, "cg_iterations_last": int(state[2])}
    return Result(
        z=unravel(zf),
        value=float(hv[-1]),
        grad_norm=float(hg[-1]),
        iterations=int(k),
        status=status,
        message=_MESSAGES[status],
        history_value=np.asarray(hv),
        history_grad_norm=np.asarray(hg),
        n_traces=n_traces,
        posterior=posterior,
        info=info,
    )
