"""Status codes, the :class:`Result` of a minimisation and the whitened least-squares cost structure."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LeastSquaresCost", "Result", "Status"]


class Status(enum.IntEnum):
    """Why a minimisation stopped. Only ``CONVERGED_*`` are successes (:attr:`Result.converged`)."""

    CONVERGED_GRAD = 0  # |g_k| <= gtol |g_0| (or <= gtol_abs)
    CONVERGED_COST = 1  # |J_k - J_{k-1}| <= ftol max(|J_k|, |J_{k-1}|)
    MAX_ITER = 2  # iteration budget spent before any criterion held
    LINE_SEARCH_FAILED = 3  # no step with sufficient decrease found; last good state kept
    NAN = 4  # non-finite cost, gradient or iterate; last good (finite) state kept
    RUNNING = 5  # only in checkpoints of an unfinished run


_MESSAGES = {
    Status.CONVERGED_GRAD: "converged: gradient norm reduced below gtol relative to the initial gradient",
    Status.CONVERGED_COST: "converged: relative cost change below ftol",
    Status.MAX_ITER: "NOT converged: maximum number of iterations reached",
    Status.LINE_SEARCH_FAILED: "NOT converged: line search failed to find a sufficient decrease",
    Status.NAN: "NOT converged: non-finite cost or gradient; the last finite iterate is returned",
    Status.RUNNING: "running",
}


@dataclasses.dataclass(frozen=True)
class Result:
    """Outcome of :func:`diffflux.solvers.minimise`.

    Attributes:
        z: the final whitened control vector (same pytree structure as ``z0``); the last good iterate
            when ``status`` is ``NAN`` or ``LINE_SEARCH_FAILED``.
        value: cost ``J(z)`` [1] (whitened cost, dimensionless).
        grad_norm: Euclidean norm of ``dJ/dz`` at ``z``.
        iterations: completed iterations (outer iterations for Gauss-Newton / Exact).
        status: a :class:`Status`.
        message: human-readable reason for stopping.
        history_value: ``(iterations + 1,)`` cost per iteration, index 0 is the initial point.
        history_grad_norm: ``(iterations + 1,)`` gradient norm per iteration.
        n_traces: how often the iteration step was traced during this call (1: compiled once, no
            recompilation across iterations; 0: reused from an earlier call on a problem of the same
            structure, e.g. the same problem with other observations).
        posterior: solver-specific posterior products (:class:`~diffflux.solvers.uncertainty.ExactPosterior`
            for :class:`Exact`, :class:`~diffflux.solvers.uncertainty.LowRankPosterior` for
            :class:`GaussNewtonCG`), else ``None``.
        info: extra diagnostics (e.g. CG iterations per outer iteration).
    """

    z: Any
    value: float
    grad_norm: float
    iterations: int
    status: Status
    message: str
    history_value: np.ndarray
    history_grad_norm: np.ndarray
    n_traces: int = 0
    posterior: Any = None
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.status in (Status.CONVERGED_GRAD, Status.CONVERGED_COST)


class LeastSquaresCost(eqx.Module):
    """Whitened least-squares cost ``J(z) = 1/2 |z|^2 + 1/2 |r(z)|^2``.

    ``r(z) = R^-1/2 (H(x(z)) - y)`` is the whitened residual ``(m,)`` [1] with ``x(z) = x_b + B^1/2 z``.
    Callable (returns ``J``), so every solver accepts it; :class:`GaussNewtonCG` and :class:`Exact`
    require it because they use the Jacobian ``G = dr/dz`` (matrix-free via ``jax.linearize``/transpose,
    or batched JVPs for :class:`Exact`).

    Attributes:
        residual: ``z -> r`` (pytree -> ``(m,)`` array), differentiable.
        unwhiten: optional ``z -> x`` (pytree -> pytree), the physical control vector; used by
            :class:`Exact` to return the posterior covariance in physical space (``S A_z S^T`` with ``S``
            its Jacobian, exact for ``x = x_b + B^1/2 z``, linearised at the optimum otherwise).
    """

    residual: Callable
    unwhiten: Callable | None = None

    def __call__(self, z) -> jax.Array:
        zs = jax.tree.leaves(z)
        r = self.residual(z)
        return 0.5 * sum(jnp.vdot(a, a) for a in zs) + 0.5 * jnp.vdot(r, r)


class Unravel(eqx.Module):
    """Flat vector -> pytree of the layout of :func:`ravel` (hashable and comparable by value, so a jitted
    function that receives it as a static part is not retraced for every new but equal layout)."""

    treedef: Any = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    dtypes: tuple[str, ...] = eqx.field(static=True)

    def __call__(self, flat):
        sizes = [int(np.prod(s)) for s in self.shapes]
        parts = jnp.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [flat]
        leaves = [p.reshape(s).astype(d) for p, s, d in zip(parts, self.shapes, self.dtypes)]
        return jax.tree.unflatten(self.treedef, leaves)


def ravel(tree) -> tuple[jax.Array, Unravel]:
    """``(flat, unravel)`` like ``jax.flatten_util.ravel_pytree`` (leaves in tree order, C order, promoted
    to a common dtype), with an :class:`Unravel` that compares equal for equal layouts."""
    leaves, treedef = jax.tree.flatten(tree)
    leaves = [jnp.asarray(a) for a in leaves]
    if not leaves:
        return jnp.zeros((0,)), Unravel(treedef, (), ())
    dtype = jnp.result_type(*leaves)
    flat = jnp.concatenate([jnp.ravel(a).astype(dtype) for a in leaves])
    return flat, Unravel(treedef, tuple(tuple(a.shape) for a in leaves), tuple(str(a.dtype) for a in leaves))


class FlatResidual(eqx.Module):
    """``r`` of a :class:`LeastSquaresCost` as a function of the flat whitened vector (a pytree: the cost's
    arrays are leaves, so jitted solvers take it as an argument); checks it returns a non-empty 1-D array."""

    cost: LeastSquaresCost
    unravel: Callable

    def __call__(self, zf):
        r = self.cost.residual(self.unravel(zf))
        if jnp.ndim(r) != 1 or r.shape[0] == 0:
            raise ValueError(
                f"LeastSquaresCost.residual must return a non-empty 1-D array (m,) of whitened residuals, "
                f"found shape {jnp.shape(r)} (an empty observation set cannot constrain the inversion)"
            )
        return r


def flat_residual(cost: LeastSquaresCost, unravel: Callable) -> FlatResidual:
    """``r`` as a function of the flat whitened vector (:class:`FlatResidual`)."""
    return FlatResidual(cost, unravel)
