"""Control vector, whitening, flatten/unflatten, observation-error model and bad input (no transport)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffflux.inversion.control import (
    ControlVector,
    DiagonalSqrt,
    bias_block,
    biosphere_block,
    biosphere_labels,
    flux_block,
    initial_block,
)
from diffflux.inversion.obs_error import (
    MISMATCH_TABLE,
    ObservationError,
    classify,
    mismatch,
)
from diffflux.models.biosphere import BiosphereParams
from diffflux.models.biosphere.pft import NPFT
from diffflux.models.composer import (
    Additive,
    Correction,
    FluxComponent,
    FluxComposer,
    GridBasis,
    LogNormal,
    RegionBasis,
    TemporalBlocks,
)
from diffflux.observations import (
    aircraft_design,
    concat_tables,
    continuous_design,
    flask_design,
    satellite_design,
)


class DenseSqrt:
    """A full (correlated) covariance given by its square root matrix (for the whitening tests)."""

    def __init__(self, L, shape):
        self.L, self.shape = jnp.asarray(L), shape

    def sqrt_matvec(self, z):
        return (self.L @ jnp.ravel(z)).reshape(self.shape)

    def matvec(self, x):
        return (self.L @ (self.L.T @ jnp.ravel(x))).reshape(self.shape)


@pytest.fixture(scope="module")
def composer():
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 6, 8))
    masks[0, :3] = 1.0
    masks[1, 3:, :4] = 1.0
    comps = [
        FluxComponent.create("fossil", "CO2", rng.uniform(0, 1e-8, (6, 8)),
                             correction=Correction(LogNormal(), GridBasis(),
                                                   TemporalBlocks.regular(0, 86400, 2))),
        FluxComponent.create("ocean", "CO2", rng.uniform(-1e-8, 1e-8, (6, 8)),
                             correction=Correction(Additive(), RegionBasis.from_masks(masks, ["S", "NW"]))),
        FluxComponent.create("wetland", "CH4", rng.uniform(0, 1e-9, (6, 8))),
    ]
    return FluxComposer.build(comps, np.arange(8) * 21600.0 + 10800.0)


@pytest.fixture(scope="module")
def control(composer):
    rng = np.random.default_rng(1)
    n_ic = 2
    L = np.tril(rng.normal(size=(n_ic, n_ic))) + 3 * np.eye(n_ic)
    return ControlVector.create([
        flux_block(composer, "fossil", sigma=rng.uniform(0.1, 0.5, (2, 6, 8))),
        flux_block(composer, "ocean", sigma=1e-8, mean=np.full((1, 2), 2e-9)),
        biosphere_block(["pmax", "k_soil"], sigma=0.2),
        initial_block(["CO2", "CH4"], cov=DenseSqrt(L * 1e-6, (n_ic,))),
        bias_block(["OCO:CO2", "MLO"], sigma=[0.3e-6, 0.5e-6]),
    ])


def test_structure_and_labels(control):
    assert control.names == ("flux:fossil", "flux:ocean", "biosphere", "initial", "bias")
    assert control.shapes["flux:fossil"] == (2, 6, 8)
    assert control.shapes["flux:ocean"] == (1, 2)
    assert control.shapes["biosphere"] == (NPFT + 1,)
    assert control.size == 96 + 2 + NPFT + 1 + 2 + 2
    labels = control.labels()
    assert len(labels) == control.size
    assert labels[0] == "flux:fossil[0,0,0]" and labels[95] == "flux:fossil[1,5,7]"
    bio = [lab for lab in labels if lab.startswith("biosphere:")]
    assert "biosphere:k_soil" in bio and "biosphere:pmax[TrEF]" in bio and len(bio) == NPFT + 1
    assert labels[-2:] == ["bias:OCO:CO2", "bias:MLO"]
    # the labels follow the pytree order used to rebuild BiosphereParams
    assert biosphere_labels(["k_soil", "pmax"]) == biosphere_labels(["pmax", "k_soil"])


def test_flatten_unflatten_roundtrip(control, rng):
    vec = jnp.asarray(rng.normal(size=control.size))
    tree = control.unflatten(vec)
    assert {k: v.shape for k, v in tree.items()} == control.shapes
    np.testing.assert_array_equal(np.asarray(control.flatten(tree)), np.asarray(vec))
    off = control.offsets()
    i, j = off["biosphere"]
    np.testing.assert_array_equal(np.asarray(tree["biosphere"]), np.asarray(vec[i:j]))
    # jit- and grad-compatible
    f = jax.jit(lambda v: control.flatten(control.unflatten(v)))
    np.testing.assert_array_equal(np.asarray(f(vec)), np.asarray(vec))


def test_whitening_roundtrip_and_moments(control, rng):
    z = control.unflatten(jnp.asarray(rng.normal(size=control.size)))
    x = control.unwhiten(z)
    z2 = control.whiten(x)
    for k in control.names:
        np.testing.assert_allclose(np.asarray(z2[k]), np.asarray(z[k]), rtol=1e-12, atol=1e-12)
    # zero z is the prior mean
    x0 = control.unwhiten(control.zeros())
    np.testing.assert_allclose(np.asarray(x0["flux:ocean"]), 2e-9, rtol=0)
    np.testing.assert_allclose(np.asarray(x0["biosphere"]), 0.0, atol=0)
    # sample covariance of x = x_b + B^1/2 z equals B (diagonal and dense blocks), 20000 draws
    zs = jax.random.normal(jax.random.PRNGKey(0), (20000, control.size))
    xs = jax.vmap(lambda v: control.flatten(control.unwhiten(v)))(zs)
    i, j = control.offsets()["initial"]
    ic = np.asarray(xs[:, i:j])
    B = np.asarray(control.block("initial").cov.L) @ np.asarray(control.block("initial").cov.L).T
    np.testing.assert_allclose(np.cov(ic.T), B, rtol=0.05, atol=0.03 * np.abs(B).max())
    var = control.prior_variance()
    np.testing.assert_allclose(np.asarray(var["initial"]), np.diag(B), rtol=1e-12)
    i, j = control.offsets()["flux:fossil"]
    emp = np.asarray(xs[:, i:j]).var(axis=0)
    np.testing.assert_allclose(emp, np.ravel(np.asarray(var["flux:fossil"])), rtol=0.08)


def test_biosphere_block_maps_to_params():
    """The block's labels follow the order of ravel_pytree over the selected BiosphereParams leaves."""
    import equinox as eqx
    from jax.flatten_util import ravel_pytree

    p = BiosphereParams.ones()
    sel, _ = eqx.partition(p, p.filter_spec(["q10_resp", "k_litter"]))
    flat, unravel = ravel_pytree(sel)
    labels = biosphere_labels(["q10_resp", "k_litter"])
    assert flat.shape == (len(labels),)
    marker = jnp.arange(len(labels), dtype=float)
    tree = unravel(marker)
    k = labels.index("k_litter")
    assert float(tree.glob["k_litter"]) == k
    j = labels.index("q10_resp[BoF]")
    from diffflux.models.biosphere.pft import pft_index

    assert float(tree.pft["q10_resp"][pft_index("BoF")]) == j


def test_bad_input(composer, control):
    with pytest.raises(KeyError, match="not a corrected component"):
        flux_block(composer, "wetland", sigma=0.3)
    with pytest.raises(KeyError, match="unknown parameter"):
        biosphere_block(["pmax", "vcmax_typo"], sigma=0.2)
    with pytest.raises(ValueError, match="finite and > 0"):
        flux_block(composer, "fossil", sigma=0.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        initial_block(["CO2"], sigma=-1e-6)
    with pytest.raises(ValueError, match="finite and > 0"):
        DiagonalSqrt(sigma=jnp.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="exactly one of sigma"):
        bias_block(["MLO"])
    with pytest.raises(ValueError, match="prior mean must have shape"):
        flux_block(composer, "ocean", sigma=1e-8, mean=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"(maps a|does not accept a) \(1, 2\) block"):
        flux_block(composer, "ocean", cov=DiagonalSqrt(sigma=jnp.ones(3)))
    with pytest.raises(ValueError, match="groups must be unique"):
        bias_block(["MLO", "MLO"], sigma=1e-6)
    with pytest.raises(ValueError, match="block names must be unique"):
        ControlVector.create([bias_block(["MLO"], sigma=1e-6), bias_block(["SPO"], sigma=1e-6)])
    z = control.zeros()
    z["bogus"] = jnp.zeros(3)
    with pytest.raises(KeyError, match=r"unknown block\(s\) \['bogus'\]"):
        control.unwhiten(z)
    z = control.zeros()
    del z["bias"]
    with pytest.raises(KeyError, match=r"lacks \['bias'\]"):
        control.flatten(z)
    z = control.zeros()
    z["biosphere"] = jnp.zeros(3)
    with pytest.raises(ValueError, match=r"z\['biosphere'\] must have shape"):
        control.unwhiten(z)
    with pytest.raises(ValueError, match="flat control vector must have shape"):
        control.unflatten(jnp.zeros(control.size + 1))
    with pytest.raises(KeyError, match="no block 'nope'"):
        control.block("nope")


# -------------------------------------------------------------------------------------------------
# observation errors
# -------------------------------------------------------------------------------------------------


def test_obs_error_table_and_classes():
    t0, t1 = "2021-07-01", "2021-07-15"
    tab = concat_tables([
        flask_design(["SPO", "CGO", "BSC"], t0, t1, uncertainty=0.1e-6),  # remote, remote, continental
        continuous_design(["LEF", "MLO"], t0, "2021-07-02", species="CH4", uncertainty=2e-9),
        aircraft_design("NWR", ["2021-07-03T15:00"], [1000.0, 3000.0], uncertainty=0.2e-6),
        satellite_design(t0, "2021-07-02", step_seconds=600.0, uncertainty=0.5e-6),
    ])
    cls = classify(tab)
    site = tab["site"].values.astype(str)
    samp = tab["sampling"].values.astype(str)
    assert set(cls[site == "SPO"]) == {"remote_flask"}
    assert set(cls[site == "CGO"]) == {"remote_flask"}
    assert set(cls[site == "BSC"]) == {"continental_flask"}
    assert set(cls[site == "LEF"]) == {"continental_continuous"}   # LEF is a tower site sampled continuously
    assert set(cls[site == "MLO"]) == {"remote_continuous"}        # 3.4 km: free troposphere
    assert set(cls[samp == "aircraft"]) == {"aircraft"}
    assert set(cls[samp == "satellite"]) == {"satellite"}
    R = ObservationError.from_table(tab)
    meas = tab["uncertainty"].values
    mdm = np.array([MISMATCH_TABLE[c][s] for c, s in zip(cls, tab["species"].values.astype(str))])
    np.testing.assert_allclose(np.asarray(R.variance), meas**2 + mdm**2, rtol=1e-14)
    # documented default values
    assert MISMATCH_TABLE["remote_flask"]["CO2"] == 0.5e-6
    assert MISMATCH_TABLE["continental_continuous"]["CO2"] == 3e-6
    assert MISMATCH_TABLE["tower"]["CO2"] == 2e-6
    assert MISMATCH_TABLE["aircraft"]["CO2"] == 1e-6
    assert MISMATCH_TABLE["satellite"]["CO2"] == 1.5e-6
    i = np.flatnonzero(site == "LEF")[0]
    assert abs(float(R.sigma[i]) - np.hypot(2e-9, 25e-9)) < 1e-20
    r = jnp.asarray(np.random.default_rng(0).normal(size=R.nobs)) * R.sigma
    np.testing.assert_allclose(np.asarray(R.whiten(r)), np.asarray(r / R.sigma), rtol=1e-15)
    np.testing.assert_array_equal(R.classes, cls)
    summary = R.summary()
    assert summary["satellite"]["n"] == int((samp == "satellite").sum())
    # mismatch alone and scaling
    R2 = ObservationError.from_table(tab, measurement=False, scale=2.0)
    np.testing.assert_allclose(np.asarray(R2.sigma), 2 * mdm, rtol=1e-14)


def test_obs_error_bad_input():
    with pytest.raises(ValueError, match="finite and > 0"):
        ObservationError(sigma=jnp.array([1e-6, 0.0]))
    with pytest.raises(ValueError, match="non-empty"):
        ObservationError(sigma=jnp.zeros((0,)))
    with pytest.raises(KeyError, match="unknown site class"):
        mismatch(["ship"], ["CO2"])
    with pytest.raises(KeyError, match="no model-data mismatch"):
        mismatch(["tower"], ["CO2"], table={"tower": {"CH4": 1e-8}})
