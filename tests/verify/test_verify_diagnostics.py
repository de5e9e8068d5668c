"""Error norms, convergence order, cell averages, filament and mixing diagnostics."""

import numpy as np
import pytest

from diffflux.grid import LatLonGrid
from diffflux.verify.diagnostics import (
    cell_average,
    convergence_order,
    correlated_cosine_bells,
    error_norms,
    filament_diagnostic,
    mixing_diagnostics,
    pairwise_orders,
)


def test_error_norms_known_values():
    area = np.array([[1.0, 3.0]])
    qt = np.array([[1.0, 2.0]])
    assert error_norms(qt, qt, area) == {"l1": 0.0, "l2": 0.0, "linf": 0.0}
    n = error_norms(2 * qt, qt, area)
    assert n["l1"] == pytest.approx(1.0) and n["l2"] == pytest.approx(1.0)
    assert n["linf"] == pytest.approx(1.0)
    # offset of 1 everywhere: l1 = sum(A)/sum(A qT) = 4/7, l2 = sqrt(4/13), linf = 1/2
    n = error_norms(qt + 1.0, qt, area)
    assert n["l1"] == pytest.approx(4.0 / 7.0)
    assert n["l2"] == pytest.approx(np.sqrt(4.0 / 13.0))
    assert n["linf"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same shape"):
        error_norms(qt, qt[:, :1], area)
    with pytest.raises(ValueError, match="identically zero"):
        error_norms(qt, 0 * qt, area)


def test_convergence_order_recovers_power_law():
    h = [4.0, 2.0, 1.0, 0.5]
    assert convergence_order(h, [3.0 * x**2 for x in h]) == pytest.approx(2.0)
    assert convergence_order(h, [0.1 * x**1.3 for x in h]) == pytest.approx(1.3)
    assert pairwise_orders(h, [x**2 for x in h]) == pytest.approx([2.0, 2.0, 2.0])
    with pytest.raises(ValueError):
        convergence_order([1.0], [1.0])


def test_cell_average_is_exact_for_polynomials_in_sin_lat():
    g = LatLonGrid(12, 9)
    mu_e = np.sin(np.deg2rad(g.lat_edges))
    mu_e[0], mu_e[-1] = -1.0, 1.0
    avg = cell_average(lambda lat, lon: np.sin(np.deg2rad(lat)) ** 2 + 0 * lon, g, nq=2)
    exact = (mu_e[1:] ** 3 - mu_e[:-1] ** 3) / (3.0 * (mu_e[1:] - mu_e[:-1]))
    np.testing.assert_allclose(avg, np.broadcast_to(exact[:, None], avg.shape), rtol=1e-13)
    # a zonal wave averages to sin-differences over each cell
    avg = cell_average(lambda lat, lon: np.cos(np.deg2rad(lon)) + 0 * lat, g, nq=4)
    le = np.deg2rad(g.lon_edges)
    exact = (np.sin(le[1:]) - np.sin(le[:-1])) / (le[1:] - le[:-1])
    np.testing.assert_allclose(avg[0], exact, atol=1e-10)


def test_filament_diagnostic():
    area = np.ones((1, 5))
    q0 = np.array([[0.1, 0.3, 0.6, 0.9, 0.1]])
    same = filament_diagnostic(q0, q0, area, [0.1, 0.5])
    assert all(v == pytest.approx(100.0) for v in same.values())
    q = np.array([[0.2, 0.4, 0.4, 0.4, 0.2]])  # diffused: wider at low tau, gone at high tau
    lf = filament_diagnostic(q, q0, area, [0.2, 0.5, 0.95])
    assert lf[0.2] == pytest.approx(100.0 * 5 / 3)
    assert lf[0.5] == 0.0
    assert 0.95 not in lf  # empty initial area is skipped


def test_mixing_diagnostics_classification_and_distance():
    chi_on = np.array([0.1, 0.4, 0.7, 1.0])
    on = mixing_diagnostics(chi_on, correlated_cosine_bells(chi_on), np.ones(4))
    assert max(on.values()) < 1e-15
    # midpoint of the chord between the end points: real mixing only
    mid = mixing_diagnostics(np.array([0.55]), np.array([0.5 * (0.892 + 0.1)]), np.ones(1))
    assert mid["l_r"] > 0.05 and mid["l_u"] == 0 and mid["l_o"] == 0
    # above the concave curve, inside the ranges: range-preserving unmixing
    un = mixing_diagnostics(np.array([0.95]), np.array([0.6]), np.ones(1))
    assert un["l_u"] > 0 and un["l_r"] == 0 and un["l_o"] == 0
    # outside the range of chi: overshooting, distance to the nearest end point
    area = np.array([1.0, 3.0])
    ov = mixing_diagnostics(np.array([1.09, 0.4]), correlated_cosine_bells(np.array([1.0, 0.4])),
                            area)
    assert ov["l_r"] < 1e-15 and ov["l_u"] < 1e-15
    assert ov["l_o"] == pytest.approx(1.0 * (0.09 / 0.9) / 4.0, rel=1e-9)
