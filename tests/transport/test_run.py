"""The scan runner: checkpointing variants agree (values and gradients), emissions, no recompiles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import divergent_met

from diffflux.constants import M_AIR
from diffflux.transport import PPM, PiecewiseLinear, Transport, make_runner, run


def _setup(grid, rng, ntr=2):
    met, ps = divergent_met(grid)
    model = Transport(grid, advection=PPM(), vertical_diffusion=None)
    chi = jnp.asarray(rng.uniform(0.1, 1.0, (ntr,) + grid.shape))
    return model, met, model.initial_state(chi, ps)


def test_checkpoint_variants_agree(rng):
    from diffflux.grid import LatLonGrid

    g = LatLonGrid(16, 8)  # one layer keeps the three gradient compilations short
    model, met, st0 = _setup(g, rng)
    model = model.replace(advection=PiecewiseLinear("mc"))
    flux = jnp.asarray(rng.uniform(0, 1e-6, (2, g.nlat, g.nlon)))

    def loss(flux, ck):
        st, _ = run(model, met, st0, dt=1200.0, nsteps=4, flux=flux, checkpoint=ck)
        w = jnp.linspace(0.0, 1.0, st.tracer.size).reshape(st.tracer.shape)
        return jnp.sum(w * st.mixing_ratio() ** 2)

    vals = {ck: jax.jit(jax.value_and_grad(loss), static_argnums=1)(flux, ck)
            for ck in (None, "step", "nested")}
    for ck in ("step", "nested"):
        np.testing.assert_allclose(vals[ck][0], vals[None][0], rtol=1e-13)
        np.testing.assert_allclose(vals[ck][1], vals[None][1], rtol=1e-11, atol=1e-30)


def test_save_every_and_emission_budget(grid_sigma, rng):
    g = grid_sigma
    model, met, st0 = _setup(g, rng, ntr=1)
    st0 = st0.__class__(tracer=jnp.zeros_like(st0.tracer), air=st0.air)
    flux = jnp.full((1, g.nlat, g.nlon), 2e-8)  # mol m-2 s-1
    dt, n = 900.0, 12
    st, saved = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=n, flux=flux, save_every=4))(st0)
    assert saved.shape == (3, 1) + g.shape
    emitted = 2e-8 * g.area.sum() * dt * n
    assert float(st.tracer.sum()) == pytest.approx(emitted, rel=1e-12)
    np.testing.assert_allclose(saved[-1], st.mixing_ratio(), rtol=1e-14)
    # per-step flux array and function forms give the same answer
    per_step = jnp.broadcast_to(flux, (n,) + flux.shape)
    st2, _ = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=n, flux=per_step))(st0)
    st3, _ = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=n, flux=lambda t: flux))(st0)
    np.testing.assert_allclose(st2.tracer, st.tracer, rtol=1e-13)
    np.testing.assert_allclose(st3.tracer, st.tracer, rtol=1e-13)


def test_no_recompile_for_new_values(grid_sigma, rng):
    model, met, st0 = _setup(grid_sigma, rng)
    runner = make_runner(model, dt=1200.0, nsteps=6)
    runner(met, st0, None, 0.0)
    st1 = st0.__class__(tracer=st0.tracer * 1.1, air=st0.air)
    runner(met, st1, None, 0.0)
    runner(met, st1, None, 3600.0)
    assert runner._cache_size() == 1


def test_bad_run_arguments(grid_sigma, rng):
    model, met, st0 = _setup(grid_sigma, rng)
    with pytest.raises(ValueError, match="checkpoint"):
        run(model, met, st0, dt=1.0, nsteps=2, checkpoint="sometimes")
    with pytest.raises(ValueError, match="save_every"):
        run(model, met, st0, dt=1.0, nsteps=5, save_every=2)
    with pytest.raises(ValueError, match="nsteps=3"):
        run(model, met, st0, dt=1.0, nsteps=3, flux=jnp.zeros((2, 2, 8, 16)))


def test_time_step_check(grid_sigma, rng):
    from diffflux.transport import check_time_step

    model, met, st0 = _setup(grid_sigma, rng)
    c = check_time_step(model, met, st0, dt=1200.0, times=[0.0, 3600.0])
    assert 0 < c["meridional"] < 1
    with pytest.raises(ValueError, match="unstable time step"):
        check_time_step(model, met, st0, dt=4.0e6, times=[0.0])


def test_linear_step_adjoint_dot_product(grid_sigma, rng):
    """<y, L x> = <L^T y, x> for the unlimited-linear step (float64, round-off level)."""
    model, met, st0 = _setup(grid_sigma, rng)
    model = model.replace(advection=PiecewiseLinear(None))
    f = met.fields(0.0)

    def L(q):
        return model.step(st0.__class__(tracer=q, air=st0.air), f, 1800.0).tracer

    x = jnp.asarray(rng.standard_normal(st0.tracer.shape))
    y = jnp.asarray(rng.standard_normal(st0.tracer.shape))
    Lx, LTy = jax.jit(lambda x, y: (L(x), jax.vjp(L, x)[1](y)[0]))(x, y)
    lhs, rhs = float(jnp.vdot(y, Lx)), float(jnp.vdot(LTy, x))
    assert abs(lhs - rhs) / abs(lhs) < 1e-12
    # linear: L(2x) = 2 L(x)
    np.testing.assert_allclose(jax.jit(L)(2 * x), 2 * Lx, rtol=1e-12, atol=1e-12 * float(jnp.abs(Lx).max()))
    assert M_AIR > 0


def test_elevated_emissions_budget(grid_sigma, rng):
    g = grid_sigma
    model, met, st0 = _setup(g, rng, ntr=1)
    st0 = st0.__class__(tracer=jnp.zeros_like(st0.tracer), air=st0.air)
    prof = jnp.zeros((1,) + g.shape).at[0, 2].set(3e-9)  # into level 2 only
    st, _ = jax.jit(lambda s: run(model, met, s, dt=600.0, nsteps=6, elevated=prof))(st0)
    assert float(st.tracer.sum()) == pytest.approx(3e-9 * g.area.sum() * 3600.0, rel=1e-12)
    with pytest.raises(ValueError, match="elevated"):
        run(model, met, st0, dt=600.0, nsteps=2, elevated=jnp.zeros((1, 2, 3)))
