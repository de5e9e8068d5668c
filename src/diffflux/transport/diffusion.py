"""Vertical (implicit) and horizontal (explicit, conservative) eddy diffusion of mixing ratio.

Both act on the mixing ratio ``chi = q M_air / m`` and are written as mass-weighted flux differences,
so tracer mass is conserved to round-off and a uniform mixing ratio is a fixed point.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import lax

from diffflux.constants import GRAVITY, M_AIR, R_DRY
from diffflux.transport.compensated import compensated_add


def thomas_solve(lower, diag, upper, rhs):
    """Solve tridiagonal systems along axis 0 by the Thomas algorithm (``lax.scan`` over levels).

    Args:
        lower, diag, upper: ``(n, ...)`` sub-, main and super-diagonals (``lower[0]`` and ``upper[-1]``
            are ignored); broadcastable against ``rhs[:, ...]`` without its leading tracer axis.
        rhs: ``(ntracer, n, ...)`` right-hand sides.

    Returns:
        ``(ntracer, n, ...)`` solution. The matrix must be diagonally dominant (no pivoting).
    """
    rhs_t = jnp.moveaxis(rhs, 1, 0)  # (n, ntr, ...)

    def fwd(carry, xs):
        c_prev, d_prev = carry
        lo, di, up, r = xs
        denom = di - lo * c_prev
        c = up / denom
        d = (r - lo[None] * d_prev) / denom[None]
        return (c, d), (c, d)

    c0 = jnp.zeros_like(diag[0])
    d0 = jnp.zeros_like(rhs_t[0])
    lower = lower.at[0].set(0.0)
    _, (cs, ds) = lax.scan(fwd, (c0, d0), (lower, diag, upper, rhs_t))

    def bwd(x_next, xs):
        c, d = xs
        x = d - c[None] * x_next
        return x, x

    _, xs = lax.scan(bwd, jnp.zeros_like(ds[0]), (cs, ds), reverse=True)
    return jnp.moveaxis(xs, 0, 1)


class ImplicitVerticalDiffusion(eqx.Module):
    """Backward-Euler vertical eddy diffusion, one tridiagonal solve per column.

    Discretisation (mass-weighted, level ``k`` between interfaces ``k`` and ``k + 1``):

        m_k (chi_k' - chi_k) / dt = E_{k+1} (chi'_{k+1} - chi'_k) - E_k (chi'_k - chi'_{k-1})

    with the interface exchange coefficient ``E = A rho^2 g Kz / dp_mid`` [kg s-1] (``rho = p / (R T)`` at
    the interface, ``dp_mid`` the pressure difference of the adjacent layer centres). No flux through the
    surface and the top (surface emissions enter the lowest layer as a source before the solve).
    Unconditionally stable and exactly conservative: the solved mixing ratios define the interface
    exchanges ``dt E (chi'_{k+1} - chi'_k)``, which are applied in flux form (each added to one layer and
    removed from its neighbour); the discrete column modes decay by ``1 / (1 + dt lambda)`` per step.
    """

    kz_min: float = 0.0
    """Background diffusivity added everywhere [m2 s-1]."""

    def exchange(self, m, kz, temperature, p_int, area):
        """Exchange coefficients ``(nlev + 1, nlat, nlon)`` [kg s-1]; zero at surface and top."""
        p_mid = 0.5 * (p_int[:-1] + p_int[1:])
        dp_mid = p_mid[:-1] - p_mid[1:]
        t_int = 0.5 * (temperature[:-1] + temperature[1:])
        rho = p_int[1:-1] / (R_DRY * t_int)
        k = kz[1:-1] + self.kz_min
        e = area[None] * rho * rho * GRAVITY * k / dp_mid
        z = jnp.zeros_like(e[:1])
        return jnp.concatenate([z, e, z], axis=0)

    def __call__(self, q, m, E, dt, residual=None):
        """Apply one step. ``q (ntr, nlev, nlat, nlon)`` [mol], ``m`` [kg], ``E`` [kg s-1], ``dt`` [s].

        With a tracer ``residual`` (:mod:`~diffflux.transport.compensated`) the flux difference of each
        layer is added with compensation and ``(q, residual)`` is returned.
        """
        a = dt * E
        lower = -a[:-1]
        upper = -a[1:]
        diag = m + a[:-1] + a[1:]
        chi_new = thomas_solve(lower, diag, upper, q * M_AIR)
        # Apply the solution in flux form: the amount exchanged through each interior interface is added
        # to one layer and removed from the other, so the column total is conserved to round-off of the
        # additions whatever the round-off of the solve (float32 runs otherwise drift by ~1e-6 per day).
        flux = a[None, 1:-1] * (chi_new[:, 1:] - chi_new[:, :-1]) / M_AIR  # into layer k from k + 1 [mol]
        zero = jnp.zeros_like(flux[:, :1])
        if residual is None:
            return q + jnp.concatenate([flux, zero], axis=1) - jnp.concatenate([zero, flux], axis=1)
        dq = jnp.concatenate([flux, zero], axis=1) - jnp.concatenate([zero, flux], axis=1)
        return compensated_add(q, dq, residual)


class HorizontalDiffusion(eqx.Module):
    """Explicit conservative horizontal eddy diffusion (forward Euler, one step per transport step).

    Fluxes through faces ``F = K (dp/g) L_face / d (chi_left - chi_right) / M_air`` [mol s-1]. Explicit
    stability requires ``K dt / d^2 <= 1/4`` per direction; near the poles the zonal spacing shrinks,
    so the diffusivity used on each face is ``min(K, max_number d^2 / dt)``: the scheme's documented
    effective diffusivity is reduced there (the same polar reduction as in coarse CTMs). The
    effective coefficient is a pure function of the grid and ``dt``.
    """

    max_number: float = 0.2

    def __call__(self, q, m, kh, dp, grid, dt, residual=None):
        """Apply one step: ``q (ntr, nlev, nlat, nlon)`` [mol], ``m`` [kg], ``kh`` [m2 s-1], ``dp`` [Pa],
        ``dt`` [s]. With a tracer ``residual`` the increment ``dt dq`` is added with compensation
        (:mod:`~diffflux.transport.compensated`) and ``(q, residual)`` is returned."""
        chi = q * M_AIR / m[None]
        kh = jnp.broadcast_to(jnp.asarray(kh, dtype=m.dtype), m.shape)
        dy = grid.dy
        coslat = jnp.cos(jnp.deg2rad(jnp.asarray(grid.lat, dtype=m.dtype)))
        dx = (grid.radius * grid.dlon) * coslat[None, :, None]
        # zonal faces (west face of i)
        kx = jnp.minimum(0.5 * (kh + jnp.roll(kh, 1, axis=-1)), self.max_number * dx * dx / dt)
        dpx = 0.5 * (dp + jnp.roll(dp, 1, axis=-1))
        gx = kx * dpx / GRAVITY * dy / dx / M_AIR
        fx = gx[None] * (jnp.roll(chi, 1, axis=-1) - chi)
        # meridional faces (south face of j, interior only)
        dxf = jnp.asarray(grid.dx_face_y[1:-1], dtype=m.dtype)[None, :, None]
        ky = jnp.minimum(0.5 * (kh[:, 1:] + kh[:, :-1]), self.max_number * dy * dy / dt)
        dpy = 0.5 * (dp[:, 1:] + dp[:, :-1])
        gy = ky * dpy / GRAVITY * dxf / dy / M_AIR
        fy = gy[None] * (chi[:, :, :-1] - chi[:, :, 1:])
        zero = jnp.zeros_like(fy[:, :, :1])
        fy = jnp.concatenate([zero, fy, zero], axis=2)
        dq = (fx - jnp.roll(fx, -1, axis=-1)) + (fy[:, :, :-1] - fy[:, :, 1:])
        if residual is None:
            return q + dt * dq
        return compensated_add(q, dt * dq, residual)
