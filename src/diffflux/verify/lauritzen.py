"""Deformational-flow test cases of Lauritzen et al. (2012) on the regular lat-lon grid.

Lauritzen, P. H., Skamarock, W. C., Prather, M. J. and Taylor, M. A. (2012), "A standard test case
suite for two-dimensional linear transport on the sphere", Geosci. Model Dev. 5, 887-901
(after Nair and Lauritzen 2010, J. Comput. Phys. 229, 8868-8887). The flows are written in the
paper's non-dimensional units (unit sphere, period ``T = 5``) and scaled to the Earth: radius ``a``,
period ``tau = 12 days``, so velocities scale by ``U = 5 a / tau`` [m s-1] (time ``t' = 5 t /
tau``). With ``lon' = lon - 2 pi t' / T`` (the background solid-body translation, one revolution per
period):

* case 4, non-divergent with translation (``k = 2.4``):
  ``u = k sin^2(lon') sin(2 lat) cos(pi t'/T) + 2 pi cos(lat) / T``,
  ``v = k sin(2 lon') cos(lat) cos(pi t'/T)``, streamfunction
  ``psi = k sin^2(lon') cos^2(lat) cos(pi t'/T) - 2 pi sin(lat) / T`` (``u = -d psi / d lat``,
  ``v = d psi / (cos(lat) d lon)``);
* case 3, divergent (``k = 1``), with the same translation:
  ``u = -k sin^2(lon'/2) sin(2 lat) cos^2(lat) cos(pi t'/T) + 2 pi cos(lat) / T``,
  ``v = (k / 2) sin(lon') cos^3(lat) cos(pi t'/T)``.

The flow reverses at ``T / 2`` so every tracer returns to its initial state at ``T``.

Mass fluxes. Case 4 uses corner streamfunction values, giving discretely non-divergent layer mass
fluxes (:func:`~diffflux.met.mass_fluxes_from_streamfunction`); the air mass stays uniform. In the
divergent case the air density obeys its own continuity equation (initially uniform) and the
mixing ratio is compared (Lauritzen et al. 2012). The mass fluxes must then be those of
the evolving air mass, ``F = (m / A)_face * u_face * L_face``, with the analytic wind at each face
(not a fixed flux: a prescribed ``rho0 u`` would transport the mixing ratio with ``rho0 u / rho``,
which with the translation no longer returns to the initial state). Each step evaluates them with
the mid-step air mass from a predictor half step (explicit midpoint rule, second order in time),
then :meth:`Transport.step` carries tracer and air with those fluxes; the air mass returns to
uniform at ``T`` up to the truncation error, which is reported.

Initial conditions of the paper, centres ``(lon, lat) = (5 pi / 6, 0)`` and ``(7 pi / 6, 0)``:
Gaussian hills (``h_max = 0.95, b0 = 5``), cosine bells (``b = 0.1, c = 0.9, r = 1/2``), slotted
cylinders (``b = 0.1, c = 1, r = 1/2``) and the correlated cosine bells ``psi(q) = -0.8 q^2 + 0.9``,
all as cell averages; the correlated tracer is the relation applied to the cell-averaged bells so
the initial scatter lies exactly on the curve. The four tracers are carried together in one run.

The time step comes from the meridional Courant number ``cfl = v_max dt / dy`` of case 4
(``v_max = 2.4 U``), identical for both cases so they are comparable; the zonal sweep is
semi-Lagrangian and takes any zonal Courant number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid
from diffflux.met import FunctionMet, MetFields, mass_fluxes_from_streamfunction
from diffflux.transport import PPM, Reconstruction, Transport, TransportState, run
from diffflux.verify.diagnostics import (
    cell_average,
    convergence_order,
    correlated_cosine_bells,
    error_norms,
    filament_diagnostic,
    mixing_diagnostics,
)

DAY = 86400.0
PERIOD = 12.0 * DAY
T_ND = 5.0
CENTRES = ((5.0 * math.pi / 6.0, 0.0), (7.0 * math.pi / 6.0, 0.0))
TRACERS = ("gaussian_hills", "cosine_bells", "slotted_cylinders", "correlated_bells")
K_CASE = {3: 1.0, 4: 2.4}
FILAMENT_TAUS = tuple(np.round(np.arange(0.1, 1.0001, 0.05), 2))


def velocity_scale(radius: float) -> float:
    """``U = 5 a / tau`` [m s-1]: non-dimensional velocity 1 on the unit sphere with ``T = 5``."""
    return T_ND * radius / PERIOD


# ---- initial conditions (non-dimensional, unit sphere) -------------------------------------------
def _xyz(lon, lat):
    return np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)


def _arc(lon, lat, lon_c, lat_c):
    s = np.sin(lat) * math.sin(lat_c) + np.cos(lat) * math.cos(lat_c) * np.cos(lon - lon_c)
    return np.arccos(np.clip(s, -1.0, 1.0))


def gaussian_hills(lat_deg, lon_deg):
    """Two Gaussian hills ``0.95 (exp(-5 |x - x1|^2) + exp(-5 |x - x2|^2))`` (Lauritzen et al. 2012)."""
    lon, lat = np.deg2rad(lon_deg), np.deg2rad(lat_deg)
    x, y, z = _xyz(lon, lat)
    out = 0.0
    for lc, pc in CENTRES:
        xc, yc, zc = _xyz(lc, pc)
        out = out + 0.95 * np.exp(-5.0 * ((x - xc) ** 2 + (y - yc) ** 2 + (z - zc) ** 2))
    return out


def cosine_bells(lat_deg, lon_deg):
    """Quasi-smooth cosine bells ``0.1 + 0.9 h_i`` inside radius 1/2 (Lauritzen et al. 2012)."""
    lon, lat = np.deg2rad(lon_deg), np.deg2rad(lat_deg)
    out = np.full(np.broadcast(lon, lat).shape, 0.1)
    for lc, pc in CENTRES:
        r = _arc(lon, lat, lc, pc)
        out = np.where(r < 0.5, 0.1 + 0.9 * 0.5 * (1.0 + np.cos(2.0 * math.pi * r)), out)
    return out


def slotted_cylinders(lat_deg, lon_deg):
    """Two slotted cylinders of height 1 on a 0.1 background, radius 1/2 (Lauritzen et al. 2012)."""
    lon, lat = np.deg2rad(lon_deg), np.deg2rad(lat_deg)
    r0 = 0.5
    out = np.full(np.broadcast(lon, lat).shape, 0.1)
    for i, (lc, pc) in enumerate(CENTRES):
        r = _arc(lon, lat, lc, pc)
        dlon = np.abs((lon - lc + math.pi) % (2.0 * math.pi) - math.pi)
        in_slot_band = dlon < r0 / 6.0
        solid_part = (lat - pc < -5.0 * r0 / 12.0) if i == 0 else (lat - pc > 5.0 * r0 / 12.0)
        filled = (r <= r0) & (~in_slot_band | solid_part)
        out = np.where(filled, 1.0, out)
    return out


def initial_tracers(grid: LatLonGrid, nq: int = 4) -> np.ndarray:
    """The four test tracers as cell averages ``(4, nlat, nlon)`` in the order of
    :data:`TRACERS`."""
    gh = cell_average(gaussian_hills, grid, nq)
    cb = cell_average(cosine_bells, grid, nq)
    sc = cell_average(slotted_cylinders, grid, nq)
    return np.stack([gh, cb, sc, correlated_cosine_bells(cb)])


# ---- flows ------------------------------------------------------------------------------------
def case4_met(grid: LatLonGrid, ps: np.ndarray, dtype=jnp.float64) -> FunctionMet:
    """Case 4 (non-divergent with translation) as discretely non-divergent mass fluxes in time."""
    a = grid.radius
    scale = a * velocity_scale(a)  # psi [m2 s-1] per non-dimensional unit
    lat_e = jnp.deg2rad(jnp.asarray(grid.lat_edges, dtype=dtype))[:, None]
    lon_e = jnp.deg2rad(jnp.asarray(grid.lon_edges[:-1], dtype=dtype))[None, :]
    dp = jnp.asarray(grid.levels.thickness(ps), dtype=dtype)
    ps_j = jnp.asarray(ps, dtype=dtype)
    k = K_CASE[4]

    def fn(t):
        tn = T_ND * t / PERIOD
        lonp = lon_e - 2.0 * math.pi * tn / T_ND
        psi = k * jnp.sin(lonp) ** 2 * jnp.cos(lat_e) ** 2 * jnp.cos(math.pi * tn / T_ND)
        psi = psi - 2.0 * math.pi / T_ND * jnp.sin(lat_e)
        psi = psi.at[0].set(psi[0, 0]).at[-1].set(psi[-1, 0])  # exactly constant on pole rows
        mfx, mfy = mass_fluxes_from_streamfunction(grid, scale * psi, dp)
        return MetFields(ps=ps_j, mfx=mfx, mfy=mfy)

    return FunctionMet(fn)


def case3_face_winds(grid: LatLonGrid, t, dtype=jnp.float64):
    """Case 3 (divergent) winds at the faces [m s-1] at time ``t`` [s] (pure JAX).

    Returns ``(u (nlat, nlon) on west faces, v (nlat + 1, nlon) on south faces, zero at the
    poles)``.
    """
    U = velocity_scale(grid.radius)
    k = K_CASE[3]
    tn = T_ND * t / PERIOD
    c = jnp.cos(math.pi * tn / T_ND)
    shift = 2.0 * math.pi * tn / T_ND
    lat_c = jnp.deg2rad(jnp.asarray(grid.lat, dtype=dtype))[:, None]
    lon_w = jnp.deg2rad(jnp.asarray(grid.lon_edges[:-1], dtype=dtype))[None, :] - shift
    u = -k * jnp.sin(0.5 * lon_w) ** 2 * jnp.sin(2.0 * lat_c) * jnp.cos(lat_c) ** 2 * c
    u = U * (u + 2.0 * math.pi / T_ND * jnp.cos(lat_c))
    lat_s = jnp.deg2rad(jnp.asarray(grid.lat_edges, dtype=dtype))[:, None]
    lon_c = jnp.deg2rad(jnp.asarray(grid.lon, dtype=dtype))[None, :] - shift
    v = U * 0.5 * k * jnp.sin(lon_c) * jnp.cos(lat_s) ** 3 * c
    v = v.at[0].set(0.0).at[-1].set(0.0)
    return u, v


def mass_fluxes_from_face_winds(grid: LatLonGrid, u, v, m):
    """Layer mass fluxes [kg s-1] of the current air mass ``m (nlev, nlat, nlon)`` [kg].

    ``Fx = u (m/A)_face dy`` through west faces and ``Fy = v (m/A)_face dx_face`` through south
    faces, with the face mass per area the mean of the two neighbours (C-grid); ``u (nlat, nlon)``
    and ``v (nlat + 1, nlon)`` [m s-1] apply to every level.
    """
    area = jnp.asarray(grid.area, dtype=m.dtype)
    sigma = m / area[None]  # kg m-2
    sx = 0.5 * (sigma + jnp.roll(sigma, 1, axis=-1))
    mfx = u[None] * sx * grid.dy
    sy = 0.5 * (sigma[:, 1:] + sigma[:, :-1])
    dx = jnp.asarray(grid.dx_face_y[1:-1], dtype=m.dtype)[None, :, None]
    inner = v[None, 1:-1] * sy * dx
    zero = jnp.zeros_like(inner[:, :1])
    return mfx, jnp.concatenate([zero, inner, zero], axis=1)


def run_consistent_divergent(model: Transport, state: TransportState, *, dt: float, nsteps: int,
                             t0=0.0) -> TransportState:
    """Integrate case 3 with mass fluxes of the evolving air mass (midpoint predictor, see module
    doc)."""
    grid = model.grid
    dtype = state.air.dtype

    def div(mfx, mfy):
        return (jnp.roll(mfx, -1, axis=-1) - mfx) + (mfy[:, 1:] - mfy[:, :-1])

    def body(s, n):
        t = t0 + (n.astype(dtype) + 0.5) * dt
        u, v = case3_face_winds(grid, t, dtype)
        m_half = s.air - 0.5 * dt * div(*mass_fluxes_from_face_winds(grid, u, v, s.air))
        mfx, mfy = mass_fluxes_from_face_winds(grid, u, v, m_half)
        ps = jnp.sum(m_half, axis=0) * GRAVITY / jnp.asarray(grid.area, dtype=dtype)
        return model.step(s, MetFields(ps=ps, mfx=mfx, mfy=mfy), dt), None

    state, _ = lax.scan(body, state, jnp.arange(nsteps))
    return state


def lauritzen_nsteps(nlat: int, cfl: float, radius: float) -> int:
    """Even number of steps per period for a case-4 meridional Courant number ``cfl``."""
    dy = radius * math.pi / nlat
    vmax = K_CASE[4] * velocity_scale(radius)
    n = int(math.ceil(PERIOD * vmax / (cfl * dy)))
    return n + (n % 2)


def lauritzen_run(
    case: int,
    dlat: float,
    advection: Reconstruction | None = None,
    cfl: float = 0.8,
    dtype=jnp.float64,
) -> dict:
    """One deformational-flow run (all four tracers) at ``dlat`` degrees, to ``T/2`` and ``T``.

    Args:
        case: 4 (non-divergent with translation) or 3 (divergent).
        dlat: grid spacing [degrees] (``dlon = dlat``).
        advection: reconstruction (default monotone PPM).
        cfl: case-4 meridional Courant number of a full step.
        dtype: float dtype.

    Returns:
        dict with ``norms`` ``{tracer: {l1, l2, linf}}`` at ``T``, ``min``/``max`` ``{tracer:
        value}`` at ``T``, ``filament_half`` ``{tau: l_f}`` of the cosine bells at ``T/2`` (and
        ``filament_end`` at ``T``), ``mixing`` ``{l_r, l_u, l_o}`` at ``T/2``, ``mass_rel``
        (relative tracer-mass change per tracer, max), ``air_return`` (relative l2 of the air mass
        at ``T`` against its initial value; zero for case 4), ``nsteps``, ``dt`` [s], ``seconds``.
    """
    if case not in (3, 4):
        raise ValueError(
            f"lauritzen_run: case must be 3 (divergent) or 4 (non-divergent), found {case}"
        )
    advection = PPM() if advection is None else advection
    nlat = int(round(180.0 / dlat))
    grid = LatLonGrid(2 * nlat, nlat)
    q0 = initial_tracers(grid)
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    model = Transport(grid, advection=advection, vertical_diffusion=None)
    st0 = model.initial_state(jnp.asarray(q0[:, None], dtype=dtype), jnp.asarray(ps, dtype=dtype))
    nsteps = lauritzen_nsteps(nlat, cfl, grid.radius)
    dt = PERIOD / nsteps
    half = nsteps // 2
    if case == 4:
        met = case4_met(grid, ps, dtype)

        @jax.jit
        def advance(s, t0):
            return run(model, met, s, dt=dt, nsteps=half, t0=t0)[0]
    else:

        @jax.jit
        def advance(s, t0):
            return run_consistent_divergent(model, s, dt=dt, nsteps=half, t0=t0)

    tic = time.perf_counter()
    st_half = advance(st0, 0.0)
    st_end = advance(st_half, half * dt)
    st_end.tracer.block_until_ready()
    sec = time.perf_counter() - tic

    chi_h = np.asarray(st_half.mixing_ratio()[:, 0], dtype=np.float64)
    chi_e = np.asarray(st_end.mixing_ratio()[:, 0], dtype=np.float64)
    area = grid.area
    norms = {name: error_norms(chi_e[i], q0[i], area) for i, name in enumerate(TRACERS)}
    tr0 = np.asarray(st0.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    tr1 = np.asarray(st_end.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    air0 = np.asarray(st0.air, dtype=np.float64)
    air1 = np.asarray(st_end.air, dtype=np.float64)
    return {
        "case": case,
        "dlat": dlat,
        "norms": norms,
        "min": {name: float(chi_e[i].min()) for i, name in enumerate(TRACERS)},
        "max": {name: float(chi_e[i].max()) for i, name in enumerate(TRACERS)},
        "filament_half": filament_diagnostic(chi_h[1], q0[1], area, FILAMENT_TAUS),
        "filament_end": filament_diagnostic(chi_e[1], q0[1], area, FILAMENT_TAUS),
        "mixing": mixing_diagnostics(chi_h[1], chi_h[3], area),
        "mass_rel": float(np.max(np.abs(tr1 / tr0 - 1.0))),
        "air_return": float(np.sqrt(np.sum((air1 - air0) ** 2) / np.sum(air0**2))),
        "nsteps": nsteps,
        "dt": dt,
        "seconds": sec,
    }


def lauritzen_convergence(
    case: int,
    dlats: Sequence[float],
    advection: Reconstruction | None = None,
    cfl: float = 0.8,
    dtype=jnp.float64,
    progress=None,
) -> dict:
    """Runs at several resolutions and the measured order of the Gaussian-hills l2 (and l1, linf).

    Returns:
        ``{"runs": {dlat: result}, "order": {norm: p}}``, orders as least-squares slopes on
        ``dlat``.
    """
    runs = {}
    for d in dlats:
        r = lauritzen_run(case, d, advection=advection, cfl=cfl, dtype=dtype)
        runs[d] = r
        if progress is not None:
            g = r["norms"]["gaussian_hills"]
            progress(
                f"  lauritzen case {case} {type(advection).__name__ if advection else 'PPM'} "
                f"{d} deg: gaussian l2={g['l2']:.4g} linf={g['linf']:.4g} ({r['seconds']:.1f} s)"
            )
    order = {}
    for norm in ("l1", "l2", "linf"):
        errs = [runs[d]["norms"]["gaussian_hills"][norm] for d in dlats]
        order[norm] = convergence_order(list(dlats), errs)
    return {"runs": runs, "order": order}
