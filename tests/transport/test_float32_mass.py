"""Float32 tracer-mass conservation with compensated (Kahan 1965 / Neumaier 1974) tracer updates."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import divergent_met

from diffflux.grid import LatLonGrid, sigma_levels, standard_levels
from diffflux.met import ConstantMet, MetFields
from diffflux.met.climatology import Climatology
from diffflux.transport import (
    ConvectiveMassFlux,
    HorizontalDiffusion,
    PiecewiseLinear,
    Transport,
    TransportState,
    run,
)
from diffflux.transport.compensated import compensated_add

DT = 3600.0


def test_compensated_add_keeps_increments_below_half_an_ulp_under_jit():
    """1e4 increments of 1e-8 to 1.0 in float32: plain addition loses all of them (swamping); the
    compensated sum keeps them, i.e. XLA does not simplify the compensation away."""

    @functools.partial(jax.jit, static_argnums=0)
    def accumulate(compensate):
        def body(_, c):
            q, r = c
            q_new, r_new = compensated_add(q, jnp.float32(1e-8), r if compensate else None)
            return q_new, (r_new if compensate else r)

        q, r = jax.lax.fori_loop(0, 10_000, body, (jnp.float32(1.0), jnp.float32(0.0)))
        return q, r

    q_plain, _ = accumulate(False)
    q, r = accumulate(True)
    assert float(q_plain) == 1.0
    np.testing.assert_allclose(float(q) + float(r) - 1.0, 1e-4, rtol=1e-3)


def _climatology_setup(dtype, resolution=(4, 5)):
    """The configuration of ``scripts/float32_mass_drift.py`` (all operators, climatological met)."""
    grid = LatLonGrid.from_resolution(*resolution, "L10")
    met = Climatology(grid, dtype=dtype)
    model = Transport(grid, horizontal_diffusion=HorizontalDiffusion(), convection=ConvectiveMassFlux())
    return model, met, model.initial_state(_chi(grid, dtype), met.fields(0.0).ps)


def _chi(grid, dtype):
    lat = jnp.asarray(grid.lat, dtype)
    ones = jnp.ones((1,) + grid.shape, dtype)
    return (400e-6 + 20e-6 * jnp.sin(jnp.deg2rad(lat))[None, None, :, None] * ones).astype(dtype)


def _relative_change(state, final):
    total = [np.sum(np.asarray(x.tracer, np.float64)) for x in (state, final)]
    return total[1] / total[0] - 1.0


def test_float32_horizontal_diffusion_drift_is_removed_by_compensation():
    """Horizontal diffusion alone (the largest contributor of a single-operator run; in the full model
    vertical diffusion dominates, see notes/float32_report.md) for 30 days at 15 x 15 degrees L10 in
    float32: the plain update gains ~8e-8 (increments below half an ulp of the receiving cell are lost,
    with a sign bias); the compensated update stays at ~1e-9. Fast (one small compile)."""
    grid = LatLonGrid(24, 12, standard_levels("L10"))
    dtype = jnp.float32
    ps = jnp.full(grid.shape[1:], 1e5, dtype)
    met = ConstantMet(MetFields(ps=ps, mfx=jnp.zeros(grid.shape, dtype),
                                mfy=jnp.zeros((grid.nlev, grid.nlat + 1, grid.nlon), dtype),
                                kh=jnp.asarray(1e6, dtype)))
    model = Transport(grid, vertical_diffusion=None, horizontal_diffusion=HorizontalDiffusion())
    state = model.initial_state(_chi(grid, dtype), ps)

    @jax.jit
    def both(s):
        return tuple(run(model, met, s, dt=DT, nsteps=24 * 30, compensate=c)[0] for c in (False, True))

    plain, comp = both(state)
    assert comp.residual is None and comp.tracer.dtype == dtype
    old, new = _relative_change(state, plain), _relative_change(state, comp)
    assert abs(old) >= 3e-8, old  # the uncompensated code fails the bound below
    assert abs(new) <= 1e-8 and abs(old) >= 10 * abs(new), (old, new)


def _small_setup(dtype, advection=None):
    grid = LatLonGrid(16, 8, sigma_levels(4))
    met, ps = divergent_met(grid, dtype=dtype)
    model = Transport(grid) if advection is None else Transport(grid, advection=advection)
    return model, met, model.initial_state(_chi(grid, dtype), jnp.asarray(ps, dtype))


def test_float64_unchanged_and_compensation_is_round_off_there():
    model, met, state = _small_setup(jnp.float64)
    f = jax.jit(lambda s, c: run(model, met, s, dt=1800.0, nsteps=6, compensate=c)[0], static_argnums=1)
    default = f(state, None)
    plain = f(state, False)
    np.testing.assert_array_equal(np.asarray(default.tracer), np.asarray(plain.tracer))  # default: off
    assert default.residual is None
    comp = f(state, True)
    np.testing.assert_allclose(np.asarray(comp.tracer), np.asarray(plain.tracer), rtol=1e-13)


def test_compensated_float32_state_structure_and_checkpointing():
    model, met, state = _small_setup(jnp.float32)
    emis = jnp.full((1, model.grid.nlat, model.grid.nlon), 1e-6, jnp.float32)

    @functools.partial(jax.jit, static_argnums=1)
    def final(s, ck):
        return run(model, met, s, dt=1800.0, nsteps=4, flux=emis, checkpoint=ck)[0]

    ref, nested = final(state, None), final(state, "nested")
    for out in (ref, nested):
        assert out.residual is None  # folded back: same pytree structure as the input state
    np.testing.assert_allclose(np.asarray(nested.tracer), np.asarray(ref.tracer), rtol=1e-6)
    # a state that carries a residual keeps it (and its folded amounts agree)
    carried = final(state.with_residual(), None)
    assert isinstance(carried, TransportState) and carried.residual is not None
    np.testing.assert_allclose(np.asarray(carried.folded().tracer), np.asarray(ref.tracer), rtol=1e-6)


def test_gradient_through_compensated_float32_run():
    """Reverse mode through the compensated update (checkpointed steps) of a linear scheme: the float32
    gradient agrees with the float64 one."""
    lin = PiecewiseLinear(limiter=None)
    weights = jnp.linspace(0.5, 1.5, 16)
    grads = []
    for dtype in (jnp.float32, jnp.float64):
        model, met, state = _small_setup(dtype, lin)

        def loss(flux, model=model, met=met, state=state, dtype=dtype):
            out = run(model, met, state, dt=1800.0, nsteps=3, flux=flux, checkpoint="step")[0]
            return jnp.sum(out.tracer[:, 0] * weights.astype(dtype))

        emis = jnp.full((1, model.grid.nlat, model.grid.nlon), 1e-6, dtype)
        grads.append(np.asarray(jax.jit(jax.grad(loss))(emis), np.float64))
    assert np.all(np.isfinite(grads[0]))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5)

    # the compensated update is formally linear (TwoSum, no branch): jax.linear_transpose works
    model, met, state = _small_setup(jnp.float32, lin)

    def lin_map(q):
        return run(model, met, TransportState(tracer=q, air=state.air), dt=1800.0, nsteps=2)[0].tracer

    x = state.tracer
    y = jnp.asarray(np.random.default_rng(0).standard_normal(x.shape), jnp.float32)
    lhs = float(jnp.vdot(y.astype(jnp.float64), jax.jit(lin_map)(x).astype(jnp.float64)))
    (lt_y,) = jax.jit(jax.linear_transpose(lin_map, x))(y)
    rhs = float(jnp.vdot(lt_y.astype(jnp.float64), x.astype(jnp.float64)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


@pytest.mark.slow
def test_float32_drift_30_days_4x5_climatology():
    """The benchmark configuration of ``scripts/float32_mass_drift.py`` over 30 days (all operators)."""
    model, met, state = _climatology_setup(jnp.float32)

    @jax.jit
    def both(s):
        return tuple(run(model, met, s, dt=DT, nsteps=24 * 30, compensate=c)[0] for c in (False, True))

    plain, comp = both(state)
    old, new = _relative_change(state, plain), _relative_change(state, comp)
    assert abs(new) <= 2e-8 and abs(old) >= 5 * abs(new), (old, new)
