"""Conservation, consistency and positivity under divergent, time-varying 3-D met.

The met (:func:`divergent_met`) is an analytic wind field on hybrid levels that is deliberately hard
on a flux-form scheme: a solid-body rotation tilted by 60 degrees (so that the flow crosses the
polar caps) plus a divergent part whose sign reverses with height (forcing vertical mass fluxes
through the continuity equation) and which oscillates in time. Cell-centre winds are turned into
face mass fluxes by :func:`~diffflux.met.mass_fluxes_from_winds` with a fixed, spatially varying
surface pressure, so the fluxes are divergent and the air mass the transport carries changes by
tens of percent in places.

Three tracers are carried for ``nsteps`` steps in float64 with the full step (advection, implicit
vertical diffusion with a prescribed Kz profile):

* a uniform mixing ratio (400 ppm): must stay uniform (consistency, Lin and Rood 1996);
* a smooth Gaussian blob on a background and
* a discontinuous patch (1 inside, exactly 0 outside): their tracer masses must be conserved to
  round-off and, with a monotone reconstruction, they must not become negative (the patch tests
  positivity against an exact-zero background).
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid, great_circle_distance, standard_levels
from diffflux.met import FunctionMet, MetFields, mass_fluxes_from_winds
from diffflux.transport import (
    PPM,
    ImplicitVerticalDiffusion,
    Reconstruction,
    Transport,
    check_time_step,
    run,
)

DAY = 86400.0
UNIFORM = 400.0e-6


def divergent_met(
    grid: LatLonGrid,
    u0: float = 30.0,
    ud: float = 12.0,
    vd: float = 8.0,
    alpha: float = math.pi / 3,
    period: float = 2.0 * DAY,
    kz: float = 5.0,
    dtype=jnp.float64,
) -> tuple[FunctionMet, np.ndarray]:
    """Divergent, time-varying analytic met on ``grid`` (pure JAX in ``t``).

    ``u = u0 (cos(lat) cos(alpha) + sin(lat) cos(lon) sin(alpha))
    + ud s_k cos(lat) sin(2 lon - w t)``,
    ``v = -u0 sin(lon) sin(alpha) + vd s_k cos^2(lat) sin(lon + w t)`` [m s-1], with
    ``s_k = cos(pi (k + 1/2) / nlev)`` changing sign with height and ``w = 2 pi / period``; the
    surface pressure is ``1e5 + 1000 cos(lat) sin(lon)`` Pa; ``Kz`` [m2 s-1] decays with height from
    ``kz`` (scale 3 interfaces).

    Returns:
        ``(met, ps)`` with ``ps (nlat, nlon)`` [Pa] as a NumPy array.
    """
    lat = jnp.deg2rad(jnp.asarray(grid.lat, dtype=dtype))[None, :, None]
    lon = jnp.deg2rad(jnp.asarray(grid.lon, dtype=dtype))[None, None, :]
    nlev = grid.nlev
    s_k = jnp.cos(jnp.pi * (jnp.arange(nlev, dtype=dtype) + 0.5) / nlev)[:, None, None]
    ps = 1.0e5 + 1000.0 * jnp.cos(lat[0]) * jnp.sin(lon[0])
    kz_prof = kz * jnp.exp(-jnp.arange(nlev + 1, dtype=dtype) / 3.0)[:, None, None]
    kz_field = jnp.broadcast_to(kz_prof, (nlev + 1, grid.nlat, grid.nlon))
    w = 2.0 * math.pi / period
    ca, sa = math.cos(alpha), math.sin(alpha)

    def fn(t):
        u = u0 * (jnp.cos(lat) * ca + jnp.sin(lat) * jnp.cos(lon) * sa)
        u = u + ud * s_k * jnp.cos(lat) * jnp.sin(2.0 * lon - w * t)
        v = -u0 * jnp.sin(lon) * sa + vd * s_k * jnp.cos(lat) ** 2 * jnp.sin(lon + w * t)
        u = jnp.broadcast_to(u, (nlev, grid.nlat, grid.nlon))
        v = jnp.broadcast_to(v, (nlev, grid.nlat, grid.nlon))
        mfx, mfy = mass_fluxes_from_winds(grid, u, v, ps)
        return MetFields(ps=ps, mfx=mfx, mfy=mfy, kz=kz_field)

    return FunctionMet(fn), np.asarray(ps)


def initial_fields(grid: LatLonGrid) -> np.ndarray:
    """``(3, nlev, nlat, nlon)``: uniform 400 ppm, Gaussian blob on 1 ppm, 0/1 patch."""
    lat = grid.lat[:, None]
    lon = grid.lon[None, :]
    r = great_circle_distance(lat, lon, 40.0, 30.0, radius=grid.radius)
    blob = 1.0e-6 + 50.0e-6 * np.exp(-0.5 * (r / 1.5e6) ** 2)
    patch = ((np.abs(lat + 20.0) < 25.0) & (np.abs(lon + 100.0) < 35.0)).astype(np.float64)
    shape = grid.shape
    out = np.zeros((3,) + shape)
    out[0] = UNIFORM
    out[1] = blob[None] * np.linspace(1.0, 0.5, grid.nlev)[:, None, None]
    out[2, : max(1, grid.nlev // 2)] = patch[None]
    return out


def conservation_check(
    nlon: int = 48,
    nlat: int = 24,
    levels: str = "L10",
    nsteps: int = 1000,
    dt: float = 1800.0,
    advection: Reconstruction | None = None,
    dtype=jnp.float64,
) -> dict:
    """Run the divergent-met case and measure conservation, consistency and positivity.

    Returns:
        dict with ``mass_rel`` (max over the two non-uniform tracers of ``|M(T)/M(0) - 1|``),
        ``air_total_rel`` (total air mass change), ``air_change_max`` (max ``|m/m0 - 1|``: proves
        the met is divergent), ``uniform_dev`` (max ``|chi/chi0 - 1|`` of the uniform tracer),
        ``min_rel`` (most negative mixing ratio of the non-uniform tracers relative to their initial
        maximum; 0 or positive is ideal), ``max_rel`` (overshoot of the initial maximum, relative),
        ``courant_zonal``/``courant_meridional``/``courant_vertical`` and ``seconds``.
    """
    advection = PPM() if advection is None else advection
    grid = LatLonGrid(nlon, nlat, standard_levels(levels))
    met, ps = divergent_met(grid, dtype=dtype)
    model = Transport(grid, advection=advection, vertical_diffusion=ImplicitVerticalDiffusion())
    chi0 = initial_fields(grid)
    st0 = model.initial_state(jnp.asarray(chi0, dtype=dtype), jnp.asarray(ps, dtype=dtype))
    times = np.linspace(0.0, 2.0 * DAY, 9)
    cour = check_time_step(model, met, st0, dt=dt, times=times)
    tic = time.perf_counter()
    st = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps)[0])(st0)
    st.tracer.block_until_ready()
    sec = time.perf_counter() - tic
    q0 = np.asarray(st0.tracer, dtype=np.float64)
    q1 = np.asarray(st.tracer, dtype=np.float64)
    m0 = np.asarray(st0.air, dtype=np.float64)
    m1 = np.asarray(st.air, dtype=np.float64)
    chi = np.asarray(st.mixing_ratio(), dtype=np.float64)
    mass_rel = max(abs(q1[i].sum() / q0[i].sum() - 1.0) for i in (1, 2))
    mx0 = [chi0[i].max() for i in (1, 2)]
    return {
        "mass_rel": float(mass_rel),
        "air_total_rel": float(abs(m1.sum() / m0.sum() - 1.0)),
        "air_change_max": float(np.max(np.abs(m1 / m0 - 1.0))),
        "uniform_dev": float(np.max(np.abs(chi[0] / UNIFORM - 1.0))),
        "min_rel": float(min(chi[i].min() / mx for i, mx in zip((1, 2), mx0))),
        "max_rel": float(max(chi[i].max() / mx - 1.0 for i, mx in zip((1, 2), mx0))),
        "courant_zonal": cour["zonal"],
        "courant_meridional": cour["meridional"],
        "courant_vertical": cour["vertical"],
        "nsteps": float(nsteps),
        "seconds": sec,
    }
