"""Point and column operators: exact recovery of linear fields, poles, dot-product test, column formula."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from obs_helpers import reference_heights, static_met

from diffflux.constants import M_AIR
from diffflux.grid import LatLonGrid
from diffflux.met import ConstantMet, MetFields
from diffflux.observations import (
    build_operator,
    column_average,
    concat_tables,
    horizontal_stencil,
    level_heights,
    make_table,
    remap_profile,
    sample_states,
    to_arrays,
)
from diffflux.transport import TransportState

START = np.datetime64("2021-07-01T00:00:00", "ns")
DT, NSTEPS = 3600.0, 4


@pytest.fixture(scope="module")
def grid():
    return LatLonGrid.from_resolution(10, 10, "L10")


def _states(grid, ps, fields):
    """Stacked states (NSTEPS + 1 times) from mixing-ratio fields ``(NSTEPS + 1, ntr, nlev, nlat, nlon)``."""
    air = np.asarray(grid.air_mass(np.asarray(ps)))
    chi = np.asarray(fields)
    tracer = chi * (air / M_AIR)[None, None]
    return TransportState(
        tracer=jnp.asarray(tracer), air=jnp.asarray(np.broadcast_to(air, (chi.shape[0],) + air.shape))
    )


def _sample(grid, table, states, met, tracers=("CO2", "CH4")):
    arrays = to_arrays(table, list(tracers), START)
    op = build_operator(arrays, grid, t0=0.0, dt=DT, nsteps=NSTEPS)
    return np.asarray(jax.jit(sample_states)(op, states, met)), op


def test_level_heights_match_hydrostatic_loop(grid):
    met, ps, temp = static_met(grid)
    z = level_heights(
        jnp.asarray(grid.levels.a),
        jnp.asarray(grid.levels.b),
        jnp.asarray(ps),
        jnp.moveaxis(jnp.asarray(temp), 0, -1),
        jnp.zeros_like(jnp.asarray(ps)),
    )
    np.testing.assert_allclose(
        np.moveaxis(np.asarray(z), -1, 0), reference_heights(grid, ps, temp), rtol=1e-13
    )
    assert np.all(np.diff(np.asarray(z), axis=-1) > 0)


def test_exact_recovery_of_linear_field_in_lat_lon_height_time(grid, rng):
    met, ps, temp = static_met(grid)
    z = reference_heights(grid, ps, temp)
    assert z[0].max() < 1500.0 and z[-1].min() > 12000.0  # the sampled heights lie between layer middles
    lat = grid.lat[None, :, None]
    lon = grid.lon[None, None, :]
    coef = [(400e-6, 1e-7, 3e-8, 2e-9, 1e-10), (1.9e-6, -2e-9, 5e-10, -3e-11, 4e-13)]
    fields = np.stack(
        [
            np.stack([c0 + a * lat + b * lon + c * z + d * (n * DT) for c0, a, b, c, d in coef])
            for n in range(NSTEPS + 1)
        ]
    )
    n = 300
    secs = np.round(rng.uniform(0, NSTEPS * DT, n))
    secs[:3] = [0.0, NSTEPS * DT, 2 * DT]  # window ends and a step boundary
    olat, olon = rng.uniform(-80, 80, n), rng.uniform(-170, 170, n)
    alt = rng.uniform(1500, 12000, n)
    species = rng.choice(["CO2", "CH4"], n)
    table = make_table(
        START + (secs * 1e9).astype("timedelta64[ns]"),
        olat,
        olon,
        np.full(n, 1e-6),
        1e-7,
        species,
        altitude=alt,
    )
    y, _ = _sample(grid, table, _states(grid, ps, fields), met)
    k = (species == "CH4").astype(int)
    c = np.array(coef)[k]
    expected = c[:, 0] + c[:, 1] * olat + c[:, 2] * olon + c[:, 3] * alt + c[:, 4] * secs
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=0)


def test_exact_recovery_for_pressure_located_records(grid, rng):
    met, ps, _ = static_met(grid)
    p = grid.levels.interfaces(ps)
    pmid = 0.5 * (p[:-1] + p[1:])
    assert pmid[0].min() > 80000.0 and pmid[-1].max() < 20000.0
    lat, lon = grid.lat[None, :, None], grid.lon[None, None, :]
    fields = np.stack(
        [
            (400e-6 + 1e-7 * lat - 2e-8 * lon + 3e-6 * np.log(pmid) + 1e-10 * n * DT)[None]
            for n in range(NSTEPS + 1)
        ]
    )
    n = 200
    secs = np.round(rng.uniform(0, NSTEPS * DT, n))
    olat, olon, prs = rng.uniform(-80, 80, n), rng.uniform(-170, 170, n), rng.uniform(20000, 80000, n)
    table = make_table(
        START + (secs * 1e9).astype("timedelta64[ns]"),
        olat,
        olon,
        np.full(n, 1e-6),
        1e-7,
        "CO2",
        pressure=prs,
        sampling="aircraft",
    )
    y, _ = _sample(grid, table, _states(grid, ps, fields), met, tracers=("CO2",))
    expected = 400e-6 + 1e-7 * olat - 2e-8 * olon + 3e-6 * np.log(prs) + 1e-10 * secs
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_horizontal_stencil_periodic_and_polar(grid, rng):
    lat, lon = rng.uniform(-90, 90, 50), rng.uniform(-180, 180, 50)
    i0, w0 = horizontal_stencil(grid, lat, lon)
    for shift in (360.0, -360.0):
        i1, w1 = horizontal_stencil(grid, lat, lon + shift)
        np.testing.assert_array_equal(i0, i1)
        np.testing.assert_allclose(w0, w1, atol=1e-12)
    np.testing.assert_allclose(w0.sum(1), 1.0, rtol=1e-14)
    assert np.all(w0 >= 0)
    # continuity across the polar-row centre and single stencil at the pole
    field = rng.standard_normal(grid.nlat * grid.nlon)
    lat_n = grid.lat[-1]
    for lo in (-123.4, 7.0, 179.9):
        below = horizontal_stencil(grid, [lat_n - 1e-9], [lo])
        above = horizontal_stencil(grid, [lat_n + 1e-9], [lo])
        vb = (field[below[0]] * below[1]).sum()
        va = (field[above[0]] * above[1]).sum()
        assert abs(va - vb) < 1e-7
    idx, w = horizontal_stencil(grid, [90.0], [12.5])
    half = grid.nlon // 2
    assert np.all(idx[0] // grid.nlon == grid.nlat - 1)
    np.testing.assert_array_equal(idx[0, 2:] % grid.nlon, (idx[0, :2] % grid.nlon + half) % grid.nlon)
    np.testing.assert_allclose(w[0, :2].sum(), 0.5)
    np.testing.assert_allclose(w[0, 2:].sum(), 0.5)
    # south pole mirror
    idx, w = horizontal_stencil(grid, [-90.0 + 1e-12], [0.0])
    assert np.all(idx[0] // grid.nlon == 0)


def _column_table(n, nret, rng, secs, ps0=1.0e5):
    p = np.linspace(ps0 * 0.98, 5000.0, nret)
    pw = rng.uniform(0.5, 1.5, (n, nret))
    pw /= pw.sum(1, keepdims=True)
    prior = rng.uniform(395e-6, 405e-6, (n, nret))
    col = {
        "ret_pressure": np.broadcast_to(p, (n, nret)),
        "averaging_kernel": rng.uniform(0.3, 1.1, (n, nret)),
        "pressure_weight": pw,
        "prior_profile": prior,
        "prior_value": (pw * prior).sum(1),
    }
    return make_table(
        START + (secs * 1e9).astype("timedelta64[ns]"),
        rng.uniform(-89, 89, n),
        rng.uniform(-180, 180, n),
        np.full(n, 400e-6),
        1e-6,
        "CO2",
        kind="column",
        site="SAT",
        sampling="satellite",
        column=col,
    )


def test_adjoint_dot_product(rng):
    """<H x, y> = <x, H^T y> for the linear sampling operator (points and columns with zero priors)."""
    grid = LatLonGrid.from_resolution(15, 20, "L10")
    met, ps, _ = static_met(grid)
    n = 80
    pts = make_table(
        START + (np.round(rng.uniform(0, NSTEPS * DT, n)) * 1e9).astype("timedelta64[ns]"),
        rng.uniform(-90, 90, n),
        rng.uniform(-180, 180, n),
        np.full(n, 1e-6),
        1e-7,
        rng.choice(["CO2", "CH4"], n),
        altitude=rng.uniform(0, 30000, n),
    )
    cols = _column_table(30, 9, rng, np.round(rng.uniform(0, NSTEPS * DT, 30)))
    cols["prior_profile"][:] = 0.0  # without the prior the column operator is linear, not affine
    cols["prior_value"][:] = 0.0
    table = concat_tables([pts, cols])
    op = build_operator(to_arrays(table, ["CO2", "CH4"], START), grid, t0=0.0, dt=DT, nsteps=NSTEPS)
    air1 = jnp.asarray(grid.air_mass(ps))
    air = jnp.broadcast_to(air1, (NSTEPS + 1,) + grid.shape)
    x_shape = (NSTEPS + 1, 2) + grid.shape

    @jax.jit
    def H(chi):  # mixing ratio (O(1) numbers) -> samples
        return sample_states(op, TransportState(tracer=chi * (air / M_AIR)[:, None], air=air), met)

    x = jnp.asarray(rng.standard_normal(x_shape))
    y = jnp.asarray(rng.standard_normal(table.sizes["obs"]))
    HT = jax.jit(jax.linear_transpose(H, x))
    Hx = H(x)
    lhs = float(jnp.vdot(Hx, y))
    rhs = float(jnp.vdot(x, HT(y)[0]))
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), abs(rhs))
    # and the operator is linear: H(2x + 3z) = 2 Hx + 3 Hz
    z = jnp.asarray(rng.standard_normal(x_shape))
    np.testing.assert_allclose(H(2 * x + 3 * z), 2 * Hx + 3 * H(z), rtol=1e-10, atol=1e-12)


def test_column_average_hand_computed():
    x = np.array([400e-6, 402e-6, 405e-6])
    prior = np.array([398e-6, 399e-6, 400e-6])
    ak = np.array([1.0, 0.8, 0.5])
    w = np.array([0.5, 0.3, 0.2])
    # 399 + 0.5*1.0*2 + 0.3*0.8*3 + 0.2*0.5*5 = 401.22 ppm
    assert float(column_average(x, prior, ak, w, 399e-6)) == pytest.approx(401.22e-6, rel=1e-13)
    assert float(column_average(x, prior, 0 * ak, w, 399e-6)) == pytest.approx(399e-6, rel=1e-15)
    pm = jnp.array([90000.0, 50000.0, 10000.0])
    v = remap_profile(pm, jnp.array([1.0, 2.0, 3.0]), jnp.array([90000.0, 70000.0, 30000.0, 5000.0, 95000.0]))
    f1 = math.log(90000 / 70000) / math.log(90000 / 50000)
    f2 = math.log(50000 / 30000) / math.log(50000 / 10000)
    np.testing.assert_allclose(v, [1.0, 1.0 + f1, 2.0 + f2, 3.0, 1.0], rtol=1e-14)


def test_column_operator_identity_and_zero_kernel(grid, rng):
    ps0 = 1.0e5
    ps = np.full((grid.nlat, grid.nlon), ps0)
    zeros = jnp.zeros(grid.shape)
    met = ConstantMet(
        MetFields(ps=jnp.asarray(ps), mfx=zeros, mfy=jnp.zeros((grid.nlev, grid.nlat + 1, grid.nlon)))
    )
    p = grid.levels.interfaces(np.float64(ps0))
    pmid, dp = 0.5 * (p[:-1] + p[1:]), p[:-1] - p[1:]
    profile = rng.uniform(390e-6, 420e-6, grid.nlev)
    fields = np.broadcast_to(profile[None, None, :, None, None], (NSTEPS + 1, 1) + grid.shape)
    n = 12
    w = dp / dp.sum()
    prior = rng.uniform(395e-6, 405e-6, (n, grid.nlev))
    col = {
        "ret_pressure": np.broadcast_to(pmid, (n, grid.nlev)),
        "averaging_kernel": np.ones((n, grid.nlev)),
        "pressure_weight": np.broadcast_to(w, (n, grid.nlev)),
        "prior_profile": prior,
        "prior_value": prior @ w,
    }
    secs = np.round(rng.uniform(0, NSTEPS * DT, n))
    table = make_table(
        START + (secs * 1e9).astype("timedelta64[ns]"),
        rng.uniform(-89.9, 89.9, n),
        rng.uniform(-180, 180, n),
        np.full(n, 400e-6),
        1e-6,
        "CO2",
        kind="column",
        column=col,
    )
    y, _ = _sample(grid, table, _states(grid, ps, fields), met, tracers=("CO2",))
    np.testing.assert_allclose(y, np.sum(w * profile), rtol=1e-13)
    table["averaging_kernel"][:] = 0.0
    y0, _ = _sample(grid, table, _states(grid, ps, fields), met, tracers=("CO2",))
    np.testing.assert_allclose(y0, prior @ w, rtol=1e-14)


def test_times_outside_window_raise(grid):
    table = make_table([START - np.timedelta64(1, "s")], [0.0], [0.0], [4e-4], 1e-6, "CO2", altitude=[10.0])
    with pytest.raises(ValueError, match="outside the run window"):
        build_operator(to_arrays(table, ["CO2"], START), grid, t0=0.0, dt=DT, nsteps=NSTEPS)


def test_per_step_tables_scale_with_observations(grid, rng):
    """The padded per-step layout holds about nobs slots, not nobs x nsteps."""
    nsteps, n = 200, 5000
    secs = np.round(rng.uniform(0, nsteps * DT, n))
    table = make_table(
        START + (secs * 1e9).astype("timedelta64[ns]"),
        rng.uniform(-80, 80, n),
        rng.uniform(-180, 180, n),
        np.full(n, 4e-4),
        1e-6,
        "CO2",
        altitude=rng.uniform(0, 5000, n),
    )
    op = build_operator(to_arrays(table, ["CO2"], START), grid, t0=0.0, dt=DT, nsteps=nsteps)
    slots = op.point.tracer.size
    assert n <= slots < 2.5 * n
    assert op.padding_efficiency()["point"]["efficiency"] == pytest.approx(n / slots)
