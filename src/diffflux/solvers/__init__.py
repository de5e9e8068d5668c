"""Solvers for the whitened inversion problem: one entry point :func:`minimise`, strategy objects
(:class:`LBFGS` default, :class:`Adam`, :class:`GaussNewtonCG`, :class:`Exact`), status codes,
checkpoint/resume
and posterior uncertainty utilities.

Example::

    from diffflux.solvers import LBFGS, LeastSquaresCost, minimise

    cost = LeastSquaresCost(residual=lambda z: (H @ (xb + S @ z) - y) / sigma_obs)
    res = minimise(cost, jnp.zeros(n), LBFGS(gtol=1e-8), callback=lambda k, j, g: print(k, j, g))
    assert res.converged, res.message
"""

from diffflux.solvers._types import LeastSquaresCost, Result, Status
from diffflux.solvers.krylov import CGInfo, cg_lanczos, lanczos_eigenpairs
from diffflux.solvers.minimise import LBFGS, AbstractSolver, Adam, Exact, GaussNewtonCG, minimise
from diffflux.solvers.uncertainty import (
    ExactPosterior,
    LowRankPosterior,
    dofs_from_eigvals,
    innovation_chi_square,
    lanczos_posterior,
    randomise_then_optimise,
    reduced_chi_square,
    uncertainty_reduction,
)

__all__ = [
    "LBFGS",
    "AbstractSolver",
    "Adam",
    "CGInfo",
    "Exact",
    "ExactPosterior",
    "GaussNewtonCG",
    "LeastSquaresCost",
    "LowRankPosterior",
    "Result",
    "Status",
    "cg_lanczos",
    "dofs_from_eigvals",
    "innovation_chi_square",
    "lanczos_eigenpairs",
    "lanczos_posterior",
    "minimise",
    "randomise_then_optimise",
    "reduced_chi_square",
    "uncertainty_reduction",
]
