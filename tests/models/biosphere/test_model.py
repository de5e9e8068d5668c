"""The biosphere step: carbon and water balance, positivity, float32, extreme drivers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.models.biosphere.climate import sample_cells
from diffflux.models.biosphere.drivers import DailyWeather
from diffflux.models.biosphere.model import POOLS, Biosphere, BiosphereState
from diffflux.models.biosphere.params import BiosphereParams


def _run_tiles(bio, params, state, drivers, ndays):
    """Scan returning per-day tile carbon fluxes and cell water outputs."""

    def body(st, day):
        w = drivers.weather(day)
        new, tf, out = bio.step(params, st, w)
        return new, (st, tf, out, w.precip)

    return jax.lax.scan(body, state, jnp.arange(ndays))


def test_carbon_mass_balance_closes_every_step(small):
    bio, drivers = small
    params = BiosphereParams.ones()
    state = bio.initial_state(params)
    final, (states, tf, out, _) = jax.jit(lambda s: _run_tiles(bio, params, s, drivers, 200))(state)
    before = sum(getattr(states, k) for k in POOLS)  # (ndays, ntile)
    after = jnp.concatenate([before[1:], final.total_carbon()[None]])
    budget = tf["gpp"] - tf["ar"] - tf["hr"] - tf["fire_c"]
    err = jnp.abs((after - before) - budget)
    scale = jnp.abs(before).max()
    assert float(err.max() / scale) <= 1e-10
    # The balance is not trivial: all terms are active somewhere.
    for k in ("gpp", "ar", "hr", "fire_c"):
        assert float(tf[k].max()) > 0.0


def test_water_balance_closes(small):
    bio, drivers = small
    params = BiosphereParams.ones()
    state = bio.initial_state(params)
    final, (states, _, out, precip) = jax.jit(lambda s: _run_tiles(bio, params, s, drivers, 365))(state)
    frac = jnp.asarray(bio.tiles.frac)
    store = lambda s: bio._cell_sum(s.w1 + s.w2 + s.snow)  # noqa: E731
    change = store(final) - store(BiosphereState(**{k: v[0] for k, v in vars(states).items()}))
    veg = jax.ops.segment_sum(frac, jnp.asarray(bio.tiles.cell), num_segments=bio.maps.ncell)
    budget = (precip * 86400.0 * veg - out["et"] - out["runoff"]).sum(axis=0)
    np.testing.assert_allclose(change, budget, rtol=1e-10, atol=1e-8)
    assert float(out["runoff"].sum()) > 0 and float(out["et"].sum()) > 0


def test_pools_stay_non_negative_and_finite(small):
    bio, drivers = small
    params = BiosphereParams.ones()
    final, _, annual = jax.jit(lambda s: bio.simulate(params, s, drivers, 730, outputs=None))(
        bio.initial_state(params)
    )
    for leaf in jax.tree_util.tree_leaves(final):
        assert bool(jnp.isfinite(leaf).all())
    for k in POOLS + ("w1", "w2", "snow"):
        assert float(getattr(final, k).min()) >= 0.0
    assert float(annual["gpp"].min()) >= 0.0


def test_float32_matches_float64():
    maps, drv64 = sample_cells(jnp.float64)
    _, drv32 = sample_cells(jnp.float32)
    bio = Biosphere.from_maps(maps)
    out = {}
    for dtype, drv in ((jnp.float64, drv64), (jnp.float32, drv32)):
        params = BiosphereParams.ones(dtype)
        state = bio.initial_state(params, dtype)
        _, _, annual = jax.jit(lambda s, p=params, d=drv: bio.simulate(p, s, d, 365, outputs=None))(state)
        assert annual["gpp"].dtype == dtype
        out[dtype] = annual
    for k in ("gpp", "hr", "ch4_wetland", "n2o_natural"):
        np.testing.assert_allclose(out[jnp.float32][k], out[jnp.float64][k], rtol=2e-3, atol=1e-6)


def _extreme_weather(n, dtype=jnp.float64):
    """Cells sweeping -50..+50 C, zero light, polar night, drought and flood."""
    t = jnp.linspace(-50.0, 50.0, n).astype(dtype) + 273.15
    return DailyWeather(
        tair=t,
        trange=jnp.full(n, 12.0, dtype),
        tsoil=t,
        swdown=jnp.where(jnp.arange(n) % 3 == 0, 0.0, 350.0).astype(dtype),
        daylength=jnp.where(jnp.arange(n) % 4 == 0, 0.0, 43200.0).astype(dtype),
        precip=jnp.where(jnp.arange(n) % 2 == 0, 0.0, 2e-3).astype(dtype),
        vpd=jnp.linspace(0.0, 6000.0, n).astype(dtype),
        co2=jnp.full(n, 415e-6, dtype),
        ch4=jnp.full(n, 1.9e-6, dtype),
    )


@pytest.mark.parametrize("soil", ["dry", "saturated"])
def test_no_nan_gradients_over_extreme_drivers(small, soil):
    bio, _ = small
    n = bio.maps.ncell
    params = BiosphereParams.ones()
    state = bio.initial_state(params)
    zero = jnp.zeros_like(state.leaf)
    full1 = 1000.0 * 0.18 * 0.3
    water = zero if soil == "dry" else zero + 5000.0
    state = BiosphereState(
        leaf=zero,
        stem=state.stem,
        root=state.root,
        litter=state.litter,
        soil=state.soil,
        w1=jnp.minimum(water, full1),
        w2=water,
        snow=zero,
        gdd=zero,
        t10=zero,
        w10=zero,
    )
    weather = _extreme_weather(n)

    def scalar(p, w):
        new, tf, out = bio.step(p, state, w)
        new2, _, out2 = bio.step(p, new, w)
        total = sum(jnp.sum(v) for v in out2.values()) + sum(
            jnp.sum(v) for v in jax.tree_util.tree_leaves(new2)
        )
        return total + sum(jnp.sum(v) for v in out.values())

    gp, gw = jax.grad(scalar, argnums=(0, 1))(params, weather)
    for leaf in jax.tree_util.tree_leaves((gp, gw)):
        assert bool(jnp.isfinite(leaf).all())
