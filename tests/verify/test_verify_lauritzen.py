"""Lauritzen et al. (2012) deformational flows: set-up, accuracy, PPM vs MC, bounds, diagnostics."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid
from diffflux.transport import PPM, PiecewiseLinear
from diffflux.verify.lauritzen import (
    TRACERS,
    case3_face_winds,
    case4_met,
    cosine_bells,
    gaussian_hills,
    initial_tracers,
    lauritzen_convergence,
    lauritzen_run,
    slotted_cylinders,
    velocity_scale,
)


def test_initial_conditions():
    lat = np.array([[0.0]])
    assert gaussian_hills(lat, np.array([[150.0]]))[0, 0] == pytest.approx(
        0.95 * (1.0 + math.exp(-5.0 * (2.0 * math.sin(math.pi / 6)) ** 2)))
    assert cosine_bells(lat, np.array([[150.0]]))[0, 0] == pytest.approx(1.0)
    assert cosine_bells(lat, np.array([[0.0]]))[0, 0] == pytest.approx(0.1)
    # slot of the first cylinder is open to the north, of the second to the south
    assert slotted_cylinders(np.array([[5.0]]), np.array([[150.0]]))[0, 0] == 0.1
    assert slotted_cylinders(np.array([[-20.0]]), np.array([[150.0]]))[0, 0] == 1.0
    assert slotted_cylinders(np.array([[-5.0]]), np.array([[-150.0]]))[0, 0] == 0.1
    assert slotted_cylinders(np.array([[20.0]]), np.array([[-150.0]]))[0, 0] == 1.0
    q = initial_tracers(LatLonGrid(60, 30))
    assert q.shape == (4, 30, 60)
    assert q[1].min() == pytest.approx(0.1) and q[1].max() <= 1.0
    np.testing.assert_allclose(q[3], -0.8 * q[1] ** 2 + 0.9)


def test_case4_mass_fluxes_match_the_analytic_winds():
    g = LatLonGrid(120, 60)
    ps = np.full((60, 120), 1.0e5)
    f = case4_met(g, ps).fields(jnp.asarray(0.1 * 12 * 86400.0))
    dp = 1.0e5
    u_num = np.asarray(f.mfx[0]) * GRAVITY / (dp * g.dy)
    U = velocity_scale(g.radius)
    lat = np.deg2rad(g.lat)[:, None]
    lonp = np.deg2rad(g.lon_edges[:-1])[None, :] - 2 * math.pi * 0.1
    c = math.cos(math.pi * 0.1)
    u_ex = U * (2.4 * np.sin(lonp) ** 2 * np.sin(2 * lat) * c + 2 * math.pi / 5 * np.cos(lat))
    assert np.max(np.abs(u_num - u_ex)) < 0.01 * U
    # discretely non-divergent
    div = (np.roll(f.mfx, -1, -1) - f.mfx) + (f.mfy[:, 1:] - f.mfy[:, :-1])
    assert np.max(np.abs(div)) < 1e-6 * np.max(np.abs(f.mfx))
    u, v = case3_face_winds(g, 0.0)
    assert u.shape == (60, 120) and v.shape == (61, 120)
    assert float(v[0].max()) == 0.0 == float(v[-1].max())


@pytest.fixture(scope="module")
def case4_runs():
    return {
        ("ppm", 6.0): lauritzen_run(4, 6.0, PPM()),
        ("ppm", 3.0): lauritzen_run(4, 3.0, PPM()),
        ("mc", 3.0): lauritzen_run(4, 3.0, PiecewiseLinear("mc")),
    }


def test_case4_ppm_beats_mc_and_converges(case4_runs):
    ppm, mc = case4_runs[("ppm", 3.0)], case4_runs[("mc", 3.0)]
    for tr in TRACERS:
        assert ppm["norms"][tr]["l2"] < mc["norms"][tr]["l2"]
    g6 = case4_runs[("ppm", 6.0)]["norms"]["gaussian_hills"]["l2"]
    g3 = ppm["norms"]["gaussian_hills"]["l2"]
    assert math.log(g6 / g3) / math.log(2.0) > 0.5  # pre-asymptotic at 6-3 degrees
    # PPM keeps more of the filament at T/2 (less diffusive)
    assert ppm["filament_half"][0.5] > mc["filament_half"][0.5]
    assert ppm["filament_half"][0.4] > 40.0


def test_case4_conservation_bounds_and_mixing(case4_runs):
    q0 = initial_tracers(LatLonGrid(120, 60))
    for r in case4_runs.values():
        assert r["mass_rel"] <= 1e-13
        assert r["air_return"] <= 1e-12  # non-divergent: air mass stays uniform
        if r["dlat"] != 3.0:
            continue
        for i, tr in enumerate(TRACERS):
            assert r["min"][tr] >= q0[i].min() - 1e-11
            assert r["max"][tr] <= q0[i].max() + 1e-11
        mix = r["mixing"]
        assert mix["l_o"] <= 1e-10  # monotone schemes do not overshoot
        assert mix["l_r"] > 0.0  # numerical mixing happens and is mostly "real" mixing
        assert mix["l_u"] < 0.01 * mix["l_r"]


def test_case3_divergent_consistent_mass_fluxes():
    r = lauritzen_run(3, 6.0, PPM())
    assert r["mass_rel"] <= 1e-13
    # the air mass was compressed and returns to uniform up to the truncation error
    assert r["air_return"] < 0.05
    q0 = initial_tracers(LatLonGrid(60, 30))
    for i, tr in enumerate(TRACERS):
        assert r["min"][tr] >= q0[i].min() - 1e-11
        assert r["max"][tr] <= q0[i].max() + 1e-11
    assert r["norms"]["gaussian_hills"]["l2"] < 0.35


@pytest.mark.slow
@pytest.mark.parametrize("case", [4, 3])
def test_full_resolution_convergence(case):
    ppm = lauritzen_convergence(case, [3.0, 1.5, 0.75], PPM())
    mc = lauritzen_convergence(case, [1.5, 0.75], PiecewiseLinear("mc"))
    assert ppm["order"]["l2"] >= (1.4 if case == 4 else 1.6)  # measured 1.55 and 1.88
    for tr in TRACERS:
        assert ppm["runs"][0.75]["norms"][tr]["l2"] < mc["runs"][0.75]["norms"][tr]["l2"]
    for r in list(ppm["runs"].values()) + list(mc["runs"].values()):
        assert r["mass_rel"] <= 1e-13
        assert r["mixing"]["l_o"] <= 1e-10
