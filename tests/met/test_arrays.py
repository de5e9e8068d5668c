"""Met from arrays and functions: mass-flux balancing, air mass tracking ps, consistency, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid, sigma_levels
from diffflux.met import FunctionMet, InterpolatedMet, mass_fluxes_from_winds
from diffflux.met.arrays import met_from_arrays, met_from_functions
from diffflux.met.balance import BalancedMet, column_divergence
from diffflux.transport import Transport

jax.config.update("jax_enable_x64", True)


def _stepper(grid, met):
    """One jitted transport step with traced time and step length (compiled once per met)."""
    model = Transport(grid, vertical_diffusion=None)
    step = jax.jit(lambda s, t, dt: model.step(s, met.fields(t + 0.5 * dt), dt))

    def advance(nsteps, dt, chi=1.0e-6):
        state = model.initial_state(np.full((1,) + grid.shape, chi), met.fields(0.0).ps)
        s = state
        for n in range(nsteps):
            s = step(s, n * dt, dt)
        return state, s

    return advance


def test_balanced_air_mass_tracks_met_ps(grid_l10, builders):
    """Divergent winds + varying ps: model air mass = grid.air_mass(ps_met(t)) and chi stays
    uniform."""
    m = builders.analytic(grid_l10, nt=3)
    met, rep = met_from_arrays(grid_l10, m["times"], m["u"], m["v"], m["ps"], report=True)
    assert isinstance(met, BalancedMet)
    assert rep.residual_before > 1e-2 and rep.residual_after < 1e-12
    # dt = 1800 s divides the 6-hour met interval; 16 steps end 2 hours into the second interval
    dt, nsteps = 1800.0, 16
    state, out = _stepper(grid_l10, met)(nsteps, dt)
    target = np.asarray(grid_l10.air_mass(np.asarray(met.fields(nsteps * dt).ps)))
    assert np.max(np.abs(np.asarray(out.air) / target - 1.0)) < 1e-10
    chi = np.asarray(out.mixing_ratio())
    assert np.max(np.abs(chi / 1.0e-6 - 1.0)) < 1e-12
    mass0, mass1 = float(state.tracer.sum()), float(out.tracer.sum())
    assert abs(mass1 / mass0 - 1.0) < 1e-13


def test_unbalanced_drifts_and_keeps_record_fluxes(grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    met = met_from_arrays(grid_l10, m["times"], m["u"], m["v"], m["ps"], balance=False)
    assert isinstance(met, InterpolatedMet)
    f = met.fields(m["times"][1])
    mfx, mfy = mass_fluxes_from_winds(grid_l10, m["u"][1], m["v"][1], m["ps"][1])
    assert np.allclose(f.mfx, mfx, rtol=1e-13, atol=0)
    assert np.allclose(f.mfy, mfy, rtol=1e-13, atol=1e-20)
    # without balancing the column mass would follow the wind divergence, not the ps tendency
    tend = grid_l10.area / GRAVITY * (m["ps"][1] - m["ps"][0]) / m["times"][1]
    div = np.asarray(column_divergence(0.5 * (met.stack.mfx[0] + met.stack.mfx[1]),
                                       0.5 * (met.stack.mfy[0] + met.stack.mfy[1])))
    assert np.max(np.abs(div + tend)) > 0.1 * np.abs(tend).max()


def test_global_mass_fix_is_reported(grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    ps = m["ps"].copy()
    ps[1] += 150.0  # global air mass grows by 1.5 hPa: not representable by transport
    met, rep = met_from_arrays(grid_l10, m["times"], m["u"], m["v"], ps, report=True)
    assert rep.ps_offset_max == pytest.approx(150.0, rel=1e-12)
    area = grid_l10.area
    gm = [float((np.asarray(met.fields(t).ps) * area).sum() / area.sum()) for t in m["times"]]
    assert gm[1] == pytest.approx(gm[0], rel=1e-14)


def test_optional_fields_and_kz_from_blh(grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    nlev = grid_l10.nlev
    conv = np.zeros((2, nlev + 1, grid_l10.nlat, grid_l10.nlon))
    conv[:, 1:4] = 0.01  # kg m-2 s-1
    met = met_from_arrays(grid_l10, m["times"], m["u"], m["v"], m["ps"],
                          temperature=m["temperature"], blh=m["blh"], conv_mflux=conv, kh=1.0e5)
    f = met.fields(3 * 3600.0)
    assert f.temperature.shape == grid_l10.shape
    assert np.allclose(f.temperature, 0.5 * (m["temperature"][0] + m["temperature"][1]))
    kz = np.asarray(f.kz)
    assert kz.shape == (nlev + 1, grid_l10.nlat, grid_l10.nlon)
    assert np.all(kz[0] == 0) and np.all(kz[-1] == 0)
    # inside the boundary layer (tropics, BLH up to 1.95 km) Kz ~ 10-100 m2/s, above it 0.1
    assert kz[1].max() > 10.0 and kz[1].min() >= 0.1
    assert np.allclose(kz[-2], 0.1)
    assert np.allclose(f.conv_mflux[2], 0.01 * grid_l10.area)
    assert float(f.kh.max()) == pytest.approx(1.0e5)


def test_regridded_arrays(builders):
    """Arrays on a finer source grid (lat/lon given) are remapped; ps keeps its global mean."""
    grid = LatLonGrid(16, 8, sigma_levels(2))
    src = LatLonGrid(36, 18, sigma_levels(2))
    m = builders.analytic(src, nt=2)
    met = met_from_arrays(grid, m["times"], m["u"], m["v"], m["ps"], lat=src.lat, lon=src.lon,
                          balance=False)
    ps = np.asarray(met.fields(0.0).ps)
    gm_src = (m["ps"][0] * src.area).sum() / src.area.sum()
    gm = (ps * grid.area).sum() / grid.area.sum()
    assert gm == pytest.approx(gm_src, rel=1e-13)


def test_array_errors_name_the_variable(grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    args = (m["times"], m["u"], m["v"], m["ps"])
    with pytest.raises(ValueError, match=r"variable 'u' must have shape \(2, 10, 12, 24\)"):
        met_from_arrays(grid_l10, args[0], m["u"][:, :3], m["v"], m["ps"])
    bad = m["v"].copy()
    bad[1, 2, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"variable 'v' has 1 non-finite value.*\(1, 2, 3, 4\)"):
        met_from_arrays(grid_l10, args[0], m["u"], bad, m["ps"])
    with pytest.raises(ValueError, match="strictly increasing"):
        met_from_arrays(grid_l10, m["times"][::-1], m["u"], m["v"], m["ps"])
    with pytest.raises(ValueError, match="'ps' must exceed the model-top pressure"):
        met_from_arrays(grid_l10, m["times"], m["u"], m["v"], m["ps"] / 1.0e3)
    with pytest.raises(ValueError, match="reference_time"):
        met_from_arrays(grid_l10, np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]"),
                        m["u"], m["v"], m["ps"])
    conv = np.ones((2, grid_l10.nlev + 1, grid_l10.nlat, grid_l10.nlon))
    with pytest.raises(ValueError, match="'conv_mflux' must be zero at the surface"):
        met_from_arrays(grid_l10, *args, conv_mflux=conv)


def test_float32_met(grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    met = met_from_arrays(grid_l10, m["times"], m["u"], m["v"], m["ps"], dtype=jnp.float32)
    f = jax.jit(lambda t: met.fields(t))(jnp.float32(1800.0))
    assert f.mfx.dtype == jnp.float32 and f.ps.dtype == jnp.float32
    tend = grid_l10.area / GRAVITY * (m["ps"][1] - m["ps"][0]) / m["times"][1]
    div = np.asarray(column_divergence(f.mfx, f.mfy), dtype=np.float64)
    scale = np.abs(np.asarray(f.mfx, dtype=np.float64)).max()
    assert np.max(np.abs(div + tend)) < 1e-5 * scale


def test_dates_with_reference_time(grid_l10, builders):
    m = builders.analytic(grid_l10, nt=2)
    dates = builders.ref + (m["times"] * 1e9).astype("timedelta64[ns]") + np.timedelta64(1, "D")
    met = met_from_arrays(grid_l10, dates, m["u"], m["v"], m["ps"], reference_time="2020-01-01")
    assert np.allclose(np.asarray(met.times), m["times"] + 86400.0)


# ---- functions
# ------------------------------------------------------------------------------------


def _fn_met(grid, balance=True):
    def ps_fn(t, lon, lat):
        lam, phi = jnp.deg2rad(lon), jnp.deg2rad(lat)
        return 1.0e5 + 500.0 * jnp.cos(phi) * jnp.sin(lam + t / 20000.0) \
            + 200.0 * jnp.sin(phi) * jnp.cos(t / 30000.0)

    def u_fn(t, lon, lat, p):
        return 20.0 * jnp.cos(jnp.deg2rad(lat)) * (1.5 - p / 1.0e5)

    def v_fn(t, lon, lat):
        return 5.0 * jnp.sin(2.0 * jnp.deg2rad(lon) - t / 43200.0) * jnp.cos(jnp.deg2rad(lat))

    def t_fn(t, lon, lat, p):
        return 200.0 + 12.0 * jnp.log(p / 100.0)

    return met_from_functions(grid, u_fn, v_fn, ps_fn, temperature_fn=t_fn,
                              blh_fn=lambda t, lon, lat: 1000.0 + 0.0 * lat, balance=balance), ps_fn


def test_function_met_column_divergence_matches_dps_dt(grid_l10):
    met, ps_fn = _fn_met(grid_l10)
    assert isinstance(met, FunctionMet)
    t = 5000.0
    f = jax.jit(lambda tt: met.fields(tt))(t)
    lon2 = np.broadcast_to(grid_l10.lon[None], (grid_l10.nlat, grid_l10.nlon))
    lat2 = np.broadcast_to(grid_l10.lat[:, None], (grid_l10.nlat, grid_l10.nlon))
    dps = jax.jvp(lambda tt: ps_fn(tt, lon2, lat2), (jnp.asarray(t),), (jnp.asarray(1.0),))[1]
    tend = np.asarray(dps) * grid_l10.area / GRAVITY
    tend -= grid_l10.area * tend.sum() / grid_l10.area.sum()
    div = np.asarray(column_divergence(f.mfx, f.mfy))
    assert np.max(np.abs(div + tend)) < 1e-11 * np.abs(tend).max()
    assert f.temperature.shape == grid_l10.shape and f.kz.shape[0] == grid_l10.nlev + 1


def test_function_met_air_mass_second_order(grid_l10):
    """The transported air mass follows ps_fn(t) with a midpoint-rule error ~ dt^2."""
    met, _ = _fn_met(grid_l10)
    advance = _stepper(grid_l10, met)
    errs = []
    for dt, n in ((3600.0, 6), (1800.0, 12)):
        _, out = advance(n, dt)
        target = np.asarray(grid_l10.air_mass(np.asarray(met.fields(n * dt).ps)))
        errs.append(np.max(np.abs(np.asarray(out.air) / target - 1.0)))
    assert errs[0] < 1e-5
    assert 3.0 < errs[0] / errs[1] < 5.0


def test_function_met_arity_error(grid_l10):
    with pytest.raises(ValueError, match=r"u_fn must be callable as u_fn\(t, lon, lat\)"):
        met_from_functions(grid_l10, lambda t: 0.0, lambda t, lon, lat: 0.0,
                           lambda t, lon, lat: 1e5)
