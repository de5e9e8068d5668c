"""The independent NumPy transport (benchmarks/numpy_reference.py) against diffflux's JAX transport.

Both implement the same equations (PPM, FFSL zonal sweep at any Courant number, Eulerian meridional
and vertical sweeps carrying air mass, vertical fluxes from continuity, implicit Kz). They were
written separately (the NumPy zonal sweep walks upstream cell by cell, the JAX one searches the
cumulative air mass), so agreement to round-off in float64 checks both. Small grid, float64.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import common  # noqa: E402
from benchmarks import numpy_reference as nr  # noqa: E402
from diffflux.constants import M_AIR  # noqa: E402
from diffflux.grid import LatLonGrid, standard_levels  # noqa: E402
from diffflux.met import MetFields  # noqa: E402
from diffflux.transport import PPM, PiecewiseLinear, Transport, run  # noqa: E402

TOL = 1e-12


def _grid() -> LatLonGrid:
    return LatLonGrid(24, 12, standard_levels("L10"))


def _met(grid: LatLonGrid, t: float, polar_courant: float, dt: float) -> dict[str, np.ndarray]:
    """Analytic benchmark met plus a zonally uniform polar jet reaching ``polar_courant`` (per half
    step) in the polar rows: eastward in the north, westward in the south (both FFSL walk
    directions)."""
    snap = common.analytic_met_snapshot(grid, t)
    dp = grid.levels.thickness(snap["ps"])  # (nlev, nlat, nlon), uniform along each circle
    lat = grid.lat
    shape = np.exp(-(((np.abs(lat) - 90.0) / 20.0) ** 2)) * np.sign(lat)
    # air mass crossing a west face in dt/2: u dp dy / g dt/2; choose u so that it equals C m
    m = grid.air_mass(snap["ps"])
    jet = polar_courant * shape[None, :, None] * m / (0.5 * dt)
    snap["mfx"] = snap["mfx"] + jet
    assert np.allclose(dp[:, :, :1], dp)  # zonally uniform thickness: the jet is non-divergent
    return snap


def _relerr(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _max_zonal_courant(fx_half, m) -> float:
    return float(np.max(np.abs(fx_half) / m))


def test_advection_matches_jax_with_large_polar_courant():
    grid = _grid()
    dt = 3600.0
    snap = _met(grid, 0.0, polar_courant=4.0, dt=dt)
    model = Transport(grid, vertical_diffusion=None)
    state = model.initial_state(common.initial_mixing_ratio(grid, 2), snap["ps"])
    m0 = np.asarray(state.air)
    # the setup must exercise the multi-cell FFSL walk in both directions
    assert _max_zonal_courant(np.where(snap["mfx"] > 0, 0.5 * dt * snap["mfx"], 0), m0) > 3.0
    assert _max_zonal_courant(np.where(snap["mfx"] < 0, 0.5 * dt * snap["mfx"], 0), m0) > 3.0

    met = MetFields(**{k: jnp.asarray(v) for k, v in snap.items()})
    advect = jax.jit(lambda s: model.advect(s, met, dt))
    ref = nr.NumpyTransport.from_grid(grid, vertical_diffusion=False)
    q, m = np.asarray(state.tracer), m0
    for _ in range(3):
        state = advect(state)
        q, m = ref.advect(q, m, snap["mfx"], snap["mfy"], dt)
        assert _relerr(state.tracer, q) <= TOL
        assert _relerr(state.air, m) <= TOL
    # and the fields really moved
    assert (
        _relerr(
            q,
            np.asarray(model.initial_state(common.initial_mixing_ratio(grid, 2), snap["ps"]).tracer),
        )
        > 1e-3
    )


def test_full_step_with_kz_flux_and_interpolated_met_matches_jax():
    grid = _grid()
    dt, nsteps = 1800.0, 4
    times, snaps, _ = common.benchmark_met(grid, nsteps * dt, source="analytic")
    model = Transport(grid)  # PPM + implicit vertical diffusion (default)
    state0 = model.initial_state(common.initial_mixing_ratio(grid, 1), snaps[0]["ps"])
    flux = common.surface_flux(grid, 1)
    met = common.jax_met(times, snaps, jnp.float64)
    out, _ = jax.jit(lambda s: run(model, met, s, dt=dt, nsteps=nsteps, flux=jnp.asarray(flux)))(state0)

    ref = nr.NumpyTransport.from_grid(grid)
    q, m = ref.run(
        np.asarray(state0.tracer),
        np.asarray(state0.air),
        common.numpy_met(times, snaps, np.float64),
        dt,
        nsteps,
        flux=flux,
    )
    assert _relerr(out.tracer, q) <= TOL
    assert _relerr(out.air, m) <= TOL
    # diffusion and emissions made a difference that the comparison would have seen
    q_adv, _ = nr.NumpyTransport.from_grid(grid, vertical_diffusion=False).run(
        np.asarray(state0.tracer),
        np.asarray(state0.air),
        common.numpy_met(times, snaps, np.float64),
        dt,
        nsteps,
    )
    assert _relerr(q_adv, q) > 1e-6


def test_unlimited_ppm_matches_and_other_schemes_differ():
    grid = _grid()
    dt = 3600.0
    snap = _met(grid, 3600.0, polar_courant=1.7, dt=dt)
    met = MetFields(**{k: jnp.asarray(v) for k, v in snap.items()})
    chi = common.initial_mixing_ratio(grid, 1)
    ref_lin = nr.NumpyTransport.from_grid(grid, monotone=False, vertical_diffusion=False)
    for recon, expect_equal in (
        (PPM(monotone=False), True),
        (PiecewiseLinear("mc"), False),
        (PPM(), False),
    ):
        model = Transport(grid, advection=recon, vertical_diffusion=None)
        state = model.initial_state(chi, snap["ps"])
        out = jax.jit(lambda s, model=model: model.advect(s, met, dt))(state)
        q, _ = ref_lin.advect(np.asarray(state.tracer), np.asarray(state.air), snap["mfx"], snap["mfy"], dt)
        err = _relerr(out.tracer, q)
        if expect_equal:
            assert err <= TOL, type(recon).__name__
        else:  # the comparison distinguishes schemes (the test above can fail)
            assert err > 1e-7, type(recon).__name__


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
def test_reference_conserves_mass_and_keeps_uniform_mixing_ratio(dtype, tol):
    grid = _grid()
    dt = 3600.0
    snap = _met(grid, 0.0, polar_courant=2.5, dt=dt)
    ref = nr.NumpyTransport.from_grid(grid)
    m = grid.air_mass(snap["ps"]).astype(dtype)
    chi = np.concatenate([common.initial_mixing_ratio(grid, 1), np.full((1,) + grid.shape, 400e-6)]).astype(
        dtype
    )
    q = chi * m / np.asarray(M_AIR, dtype)
    total0 = q.astype(np.float64).sum(axis=(1, 2, 3))
    met = nr.NumpyMet(**{k: snap[k].astype(dtype) for k in ("mfx", "mfy", "kz", "temperature")})
    for _ in range(4):
        q, m = ref.step(q, m, met, dt)
    assert q.dtype == dtype and m.dtype == dtype
    total = q.astype(np.float64).sum(axis=(1, 2, 3))
    assert np.all(np.abs(total / total0 - 1.0) <= tol)
    uniform = q[1] * M_AIR / m
    assert np.max(np.abs(uniform / 400e-6 - 1.0)) <= 10 * tol
    # the air mass itself moved (divergent met), so uniformity was a real test
    assert np.max(np.abs(m / grid.air_mass(snap["ps"]) - 1.0)) > 1e-4
    assert np.all(q[0] > 0.0)
