"""Sampling inside the transport scan: right steps, all checkpoint modes, gradients vs finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from obs_helpers import windy_met

from diffflux.grid import LatLonGrid
from diffflux.observations import (
    build_operator,
    concat_tables,
    make_table,
    sample_run,
    sample_states,
    to_arrays,
)
from diffflux.transport import PPM, PiecewiseLinear, Transport, TransportState, run

START = np.datetime64("2021-03-01T00:00:00", "ns")
DT, NSTEPS = 1800.0, 6


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(7)
    grid = LatLonGrid(16, 8)  # one layer keeps the transport compilations short; vertical: test_operators
    met, ps = windy_met(grid)
    # the linear (unlimited) scheme: the inversion's workhorse, and its gradient compiles twice as fast as
    # the limited PPM's (which the slow test below differentiates)
    model = Transport(grid, advection=PiecewiseLinear(None), vertical_diffusion=None)
    chi = 400e-6 + 5e-6 * rng.uniform(0, 1, (2,) + grid.shape)
    st0 = model.initial_state(jnp.asarray(chi), ps)
    n = 60
    secs = np.round(rng.uniform(0, NSTEPS * DT, n))
    secs[:2] = [0.0, NSTEPS * DT]
    pts = make_table(
        START + (secs * 1e9).astype("timedelta64[ns]"),
        rng.uniform(-88, 88, n),
        rng.uniform(-180, 180, n),
        np.full(n, 401e-6),
        0.5e-6,
        rng.choice(["CO2", "CH4"], n),
        altitude=rng.uniform(0, 12000, n),
    )
    m, nret = 10, 5
    pw = np.full((m, nret), 1.0 / nret)
    col = {
        "ret_pressure": np.broadcast_to(np.linspace(95000, 10000, nret), (m, nret)),
        "averaging_kernel": rng.uniform(0.5, 1.0, (m, nret)),
        "pressure_weight": pw,
        "prior_profile": np.full((m, nret), 400e-6),
        "prior_value": np.full(m, 400e-6),
    }
    csecs = np.round(rng.uniform(0, NSTEPS * DT, m))
    cols = make_table(
        START + (csecs * 1e9).astype("timedelta64[ns]"),
        rng.uniform(-60, 60, m),
        rng.uniform(-180, 180, m),
        np.full(m, 401e-6),
        1e-6,
        "CO2",
        kind="column",
        column=col,
    )
    table = concat_tables([pts, cols])
    op = build_operator(to_arrays(table, ["CO2", "CH4"], START), grid, t0=0.0, dt=DT, nsteps=NSTEPS)
    flux = jnp.asarray(rng.uniform(0, 1e-7, (2, grid.nlat, grid.nlon)))
    # one compiled forward per checkpoint mode, shared by the tests below
    runners = {
        ck: jax.jit(lambda o, s, f, ck=ck: sample_run(model, met, s, o, flux=f, checkpoint=ck)[:2])
        for ck in (None, "step", "nested")
    }
    return grid, met, model, st0, op, table, flux, runners


def test_in_scan_sampling_matches_offline_sampling_of_the_states(setup):
    grid, met, model, st0, op, table, flux, runners = setup
    states = [st0]
    step = jax.jit(lambda s, t: model.step(s, met.fields(t), DT, flux))
    for n in range(NSTEPS):
        states.append(step(states[-1], (n + 0.5) * DT))
    stacked = TransportState(
        tracer=jnp.stack([s.tracer for s in states]), air=jnp.stack([s.air for s in states])
    )
    y_ref = np.asarray(sample_states(op, stacked, met))
    for ck in (None, "step", "nested"):
        final, y = runners[ck](op, st0, flux)
        np.testing.assert_allclose(y, y_ref, rtol=1e-13)
        np.testing.assert_allclose(final.tracer, states[-1].tracer, rtol=1e-13)
    # the record at t = 0 sees the initial state, the one at the end the final state
    assert abs(y_ref[0] - y_ref[1]) > 0  # different fields at the two ends of the window
    # default behaviour of run() is unchanged: two results, no observations
    out = run(model, met, st0, dt=DT, nsteps=2)
    assert len(out) == 2 and out[1] is None


def _cost(setup, ck=None, model=None):
    grid, met, model0, st0, op, table, flux, runners = setup
    model = model or model0
    yobs = jnp.asarray(table["value"].values)
    sig = jnp.asarray(table["uncertainty"].values)

    def cost(flux):
        _, y, _ = sample_run(model, met, st0, op, flux=flux, checkpoint=ck)
        return 0.5 * jnp.sum(((y - yobs) / sig) ** 2)

    return cost


def test_gradient_through_run_and_sampling_matches_finite_differences(setup):
    grid, met, model, st0, op, table, flux, runners = setup
    _, g = jax.jit(jax.value_and_grad(_cost(setup)))(flux)
    assert float(jnp.abs(g).max()) > 0
    yobs, sig = table["value"].values, table["uncertainty"].values

    def cost_fd(f):  # the forward already compiled for the previous test, cost in float64 NumPy
        y = np.asarray(runners[None](op, st0, f)[1])
        return 0.5 * np.sum(((y - yobs) / sig) ** 2)

    rng = np.random.default_rng(3)
    d = jnp.asarray(rng.standard_normal(flux.shape)) * 1e-6  # large enough to rise above round-off
    exact = float(jnp.vdot(g, d))
    for eps in (1.0, 1e-1, 1e-2):
        # J is quadratic in the flux with the linear scheme: central differences are exact up to round-off
        fd = (cost_fd(flux + eps * d) - cost_fd(flux - eps * d)) / (2 * eps)
        assert abs(fd - exact) <= 1e-8 * abs(exact)


@pytest.mark.slow
def test_gradient_with_limiter_all_checkpoint_modes(setup):
    """PPM (nonlinear limiter): Taylor test, and the three checkpoint modes agree."""
    flux, model = setup[6], setup[2].replace(advection=PPM())
    vg = {ck: jax.jit(jax.value_and_grad(_cost(setup, ck, model)))(flux) for ck in (None, "step", "nested")}
    j0, g = vg[None]
    for ck in ("step", "nested"):
        np.testing.assert_allclose(vg[ck][0], j0, rtol=1e-13)
        np.testing.assert_allclose(vg[ck][1], g, rtol=1e-10, atol=1e-12 * float(jnp.abs(g).max()))
    cost = jax.jit(_cost(setup, None, model))
    d = jnp.asarray(np.random.default_rng(3).standard_normal(flux.shape)) * 1e-6
    exact = float(jnp.vdot(g, d))
    err = [
        abs(float(cost(flux + e * d) - cost(flux - e * d)) / (2 * e) - exact) / abs(exact)
        for e in (1e-1, 1e-2, 1e-3)
    ]
    assert err[2] < err[1] < err[0] and err[2] < 1e-7
