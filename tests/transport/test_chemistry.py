"""First-order loss: calibration to the species lifetimes, exact integration, jit/grad, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import SECONDS_PER_YEAR
from diffflux.grid import HybridLevels, LatLonGrid, standard_levels
from diffflux.met import ConstantMet, MetFields
from diffflux.species import get_species, species_names
from diffflux.transport import Transport, run
from diffflux.transport.chemistry import (
    FirstOrderLoss,
    boundary_layer_shape,
    pressure_from_air,
    stratosphere_shape,
)

jax.config.update("jax_enable_x64", True)

LOSSY = [n for n in species_names() if n != "CO2"]


@pytest.fixture(scope="module")
def grid():
    return LatLonGrid(16, 8, standard_levels("L10"))


@pytest.fixture(scope="module")
def loss(grid):
    return FirstOrderLoss.for_species(species_names(), grid)


def _still_met(grid, ps, temperature=None):
    z = jnp.zeros(grid.shape)
    zy = jnp.zeros((grid.nlev, grid.nlat + 1, grid.nlon))
    return MetFields(ps=jnp.asarray(ps), mfx=z, mfy=zy, temperature=temperature)


def _lifetimes(loss, grid):
    return jax.jit(lambda a: loss.global_lifetimes(None, a, grid))(_reference_air(grid))


def _reference_air(grid):
    return jnp.asarray(grid.air_mass(np.full((grid.nlat, grid.nlon), 1.0e5)))


def test_shapes_and_signs(grid, loss):
    air = _reference_air(grid)
    k = np.asarray(jax.jit(lambda a: loss.rates(None, a, grid))(air))
    assert k.shape == (len(species_names()),) + grid.shape
    assert np.all(np.isfinite(k)) and np.all(k >= 0)
    i = {n: j for j, n in enumerate(loss.names)}
    assert np.all(k[i["CO2"]] == 0)
    assert np.all(k[i["NOx"]] == k[i["NOx"]].flat[0])  # uniform
    # OH species lose everywhere in the troposphere; stratospheric loss only aloft
    assert np.all(k[i["CH4"]][:5] > 0)
    assert np.all(k[i["N2O"]][0] == 0) and np.all(k[i["N2O"]][-1] > 0)
    assert np.all(k[i["BC"]][0] > 0) and np.all(k[i["BC"]][-1] == 0)
    # tropical lower-troposphere OH loss exceeds polar OH loss for CH4
    assert k[i["CH4"], 2, 4, 0] > 3 * k[i["CH4"], 2, 0, 0]


@pytest.mark.parametrize("levels", ["L10", "L25", "2D"])
def test_calibration_reproduces_lifetimes(levels):
    grid = LatLonGrid(16, 8, standard_levels(levels))
    loss = FirstOrderLoss.for_species(species_names(), grid)
    tau = np.asarray(_lifetimes(loss, grid))
    for n, t in zip(loss.names, tau):
        expected = get_species(n).lifetime
        if np.isinf(expected):
            assert np.isinf(t)
        else:
            assert t == pytest.approx(expected, rel=1e-12), n
    ch4 = tau[loss.names.index("CH4")] / SECONDS_PER_YEAR
    assert ch4 == pytest.approx(9.1, rel=1e-12)


def test_implied_oh_is_plausible(loss):
    # The OH that the AR6 CH4 lifetime (OH part 9.7 yr incl. soil/Cl) implies with the JPL rate
    # constant and the packaged pattern: ~1e6 molecule cm-3 (Spivakovsky et al. 2000: 1.16e6).
    oh = loss.implied_oh()
    assert set(oh) == {"CH4", "HFC-134a", "HFC-32", "HFC-125", "CO"}
    assert 0.8e6 < oh["CH4"] < 2.0e6
    # the HFC lifetimes and their rate constants agree with CH4's OH within 30 %
    for n in ("HFC-134a", "HFC-32", "HFC-125"):
        assert abs(oh[n] / oh["CH4"] - 1.0) < 0.3, (n, oh[n])


def test_lifetime_override_and_errors(grid):
    loss = FirstOrderLoss.for_species(["SF6", "CH4"], grid,
                                      lifetimes={"sf6": 850.0 * SECONDS_PER_YEAR})
    tau = np.asarray(_lifetimes(loss, grid)) / SECONDS_PER_YEAR
    assert tau == pytest.approx([850.0, 9.1], rel=1e-12)
    with pytest.raises(ValueError, match="not in the species list"):
        FirstOrderLoss.for_species(["CH4"], grid, lifetimes={"SF6": 1.0})
    with pytest.raises(ValueError) as err:
        FirstOrderLoss.for_species(["CH4", "Freon-99"], grid)
    assert "Freon-99" in str(err.value) and "HFC-134a" in str(err.value)
    # a grid whose top lies below the tropopause has no stratosphere
    low = HybridLevels(a=np.array([0.0, 0.0, 4.0e4]), b=np.array([1.0, 0.9, 0.0]), name="low")
    with pytest.raises(ValueError, match="stratosphere"):
        FirstOrderLoss.for_species(["N2O"], LatLonGrid(16, 8, low))


def test_pattern_integrals():
    grid = LatLonGrid(8, 4, standard_levels("L25"))
    air = _reference_air(grid)
    p_int = pressure_from_air(grid, air)
    assert np.allclose(p_int[0], 1.0e5, rtol=1e-12)
    assert np.allclose(p_int[-1], grid.levels.p_top)
    # boundary-layer fractions integrate to the prescribed depth in every column
    f = np.asarray(boundary_layer_shape(p_int, 100.0e2))
    dp = np.asarray(p_int[:-1] - p_int[1:])
    assert np.allclose((f * dp).sum(axis=0), 100.0e2, rtol=1e-12)
    # stratospheric shape: exact layer means of ln(p_trop/p)^2; a single layer 0..ps gets 2
    # p_trop/ps
    one = LatLonGrid(8, 4, standard_levels("2D"))
    p1 = pressure_from_air(one, _reference_air(one))
    s = np.asarray(stratosphere_shape(jnp.asarray(one.lat[:, None]), p1))[0, :, 0]
    p_trop = 300.0e2 - 200.0e2 * np.cos(np.deg2rad(one.lat)) ** 2
    assert np.allclose(s, 2.0 * p_trop / 1.0e5, rtol=1e-12)


def test_exact_integration_in_transport(grid):
    """No winds: every cell decays as exp(-k t) exactly; the burden of NOx as exp(-t/tau)."""
    species = ["CH4", "N2O", "NOx", "CO", "BC", "SF6"]
    loss = FirstOrderLoss.for_species(species, grid)
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    met = ConstantMet(_still_met(grid, ps))
    model = Transport(grid, vertical_diffusion=None, chemistry=loss)
    chi = np.ones((len(species),) + grid.shape) * 1e-6
    state = model.initial_state(chi, ps)
    dt, nsteps = 3600.0, 24
    out, _ = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps))(state)
    k = np.asarray(jax.jit(lambda a: loss.rates(None, a, grid))(state.air))
    q0 = np.asarray(state.tracer)
    expected = q0 * np.exp(-k * dt * nsteps)
    assert np.max(np.abs(np.asarray(out.tracer) / expected - 1.0)) < 1e-13
    burden = np.asarray(out.tracer).sum(axis=(1, 2, 3)) / q0.sum(axis=(1, 2, 3))
    tau_nox = get_species("NOx").lifetime
    assert burden[2] == pytest.approx(np.exp(-dt * nsteps / tau_nox), rel=1e-13)
    assert np.all(np.asarray(out.air) == np.asarray(state.air))


def test_burden_decays_at_the_lifetime_per_step(grid):
    """Uniform tracer, one step: burden ratio = exp(-dt/tau) (1 + dt^2 Var(k) / 2 + O(dt^3)).

    The mean loss frequency is exactly 1/tau (calibration), so the per-step deviation from
    exp(-dt/tau) is only the second-order spatial-variance term; with a 30-minute step it is below
    1e-10 for the long-lived gases.
    """
    species = ["CH4", "N2O", "HFC-134a", "HFC-32", "HFC-125", "SF6"]
    loss = FirstOrderLoss.for_species(species, grid)
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    model = Transport(grid, vertical_diffusion=None, chemistry=loss)
    state = model.initial_state(np.full((len(species),) + grid.shape, 1.0e-9), ps)
    tau = np.array([get_species(n).lifetime for n in species])
    k = np.asarray(jax.jit(lambda a: loss.rates(None, a, grid))(state.air))
    w = np.asarray(state.air / state.air.sum())
    var = (w * k**2).sum(axis=(1, 2, 3)) - (w * k).sum(axis=(1, 2, 3)) ** 2
    for dt in (3600.0, 1800.0):
        new = jax.jit(lambda s, m, dt=dt: model.step(s, m, dt))(state, _still_met(grid, ps))
        ratio = np.asarray(new.tracer.sum(axis=(1, 2, 3)) / state.tracer.sum(axis=(1, 2, 3)))
        dev = ratio / np.exp(-dt / tau) - 1.0
        assert np.allclose(dev, 0.5 * dt**2 * var, rtol=1e-3, atol=2e-15)
        if dt == 1800.0:
            assert np.max(np.abs(dev)) < 1e-10


def test_temperature_dependence_and_grad(grid):
    loss = FirstOrderLoss.for_species(["CH4", "SF6"], grid)
    air = _reference_air(grid)
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    cold = _still_met(grid, ps, temperature=jnp.full(grid.shape, 220.0))
    warm = _still_met(grid, ps, temperature=jnp.full(grid.shape, 300.0))
    rates = jax.jit(lambda m: loss.rates(m, air, grid))
    kc, kw = rates(cold), rates(warm)
    # Arrhenius exp(-1775 K / T): 8.6 times faster at 300 K than at 220 K in the lower troposphere
    assert np.allclose(kw[0, 0] / kc[0, 0], np.exp(1775.0 * (1 / 220.0 - 1 / 300.0)), rtol=1e-12)
    assert np.allclose(kw[1], kc[1])  # SF6 has no temperature dependence

    def burden(factor):
        lo = eqx_replace(loss, factor)
        k = lo.rates(warm, air, grid)
        return jnp.sum(air[None] * jnp.exp(-k * 86400.0 * 365.0))

    g = jax.jit(jax.grad(burden))(1.0)
    b = jax.jit(burden)
    fd = (b(1.0 + 1e-6) - b(1.0 - 1e-6)) / 2e-6
    assert float(g) < 0
    assert float(g) == pytest.approx(float(fd), rel=1e-6)


def eqx_replace(loss, factor):
    import equinox as eqx

    return eqx.tree_at(lambda m: m.oh_factor, loss, jnp.asarray(factor))


def test_float32(grid):
    loss = FirstOrderLoss.for_species(LOSSY, grid)
    air = _reference_air(grid).astype(jnp.float32)
    k = jax.jit(lambda a: loss.rates(None, a, grid))(air)
    assert k.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(k)))
    k64 = np.asarray(jax.jit(lambda a: loss.rates(None, a, grid))(air.astype(jnp.float64)))
    assert np.allclose(np.asarray(k), k64, rtol=1e-4, atol=0)
