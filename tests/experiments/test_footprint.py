"""Footprints: the adjoint's gradient of a station metric equals the finite-difference response to a flux
pulse in sampled cells (float64, <= 1e-6 relative); burden and flux-metric gradients against their closed
forms."""

import numpy as np

from diffflux.experiments import finite_difference_footprint


def _cells(fp, rng, n_top=3, n_random=3):
    """The largest cells of a footprint and a few random ones with a footprint above 1e-3 of the largest."""
    order = np.argsort(fp.ravel())[::-1]
    top = [np.unravel_index(k, fp.shape) for k in order[:n_top]]
    big = np.flatnonzero(fp.ravel() > 1e-3 * fp.max())
    pick = rng.choice(big[~np.isin(big, order[:n_top])], size=n_random, replace=False)
    return top + [np.unravel_index(k, fp.shape) for k in pick]


def test_station_footprint_equals_finite_difference(additive, sens, rng):
    _, setting, model, _, _, _ = additive
    k, tr = 0, setting.tracers.index("CO2")  # ryo_co2: afternoon mean at RYO
    m = sens.values[k]
    nsteps = setting.nsteps
    worst = 0.0
    for steps in (np.arange(nsteps), np.arange(nsteps // 2)):  # the window, then the first day alone
        fp = sens.per_step[k, steps, tr].sum(axis=0)
        cells = _cells(fp, rng)
        g = np.array([fp[j, i] for j, i in cells])
        h = 1e-3 * abs(m) / np.abs(g)  # a pulse that changes the metric by ~1e-3 of itself
        fd = finite_difference_footprint(model, k, tr, cells, steps, h)
        rel = np.abs(fd - g) / np.abs(g)
        print("cells", cells, "adjoint", g, "finite difference", fd, "relative", rel)
        worst = max(worst, rel.max())
    assert worst <= 1e-6, worst


def test_burden_and_flux_metric_gradients(additive, sens):
    """d(burden [mol]) / dF = cell area x step length (a passive tracer keeps its mass); the flux metric's
    gradient is its mask x area x time weight."""
    _, setting, model, _, _, _ = additive
    tr = setting.tracers.index("CO2")
    g = sens.per_step[2, :, tr]
    expected = setting.grid.area[None] * setting.dt
    assert np.max(np.abs(g - expected)) <= 1e-10 * expected.max()
    assert np.all(sens.per_step[2, :, [1, 2]] == 0.0)  # other tracers do not reach the CO2 burden
    w = np.asarray(model.weights.flux_space[3]) * np.asarray(model.weights.flux_time[3])[:, None, None]
    assert np.allclose(sens.per_step[3, :, tr], w, rtol=1e-12, atol=0.0)
    # block footprints sum to the window footprint; daily blocks of 4 six-hour steps
    blocks = sens.footprint(0, tr, 4)
    assert blocks.shape == (2, setting.grid.nlat, setting.grid.nlon)
    assert np.allclose(blocks.sum(axis=0), sens.window_footprint(0, tr), rtol=1e-13, atol=0.0)


def test_hfc_station_footprint_positive_near_station(additive, sens):
    """The MNM HFC-134a footprint (all hours) is largest in or next to the station's cell."""
    _, setting, _, _, _, _ = additive
    from diffflux.observations import get_station

    fp = sens.window_footprint(1, setting.tracers.index("HFC-134a"))
    st = get_station("MNM")
    j, i = np.unravel_index(np.argmax(fp), fp.shape)
    assert abs(setting.grid.lat[j] - st.latitude) <= 15.0 and abs(setting.grid.lon[i] - st.longitude) <= 20.0
    assert sens.values[1] > 100e-12
