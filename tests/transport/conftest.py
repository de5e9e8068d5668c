"""Fixtures: small grids and divergent, time-varying analytic met for transport tests."""

import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.grid import LatLonGrid, sigma_levels, standard_levels
from diffflux.met import FunctionMet, MetFields, mass_fluxes_from_winds


def divergent_met(grid, u0=25.0, v0=8.0, period=2.0 * 86400.0, dtype=jnp.float64):
    """Divergent, time-varying winds with a level-dependent jet on ``grid`` (pure JAX in t)."""
    lat = jnp.deg2rad(jnp.asarray(grid.lat, dtype=dtype))[None, :, None]
    lon = jnp.deg2rad(jnp.asarray(grid.lon, dtype=dtype))[None, None, :]
    lev = jnp.linspace(0.5, 1.5, grid.nlev, dtype=dtype)[:, None, None]
    ps = (1.0e5 + 800.0 * jnp.cos(lat[0]) * jnp.sin(lon[0])).astype(dtype)

    def fn(t):
        ph = 2.0 * jnp.pi * t / period
        u = u0 * lev * jnp.cos(lat) * (1.0 + 0.3 * jnp.sin(lon + ph))
        v = v0 * jnp.cos(lat) ** 2 * jnp.sin(2.0 * lon - ph) * (1.5 - lev)
        mfx, mfy = mass_fluxes_from_winds(grid, u.astype(dtype), v.astype(dtype), ps)
        return MetFields(ps=ps, mfx=mfx, mfy=mfy)

    return FunctionMet(fn), np.asarray(ps)


@pytest.fixture
def grid3d():
    return LatLonGrid(24, 12, standard_levels("L10"))


@pytest.fixture
def grid_sigma():
    return LatLonGrid(16, 8, sigma_levels(4))
