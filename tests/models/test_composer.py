"""Flux composer: correction forms, region basis, temporal blocks, tagging, gradients, jit, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.grid import LatLonGrid
from diffflux.models.composer import (
    Additive,
    Correction,
    FluxComponent,
    FluxComposer,
    GridBasis,
    LinearScale,
    LogNormal,
    RegionBasis,
    TemporalBlocks,
)

YEAR = 365.25 * 86400.0
GRID = LatLonGrid.from_resolution(10.0, 10.0)


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(7)
    fossil = rng.random((12, GRID.nlat, GRID.nlon)) * 1e-8
    ocean = rng.standard_normal((GRID.nlat, GRID.nlon)) * 1e-8
    ch4 = rng.random((GRID.nlat, GRID.nlon)) * 1e-9
    regions = RegionBasis.from_names(GRID, ["lat:30N-90N", "lat:30S-30N", "lat:90S-30S"])
    steps = (np.arange(16) + 0.5) * YEAR / 16
    return fossil, ocean, ch4, regions, steps


def _components(parts):
    fossil, ocean, ch4, regions, _ = parts
    quarters = TemporalBlocks.regular(0.0, YEAR / 4, 4)
    return [
        FluxComponent.create("fossil", "CO2", fossil, record_edges=np.arange(13) * YEAR / 12, period=YEAR,
                             correction=Correction(LogNormal(), regions, quarters)),
        FluxComponent.create("ocean", "CO2", ocean, correction=Correction(Additive(), GridBasis())),
        FluxComponent.create("wetland", "methane", ch4, correction=Correction(LinearScale(), GridBasis())),
    ]


def _random_corrections(comp, seed=3, scale=0.3):
    rng = np.random.default_rng(seed)
    out = {}
    for k, s in comp.correction_shapes().items():
        v = rng.standard_normal(s) * scale
        out[k] = jnp.asarray(v * (1e-9 if k == "ocean" else 1.0))
    return out


def test_prior_and_each_form(parts):
    fossil, ocean, ch4, regions, steps = parts
    comp = FluxComposer.build(_components(parts), steps)
    assert comp.tracer_names == ("CO2", "CH4")
    assert comp.correction_shapes() == {"fossil": (4, 3), "ocean": (1, 18, 36), "wetland": (1, 18, 36)}
    prior = np.asarray(comp())
    month = (np.floor(steps / (YEAR / 12))).astype(int)
    assert np.allclose(prior[:, 0], fossil[month] + ocean[None], rtol=1e-14, atol=0)
    assert np.allclose(prior[:, 1], ch4[None], rtol=1e-14, atol=0)
    corr = _random_corrections(comp)
    out = np.asarray(comp(corr))
    block = (steps // (YEAR / 4)).astype(int)
    masks = np.asarray(regions.masks)
    u = np.asarray(corr["fossil"])[block]  # (nsteps, nregion)
    scale = 1.0 + np.einsum("nr,ryx->nyx", np.exp(u) - 1.0, masks)
    expected_co2 = fossil[month] * scale + ocean[None] + np.asarray(corr["ocean"])[0][None]
    assert np.allclose(out[:, 0], expected_co2, rtol=1e-13, atol=1e-24)
    assert np.allclose(out[:, 1], ch4[None] * (1.0 + np.asarray(corr["wetland"])[0]), rtol=1e-13, atol=0)


def test_region_totals_scale_exactly(parts):
    """With LogNormal on regions, each region's share is multiplied by exp(u_r): the total is
    sum_r exp(u_r) T_r + T_rest for prior regional totals T_r (fractional masks)."""
    fossil, _, _, _, steps = parts
    regions = RegionBasis.from_names(GRID, ["ar6:EAS", "ar6:WCE", "country:USA"])
    comps = [FluxComponent.create("fossil", "CO2", fossil[0], correction=Correction(LogNormal(), regions))]
    comp = FluxComposer.build(comps, steps[:2])
    u = jnp.asarray([[0.4, -0.7, 0.2]])
    out = np.asarray(comp({"fossil": u}))[0, 0]
    m = np.asarray(regions.masks)
    a = GRID.area
    t_r = (fossil[0][None] * m * a).sum(axis=(1, 2))
    t_rest = (fossil[0] * (1.0 - m.sum(0)) * a).sum()
    assert (out * a).sum() == pytest.approx((np.exp(np.asarray(u[0])) * t_r).sum() + t_rest, rel=1e-13)


def test_temporal_blocks_and_cyclic_records(parts):
    fossil, _, _, regions, _ = parts
    comps = [FluxComponent.create("fossil", "CO2", fossil, record_edges=np.arange(13) * YEAR / 12,
                                  period=YEAR, correction=Correction(LogNormal(), GridBasis(),
                                                                     TemporalBlocks.regular(0.0, YEAR, 2)))]
    steps = np.array([0.1, 1.5, 13.0, 23.5]) * YEAR / 12  # months 0 and 1 of year 1, 1 and 11 of year 2
    comp = FluxComposer.build(comps, steps)
    u = jnp.stack([jnp.zeros((GRID.nlat, GRID.nlon)), jnp.ones((GRID.nlat, GRID.nlon))])
    out = np.asarray(comp({"fossil": u}))[:, 0]
    assert np.allclose(out[0], fossil[0]) and np.allclose(out[1], fossil[1])
    assert np.allclose(out[2], fossil[1] * np.e) and np.allclose(out[3], fossil[11] * np.e)
    with pytest.raises(ValueError, match="outside the blocks"):
        FluxComposer.build(comps, np.array([0.5, 2.5]) * YEAR)


@pytest.mark.parametrize("tagging", ["component", "region"])
def test_tagged_tracers_sum_to_total(parts, tagging):
    steps = parts[4]
    comps = _components(parts)
    total = FluxComposer.build(comps, steps)
    tags = RegionBasis.from_names(GRID, ["ar6:EAS", "basin:Atlantic"])
    tagged = FluxComposer.build(comps, steps, tagging=tagging, tag_regions=tags)
    corr = _random_corrections(total)
    t_out = tagged(corr)
    ref = np.asarray(total(corr))
    assert np.allclose(np.asarray(tagged.species_totals(t_out)), ref, rtol=1e-13, atol=1e-25)
    if tagging == "component":
        assert tagged.tracer_names == ("CO2:fossil", "CO2:ocean", "CH4:wetland")
    else:
        assert tagged.tracer_names[:3] == ("CO2@ar6:EAS", "CO2@basin:Atlantic", "CO2@rest")
        # the East Asia tracer is confined to East Asia
        eas = np.asarray(tags.masks)[0]
        assert np.all(np.asarray(t_out)[:, 0][:, eas == 0] == 0)


def test_gradient_matches_finite_differences_and_jit_compiles_once(parts):
    comp = FluxComposer.build(_components(parts), parts[4])
    w = jnp.asarray(np.random.default_rng(1).standard_normal((comp.nsteps, 2, GRID.nlat, GRID.nlon)))
    traces = []

    @jax.jit
    def cost(corr):
        traces.append(1)
        f = comp(corr)
        return jnp.sum(w * f * 1e8) + 0.5 * jnp.sum((f * 1e8) ** 2)

    c0 = _random_corrections(comp, seed=11)
    d = _random_corrections(comp, seed=12)
    g = jax.grad(cost)(c0)
    gd = sum(float(jnp.sum(g[k] * d[k])) for k in g)
    for h in (1e-3, 1e-4):
        plus = {k: c0[k] + h * d[k] for k in c0}
        minus = {k: c0[k] - h * d[k] for k in c0}
        fd = (float(cost(plus)) - float(cost(minus))) / (2 * h)
        assert fd == pytest.approx(gd, rel=1e-6)
    n = len(traces)
    cost({k: v * 0.5 for k, v in c0.items()})
    assert len(traces) == n  # same shapes: no new trace


def test_as_function_matches_steps(parts):
    comp = FluxComposer.build(_components(parts), parts[4])
    corr = _random_corrections(comp)
    f = comp.as_function(corr)
    allsteps = comp(corr)
    for n in (0, 5, 15):
        at_t = np.asarray(f(jnp.asarray(parts[4][n])))
        assert np.allclose(at_t, np.asarray(allsteps[n]), rtol=1e-13, atol=1e-20)


def test_bad_input(parts):
    fossil, ocean, _, _, steps = parts
    comp = FluxComposer.build(_components(parts), steps)
    corr = _random_corrections(comp)
    with pytest.raises(ValueError, match="corrections must have keys"):
        comp({"fossil": corr["fossil"]})
    bad = dict(corr, fossil=jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="correction 'fossil' must have shape \\(4, 3\\)"):
        comp(bad)
    with pytest.raises(ValueError, match="overlap"):
        RegionBasis.from_names(GRID, ["NH", "lat:30N-90N"])
    with pytest.raises(ValueError, match="needs tag_regions"):
        FluxComposer.build(_components(parts), steps, tagging="region")
    with pytest.raises(ValueError, match="unique"):
        FluxComposer.build(_components(parts) + _components(parts)[:1], steps)
    with pytest.raises(ValueError, match="need record_edges"):
        FluxComponent.create("x", "CO2", fossil)
    with pytest.raises(KeyError, match="unknown region 'Narnia'"):
        RegionBasis.from_names(GRID, ["Narnia"])


def test_component_from_inventory(tmp_path):
    from diffflux.models.inventories import read_inventory, write_inventory

    rng = np.random.default_rng(0)
    starts = np.array([f"2021-{m:02d}-01" for m in range(1, 13)], dtype="datetime64[M]")
    tb = np.stack([starts, starts + 1], axis=1).astype("datetime64[s]")
    flux = rng.random((12, 1, GRID.nlat, GRID.nlon)) * 1e-9
    p = write_inventory(tmp_path / "fire.nc", flux, "CO", GRID, sectors=("fire",), time_bounds=tb,
                        units="g m-2 month-1")
    inv = read_inventory(p, "CO", GRID, component="fire")
    c = FluxComponent.from_inventory(inv, reference_time="2021-01-01")
    assert c.name == "fire" and c.species == "CO" and c.record_edges[1] == 31 * 86400.0
    comp = FluxComposer.build([c], np.array([40.0 * 86400.0]))  # 10 February
    assert np.allclose(np.asarray(comp())[0, 0], flux[1, 0], rtol=1e-12)


def test_priors_at_call_time_are_differentiable(parts):
    """A prior passed at call time (e.g. NEE from a differentiable biosphere) carries gradients."""
    fossil, ocean, _, _, steps = parts
    comps = [FluxComponent.create("nee", "CO2", ocean, correction=Correction(LogNormal(), GridBasis()))]
    comp = FluxComposer.build(comps, steps[:3])
    u = jnp.full((1, GRID.nlat, GRID.nlon), 0.2)
    nee = jnp.asarray(fossil[:1])

    def total(field):
        return jnp.sum(comp({"nee": u}, priors={"nee": field}))

    g = np.asarray(jax.grad(total)(nee))
    assert np.allclose(g, 3 * np.exp(0.2), rtol=1e-13)  # three steps, each F exp(u)
    with pytest.raises(ValueError, match="prior 'nee' must have shape"):
        comp(None, priors={"nee": jnp.zeros((2, 2))})
    with pytest.raises(ValueError, match="unknown component 'fire'"):
        comp(None, priors={"fire": nee})


def test_region_basis_from_all_ar6_regions():
    from diffflux.regions import ar6_regions

    names = [f"ar6:{a}" for a in ar6_regions()]
    with pytest.raises(ValueError, match="overlap.*overlaps='normalise'"):
        RegionBasis.from_names(GRID, names)
    basis = RegionBasis.from_names(GRID, names, overlaps="normalise")
    assert float(basis.masks.sum(axis=0).max()) <= 1.0 + 1e-12
