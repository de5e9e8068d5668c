"""Small grids, met and tables shared by the observation tests."""

import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY, R_DRY
from diffflux.grid import LatLonGrid
from diffflux.met import ConstantMet, FunctionMet, MetFields, mass_fluxes_from_winds


def static_met(grid: LatLonGrid, dtype=jnp.float64):
    """Constant met with a horizontally varying surface pressure and temperature (no winds)."""
    lat = np.deg2rad(grid.lat)[:, None]
    lon = np.deg2rad(grid.lon)[None, :]
    ps = 1.0e5 - 4000.0 * np.sin(lat) ** 2 + 1500.0 * np.cos(lat) * np.sin(2 * lon)
    k = np.arange(grid.nlev)[:, None, None]
    temp = 290.0 - 30.0 * np.sin(lat)[None] ** 2 - 6.0 * k + 3.0 * np.cos(lon)[None]
    temp = np.broadcast_to(temp, grid.shape)
    zeros = jnp.zeros(grid.shape, dtype)
    met = MetFields(
        ps=jnp.asarray(ps, dtype),
        mfx=zeros,
        mfy=jnp.zeros((grid.nlev, grid.nlat + 1, grid.nlon), dtype),
        temperature=jnp.asarray(temp, dtype),
    )
    return ConstantMet(met), ps, temp


def reference_heights(grid: LatLonGrid, ps, temp):
    """Layer-middle heights [m] by a plain NumPy loop (independent of the operator's vectorised code)."""
    a, b = grid.levels.a, grid.levels.b
    z = np.zeros(grid.shape)
    for j in range(grid.nlat):
        for i in range(grid.nlon):
            p = a + b * ps[j, i]
            zb = 0.0
            for k in range(grid.nlev):
                pm = 0.5 * (p[k] + p[k + 1])
                h = R_DRY * temp[k, j, i] / GRAVITY
                z[k, j, i] = zb + h * np.log(p[k] / pm)
                if k < grid.nlev - 1:
                    zb += h * np.log(p[k] / p[k + 1])
    return z


def windy_met(grid: LatLonGrid, u0=20.0, v0=6.0, dtype=jnp.float64):
    """Divergent, time-varying winds with temperature (pure JAX in t)."""
    lat = jnp.deg2rad(jnp.asarray(grid.lat, dtype))[None, :, None]
    lon = jnp.deg2rad(jnp.asarray(grid.lon, dtype))[None, None, :]
    lev = jnp.linspace(0.5, 1.5, grid.nlev, dtype=dtype)[:, None, None]
    ps = (1.0e5 + 800.0 * jnp.cos(lat[0]) * jnp.sin(lon[0])).astype(dtype)
    temp = jnp.broadcast_to(280.0 - 20.0 * lev - 20.0 * jnp.sin(lat) ** 2, grid.shape).astype(dtype)

    def fn(t):
        ph = 2.0 * jnp.pi * t / 172800.0
        u = u0 * lev * jnp.cos(lat) * (1.0 + 0.3 * jnp.sin(lon + ph))
        v = v0 * jnp.cos(lat) ** 2 * jnp.sin(2.0 * lon - ph) * (1.5 - lev)
        mfx, mfy = mass_fluxes_from_winds(grid, u.astype(dtype), v.astype(dtype), ps)
        return MetFields(ps=ps, mfx=mfx, mfy=mfy, temperature=temp)

    return FunctionMet(fn), np.asarray(ps)
