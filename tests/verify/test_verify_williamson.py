"""Williamson et al. (1992) case 1: convergence, over-the-pole accuracy, conservation."""

import pytest

from diffflux.transport import PiecewiseLinear
from diffflux.verify.williamson import ALPHA_POLE, williamson1, williamson1_convergence

QUICK = [(64, 32), (128, 64)]


@pytest.fixture(scope="module")
def quick_ppm():
    return williamson1_convergence(QUICK)


def test_second_order_convergence(quick_ppm):
    for alpha in (0.0, ALPHA_POLE):
        assert quick_ppm["order"][(alpha, "l2")] >= 1.5
        assert quick_ppm["order"][(alpha, "l1")] >= 1.5
    fine = quick_ppm["runs"][(0.0, 128, 64)]
    assert fine["l2"] < 0.15 and fine["linf"] < 0.2


def test_over_the_pole_no_worse_than_equator(quick_ppm):
    assert max(quick_ppm["pole_ratio"].values()) <= 1.5
    # the tilted flow really crosses the polar caps with zonal Courant numbers >> 1
    assert quick_ppm["runs"][(ALPHA_POLE, 128, 64)]["courant_zonal"] > 5.0


def test_conservation_and_positivity(quick_ppm):
    for r in quick_ppm["runs"].values():
        assert abs(r["mass_rel"]) <= 1e-13
        assert r["min_rel"] >= -1e-14
        assert r["max_rel"] <= 1.0


def test_ppm_less_diffusive_than_mc():
    ppm = williamson1(128, 64, 0.0)
    mc = williamson1(128, 64, 0.0, advection=PiecewiseLinear("mc"))
    assert ppm["l2"] < 0.7 * mc["l2"]
    assert ppm["max_rel"] > mc["max_rel"]


@pytest.mark.slow
def test_quick_suite_resolutions():
    out = williamson1_convergence([(64, 32), (128, 64), (256, 128)])
    for alpha in (0.0, ALPHA_POLE):
        assert out["order"][(alpha, "l2")] >= 1.7
    assert max(out["pole_ratio"].values()) <= 1.5
    assert out["runs"][(0.0, 256, 128)]["l2"] < 0.05


@pytest.mark.slow
def test_full_resolutions():
    out = williamson1_convergence([(128, 64), (256, 128), (512, 256)])
    for alpha in (0.0, ALPHA_POLE):
        assert out["order"][(alpha, "l2")] >= 1.7
    assert max(out["pole_ratio"].values()) <= 1.5
    assert out["runs"][(0.0, 512, 256)]["l2"] < 0.02
