"""Diffusion and chemistry against their analytic solutions, through the full transport step."""

import math

import numpy as np
import pytest

from diffflux.grid import standard_levels
from diffflux.verify.analytic import (
    chemistry_check,
    column_operator,
    horizontal_diffusion_check,
    vertical_diffusion_check,
)


def test_gaussian_variance_grows_as_2kt():
    r = horizontal_diffusion_check(nlon=360, nlat=180)
    assert r["kx_rel_err"] <= 0.02 and r["ky_rel_err"] <= 0.02
    assert r["var_rel_err"] <= 0.02
    assert r["mass_rel"] <= 1e-13
    assert r["min_value"] >= 0.0
    # the blob really spread: s grows from 300 km to ~sqrt(0.09e12 + 2 K t)
    assert r["s_final_km"] == pytest.approx(math.sqrt(3e5**2 + 2 * 2e5 * 5 * 86400) / 1e3, rel=0.02)


def test_horizontal_diffusion_rejects_unstable_step():
    with pytest.raises(ValueError, match="explicit limit"):
        horizontal_diffusion_check(nlon=360, nlat=180, dt=86400.0)


def test_column_modes_decay_at_the_discrete_rate():
    r = vertical_diffusion_check()
    assert r["decay_rel_err"] <= 1e-10
    assert r["mass_rel"] <= 1e-13
    # the check distinguishes the discrete rate from the continuous one for the fast mode
    assert abs(r["discrete_factor_mode6"] / r["continuous_factor_mode6"] - 1) > 1e-3


def test_column_operator_is_symmetric_and_conservative():
    m, L = column_operator(standard_levels("L10"), 1e5, np.full(11, 10.0), 250.0, 1e10)
    np.testing.assert_allclose(L, L.T)
    np.testing.assert_allclose(L.sum(axis=0), 0.0, atol=1e-9 * np.abs(L).max())
    assert np.all(m > 0)


def test_burden_decays_exponentially():
    r = chemistry_check()
    assert r["burden_rel_err"] <= 1e-12
    assert r["burden_ratio_tau2d"] == pytest.approx(math.exp(-1.0), rel=1e-12)
