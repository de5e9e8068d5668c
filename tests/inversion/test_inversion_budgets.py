"""Regional/period totals of the flux components as functions of the control (incl. the biosphere-linked
priors), their gradient rows and prior/posterior uncertainty, the budget table and error reduction.

One small joint twin (30 x 36 degrees, 2 levels, 2 days of 6-hour steps, CO2 + CH4, biosphere parameters
and log-normal/additive corrections, no spin-up) is shared; the totals need no transport run, so only the
biosphere and the composer are compiled here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.inversion import budget_table, error_reduction, regional_totals, standard_region_masks
from diffflux.inversion.budgets import DEFAULT_REGIONS
from diffflux.inversion.problem import control_flux_corrections, standard_twin
from diffflux.regions import budget
from diffflux.solvers import ExactPosterior, LowRankPosterior
from diffflux.species import get_species

JOINT = dict(resolution=(30.0, 36.0), nlev=2, days=2, steps_per_day=4, spinup=0, horizontal_diffusion=False,
             satellite_step_seconds=None, checkpoint=None, seed=7, start="2021-01-01")
# (every call below uses the default components and one or two periods: few distinct compilations)
REGIONS = ("globe", "NH", "land", "ocean", "ar6:EAS", "country:USA")
DAY = 86400.0


@pytest.fixture(scope="module")
def twin():
    return standard_twin(**JOINT)


@pytest.fixture(scope="module")
def masks(twin):
    return standard_region_masks(twin.problem.transport.grid, REGIONS)


def test_standard_region_masks(twin):
    grid = twin.problem.transport.grid
    m = standard_region_masks(grid)
    assert len(m) == len(DEFAULT_REGIONS) and all(v.shape == (grid.nlat, grid.nlon) for v in m.values())
    assert list(m)[:5] == ["globe", "NH", "SH", "land", "ocean"] and "country:USA" in m and "ar6:EAS" in m
    np.testing.assert_allclose(m["globe"], 1.0)
    np.testing.assert_allclose(m["land"] + m["ocean"], 1.0, atol=1e-12)
    np.testing.assert_allclose(m["NH"] + m["SH"], 1.0, atol=1e-12)
    assert list(standard_region_masks(grid, ["JPN", "EAS"])) == ["country:JPN", "ar6:EAS"]
    with pytest.raises(ValueError, match="given twice"):
        standard_region_masks(grid, ["JPN", "country:JPN"])
    with pytest.raises(KeyError, match="unknown region"):
        standard_region_masks(grid, ["Atlantis"])


def test_prior_totals_match_regions_budget(twin, masks):
    """Prior totals per component = diffflux.regions.budget of the composer's per-step fluxes (unlinked
    components) or of the biosphere's daily means (linked ones: a day's steps sum to its daily total)."""
    p = twin.problem
    grid = p.transport.grid
    comp = p.composer
    tot = regional_totals(p, None, masks)
    keys = {k for _, k in tot}
    assert keys == {"fossil", "ocean", "nee", "ch4_anthropogenic", "wetland", "CO2", "CH4"}
    x0 = p.control.prior()
    corr = control_flux_corrections(p.control, x0, comp)
    links = dict(p.bio_links)
    daily = p.daily_fluxes(x0)
    for i, c in enumerate(comp.components):
        if c.name in links:
            f = np.stack([np.asarray(daily.daily_mean(d)[links[c.name]]) for d in range(p.ndays)])
        else:
            f = np.stack([np.asarray(comp.component_flux(i, corr, n)) for n in range(comp.nsteps)])
        ref = budget(f, grid, c.species, masks, periods={"all": list(range(f.shape[0]))})
        for j, r in enumerate(ref.regions):
            np.testing.assert_allclose(float(tot[(r, c.name)]), ref.total[j, 0], rtol=1e-10,
                                       atol=1e-12 * abs(ref.total[0, 0]), err_msg=f"{r} {c.name}")
    # species totals are the sums of their components; reporting units
    for r in masks:
        np.testing.assert_allclose(float(tot[(r, "CO2")]),
                                   sum(float(tot[(r, k)]) for k in ("fossil", "ocean", "nee")), rtol=1e-12)
        np.testing.assert_allclose(float(tot[(r, "CH4")]),
                                   sum(float(tot[(r, k)]) for k in ("ch4_anthropogenic", "wetland")),
                                   rtol=1e-12)
    assert get_species("CO2").flux_unit == "PgC/yr" and get_species("CH4").flux_unit == "TgCH4/yr"
    # plausible magnitudes of the built-in priors: fossil CO2 ~10 PgC/yr, anthropogenic CH4 ~ 350 Tg/yr
    assert 5 < float(tot[("globe", "fossil")]) < 15
    assert 200 < float(tot[("globe", "ch4_anthropogenic")]) < 500


def test_periods_and_components(twin, masks):
    p = twin.problem
    t0 = p.t_start
    full = regional_totals(p, None, masks)
    d1 = regional_totals(p, None, masks, period=(t0, t0 + DAY))
    d2 = regional_totals(p, None, masks, period=(t0 + DAY, t0 + 2 * DAY))
    assert set(full) == set(d1) == set(d2)
    assert set(regional_totals(p, None, masks, components=["nee", "CO2"])) == {
        (r, k) for r in masks for k in ("nee", "CO2")}
    for key in full:  # two equal halves average to the whole window
        np.testing.assert_allclose(0.5 * (float(d1[key]) + float(d2[key])), float(full[key]), rtol=1e-12,
                                   atol=1e-12)
    assert float(d1[("land", "nee")]) != float(d2[("land", "nee")])  # the biosphere's days differ
    with pytest.raises(ValueError, match="contains no transport step"):
        regional_totals(p, None, masks, period=(t0 - 2 * DAY, t0 - DAY))
    with pytest.raises(KeyError, match="unknown component 'N2O'"):
        regional_totals(p, None, masks, components=["N2O"])
    with pytest.raises(ValueError, match="must have shape"):
        regional_totals(p, None, {"bad": np.ones((3, 3))})
    with pytest.raises(ValueError, match=">= 0"):
        regional_totals(p, None, {"neg": -masks["globe"]})


def test_totals_differentiable_in_the_control(twin, masks):
    """jax.grad of a total w.r.t. the physical control reaches the flux blocks and the biosphere
    parameters (through the linked priors) and matches central differences."""
    p = twin.problem
    x = p.control.unwhiten(0.3 * twin.z_true)

    def f(xx):
        return regional_totals(p, xx, masks)[("land", "CO2")]

    g = jax.grad(f)(x)
    assert float(jnp.max(jnp.abs(g["biosphere"]))) > 0 and float(jnp.max(jnp.abs(g["flux:nee"]))) > 0
    assert float(jnp.max(jnp.abs(g["flux:fossil"]))) > 0 and float(jnp.max(jnp.abs(g["flux:wetland"]))) == 0
    h = 1e-4
    for k in range(2):
        e = jnp.zeros_like(x["biosphere"]).at[k].set(h)
        b = x["biosphere"]
        fd = float(f({**x, "biosphere": b + e})) - float(f({**x, "biosphere": b - e}))
        np.testing.assert_allclose(float(g["biosphere"][k]), fd / (2 * h), rtol=1e-6)


def test_budget_table_sigmas(twin, masks):
    """prior_sigma = |dT/dz| at the prior and posterior_sigma^2 = w A_z w^T at the posterior, with ``w``
    from central differences of the totals over every element of z (304), for an exact and a low-rank
    posterior; two periods; truth and error reduction."""
    p = twin.problem
    n = p.control.size
    cv = p.control
    z_post = 0.5 * twin.z_true
    t0 = p.t_start
    periods = [(t0, t0 + DAY), (t0 + DAY, t0 + 2 * DAY)]
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((n, 6)))
    lowrank = LowRankPosterior(eigvals=jnp.asarray([50.0, 10.0, 3.0, 1.0, 0.2, 0.0]), eigvecs=jnp.asarray(q))
    g_mat = rng.standard_normal((12, n)) * 0.3
    exact = ExactPosterior.from_jacobian(jnp.asarray(g_mat))
    comps = ["fossil", "ocean", "nee", "ch4_anthropogenic", "wetland", "CO2", "CH4"]  # the default
    nk = len(comps)
    rows = budget_table(p, z_post, lowrank, masks=masks, periods=periods, z_true=twin.z_true)
    rows_x = budget_table(p, z_post, exact, masks=masks, periods=periods)
    assert len(rows) == len(rows_x) == 2 * len(masks) * nk
    assert set(rows[0]) == {"region", "period_start", "period_end", "component", "species", "unit", "prior",
                            "posterior", "prior_sigma", "posterior_sigma", "truth"}
    assert [(r["region"], r["component"]) for r in rows[: nk + 1]] == [("globe", k) for k in comps] + [
        ("NH", "fossil")]
    assert rows[0]["unit"] == "PgC/yr" and rows[3]["unit"] == "TgCH4/yr" and rows[3]["species"] == "CH4"
    assert rows[nk * len(masks)]["period_start"] == periods[1][0]
    assert all(r["truth"] is None for r in rows_x)

    def totals(z, per):
        t = regional_totals(p, cv.unwhiten(jnp.asarray(z)), masks, period=per)
        return np.array([float(t[(r, k)]) for r in masks for k in comps])

    def rows_fd(z, per, h=1e-5):
        eye = np.eye(n)
        return np.stack([(totals(z + h * eye[k], per) - totals(z - h * eye[k], per)) / (2 * h)
                         for k in range(n)], axis=1)

    per = periods[0]
    first = rows[: len(masks) * nk]
    w0 = rows_fd(np.zeros(n), per)
    wp = rows_fd(np.asarray(z_post), per)
    np.testing.assert_allclose([r["prior_sigma"] for r in first], np.linalg.norm(w0, axis=1), rtol=1e-6)
    shrink = np.asarray(lowrank.eigvals) / (1 + np.asarray(lowrank.eigvals))
    var_lr = np.sum(wp**2, 1) - np.sum((wp @ q) ** 2 * shrink[None], 1)
    np.testing.assert_allclose([r["posterior_sigma"] ** 2 for r in first], var_lr, rtol=1e-6)
    var_x = np.einsum("ki,ij,kj->k", wp, np.linalg.inv(np.eye(n) + g_mat.T @ g_mat), wp)
    np.testing.assert_allclose([r["posterior_sigma"] ** 2 for r in rows_x[: len(masks) * nk]], var_x,
                               rtol=1e-6)
    np.testing.assert_allclose([r["posterior"] for r in first], totals(np.asarray(z_post), per), rtol=1e-12)
    np.testing.assert_allclose([r["truth"] for r in first], totals(np.asarray(twin.z_true), per), rtol=1e-12)
    # the biosphere parameters make the wetland and NEE totals uncertain even where the flux blocks are not
    assert min(r["prior_sigma"] for r in first if r["region"] == "land") > 0
    # error reduction
    er = error_reduction(rows)
    assert len(er) == len(rows)
    for r, e in zip(rows, er):
        assert e["prior_error"] == pytest.approx(abs(r["prior"] - r["truth"]))
        assert e["error_reduction"] == pytest.approx(1 - abs(r["posterior"] - r["truth"]) /
                                                     abs(r["prior"] - r["truth"]))
        assert e["within_2sigma"] == (abs(r["posterior"] - r["truth"]) <= 2 * r["posterior_sigma"])
        assert e["uncertainty_reduction"] == pytest.approx(1 - r["posterior_sigma"] / r["prior_sigma"])
    with pytest.raises(ValueError, match="no row has a truth"):
        error_reduction(rows_x)


def test_budget_table_bad_input(twin, masks):
    p = twin.problem
    n = p.control.size
    with pytest.raises(ValueError, match="z_post must have shape"):
        budget_table(p, jnp.zeros(n + 1), masks=masks)
    with pytest.raises(ValueError, match="non-finite"):
        budget_table(p, jnp.zeros(n).at[0].set(jnp.nan), masks=masks)
    with pytest.raises(TypeError, match="posterior must be"):
        budget_table(p, jnp.zeros(n), posterior="exact", masks=masks)
    with pytest.raises(ValueError, match="non-empty dict"):
        budget_table(p, jnp.zeros(n), masks={})


@pytest.mark.slow
def test_joint_twin_coverage_reduced():
    """scripts/twin_coverage.py, quick preset (3 members of a 30 x 36 degree, 3-day joint twin): posterior
    errors of the biosphere multipliers and the regional budgets within 2 posterior sigma for >= 85 % of the
    checks (95 % expected; 3 members are few), every member converged, no recompilation after the first."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "twin_coverage.py"
    spec = importlib.util.spec_from_file_location("twin_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.PRESETS["quick"]
    doc = mod.run(cfg["twin"], cfg["members"], cfg["max_iter"])
    s = doc["summary"]
    print({k: s[k] for k in ("fraction_within_2sigma", "fraction_within_2sigma_parameters",
                             "fraction_within_2sigma_budgets", "median_budget_error_reduction")})
    assert s["fraction_within_2sigma"] >= 0.85 and s["checks"] > 200
    assert s["converged_members"] == cfg["members"]
    assert [m["n_traces"] for m in doc["members"][1:]] == [0] * (cfg["members"] - 1)
    assert all(0.5 < m["reduced_chi_square"] < 1.5 for m in doc["members"])
    for q in doc["parameters"]:
        assert q["mean_posterior_sigma_log"] <= q["prior_sigma_log"] * (1 + 1e-9)
