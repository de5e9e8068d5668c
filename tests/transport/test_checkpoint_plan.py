"""checkpoint="auto": the memory plan picks per-step or nested checkpointing from a budget."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import divergent_met

from diffflux.grid import LatLonGrid
from diffflux.transport import PiecewiseLinear, Transport, TransportState, plan_checkpoint, run
from diffflux.transport.run import RESIDUAL_STATES_PER_STEP, default_memory_budget


def _state(shape=(2, 4, 8, 16), dtype=jnp.float64):
    return TransportState(tracer=jnp.ones(shape, dtype), air=jnp.ones(shape[1:], dtype))


def test_plan_arithmetic_and_choice():
    st = _state()  # float64: tracer 2 x 512 + air 512 values, no compensation
    S = (2 * 512 + 512) * 8
    T = 100
    R = RESIDUAL_STATES_PER_STEP * S
    big = plan_checkpoint(st, T, memory_budget=1e12)
    assert big["checkpoint"] == "step" and big["segment"] is None
    assert big["state_bytes"] == S and big["bytes"] == T * S + R
    mid = plan_checkpoint(st, T, memory_budget=(T * S + R) - 1)  # step no longer fits
    assert mid["checkpoint"] == "nested" and mid["segment"] == 10
    assert mid["bytes"] == (T / 10 + 10) * S + R
    with pytest.raises(ValueError, match=r"needs about .* GB even with nested .* DIFFFLUX_MEMORY_BUDGET_GB"):
        plan_checkpoint(st, T, memory_budget=R)


def test_plan_counts_the_float32_compensation_term():
    st = _state(dtype=jnp.float32)
    assert plan_checkpoint(st, 10, memory_budget=1e12)["state_bytes"] == (2 * 2 * 512 + 512) * 4
    assert plan_checkpoint(st, 10, memory_budget=1e12, compensate=False)["state_bytes"] == (2 * 512 + 512) * 4


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("DIFFFLUX_MEMORY_BUDGET_GB", "2.5")
    assert default_memory_budget() == 2_500_000_000
    monkeypatch.setenv("DIFFFLUX_MEMORY_BUDGET_GB", "lots")
    with pytest.raises(ValueError, match="DIFFFLUX_MEMORY_BUDGET_GB"):
        default_memory_budget()
    monkeypatch.delenv("DIFFFLUX_MEMORY_BUDGET_GB")
    assert default_memory_budget() > 0


@pytest.mark.slow  # four gradient compilations (~100 s on 2 cores); in the CI's slow subset
def test_auto_gradient_equals_explicit_modes(rng):
    """With budgets that force each mode, run(checkpoint='auto') gives the gradient of that mode."""
    g = LatLonGrid(16, 8)
    met, ps = divergent_met(g)
    model = Transport(g, advection=PiecewiseLinear("mc"), vertical_diffusion=None)
    st0 = model.initial_state(jnp.asarray(rng.uniform(0.1, 1.0, (1,) + g.shape)), ps)
    flux = jnp.asarray(rng.uniform(0, 1e-6, (1, g.nlat, g.nlon)))
    T = 9
    plan = plan_checkpoint(st0, T, memory_budget=1e12)
    S, R = plan["state_bytes"], RESIDUAL_STATES_PER_STEP * plan["state_bytes"]

    def loss(flux, ck, budget):
        st, _ = run(model, met, st0, dt=1200.0, nsteps=T, flux=flux, checkpoint=ck, memory_budget=budget)
        return jnp.sum(st.mixing_ratio() ** 2)

    grad = jax.jit(jax.grad(loss), static_argnums=(1, 2))
    ref = grad(flux, None, None)
    for budget, mode in ((1e12, "step"), (T * S + R - 1, "nested")):
        assert plan_checkpoint(st0, T, memory_budget=budget)["checkpoint"] == mode
        np.testing.assert_allclose(grad(flux, "auto", budget), ref, rtol=1e-11, atol=1e-30)
        np.testing.assert_allclose(grad(flux, "auto", budget), grad(flux, mode, None), rtol=1e-13, atol=1e-30)
