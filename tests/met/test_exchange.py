"""Tests of the interhemispheric exchange-time diagnostic (met/exchange.py)."""

from __future__ import annotations

import numpy as np
import pytest

from diffflux.constants import M_AIR, P_REF, SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid, standard_levels
from diffflux.met.exchange import (
    PRESETS,
    SF6_EMISSION,
    hemisphere_weights,
    interhemispheric_exchange_time,
    source_pattern,
    two_box_exchange_time,
)


def test_two_box_estimator_recovers_the_exchange_time():
    """Annual means of an exact two-box solution with a seasonal cycle give back tau."""
    tau, years, n = 1.3, 8, 4000
    t = (np.arange(years * n) + 0.5) / n  # [yr]
    # two-box model dN/dt = 2 - (N - S)/tau, dS/dt = (N - S)/tau (source 2 per yr into N):
    # delta = N - S = tau (1 - exp(-2 t / tau)), S = integral of delta / tau
    delta = tau * (1.0 - np.exp(-2.0 * t / tau))
    south = t - 0.5 * tau * (1.0 - np.exp(-2.0 * t / tau))
    north = south + delta
    season = 0.05 * np.sin(2 * np.pi * t)  # an annual cycle common to both boxes
    north_y = (north + season).reshape(years, n).mean(axis=1)
    south_y = (south + season).reshape(years, n).mean(axis=1)
    assert two_box_exchange_time(north_y, south_y) == pytest.approx(tau, rel=1e-4)
    # with only two years the spin-up transient biases the estimate high
    assert two_box_exchange_time(north_y[:2], south_y[:2]) > 1.05 * tau


def test_source_and_hemisphere_masks():
    grid = LatLonGrid(8, 18, standard_levels("L10"))
    flux = source_pattern(grid, (30.0, 60.0))
    assert float(np.sum(flux * grid.area)) == pytest.approx(SF6_EMISSION, rel=1e-12)
    assert np.all(flux[(grid.lat < 30) | (grid.lat > 60)] == 0)
    w = hemisphere_weights(grid, 2.0e4)
    assert w.shape == (3, 2, grid.nlev, grid.nlat, 1)
    np.testing.assert_array_equal(w[0].sum(axis=0), 1.0)  # the hemispheres partition the globe
    np.testing.assert_array_equal(w[2, :, 1:], 0.0)  # surface domain is the lowest layer
    with pytest.raises(ValueError, match="latitude band"):
        source_pattern(grid, (61.0, 62.0))
    with pytest.raises(ValueError, match="preset"):
        interhemispheric_exchange_time("nonexistent")


def test_short_run_machinery():
    """Two years on a coarse grid with long steps: the numbers are not converged, but the run
    must conserve the emitted mass, keep the north above the south and report its settings."""
    grid = LatLonGrid(8, 18, standard_levels("L10"))
    spy = 146  # 2.5-day steps
    res = interhemispheric_exchange_time(grid=grid, years=2, steps_per_year=spy)
    assert np.isfinite(res.tau_years) and res.tau_years > 0
    assert res.tau_by_year.shape == (1,)
    assert res.north.shape == (2, 3) and res.south.shape == (2, 3)
    assert np.all(res.north > res.south)
    assert np.all(res.south[1] > res.south[0])
    assert res.courant["meridional"] <= 1.0 and res.courant["convective"] <= 1.0
    # global burden = emission x time: the annual mean of the global mean mixing ratio equals
    # E M_air / M_atm times the mean elapsed time at the end of the steps
    air = np.asarray(grid.air_mass(np.full((grid.nlat, grid.nlon), P_REF)))
    w = hemisphere_weights(grid, 2.0e4)[0, :, :, :, 0]  # (2, nlev, nlat)
    air_h = np.einsum("hkj,kji->h", w, air)
    glob = (res.north[:, 0] * air_h[0] + res.south[:, 0] * air_h[1]) / air_h.sum()
    dt = SECONDS_PER_YEAR / spy
    t_end = (np.arange(2 * spy) + 1.0) * dt
    expected = SF6_EMISSION * M_AIR / air.sum() * t_end.reshape(2, spy).mean(axis=1)
    np.testing.assert_allclose(glob, expected, rtol=2e-5)
    assert "exchange time" in res.summary()


def test_presets_are_consistent():
    for name, cfg in PRESETS.items():
        assert cfg["years"] >= 3, name
        assert (365.25 * 86400 / cfg["steps_per_year"]) <= 6 * 3600 + 1e-6


@pytest.mark.slow
def test_default_exchange_time_in_transcom_range():
    res = interhemispheric_exchange_time("default")
    print(res.summary())
    assert 1.0 <= res.tau_years <= 1.5
    # spin-up has converged: the last two year-pair estimates agree to a few percent
    assert abs(res.tau_by_year[-1] / res.tau_by_year[-2] - 1) < 0.05


@pytest.mark.slow
def test_quick_exchange_time_close_to_default():
    res = interhemispheric_exchange_time("quick")
    print(res.summary())
    assert 1.0 <= res.tau_years <= 1.5
