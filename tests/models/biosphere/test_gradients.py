"""Gradients of biosphere outputs: finite-difference checks for every parameter multiplier and driver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.models.biosphere.drivers import WEATHER_FIELDS, ArrayDrivers
from diffflux.models.biosphere.params import GLOBAL_DEFAULTS, PFT_MULTIPLIED, BiosphereParams

NDAYS = 120
DAY0 = 100  # spring to late summer in the north: phenology, fire and snowmelt all active
TERMS = ("nee", "fire_c", "ch4_wetland", "ch4_paddy", "ch4_soil", "n2o_natural", "n2o_crop", "runoff")


@pytest.fixture(scope="module")
def scalar_fn(small):
    bio, drivers = small
    params0 = BiosphereParams.ones()
    state, _, _ = jax.jit(lambda s: bio.simulate(params0, s, drivers, 400, outputs=None))(
        bio.initial_state(params0)
    )
    days = jnp.arange(NDAYS) + DAY0
    weather = jax.vmap(drivers.weather)(days)
    base = ArrayDrivers(fields={k: getattr(weather, k) for k in WEATHER_FIELDS})

    def outputs(params, fields):
        _, _, annual = bio.simulate(params, state, ArrayDrivers(fields=fields), NDAYS, outputs=None)
        return annual

    ref = jax.jit(outputs)(params0, base.fields)
    scale = {k: float(jnp.abs(ref[k]).sum()) for k in TERMS}
    assert all(v > 0 for v in scale.values()), scale

    def scalar(params, fields):
        annual = outputs(params, fields)
        return sum(jnp.sum(annual[k] * jnp.linspace(0.5, 1.5, annual[k].size)) / scale[k] for k in TERMS)

    return jax.jit(scalar), jax.jit(jax.grad(scalar, argnums=(0, 1))), params0, base.fields


def _check(value_fn, grad_dir, h):
    fd = (value_fn(h) - value_fn(-h)) / (2 * h)
    return fd, grad_dir


@pytest.mark.parametrize("group", ["pft", "glob"])
def test_gradient_matches_finite_differences_for_every_multiplier(scalar_fn, group):
    f, g, params, fields = scalar_fn
    gp, _ = g(params, fields)
    names = PFT_MULTIPLIED if group == "pft" else tuple(GLOBAL_DEFAULTS)
    h = 1e-6
    worst = []
    for name in names:
        leaf = getattr(params, group)[name]
        direction = jnp.linspace(0.7, 1.3, leaf.size).reshape(leaf.shape)

        def shifted(eps, name=name, direction=direction):
            d = dict(getattr(params, group))
            d[name] = d[name] * (1.0 + eps * direction)
            p = (
                BiosphereParams(pft=d, glob=params.glob)
                if group == "pft"
                else BiosphereParams(pft=params.pft, glob=d)
            )
            return f(p, fields)

        fd = (shifted(h) - shifted(-h)) / (2 * h)
        ad = jnp.sum(getattr(gp, group)[name] * leaf * direction)
        err = abs(float(fd - ad)) / max(abs(float(ad)), 1e-6)
        worst.append((err, name, float(ad), float(fd)))
    worst.sort(reverse=True)
    print(f"{group}: worst relative FD error {worst[0][0]:.2e} ({worst[0][1]})")
    assert worst[0][0] <= 1e-5, worst[:3]


def test_gradient_matches_finite_differences_for_drivers(scalar_fn):
    f, g, params, fields = scalar_fn
    _, gw = g(params, fields)
    rng = np.random.default_rng(0)
    for name in WEATHER_FIELDS:
        x = fields[name]
        direction = jnp.asarray(rng.standard_normal(x.shape)) * (jnp.abs(x) + 1e-3 * jnp.abs(x).max())
        h = 1e-6

        def shifted(eps, name=name, direction=direction):
            d = dict(fields)
            d[name] = d[name] + eps * direction
            return f(params, d)

        fd = (shifted(h) - shifted(-h)) / (2 * h)
        ad = jnp.sum(gw[name] * direction)
        print(f"driver {name}: relative FD error {abs(float(fd - ad)) / max(abs(float(ad)), 1e-6):.2e}")
        assert abs(float(fd - ad)) <= 1e-5 * max(abs(float(ad)), 1e-6), (name, float(ad), float(fd))
