"""Spin-up to the cyclo-stationary state by solving for the periodic orbit (no millennia of simulation).

Under a repeated climate year the model's one-year map ``x -> F(x)`` (the state on day 365 given the
state on day 0) has the cyclo-stationary state as its fixed point ``x* = F(x*)``. Tiles never interact,
so the Jacobian of ``F`` is block diagonal with one ``11 x 11`` block per tile; all blocks come from 11
forward-mode JVPs through the year (tangent ``e_k`` on every tile at once). Newton's method
``x <- x - (J - I)^-1 (F(x) - x)`` then converges in a few iterations: the litter and soil pools, which
would need thousands of simulated years (turnover of centuries in cold soils), are linear given their
inputs and are solved exactly by the first step; the nonlinear vegetation feedback (LAI -> GPP ->
allocation) converges quadratically. Each iteration tries the full step, half, a tenth and the plain
fixed-point update ``F(x)``, and keeps per tile the candidate with the smallest scaled residual (a
per-tile backtracking line search); pools and water may shrink by at most 90 % per iteration. Tiles
still drifting after ``max_iter`` iterations get an establishment test: saplings grown for a few years
on the current soil; where they shrink, the vegetation cannot persist and the periodic state is bare
ground (all pools zero; counted in the report); elsewhere Newton restarts from the grown state.

This is the Newton-Krylov-free variant of the periodic-orbit spin-up (cf. Khatiwala 2008, Ocean Model. 23,
for the matrix-free transport-matrix version; Xia et al. 2012, GMD 5, for the semi-analytic carbon-pool
solution).

The spun-up state is differentiable with respect to the parameters through the implicit-function theorem
(:func:`implicit_steady_state`): ``dx*/dp = (I - J)^-1 dF/dp``, applied per tile in the backward pass,
so gradients do not unroll the Newton iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.models.biosphere.drivers import DriverSource
from diffflux.models.biosphere.model import STATE_FIELDS, Biosphere, BiosphereState
from diffflux.models.biosphere.params import BiosphereParams

NSTATE = len(STATE_FIELDS)
# Residual scales per state component (pools g C m-2, water/snow kg m-2, gdd degC d, t10 degC, w10 -).
_SCALE = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 100.0, 1.0, 0.1])
_NONNEG = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)


@dataclass(frozen=True)
class SpinupReport:
    """What the spin-up did.

    Attributes:
        iterations: Newton iterations taken.
        residual: ``(iterations + 1,)`` max over tiles of the scaled residual ``|F(x) - x| / (|x| + s)``.
        max_nep: largest ``|annual NEP|`` of any tile after the last iteration [g C m-2 yr-1].
        converged: whether ``max_nep <= tol_nep`` was reached.
        bare_tiles: tiles whose vegetation cannot establish under the climate (saplings shrink), set to
            bare ground.
    """

    iterations: int
    residual: tuple[float, ...]
    max_nep: float
    converged: bool
    bare_tiles: int = 0


def _year_map(bio: Biosphere, drivers: DriverSource, ndays: int):
    def F(params, x):
        state = BiosphereState.from_array(x)
        final, _, _ = bio.simulate(params, state, drivers, ndays, outputs=None)
        return final.as_array()

    return F


@eqx.filter_jit
def _year_jit(bio, drivers, params, x):
    return _year_map(bio, drivers, drivers.days_per_cycle)(params, x)


@eqx.filter_jit
def _jac_jit(bio, drivers, params, x):
    """``F(x)`` and the per-tile Jacobian blocks ``J[i, k, t] = dF_i/dx_k`` (11 JVPs, all tiles at once)."""
    F = _year_map(bio, drivers, drivers.days_per_cycle)
    eye = jnp.eye(NSTATE, dtype=x.dtype)

    def col(k):
        tangent = jnp.broadcast_to(eye[k][:, None], x.shape)
        return jax.jvp(lambda y: F(params, y), (x,), (tangent,))

    fx, cols = jax.vmap(col)(jnp.arange(NSTATE))
    return fx[0], jnp.moveaxis(cols, 0, 1)


@eqx.filter_jit
def _candidates_jit(bio, drivers, params, x, delta, fx):
    """Per tile, the best of the full, half and tenth Newton step and the fixed-point update."""
    F = _year_map(bio, drivers, drivers.days_per_cycle)
    nonneg = jnp.asarray(_NONNEG)[:, None]
    cands = [x + a * delta for a in (1.0, 0.5, 0.1)] + [fx]
    # Non-negative components may shrink by at most 90 % per iteration: clipping at zero would land
    # on bare ground, a spurious fixed point (collapse is decided by the establishment test).
    cands = jnp.stack([jnp.where(nonneg, jnp.maximum(c, 0.1 * x), c) for c in cands])
    fc = jax.vmap(lambda c: F(params, c))(cands)
    res = jax.vmap(_scaled)(fc - cands, cands)  # (4, ntile)
    best = jnp.argmin(res, axis=0)
    pick = lambda a: jnp.take_along_axis(a, best[None, None, :], axis=0)[0]  # noqa: E731
    return pick(cands), pick(fc), jnp.min(res, axis=0)


def _scaled(r, x):
    return jnp.max(jnp.abs(r) / (jnp.abs(x) + jnp.asarray(_SCALE, r.dtype)[:, None]), axis=0)


def spinup(
    bio: Biosphere,
    params: BiosphereParams,
    drivers: DriverSource,
    state: BiosphereState | None = None,
    *,
    warmup_years: int = 3,
    max_iter: int = 10,
    tol_nep: float = 0.01,
    seedling_years: int = 5,
    verbose: bool = False,
) -> tuple[BiosphereState, SpinupReport]:
    """Cyclo-stationary state under the repeated driver cycle (``drivers.days_per_cycle`` days).

    Args:
        state: starting guess (default :meth:`Biosphere.initial_state`).
        warmup_years: plain simulated cycles before Newton (lets phenology and water settle).
        max_iter: Newton iterations at most (per pass; a second pass follows the establishment test).
        tol_nep: stop when every tile's annual carbon change is below this [g C m-2 yr-1].

    Returns:
        ``(state, report)``. The state is not traced (use :func:`implicit_steady_state` for gradients).
    """
    dtype = next(iter(params.pft.values())).dtype
    x = (state if state is not None else bio.initial_state(params, dtype)).as_array()
    def F_jit(params, x):
        return _year_jit(bio, drivers, params, x)

    def jac(params, x):
        return _jac_jit(bio, drivers, params, x)

    def candidates(params, x, delta, fx):
        return _candidates_jit(bio, drivers, params, x, delta, fx)

    for _ in range(warmup_years):
        x = F_jit(params, x)

    def newton(x, max_iter):
        fx, J = jac(params, x)
        residuals = [float(_scaled(fx - x, x).max())]
        nep = float(jnp.abs((fx - x)[:5].sum(axis=0)).max())
        it = 0
        while it < max_iter and nep > tol_nep:
            it += 1
            r = fx - x
            A = jnp.moveaxis(J, 2, 0) - jnp.eye(NSTATE, dtype=x.dtype)  # (ntile, 11, 11)
            delta = jnp.linalg.solve(A, -jnp.moveaxis(r, 1, 0)[..., None])[..., 0].T
            delta = jnp.where(jnp.isfinite(delta), delta, r)
            x, fx, res = candidates(params, x, delta, fx)
            nep = float(jnp.abs((fx - x)[:5].sum(axis=0)).max())
            residuals.append(float(res.max()))
            if verbose:
                print(
                    f"spin-up iteration {it}: max scaled residual {residuals[-1]:.3e}, "
                    f"max |NEP| {nep:.3e} g C m-2 yr-1"
                )
            if nep > tol_nep:
                _, J = jac(params, x)
        return x, fx, residuals, nep, it

    x, fx, residuals, nep, it = newton(x, max_iter)
    bare = 0
    if nep > tol_nep:
        # Tiles still drifting: test whether their vegetation can establish at all. Saplings (foliage for
        # 30 % of the optimal LAI, 100 g C of stem and of root) grown for ``seedling_years`` on the current
        # soil: where living biomass shrinks, the only periodic state is bare ground (all pools zero);
        # elsewhere restart Newton from the grown state.
        tile_nep = jnp.abs((fx - x)[:5].sum(axis=0))
        drifting = tile_nep > tol_nep
        pft_vals, _ = params.effective()
        leaf0 = (0.3 * pft_vals["lai_opt"] / pft_vals["sla"])[jnp.asarray(bio.tiles.pft)]
        sapling = jnp.stack([leaf0, jnp.full_like(leaf0, 100.0), jnp.full_like(leaf0, 100.0)])
        seed = jnp.concatenate([sapling, x[3:]])
        grown = seed
        for _ in range(seedling_years):
            grown = F_jit(params, grown)
        dies = drifting & (grown[:3].sum(axis=0) < seed[:3].sum(axis=0))
        bare = int(dies.sum())
        x = jnp.where(dies[None, :] & (jnp.arange(NSTATE)[:, None] < 5), 0.0, x)
        x = jnp.where(drifting[None, :] & ~dies[None, :], grown, x)
        if verbose:
            print(f"spin-up: {bare} tiles cannot establish (set to bare ground); restarting Newton")
        x, fx, more, nep, it2 = newton(x, max_iter)
        residuals += more
        it += it2
    report = SpinupReport(
        iterations=it, residual=tuple(residuals), max_nep=nep, converged=nep <= tol_nep, bare_tiles=bare
    )
    return BiosphereState.from_array(x), report


def implicit_steady_state(bio: Biosphere, drivers: DriverSource, params: BiosphereParams, x_star):
    """The fixed point ``x*`` as a differentiable function of ``params`` (implicit function theorem).

    ``x_star``: the converged ``(11, ntile)`` state from :func:`spinup` for these ``params``. The forward
    value is ``x_star`` itself; the backward pass solves ``(I - J)^T lam = g`` per tile with the block
    Jacobian at ``x*`` and returns ``(dF/dp)^T lam``.
    """
    F = _year_map(bio, drivers, drivers.days_per_cycle)

    @jax.custom_vjp
    def fixed_point(p):
        return x_star

    def fwd(p):
        return x_star, p

    def bwd(p, g):
        _, J = _jac_jit(bio, drivers, p, x_star)  # J[i, k, t] = dF_i/dx_k on tile t
        A = jnp.eye(NSTATE, dtype=x_star.dtype)[None] - jnp.moveaxis(J, 2, 0)  # (t, i, k): I - J_t
        # (I - J_t)^T lam_t = g_t
        lam = jnp.linalg.solve(jnp.transpose(A, (0, 2, 1)), jnp.moveaxis(g, 1, 0)[..., None])[..., 0].T
        _, vjp = jax.vjp(lambda q: F(q, x_star), p)
        return vjp(lam)

    fixed_point.defvjp(fwd, bwd)
    return fixed_point(params)
