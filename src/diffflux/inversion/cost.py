"""The 4D-Var cost function of a :class:`~diffflux.inversion.problem.Problem`, its gradient, and the two
adjoint checks of the chain (Taylor test, dot-product test).

In whitened variables (``x = x_b + B^1/2 z``, :mod:`diffflux.inversion.control`)::

    J(z) = J_b + J_o = 1/2 z . z + 1/2 |R^-1/2 (y - H(x(z)))|^2                       [1]

with ``H`` the whole chain (:meth:`Problem.observe`) and ``R`` diagonal
(:class:`~diffflux.inversion.obs_error.ObservationError`). ``grad J = z - (dH dx/dz)^T R^-1 (y - H)`` comes
from ``jax.value_and_grad`` through the biosphere scan, the flux composer, the checkpointed transport scan and
the in-scan sampling (no hand-written adjoint). :func:`value_and_grad` jits once per problem structure (the
problem is an argument, not a constant: new observations or priors of the same shapes do not recompile).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def cost_terms(problem, z):
    """``(J_b, J_o)`` for the flat whitened control ``z`` ``(n,)``."""
    hx = problem.observe_z(z)
    r = problem.obs_error.whiten(problem.y - hx)
    return 0.5 * jnp.vdot(z, z), 0.5 * jnp.vdot(r, r)


def cost(problem, z):
    """``J(z) = 1/2 z.z + 1/2 |R^-1/2 (y - H(x(z)))|^2`` [1]."""
    jb, jo = cost_terms(problem, z)
    return jb + jo


@eqx.filter_jit
def _value_and_grad(problem, z):
    return jax.value_and_grad(lambda zz: cost(problem, zz))(z)


@eqx.filter_jit
def _observe(problem, z):
    return problem.observe_z(z)


def observe(problem, z):
    """``H(x(z))`` ``(nobs,)`` [mol mol-1] for the flat whitened control ``z``, jitted."""
    return _observe(problem, jnp.asarray(z, problem.y.dtype))


@eqx.filter_jit
def _terms(problem, z):
    return cost_terms(problem, z)


def value_and_grad(problem, z):
    """``(J(z), grad J(z))``, jitted (compiled once per problem structure and dtype)."""
    z = jnp.asarray(z, problem.y.dtype)
    if z.shape != (problem.control.size,):
        raise ValueError(f"value_and_grad: z must have shape ({problem.control.size},), found {z.shape}")
    return _value_and_grad(problem, z)


def terms(problem, z):
    """``(J_b, J_o)``, jitted."""
    return _terms(problem, jnp.asarray(z, problem.y.dtype))


def make_value_and_grad(problem):
    """``f(z) -> (J, g)`` bound to ``problem`` (for the solvers); one compilation."""
    return lambda z: value_and_grad(problem, z)


# -------------------------------------------------------------------------------------------------
# checks
# -------------------------------------------------------------------------------------------------


def taylor_test(fun_and_grad, z, d, hs):
    """Remainders ``|J(z + h d) - J(z) - h g.d|`` for the step sizes ``hs`` and their fitted order.

    Returns ``(remainders (nh,), slope)`` where ``slope`` is the least-squares slope of ``log r`` against
    ``log h`` (2 for a correct gradient, 1 for a wrong one).
    """
    j0, g = fun_and_grad(z)
    gd = float(jnp.vdot(g, d))
    r = []
    for h in hs:
        jh, _ = fun_and_grad(z + h * d)
        r.append(abs(float(jh) - float(j0) - h * gd))
    r = np.asarray(r)
    slope = float(np.polyfit(np.log(np.asarray(hs)), np.log(r), 1)[0])
    return r, slope


def dot_product_test(problem, z, dz, w):
    """Adjoint test of the linearised chain ``L = d H(x(z)) / dz``: ``<L dz, w>`` vs ``<dz, L^T w>``.

    ``L dz`` by ``jax.jvp`` (forward mode); ``L^T w`` by ``jax.vjp`` of that tangent map (reverse mode,
    i.e. the transposed linearisation, as in ``jax.grad``), compiled together once.
    Returns ``(lhs, rhs, relative difference)``.
    """
    ldz, ltw = _jvp_vjp(problem, jnp.asarray(z), jnp.asarray(dz), jnp.asarray(w))
    lhs = float(jnp.vdot(ldz, w))
    rhs = float(jnp.vdot(dz, ltw))
    return lhs, rhs, abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-300)


@eqx.filter_jit
def _jvp_vjp(problem, z, dz, w):
    def tangent(d):
        return jax.jvp(problem.observe_z, (z,), (d,))[1]

    ldz, pull = jax.vjp(tangent, dz)
    return ldz, pull(w)[0]
