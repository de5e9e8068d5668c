"""Tests of the built-in climatology (met/climatology.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import GRAVITY, P_REF, SECONDS_PER_DAY
from diffflux.grid import LatLonGrid, standard_levels
from diffflux.met.climatology import Climatology, ClimatologyParams
from diffflux.transport import (
    PPM,
    HorizontalDiffusion,
    ImplicitVerticalDiffusion,
    Transport,
    check_time_step,
    run,
)
from diffflux.transport.advection import vertical_mass_flux
from diffflux.transport.convection import ConvectiveMassFlux

jax.config.update("jax_enable_x64", True)

DAY = SECONDS_PER_DAY
JAN, APR, JUL, OCT = 15 * DAY, 105 * DAY, 196 * DAY, 288 * DAY


@pytest.fixture(scope="module")
def grid():
    return LatLonGrid.from_resolution(4, 5, "L10")


@pytest.fixture(scope="module")
def clim(grid):
    return Climatology(grid)


@pytest.fixture(scope="module")
def fields(clim):
    f = jax.jit(clim.fields)
    return {t: f(t) for t in (JAN, APR, JUL, OCT)}


def _dp(grid):
    return np.asarray(grid.levels.thickness(np.float64(P_REF)))


def test_shapes_and_dtypes(grid, fields):
    f = fields[JAN]
    nlev, nlat, nlon = grid.shape
    assert f.ps.shape == (nlat, nlon)
    assert f.mfx.shape == (nlev, nlat, nlon)
    assert f.mfy.shape == (nlev, nlat + 1, nlon)
    assert f.temperature.shape == (nlev, nlat, nlon)
    assert f.kz.shape == (nlev + 1, nlat, nlon)
    assert f.conv_mflux.shape == (nlev + 1, nlat, nlon)
    assert f.kh.shape == (nlev, nlat, nlon)
    for leaf in jax.tree_util.tree_leaves(f):
        assert leaf.dtype == jnp.float64
        assert bool(jnp.all(jnp.isfinite(leaf)))
    small = LatLonGrid(12, 18, standard_levels("L10"))
    f32 = jax.jit(Climatology(small, dtype="float32").fields)(jnp.float32(JUL))
    for leaf in jax.tree_util.tree_leaves(f32):
        assert leaf.dtype == jnp.float32


def test_mass_fluxes_are_column_non_divergent(grid, fields):
    for t, f in fields.items():
        mfx, mfy = np.asarray(f.mfx), np.asarray(f.mfy)
        # zonal fluxes are uniform along each circle: zero zonal divergence, bit for bit
        np.testing.assert_array_equal(np.roll(mfx, -1, axis=-1) - mfx, 0.0)
        np.testing.assert_array_equal(mfy[:, [0, -1]], 0.0)
        # the meridional flux of every face sums to zero over the column (the overturning closes)
        assert np.abs(mfy.sum(axis=0)).max() <= 1e-14 * np.abs(mfy).max(), t
        # and the overturning is really there
        assert np.abs(mfy).max() > 1e8
        # continuity-derived vertical fluxes close every level: no air-mass tendency anywhere
        fz = np.asarray(vertical_mass_flux(f.mfx, f.mfy, grid.levels.b))
        div = (np.roll(mfx, -1, -1) - mfx) + (mfy[:, 1:] - mfy[:, :-1])
        dm = -div + fz[:-1] - fz[1:]
        assert np.abs(dm).max() <= 1e-13 * np.abs(mfy).max()
        np.testing.assert_array_equal(fz[[0, -1]], 0.0)


def test_hadley_cells_and_itcz_migrate(grid, clim, fields):
    p = clim.params
    lat_e = grid.lat_edges
    dp = _dp(grid)
    # winter-hemisphere Hadley cell: surface flow towards the ITCZ, reaching across the equator
    v0 = {}
    for t, f in fields.items():
        dx = np.maximum(grid.dx_face_y, 1.0)
        v0[t] = np.asarray(f.mfy)[0, :, 0] * GRAVITY / (dp[0] * dx)  # lowest-layer v [m s-1]
    n2, s2 = np.argmin(np.abs(lat_e - 2.0)), np.argmin(np.abs(lat_e + 2.0))
    assert v0[JAN][n2] < -0.3  # January: southward flow north of the ITCZ (northern winter cell)
    assert v0[JUL][n2] > 0.3 and v0[JUL][s2] > 0.3  # July: northward across the equator
    # trades converge on the ITCZ: the surface flow changes sign there
    for t in (JAN, JUL):
        itcz = float(clim.itcz_latitude(t))
        north_side = (lat_e > itcz + 4) & (lat_e < itcz + 20)
        south_side = (lat_e < itcz - 4) & (lat_e > itcz - 20)
        assert np.all(v0[t][north_side] < 0) and np.all(v0[t][south_side] > 0)
    # ITCZ migration: extremes at the documented phase
    peak = p.season_peak_day * DAY
    assert float(clim.itcz_latitude(peak)) == pytest.approx(p.itcz_lat_mean + p.itcz_lat_amplitude)
    trough = peak + 0.5 * 365.25 * DAY
    assert float(clim.itcz_latitude(trough)) == pytest.approx(
        p.itcz_lat_mean - p.itcz_lat_amplitude
    )
    # the winter cell is the strong one (zonal-total mass flux in the lowest layer)
    jan_total = np.asarray(fields[JAN].mfy)[0].sum(-1)
    assert -jan_total[lat_e > 0].min() > 3.0 * jan_total[lat_e < 0].max()


def test_jets_trades_and_westerlies(grid, clim):
    pmid = grid.levels.reference_pressures()
    for t in (JAN, JUL):
        u = np.asarray(clim.zonal_wind(t))
        k, j = np.unravel_index(np.argmax(u), u.shape)
        assert 30.0 <= u.max() <= 50.0
        assert 1.2e4 <= pmid[k] <= 3.2e4
        assert 20.0 <= abs(grid.lat[j]) <= 45.0
        sfc = u[0]
        trades = np.abs(np.abs(grid.lat) - 14) < 4
        westerlies = np.abs(np.abs(grid.lat) - 50) < 4
        assert np.all(sfc[trades] < -2.0) and np.all(sfc[westerlies] > 3.0)
    # the winter jet (northern in January) is the stronger one
    u_jan = np.asarray(clim.zonal_wind(JAN))
    assert u_jan[:, grid.lat > 0].max() > u_jan[:, grid.lat < 0].max() + 10.0


def test_boundary_layer_diurnal_and_seasonal_cycle(grid, clim):
    # a northern mid-latitude summer column at local noon and midnight (lon index 0 is -177.5E)
    j = int(np.argmin(np.abs(grid.lat - 42)))
    lon0 = grid.lon[0]
    noon = JUL + (12.0 - lon0 / 15.0) * 3600.0
    h_noon, _ = clim.boundary_layer(noon)
    h_night, _ = clim.boundary_layer(noon + 12 * 3600.0)
    p = clim.params
    assert float(h_noon[j, 0]) > 0.8 * p.pbl_height_max
    assert float(h_night[j, 0]) == pytest.approx(p.pbl_height_min)
    # seasonal: the noon mixed layer is deeper in summer than in winter at 42N
    noon_jan = JAN + (12.0 - lon0 / 15.0) * 3600.0
    h_jan, _ = clim.boundary_layer(noon_jan)
    assert float(h_jan[j, 0]) < float(h_noon[j, 0]) - 200.0
    # Kz: zero at surface and top, >= background in the troposphere, larger by day at the lowest
    # interior interface of a fine-level column
    fine = Climatology(LatLonGrid.from_resolution(4, 5, "L25"))
    kz_day = np.asarray(fine.kz(noon))
    kz_night = np.asarray(fine.kz(noon + 12 * 3600.0))
    np.testing.assert_array_equal(kz_day[[0, -1]], 0.0)
    assert kz_day[1, j, 0] > 5.0 * kz_night[1, j, 0]
    assert np.all(kz_day[1:-1] >= p.kz_stratosphere) and np.all(kz_day <= 500.0)


def test_convection_follows_itcz_and_is_bounded(grid, clim, fields):
    for t, f in fields.items():
        mu = np.asarray(f.conv_mflux)[:, :, 0]
        np.testing.assert_array_equal(mu[[0, -1]], 0.0)
        assert np.all(mu >= 0)
        per_area = mu / grid.area_lat[None]
        j = np.argmax(per_area.max(axis=0))
        assert abs(grid.lat[j] - float(clim.itcz_latitude(t))) <= 4.0
        assert per_area.max() == pytest.approx(clim.params.conv_mflux_peak, rel=0.2)
        # entrainment below conv_peak_pressure, detrainment above, nothing above cloud top
        p_int = grid.levels.interfaces(np.float64(P_REF))
        col = mu[:, j]
        assert np.all(col[p_int <= clim.params.conv_top_pressure] == 0.0)
        near_peak = np.abs(p_int - clim.params.conv_peak_pressure) < 1.5e4
        assert np.argmax(col) in np.nonzero(near_peak)[0]


def test_temperature_and_kh_ranges(grid, fields, clim):
    for f in fields.values():
        temp = np.asarray(f.temperature)
        assert 200.0 <= temp.min() and temp.max() <= 310.0
        assert np.all(np.diff(temp, axis=0) <= 0)  # cooling with height up to the tropopause floor
        kh = np.asarray(f.kh)
        p = clim.params
        assert kh.min() >= 0.99 * p.kh_tropics and kh.max() <= 1.01 * p.kh_extratropics
    kh = np.asarray(fields[JUL].kh)[0, :, 0]
    j_itcz = np.argmin(np.abs(grid.lat - float(clim.itcz_latitude(JUL))))
    assert kh[j_itcz] < kh[grid.lat > 40].min()


def test_params_are_a_differentiable_pytree():
    grid = LatLonGrid(12, 18, standard_levels("L10"))
    params = ClimatologyParams().as_arrays()
    assert len(jax.tree_util.tree_leaves(params)) == len(ClimatologyParams.__dataclass_fields__)

    def overturning_energy(pr):
        f = Climatology(grid, pr).fields(JUL)
        return jnp.sum(f.mfy**2) * 1e-20

    g = jax.jit(jax.grad(overturning_energy))(params)
    assert float(g.hadley_strength) > 0.0
    assert all(bool(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(g))
    # traced time inside jit and a scan-compatible call
    f = jax.jit(lambda t, pr: Climatology(grid, pr).fields(t).kz.sum())
    assert np.isfinite(float(f(jnp.asarray(JUL), params)))


def _full_model(grid, substeps=1):
    return Transport(
        grid,
        advection=PPM(),
        vertical_diffusion=ImplicitVerticalDiffusion(),
        horizontal_diffusion=HorizontalDiffusion(),
        convection=ConvectiveMassFlux(substeps=substeps),
    )


def test_full_transport_keeps_air_mass_and_uniform_field():
    """Many 6-hour steps of the full model on the climatology, float64."""
    grid = LatLonGrid(12, 18, standard_levels("L10"))
    met = Climatology(grid)
    model = _full_model(grid)
    ps = jnp.full((grid.nlat, grid.nlon), P_REF)
    chi_u = 4.2e-4
    rng = np.random.default_rng(0)
    chi = np.stack([np.full(grid.shape, chi_u), rng.uniform(0.0, 1.0, grid.shape)])
    state = model.initial_state(jnp.asarray(chi), ps)
    dt = 6 * 3600.0
    courant = check_time_step(model, met, state, dt=dt, times=[JAN, JUL])
    assert courant["meridional"] < 1.0
    nsteps = 240  # 60 days
    out, _ = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps, t0=JAN))(state)
    air0 = np.asarray(state.air)
    air1 = np.asarray(out.air)
    assert np.all(np.isfinite(np.asarray(out.tracer)))
    assert np.abs(air1 / air0 - 1).max() <= 1e-12
    mix = np.asarray(out.mixing_ratio())
    assert np.abs(mix[0] / chi_u - 1).max() <= 1e-12
    total0 = np.asarray(state.tracer).sum(axis=(1, 2, 3))
    total1 = np.asarray(out.tracer).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(total1, total0, rtol=1e-12, atol=0)
    # the random tracer is mixed (variance falls) and stays within its initial bounds
    assert mix[1].std() < 0.8 * chi[1].std()
    assert mix[1].min() >= -1e-12 and mix[1].max() <= 1.0 + 1e-12
