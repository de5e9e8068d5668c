"""Taylor test of the full non-linear chain (monotone PPM, Kz, surface flux, wind scale)."""

import numpy as np
import pytest

from diffflux.verify.adjoint import taylor_test


@pytest.mark.parametrize("levels", ["2D", pytest.param("L10", marks=pytest.mark.slow)])
def test_taylor_remainder_is_second_order(levels):
    r = taylor_test(levels=levels)
    assert r["order_median"] >= 1.8
    assert r["fd_rel"] <= 1e-3
    rem = np.asarray(r["remainders"])
    assert rem[-1] < 1e-6 * rem[0]
