"""The inversion's one entry point: ``invert(problem, solver)``.

Runs a solver of :mod:`diffflux.solvers` on the whitened cost of a :class:`~diffflux.inversion.Problem`
and returns the posterior control in physical units per block, the model equivalents before and after,
and the diagnostics users quote: cost reduction, reduced chi-square ``2 J_min / m`` (about 1 when the
prior and observation errors are consistent; Tarantola 2005, ch. 7) and, for the Gauss-Newton/Lanczos and
exact solvers, the degrees of freedom for signal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from diffflux.solvers import LBFGS, minimise


@dataclasses.dataclass
class InversionResult:
    """Outcome of :func:`invert`.

    Attributes:
        solver_result: the :class:`diffflux.solvers.Result` (status, history, posterior products).
        z: posterior whitened control ``(n,)``.
        x: posterior control per block ``{block: physical array}`` (``x_b + B^1/2 z``).
        labels: a name for every element of ``z``.
        cost_prior, cost_posterior: ``J(0)`` and ``J(z)`` [1].
        reduced_chi_square: ``2 J(z) / m`` with ``m`` observations.
        dofs: degrees of freedom for signal (exact or Lanczos posterior), else ``None``.
        y, y_prior, y_posterior: observations and model equivalents at the prior and posterior ``(m,)``
            [mol mol-1].
    """

    solver_result: Any
    z: Any
    x: dict
    labels: list
    cost_prior: float
    cost_posterior: float
    reduced_chi_square: float
    dofs: float | None
    y: np.ndarray
    y_prior: np.ndarray
    y_posterior: np.ndarray

    @property
    def converged(self) -> bool:
        return self.solver_result.converged

    def summary(self) -> str:
        r = self.solver_result
        lines = [
            f"status {r.status.name} after {r.iterations} iterations ({r.message})",
            f"cost {self.cost_prior:.6g} -> {self.cost_posterior:.6g}; reduced chi-square "
            f"{self.reduced_chi_square:.3f} ({self.y.size} observations)",
            f"RMS misfit prior {_rms(self.y_prior - self.y):.4g}, "
            f"posterior {_rms(self.y_posterior - self.y):.4g} mol/mol",
        ]
        if self.dofs is not None:
            lines.append(f"degrees of freedom for signal {self.dofs:.2f} of {len(self.labels)} controls")
        return "\n".join(lines)


@eqx.filter_jit
def _observe(problem, z):
    return problem.observe_z(z)


@eqx.filter_jit
def _cost(problem, z):
    return problem.cost(z)


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def invert(
    problem, solver=None, *, z0=None, callback=None, checkpoint_path=None, checkpoint_every: int = 1
) -> InversionResult:
    """Minimise the problem's cost with ``solver`` (default :class:`~diffflux.solvers.LBFGS`).

    Args:
        problem: a :class:`~diffflux.inversion.Problem`.
        solver: a solver strategy (``LBFGS``, ``Adam``, ``GaussNewtonCG``, ``Exact``).
        z0: starting whitened control (default the prior, zeros).
        callback: ``callback(iteration, cost, grad_norm)`` progress reporting.
        checkpoint_path, checkpoint_every: optimiser checkpoints; an interrupted run resumes from them.
    """
    solver = solver if solver is not None else LBFGS()
    n = problem.control.size
    zero = jnp.zeros(n, dtype=problem.y.dtype)
    z0 = zero if z0 is None else jnp.asarray(z0, dtype=problem.y.dtype)
    res = minimise(
        problem.least_squares(),
        z0,
        solver,
        callback=callback,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
    )
    cost_prior = float(res.history_value[0]) if z0 is zero else float(_cost(problem, zero))
    y = np.asarray(problem.y)
    y_prior = np.asarray(_observe(problem, zero))
    y_post = np.asarray(_observe(problem, res.z))
    dofs = getattr(res.posterior, "dofs", None)
    return InversionResult(
        solver_result=res,
        z=res.z,
        x=problem.control.unwhiten(res.z),
        labels=list(problem.control.labels()),
        cost_prior=cost_prior,
        cost_posterior=float(res.value),
        reduced_chi_square=2.0 * float(res.value) / y.size,
        dofs=None if dofs is None else float(dofs),
        y=y,
        y_prior=y_prior,
        y_posterior=y_post,
    )
