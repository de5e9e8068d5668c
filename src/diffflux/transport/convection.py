"""Conservative convective mass-flux mixing: bulk updraft, entrainment, detrainment, subsidence.

Column model after the bulk mass-flux formulation of Tiedtke (1989, "A comprehensive mass flux
scheme for cumulus parameterization in large-scale models", Mon. Wea. Rev. 117, 1779-1800), reduced
to what a tracer-transport model needs (as in TM5 and GEOS-Chem, which apply archived updraft mass
fluxes to tracers): a single updraft whose mass flux is prescribed by the met, no downdrafts.

Placement (level ``k`` between interfaces ``k`` (bottom) and ``k + 1`` (top), level 0 at the
surface):

* ``Mu (nlev + 1, nlat, nlon)`` [kg s-1 per cell]: updraft mass flux through interface ``k``, >= 0,
  zero at the surface (``k = 0``) and at the model top (``k = nlev``);
* entrainment into level ``k``: ``E_k = max(Mu_{k+1} - Mu_k, 0)`` (where ``Mu`` grows with height),
  detrainment from level ``k``: ``D_k = max(Mu_k - Mu_{k+1}, 0)`` (where it decreases), so that the
  updraft mass budget ``Mu_{k+1} = Mu_k + E_k - D_k`` holds exactly (Tiedtke 1989, eq. 3);
* updraft mixing ratio at interface ``k + 1`` from the bottom up (Tiedtke 1989, eq. 4 for a passive
  tracer): ``Mu_{k+1} chi_u,{k+1} = (Mu_k - D_k) chi_u,k + E_k chi_k``, written as the convex update
  ``chi_u,{k+1} = chi_u,k + w_k (chi_k - chi_u,k)`` with ``w_k = E_k / Mu_{k+1}`` in ``[0, 1]``
  (``w_k = 1`` where ``Mu_{k+1} = 0``, which has no effect on the fluxes);
* compensating environmental subsidence equal to ``Mu`` at every interface, so the net air-mass flux
  of the column vanishes and the air mass is unchanged; it is taken upwind (from the level above).

The net upward tracer flux through interface ``k`` is therefore
``G_k = Mu_k (chi_u,k - chi_k) / M_air`` [mol s-1] (updraft up minus subsidence down; ``chi_k`` is
the level above the interface) and the update is the flux difference
``q_k += dt (G_k - G_{k+1})``. Consequences:

* tracer mass is conserved to round-off (each ``G`` leaves one level and enters the next; ``G`` is
  zero at the surface and top);
* a uniform mixing ratio is a fixed point exactly (``chi_u = chi`` then ``G = 0`` bit for bit);
* with ``Mu`` fixed the step is linear in the tracer; it is differentiable in the tracer, the air
  mass and ``Mu``.

Time integration is explicit (forward Euler, upwind). Expanding the update gives
``chi_k' = (1 - c_k) chi_k + (dt / m_k) (D_k chi_u,k + Mu_{k+1} chi_{k+1})`` with
``c_k = dt max(Mu_k, Mu_{k+1}) / m_k``; every coefficient is non-negative and they sum to one when
``c_k <= 1``, so the scheme is positivity preserving and monotone (no new extrema) under the limit

    dt_sub * max(Mu_k, Mu_{k+1}) <= m_k   in every level (``m_k`` the air mass of the level [kg]).

``substeps`` (a static integer fixed at construction) splits ``dt`` into that many equal sub-steps;
:func:`convective_substeps` returns the smallest number that satisfies the limit for given met. When
``check`` is True a violation raises a clear run-time error from inside ``jit``/``scan``
(:func:`equinox.error_if`); set ``check=False`` to remove that test (slightly faster on GPU, and
needed for :func:`jax.linear_transpose`, which cannot transpose the error check; reverse-mode
differentiation works either way).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.constants import M_AIR
from diffflux.transport.compensated import compensated_add


def _safe_div(a, b):
    return a / jnp.where(b == 0, jnp.ones_like(b), b)


def convective_courant(conv_mflux, m, dt):
    """Largest convective Courant number ``dt max(Mu_k, Mu_{k+1}) / m_k`` over all cells.

    Args:
        conv_mflux: ``(nlev + 1, nlat, nlon)`` updraft mass flux at interfaces [kg s-1].
        m: ``(nlev, nlat, nlon)`` air mass per cell [kg].
        dt: time step [s] (of one convective sub-step).

    Returns:
        Scalar array; the explicit scheme is positive and monotone when it is <= 1.
    """
    mu = jnp.asarray(conv_mflux)
    m = jnp.asarray(m)
    outflow = jnp.maximum(mu[:-1], mu[1:]) * dt
    return jnp.max(_safe_div(outflow, m))


def convective_substeps(conv_mflux, m, dt, *, limit: float = 1.0) -> int:
    """Smallest number of equal sub-steps that keeps the convective Courant number <= ``limit``.

    Evaluated eagerly (outside ``jit``); pass the largest updraft mass flux the run will meet (e.g.
    the maximum over met times). Returns an ``int`` >= 1 for :class:`ConvectiveMassFlux`.
    """
    c = float(np.asarray(convective_courant(conv_mflux, m, dt)))
    if not np.isfinite(c):
        raise ValueError(f"convective_substeps: conv_mflux or air mass is not finite (Courant {c})")
    return max(1, int(np.ceil(c / limit - 1e-12)))


class ConvectiveMassFlux(eqx.Module):
    """Bulk updraft mass-flux convective transport (Tiedtke 1989), explicit and conservative.

    Call as ``scheme(q, m, conv_mflux, dt) -> q`` with ``q (ntr, nlev, nlat, nlon)`` [mol],
    ``m (nlev, nlat, nlon)`` [kg], ``conv_mflux (nlev + 1, nlat, nlon)`` [kg s-1] at interfaces
    (zero at surface and top) and ``dt`` [s]; see the module docstring for the discretisation.

    Attributes:
        substeps: number of equal explicit sub-steps per call (static).
        check: raise a run-time error when a sub-step violates
            ``dt_sub max(Mu_k, Mu_{k+1}) <= m_k``.
        unroll: ``unroll`` argument of the bottom-up ``lax.scan`` over levels (``True`` unrolls it,
            best for the small level counts of transport models).
    """

    substeps: int = eqx.field(static=True, default=1)
    check: bool = eqx.field(static=True, default=True)
    unroll: int | bool = eqx.field(static=True, default=True)

    def __post_init__(self) -> None:
        if not isinstance(self.substeps, (int, np.integer)) or self.substeps < 1:
            raise ValueError(
                f"ConvectiveMassFlux: substeps must be an integer >= 1, found {self.substeps!r}"
            )

    def updraft_mixing_ratio(self, chi, conv_mflux):
        """Updraft mixing ratio at interfaces ``(ntr, nlev + 1, nlat, nlon)`` (bottom-up recursion).

        ``chi (ntr, nlev, nlat, nlon)`` is the environmental mixing ratio. Interface 0 (the surface)
        takes the lowest level's value (the updraft starts there with ``Mu_0 = 0``).
        """
        mu = conv_mflux
        ent = jnp.maximum(mu[1:] - mu[:-1], 0.0)  # (nlev, ...)
        w = jnp.where(mu[1:] > 0, _safe_div(ent, mu[1:]), jnp.ones_like(ent))
        w = jnp.clip(w, 0.0, 1.0)
        chi_levels = jnp.moveaxis(chi, 1, 0)  # (nlev, ntr, ...)

        def body(chi_u, xs):
            wk, chik = xs
            nxt = chi_u + wk[None] * (chik - chi_u)
            return nxt, nxt

        first = chi_levels[0]
        _, upper = lax.scan(body, first, (w, chi_levels), unroll=self.unroll)
        chi_u = jnp.concatenate([first[None], upper], axis=0)  # (nlev + 1, ntr, ...)
        return jnp.moveaxis(chi_u, 0, 1)

    def tendency(self, q, m, conv_mflux):
        """Tracer tendency ``dq/dt (ntr, nlev, nlat, nlon)`` [mol s-1] as a flux difference."""
        chi = q * M_AIR / m[None]
        chi_u = self.updraft_mixing_ratio(chi, conv_mflux)
        mu = conv_mflux[None]
        # net upward flux through interface k (level k above it); zero at surface and top
        chi_above = jnp.concatenate([chi, chi[:, -1:]], axis=1)
        g = mu * (chi_u - chi_above) / M_AIR
        g = g.at[:, 0].set(0.0).at[:, -1].set(0.0)
        return g[:, :-1] - g[:, 1:]

    def __call__(self, q, m, conv_mflux, dt, residual=None):
        """Mix ``q`` [mol] over ``dt`` [s]; with a tracer ``residual`` (:mod:`~diffflux.transport.
        compensated`) every sub-step's increment is added with compensation and ``(q, residual)`` is
        returned."""
        dtype = m.dtype
        mu = jnp.asarray(conv_mflux, dtype=dtype)
        dt_sub = jnp.asarray(dt, dtype=dtype) / self.substeps
        if self.check:
            c = convective_courant(mu, m, dt_sub)
            q = eqx.error_if(
                q,
                c > 1.0 + 1e-6,
                "ConvectiveMassFlux: convective Courant number dt_sub*max(Mu_k, Mu_k+1)/m_k "
                "exceeds 1 (conv_mflux too large for the air mass); increase "
                "ConvectiveMassFlux(substeps=...) (see convective_substeps) or reduce dt",
            )

        if residual is not None:
            def sub_c(carry, _):
                qc, rc = carry
                return compensated_add(qc, dt_sub * self.tendency(qc, m, mu), rc), None

            if self.substeps == 1:
                return sub_c((q, residual), None)[0]
            out, _ = lax.scan(sub_c, (q, residual), None, length=self.substeps)
            return out

        def sub(qc, _):
            return qc + dt_sub * self.tendency(qc, m, mu), None

        if self.substeps == 1:
            return sub(q, None)[0]
        q, _ = lax.scan(sub, q, None, length=self.substeps)
        return q
