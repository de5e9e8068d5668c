"""Air-mass fluxes through cell faces from winds or from a streamfunction.

Face placement follows :mod:`diffflux.grid`: zonal fluxes on the west face of each cell (periodic),
meridional fluxes on the south face of each row (``nlat + 1`` faces, zero at the poles).
"""

from __future__ import annotations

import jax.numpy as jnp

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid


def mass_fluxes_from_winds(grid: LatLonGrid, u, v, ps):
    """Face air-mass fluxes [kg s-1] from cell-centre winds.

    ``F_x = u_f dp_f dy / g`` and ``F_y = v_f dp_f dx_f / g`` with face values ``(.)_f`` the arithmetic
    mean of the two adjacent cells (Arakawa A -> C averaging).

    Args:
        grid: model grid.
        u, v: ``(nlev, nlat, nlon)`` eastward/northward wind at cell centres [m s-1].
        ps: ``(nlat, nlon)`` surface pressure [Pa].

    Returns:
        ``(mfx (nlev, nlat, nlon), mfy (nlev, nlat + 1, nlon))`` [kg s-1]; ``mfy`` is zero at the poles.
    """
    u = jnp.asarray(u)
    v = jnp.asarray(v)
    dtype = u.dtype
    dp = grid.levels.thickness(jnp.asarray(ps, dtype=dtype))
    u_f = 0.5 * (u + jnp.roll(u, 1, axis=-1))
    dpx = 0.5 * (dp + jnp.roll(dp, 1, axis=-1))
    mfx = u_f * dpx * (grid.dy / GRAVITY)
    v_f = 0.5 * (v[:, 1:] + v[:, :-1])
    dpy = 0.5 * (dp[:, 1:] + dp[:, :-1])
    dx = jnp.asarray(grid.dx_face_y[1:-1], dtype=dtype)[None, :, None]
    inner = v_f * dpy * dx / GRAVITY
    zero = jnp.zeros_like(inner[:, :1])
    mfy = jnp.concatenate([zero, inner, zero], axis=1)
    return mfx, mfy


def mass_fluxes_from_streamfunction(grid: LatLonGrid, psi, dp):
    """Discretely non-divergent face air-mass fluxes [kg s-1] from a corner streamfunction.

    With the velocity streamfunction ``psi`` [m2 s-1] (``u = -d psi / (a d lat)``,
    ``v = d psi / (a cos(lat) d lon)``) sampled at cell corners, the layer mass flux through a face is
    the difference of ``psi`` between its two ends times ``dp / g``. The horizontal divergence of the
    result is zero to round-off in every cell, so the air mass does not change.

    Args:
        grid: model grid.
        psi: ``(nlat + 1, nlon)`` or ``(nlev, nlat + 1, nlon)`` streamfunction at corners
            ``(lat_edges[j], lon_edges[i])`` [m2 s-1]; it must be constant along each pole row.
        dp: layer pressure thickness ``(nlev, nlat, nlon)`` [Pa] (uniform per layer for a strictly
            non-divergent mass flux; face values are averaged from the adjacent cells otherwise).

    Returns:
        ``(mfx (nlev, nlat, nlon), mfy (nlev, nlat + 1, nlon))`` [kg s-1].
    """
    psi = jnp.asarray(psi)
    dp = jnp.asarray(dp, dtype=psi.dtype)
    if psi.ndim == 2:
        psi = jnp.broadcast_to(psi[None], (dp.shape[0],) + psi.shape)
    # west face of cell (j, i): corners (j, i) south and (j + 1, i) north
    dpx = 0.5 * (dp + jnp.roll(dp, 1, axis=-1))
    mfx = -(psi[:, 1:, :] - psi[:, :-1, :]) * dpx / GRAVITY
    # south face of row j between corners (j, i) west and (j, i + 1) east
    dpy_in = 0.5 * (dp[:, 1:] + dp[:, :-1])
    dpy = jnp.concatenate([dp[:, :1], dpy_in, dp[:, -1:]], axis=1)
    mfy = (jnp.roll(psi, -1, axis=-1) - psi) * dpy / GRAVITY
    mfy = mfy.at[:, 0].set(0.0).at[:, -1].set(0.0)
    return mfx, mfy
