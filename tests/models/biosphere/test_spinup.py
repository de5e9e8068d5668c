"""Spin-up to the cyclo-stationary state and its implicit gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.models.biosphere.params import BiosphereParams
from diffflux.models.biosphere.spinup import implicit_steady_state, spinup


@pytest.fixture(scope="module")
def spun(small):
    bio, drivers = small
    params = BiosphereParams.ones()
    state, report = spinup(bio, params, drivers)
    return bio, drivers, params, state, report


def test_spinup_reaches_cyclostationary_state(spun):
    bio, drivers, params, state, report = spun
    assert report.converged and report.iterations >= 1
    final, _, annual = jax.jit(lambda s: bio.simulate(params, s, drivers, 365, outputs=None))(state)
    # Every cell's annual NEP under the repeated climate is below 1 g C m-2 yr-1 (here far below).
    assert float(jnp.abs(annual["nee"]).max()) < 1e-2
    np.testing.assert_allclose(final.total_carbon(), state.total_carbon(), atol=1e-2)
    # Forests and soils are alive; tiles whose vegetation cannot establish are exactly bare.
    forest = np.isin(bio.tiles.pft, [0, 2, 3, 4])  # TrEF, TeBF, TeNF, BoF
    assert float(state.stem[forest].min()) > 1000.0 and float(state.soil[forest].min()) > 1000.0
    assert report.bare_tiles < bio.tiles.ntile // 2


def test_implicit_gradient_of_steady_state_matches_finite_differences(spun):
    bio, drivers, params, state, _ = spun
    x_star = state.as_array()

    def total_soil(mult):
        p = BiosphereParams(pft=params.pft, glob={**params.glob, "k_soil": mult})
        x = implicit_steady_state(bio, drivers, p, x_star)
        return jnp.sum(x[4])

    g = jax.grad(total_soil)(params.glob["k_soil"])
    h = 1e-4
    soils = []
    for sign in (1, -1):
        p = BiosphereParams(
            pft=params.pft, glob={**params.glob, "k_soil": params.glob["k_soil"] * (1 + sign * h)}
        )
        s, rep = spinup(bio, p, drivers, state=state, warmup_years=0)
        assert rep.converged
        soils.append(float(s.soil.sum()))
    fd = (soils[0] - soils[1]) / (2 * h)
    # soil carbon scales like 1 / k_soil, so the derivative is about minus the soil carbon
    assert float(g) < 0
    assert float(g) == pytest.approx(fd, rel=1e-3)
