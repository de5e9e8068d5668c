"""Analytic checks of the diffusion and chemistry operators inside the full transport step.

* :func:`horizontal_diffusion_check` - a Gaussian blob diffused by :class:`HorizontalDiffusion`
  spreads with variance ``s^2 = s0^2 + 2 K t`` in each horizontal direction (the moment identity of
  the plane diffusion equation, ``d<x^2>/dt = 2K``, which the conservative three-point stencil
  reproduces by summation by parts). On the sphere the metric adds relative corrections of order
  ``s^2 / a^2`` (about 0.5 % for the default blob of final width ~500 km), which bounds the
  tolerance.
* :func:`vertical_diffusion_check` - :class:`ImplicitVerticalDiffusion` is backward Euler on the
  column system ``M dchi/dt = -L chi``, so every generalised eigenvector of ``(L, M)`` with
  eigenvalue ``lambda`` decays by exactly ``1 / (1 + dt lambda)`` per step. ``L`` and ``M`` are
  assembled here independently (NumPy, from the documented exchange coefficient
  ``E = A rho^2 g Kz / dp_mid``); two modes are initialised and their amplitudes tracked.
* :func:`chemistry_check` - first-order loss with lifetime ``tau`` applied as ``q exp(-dt / tau)``
  while the tracer is advected by a divergent flow: the global burden must follow ``exp(-t / tau)``
  to round-off, since advection conserves mass.
"""

from __future__ import annotations

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY, R_DRY
from diffflux.grid import LatLonGrid, great_circle_distance, standard_levels
from diffflux.met import ConstantMet, MetFields
from diffflux.transport import (
    HorizontalDiffusion,
    ImplicitVerticalDiffusion,
    Transport,
    run,
)
from diffflux.verify.conservation import divergent_met
from diffflux.verify.diagnostics import cell_average

DAY = 86400.0


def _zero_flux_met(grid: LatLonGrid, ps, dtype, **extra) -> ConstantMet:
    nlev, nlat, nlon = grid.shape
    return ConstantMet(
        MetFields(
            ps=jnp.asarray(ps, dtype=dtype),
            mfx=jnp.zeros((nlev, nlat, nlon), dtype=dtype),
            mfy=jnp.zeros((nlev, nlat + 1, nlon), dtype=dtype),
            **extra,
        )
    )


def _moments(grid: LatLonGrid, chi: np.ndarray, lat0: float, lon0: float) -> tuple[float, float]:
    """Mass-weighted second moments ``(<x^2>, <y^2>)`` [m2] of a single-layer field.

    ``x = a cos(lat_j) (lon - lon0)`` uses each row's own metric (the zonal spacing of that row),
    and ``y = a (lat - lat0)``.
    """
    w = grid.area * chi
    lat = np.deg2rad(grid.lat)[:, None]
    dlon = np.deg2rad((grid.lon[None, :] - lon0 + 180.0) % 360.0 - 180.0)
    x = grid.radius * np.cos(lat) * dlon
    y = grid.radius * (lat - math.radians(lat0))
    tot = w.sum()
    return float((w * x * x).sum() / tot), float((w * y * y).sum() / tot)


def horizontal_diffusion_check(
    nlon: int = 360,
    nlat: int = 180,
    kh: float = 2.0e5,
    s0: float = 3.0e5,
    days: float = 5.0,
    dt: float = 3600.0,
    dtype=jnp.float64,
) -> dict:
    """Gaussian spreading under horizontal diffusion (single layer, no wind), blob at (0 N, 0 E).

    Returns:
        dict with ``kx_rel_err``/``ky_rel_err`` (``|K_eff / K - 1|`` with ``K_eff = d<x^2> / (2 t)``
        measured from the variance growth), ``var_rel_err`` (``|s^2(t) / (s^2(0) + 2 K t) - 1|`` of
        the mean of the two directions), ``mass_rel`` (tracer-mass change), ``min_value``,
        ``diffusion_number`` (``K dt / dx^2`` at the equator), ``seconds``.
    """
    grid = LatLonGrid(nlon, nlat)
    dx = grid.radius * grid.dlon
    number = kh * dt / dx**2
    if number > HorizontalDiffusion().max_number:
        raise ValueError(
            f"horizontal_diffusion_check: K dt / dx^2 = {number:.3f} exceeds the explicit limit "
            f"{HorizontalDiffusion().max_number}; reduce dt={dt}"
        )

    def blob(lat, lon):
        r = great_circle_distance(lat, lon, 0.0, 0.0, radius=grid.radius)
        return np.exp(-0.5 * (r / s0) ** 2)

    chi0 = cell_average(blob, grid, 3)
    ps = np.full((nlat, nlon), 1.0e5)
    met = _zero_flux_met(grid, ps, dtype, kh=jnp.asarray(kh, dtype=dtype))
    model = Transport(grid, vertical_diffusion=None, horizontal_diffusion=HorizontalDiffusion())
    st0 = model.initial_state(
        jnp.asarray(chi0[None, None], dtype=dtype), jnp.asarray(ps, dtype=dtype)
    )
    nsteps = int(round(days * DAY / dt))
    tic = time.perf_counter()
    st = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps)[0])(st0)
    st.tracer.block_until_ready()
    sec = time.perf_counter() - tic
    chi = np.asarray(st.mixing_ratio()[0, 0], dtype=np.float64)
    t = nsteps * dt
    x0, y0 = _moments(grid, chi0, 0.0, 0.0)
    x1, y1 = _moments(grid, chi, 0.0, 0.0)
    kx = (x1 - x0) / (2.0 * t)
    ky = (y1 - y0) / (2.0 * t)
    var_pred = 0.5 * (x0 + y0) + 2.0 * kh * t
    q0 = float(np.asarray(st0.tracer).sum())
    q1 = float(np.asarray(st.tracer).sum())
    return {
        "kx_rel_err": abs(kx / kh - 1.0),
        "ky_rel_err": abs(ky / kh - 1.0),
        "var_rel_err": abs(0.5 * (x1 + y1) / var_pred - 1.0),
        "s_final_km": math.sqrt(0.5 * (x1 + y1)) / 1e3,
        "mass_rel": abs(q1 / q0 - 1.0),
        "min_value": float(chi.min()),
        "diffusion_number": number,
        "seconds": sec,
    }


def column_operator(levels, ps: float, kz: np.ndarray, temperature: float, area: float):
    """Column mass vector ``M (nlev,)`` [kg] and symmetric diffusion matrix ``L (nlev, nlev)`` [kg
    s-1].

    ``E_k = A rho_k^2 g Kz_k / (p_{mid,k-1} - p_{mid,k})`` at interior interfaces ``k = 1..nlev-1``
    with ``rho_k = p_k / (R T)``; ``(L chi)_k = E_k (chi_k - chi_{k-1}) - E_{k+1} (chi_{k+1} -
    chi_k)``.
    """
    p = np.asarray(levels.interfaces(np.float64(ps)), dtype=np.float64)
    dp = p[:-1] - p[1:]
    m = dp * area / GRAVITY
    pm = 0.5 * (p[:-1] + p[1:])
    n = dp.size
    e = np.zeros(n + 1)
    rho = p[1:-1] / (R_DRY * temperature)
    e[1:-1] = area * rho**2 * GRAVITY * kz[1:-1] / (pm[:-1] - pm[1:])
    L = np.zeros((n, n))
    for k in range(n):
        L[k, k] = e[k] + e[k + 1]
        if k > 0:
            L[k, k - 1] = -e[k]
        if k < n - 1:
            L[k, k + 1] = -e[k + 1]
    return m, L


def vertical_diffusion_check(
    levels: str = "L25",
    kz: float = 200.0,
    dt: float = 3600.0,
    nsteps: int = 48,
    modes: tuple[int, int] = (1, 6),
    dtype=jnp.float64,
) -> dict:
    """Discrete decay of column modes under implicit vertical diffusion, through
    :meth:`Transport.step`.

    A small grid of identical columns (uniform ``ps = 1e5`` Pa, ``T = 250`` K, ``Kz`` decaying with
    height from ``kz`` [m2 s-1], e-folding over 12 interfaces); tracer ``i`` starts as ``1 + 0.1
    v_i`` with ``v_i`` the generalised eigenvector of mode ``modes[i]`` (mode 0 is the constant).
    After ``nsteps`` its amplitude (``M``-weighted projection) must equal ``(1 + dt
    lambda)^(-nsteps)``.

    Returns:
        dict with ``decay_rel_err`` (max relative error of the amplitudes against the discrete
        rate), ``mass_rel``, ``discrete_factor_mode{n}`` and ``continuous_factor_mode{n}``
        (``exp(-lambda t)``, for reference), ``seconds``.
    """
    lev = standard_levels(levels)
    grid = LatLonGrid(8, 4, lev)
    nlev = grid.nlev
    kz_prof = kz * np.exp(-np.arange(nlev + 1) / 12.0)
    area = float(grid.area[0, 0])
    m, L = column_operator(lev, 1.0e5, kz_prof, 250.0, area)
    s = 1.0 / np.sqrt(m)
    lam, vec = np.linalg.eigh(s[:, None] * L * s[None, :])
    v = s[:, None] * vec  # generalised eigenvectors, M-orthonormal
    chi = np.stack([1.0 + 0.1 * v[:, k] / np.max(np.abs(v[:, k])) for k in modes])
    chi = np.broadcast_to(chi[:, :, None, None], (len(modes), nlev, grid.nlat, grid.nlon))
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    kz_field = jnp.broadcast_to(
        jnp.asarray(kz_prof, dtype=dtype)[:, None, None], (nlev + 1, grid.nlat, grid.nlon)
    )
    met = _zero_flux_met(
        grid, ps, dtype, kz=kz_field, temperature=jnp.full(grid.shape, 250.0, dtype=dtype)
    )
    model = Transport(grid, vertical_diffusion=ImplicitVerticalDiffusion())
    st0 = model.initial_state(jnp.asarray(chi, dtype=dtype), jnp.asarray(ps, dtype=dtype))
    tic = time.perf_counter()
    st = jax.jit(lambda s_: run(model, met, s_, dt=dt, nsteps=nsteps)[0])(st0)
    st.tracer.block_until_ready()
    sec = time.perf_counter() - tic
    chi1 = np.asarray(st.mixing_ratio(), dtype=np.float64)[:, :, 0, 0]
    out: dict = {}
    errs = []
    for i, k in enumerate(modes):
        a0 = np.sum(m * (chi[i, :, 0, 0] - 1.0) * v[:, k])
        a1 = np.sum(m * (chi1[i] - 1.0) * v[:, k])
        fac = (1.0 + dt * lam[k]) ** (-nsteps)
        errs.append(abs(a1 / a0 / fac - 1.0))
        out[f"discrete_factor_mode{k}"] = float(fac)
        out[f"continuous_factor_mode{k}"] = float(math.exp(-lam[k] * dt * nsteps))
    q0 = np.asarray(st0.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    q1 = np.asarray(st.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    out.update(
        decay_rel_err=float(max(errs)),
        mass_rel=float(np.max(np.abs(q1 / q0 - 1.0))),
        seconds=sec,
    )
    return out


class FirstOrderLoss(eqx.Module):
    """Chemistry strategy with a constant lifetime per tracer (``rates`` -> ``1 / tau`` [s-1]).

    Implements the :class:`~diffflux.transport.Transport` chemistry interface
    ``rates(met, air, grid) -> (ntr, nlev, nlat, nlon)``.
    """

    lifetimes: tuple[float, ...] = eqx.field(static=True)
    """Lifetime of each tracer [s]."""

    def rates(self, met, air, grid):
        k = jnp.asarray([1.0 / t for t in self.lifetimes], dtype=air.dtype)
        return jnp.broadcast_to(k[:, None, None, None], (len(self.lifetimes),) + air.shape)


def chemistry_check(
    lifetimes_days: tuple[float, ...] = (2.0, 30.0),
    nsteps: int = 96,
    dt: float = 1800.0,
    dtype=jnp.float64,
) -> dict:
    """Burden decay ``exp(-t / tau)`` with advection and vertical diffusion running (3-D, L10).

    Returns:
        dict with ``burden_rel_err`` (max over tracers of ``|B(t) / (B(0) exp(-t/tau)) - 1|``) and
        ``burden_ratio_tau{i}`` (the measured ``B(t)/B(0)``), ``seconds``.
    """
    grid = LatLonGrid(24, 12, standard_levels("L10"))
    met, ps = divergent_met(grid, dtype=dtype)
    taus = tuple(d * DAY for d in lifetimes_days)
    model = Transport(grid, chemistry=FirstOrderLoss(taus))
    lat = grid.lat[None, :, None]
    chi = np.stack([(1.0 + 0.5 * np.sin(np.deg2rad(lat)) * (i + 1)) * np.ones(grid.shape)
                    for i in range(len(taus))])
    st0 = model.initial_state(jnp.asarray(chi, dtype=dtype), jnp.asarray(ps, dtype=dtype))
    tic = time.perf_counter()
    st = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps)[0])(st0)
    st.tracer.block_until_ready()
    sec = time.perf_counter() - tic
    b0 = np.asarray(st0.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    b1 = np.asarray(st.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    t = nsteps * dt
    out: dict = {}
    errs = []
    for i, tau in enumerate(taus):
        ratio = b1[i] / b0[i]
        errs.append(abs(ratio / math.exp(-t / tau) - 1.0))
        out[f"burden_ratio_tau{lifetimes_days[i]:g}d"] = float(ratio)
    out.update(burden_rel_err=float(max(errs)), seconds=sec)
    return out


__all__ = [
    "FirstOrderLoss",
    "chemistry_check",
    "column_operator",
    "horizontal_diffusion_check",
    "vertical_diffusion_check",
]
