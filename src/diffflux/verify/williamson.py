"""Williamson et al. (1992) test case 1: a cosine bell carried once around the sphere in 12 days.

Solid-body rotation about an axis tilted by ``alpha`` from the Earth's axis (Williamson et al. 1992,
J. Comput. Phys. 102, 211-224, test case 1):

    u = u0 (cos(lat) cos(alpha) + sin(lat) cos(lon) sin(alpha)),   v = -u0 sin(lon) sin(alpha),
    u0 = 2 pi a / (12 days),

the velocity streamfunction ``psi = -a u0 (sin(lat) cos(alpha) - cos(lon) cos(lat) sin(alpha))``.
The flow is set up as discretely non-divergent layer mass fluxes from ``psi`` at the cell corners
(:func:`~diffflux.met.mass_fluxes_from_streamfunction`), so the single-layer air mass stays uniform.
The initial field is the cosine bell ``h = (h0 / 2)(1 + cos(pi r / R))`` for ``r < R = a / 3``,
centred at ``(lon, lat) = (3 pi / 2, 0)`` (= -90 deg east), ``h0 = 1000`` (taken as a mixing ratio);
after 12 days the exact solution is the initial field. ``alpha = 0`` moves the bell along the
equator; ``alpha = pi / 2 - 0.05`` carries it almost over both poles, where the zonal Courant number
of the lat-lon grid is far above one (handled by the flux-form semi-Lagrangian zonal sweep).

Fields are cell averages (Gauss-Legendre quadrature over each cell), the natural finite-volume
representation; the norms compare cell averages.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid, great_circle_distance
from diffflux.met import ConstantMet, MetFields, mass_fluxes_from_streamfunction
from diffflux.transport import PPM, Reconstruction, Transport, courant_numbers, run
from diffflux.verify.diagnostics import cell_average, convergence_order, error_norms

DAY = 86400.0
H0 = 1000.0
ALPHA_POLE = math.pi / 2 - 0.05


def cosine_bell(grid: LatLonGrid, nq: int = 4) -> np.ndarray:
    """Williamson case-1 cosine bell: cell averages ``(nlat, nlon)``, maximum ``h0 = 1000``."""
    big_r = grid.radius / 3.0

    def fn(lat, lon):
        r = great_circle_distance(lat, lon, 0.0, -90.0, radius=grid.radius)
        return np.where(r < big_r, 0.5 * H0 * (1.0 + np.cos(np.pi * r / big_r)), 0.0)

    return cell_average(fn, grid, nq)


def solid_body_met(grid: LatLonGrid, alpha: float, days: float = 12.0, dtype=jnp.float64):
    """Constant met for the solid-body rotation; returns ``(met, ps, u0)`` (``u0`` in m s-1)."""
    a = grid.radius
    u0 = 2.0 * math.pi * a / (days * DAY)
    lat_e = np.deg2rad(grid.lat_edges)[:, None]
    lon_e = np.deg2rad(grid.lon_edges[:-1])[None, :]
    ca, sa = math.cos(alpha), math.sin(alpha)
    psi = -a * u0 * (np.sin(lat_e) * ca - np.cos(lon_e) * np.cos(lat_e) * sa)
    psi[0, :] = psi[0, 0]
    psi[-1, :] = psi[-1, 0]
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    dp = grid.levels.thickness(ps)
    mfx, mfy = mass_fluxes_from_streamfunction(grid, jnp.asarray(psi, dtype=dtype), jnp.asarray(dp))
    met = ConstantMet(MetFields(ps=jnp.asarray(ps, dtype=dtype), mfx=mfx, mfy=mfy))
    return met, ps, u0


def williamson1(
    nlon: int,
    nlat: int,
    alpha: float,
    advection: Reconstruction | None = None,
    cfl: float = 0.8,
    dtype=jnp.float64,
) -> dict:
    """Run Williamson case 1 once and measure the error after one revolution (12 days).

    The time step follows from the meridional Courant number ``cfl = u0 dt / dy`` (the full step;
    each of the two meridional half-sweeps moves half of it): ``nsteps = ceil(2 nlat / cfl)``.

    Args:
        nlon, nlat: grid size (single layer).
        alpha: rotation angle [rad].
        advection: reconstruction (default monotone PPM).
        cfl: target meridional Courant number of a full step.
        dtype: float dtype of the run.

    Returns:
        dict with ``l1, l2, linf`` (normalised errors), ``mass_rel`` (relative tracer-mass change),
        ``min_rel``/``max_rel`` (extremes relative to ``h0``), ``nsteps``, ``dt`` [s],
        ``courant_meridional``/``courant_zonal`` (per sweep, as :func:`courant_numbers`),
        ``seconds``.
    """
    advection = PPM() if advection is None else advection
    grid = LatLonGrid(nlon, nlat)
    met, ps, _ = solid_body_met(grid, alpha, dtype=dtype)
    h = cosine_bell(grid)
    model = Transport(grid, advection=advection, vertical_diffusion=None)
    st0 = model.initial_state(jnp.asarray(h[None, None], dtype=dtype), jnp.asarray(ps, dtype=dtype))
    nsteps = int(math.ceil(2.0 * nlat / cfl))
    dt = 12.0 * DAY / nsteps
    cour = courant_numbers(model, met, st0, dt=dt, times=[0.0])
    t = time.perf_counter()
    st = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps)[0])(st0)
    st.tracer.block_until_ready()
    sec = time.perf_counter() - t
    chi = np.asarray(st.mixing_ratio()[0, 0], dtype=np.float64)
    out = error_norms(chi, h, grid.area)
    q0 = float(np.sum(np.asarray(st0.tracer, dtype=np.float64)))
    q1 = float(np.sum(np.asarray(st.tracer, dtype=np.float64)))
    out.update(
        mass_rel=(q1 - q0) / q0,
        min_rel=float(chi.min()) / H0,
        max_rel=float(chi.max()) / H0,
        nsteps=float(nsteps),
        dt=dt,
        courant_meridional=cour["meridional"],
        courant_zonal=cour["zonal"],
        seconds=sec,
    )
    return out


def williamson1_convergence(
    resolutions: list[tuple[int, int]],
    alphas: tuple[float, ...] = (0.0, ALPHA_POLE),
    advection: Reconstruction | None = None,
    cfl: float = 0.8,
    dtype=jnp.float64,
    progress=None,
) -> dict:
    """Williamson case 1 at several resolutions and rotation angles.

    Returns:
        ``{"runs": {(alpha, nlon, nlat): result}, "order": {(alpha, norm): p},
        "pole_ratio": {(nlon, nlat, norm): e(alpha_pole) / e(0)}}`` where the orders are
        least-squares slopes of the norms on the latitude spacing and the pole ratio compares the
        largest and the smallest angle at each resolution.
    """
    runs = {}
    for alpha in alphas:
        for nlon, nlat in resolutions:
            r = williamson1(nlon, nlat, alpha, advection=advection, cfl=cfl, dtype=dtype)
            runs[(alpha, nlon, nlat)] = r
            if progress is not None:
                progress(
                    f"  williamson1 alpha={alpha:.4f} {nlon}x{nlat}: l1={r['l1']:.4g} "
                    f"l2={r['l2']:.4g} linf={r['linf']:.4g} ({r['seconds']:.1f} s)"
                )
    spacing = [180.0 / nlat for _, nlat in resolutions]
    order = {}
    for alpha in alphas:
        for norm in ("l1", "l2", "linf"):
            errs = [runs[(alpha, nlon, nlat)][norm] for nlon, nlat in resolutions]
            order[(alpha, norm)] = convergence_order(spacing, errs)
    ratio = {}
    if len(alphas) > 1:
        a0, a1 = min(alphas), max(alphas)
        for nlon, nlat in resolutions:
            for norm in ("l1", "l2", "linf"):
                e1, e0 = runs[(a1, nlon, nlat)][norm], runs[(a0, nlon, nlat)][norm]
                ratio[(nlon, nlat, norm)] = e1 / e0
    return {"runs": runs, "order": order, "pole_ratio": ratio}
