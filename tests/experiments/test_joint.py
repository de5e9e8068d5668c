"""Scenarios through the biosphere (slow: the joint chain compiles for minutes on 2 cores): tile fluxes,
PFT restrictions, parameter changes (the parameter gradients' prediction equals the flux footprints'),
land-cover change, the first-order behaviour of the linear check, and the command end to end."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from diffflux.experiments import (
    AreaChange,
    FluxChange,
    Metric,
    ParameterChange,
    RegionSpec,
    Scenario,
    gradients,
    linear_predictions,
    simulate_batch,
)
from diffflux.experiments.config import twin_components
from diffflux.experiments.model import ExperimentModel, setting_from_problem, unstack
from diffflux.experiments.run import with_baseline
from diffflux.experiments.sensitivity import parameter_prediction

pytestmark = pytest.mark.slow

JPN = RegionSpec("JPN")
SCENARIOS = [
    Scenario("bio_key", (FluxChange(flux="CO2:biosphere", factor=1.3, region=JPN),)),
    Scenario("component", (FluxChange(component="nee", factor=1.3, region=JPN),)),
    Scenario(
        "npp_all_pfts",
        (
            FluxChange(
                flux="CO2:npp",
                pfts=("TrEF", "TrDF", "TeBF", "TeNF", "BoF", "SAV", "C3G", "C4G", "SHR", "TUN", "CRP"),
                factor=1.2,
            ),
        ),
    ),
    Scenario("npp", (FluxChange(flux="CO2:npp", factor=1.2),)),
    Scenario("pmax_global", (ParameterChange(("pmax",), 1.05),)),
    Scenario("pmax_jpn_forest", (ParameterChange(("pmax",), 1.2, pfts=("TeBF", "TeNF", "BoF"), region=JPN),)),
    Scenario(
        "afforest_eas",
        (AreaChange(("TeBF", "TeNF", "BoF"), ("CRP", "C3G"), factor=1.1, region=RegionSpec("ar6:EAS")),),
    ),
    Scenario("soil", (FluxChange(flux="CH4:soil", factor=1.1),)),
]


@pytest.fixture(scope="module")
def joint():
    from diffflux.inversion import standard_twin

    tw = standard_twin(
        resolution=(15.0, 20.0),
        nlev=2,
        days=2,
        steps_per_day=4,
        spinup=0,
        horizontal_diffusion=False,
        satellite_step_seconds=1800.0,
        noise=False,
    )
    setting = setting_from_problem(tw.problem, "2021-01-01", stations=("RYO", "MLO"), columns=True)
    metrics = [
        Metric("ryo_co2", "station", "CO2", station="RYO"),
        Metric("co2_burden", "burden", "CO2"),
        Metric("ryo_ch4", "station", "CH4", station="RYO"),
    ]
    model, table = ExperimentModel.build(
        tw.problem, setting, added_fluxes=("CH4:soil",), metrics=metrics, satellite_step_seconds=1800.0
    )
    model, arrays, notes = model.with_scenarios(SCENARIOS, setting)
    out = simulate_batch(model, with_baseline(arrays))
    out = jax.tree_util.tree_map(np.asarray, out)
    return tw, setting, model, arrays, notes, out


def _d(out, key, k):
    return out[key][k + 1] - out[key][0]


def test_twin_components_of_the_joint_twin(joint):
    built = {c.name: c.species for c in joint[0].problem.composer.components}
    assert built == twin_components(("CO2", "CH4"), "joint")


def test_tile_run_reproduces_the_problem_biosphere(joint):
    """The experiment's daily loop (which keeps tile fluxes) gives the problem's daily cell outputs."""
    tw, _, model, *_ = joint
    p = tw.problem
    cell, tile = model._biosphere(p.parameters(model.x), False)
    ref = p.daily_fluxes(model.x).daily
    for k in ref:
        assert np.allclose(np.asarray(cell[k]), np.asarray(ref[k]), rtol=1e-12, atol=0.0), k
    gpp = model.problem.biosphere._cell_sum(tile["gpp"])
    assert np.allclose(np.asarray(gpp), np.asarray(ref["gpp"]), rtol=1e-12, atol=1e-300)


def test_flux_keys_and_pft_restrictions(joint):
    _, setting, _, _, _, out = joint
    co2 = setting.tracers.index("CO2")
    names = [s.name for s in SCENARIOS]
    a, b = (
        _d(out, "flux_mean", names.index("bio_key"))[co2],
        _d(out, "flux_mean", names.index("component"))[co2],
    )
    assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(a)) and np.max(np.abs(a)) > 0
    a = _d(out, "flux_mean", names.index("npp_all_pfts"))[co2]
    b = _d(out, "flux_mean", names.index("npp"))[co2]
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(b)) and np.sum(b) < 0  # more uptake
    ch4 = setting.tracers.index("CH4")
    soil = _d(out, "flux_mean", names.index("soil"))[ch4]
    assert np.sum(soil) < 0 and not np.any(_d(out, "flux_mean", names.index("soil"))[co2])


def test_area_change(joint):
    _, setting, model, arrays, notes, out = joint
    k = [s.name for s in SCENARIOS].index("afforest_eas")
    assert notes[k]["requested_km2"] > 0 and notes[k]["applied_km2"] == pytest.approx(
        notes[k]["requested_km2"]
    )
    dfrac = np.asarray(unstack(arrays, k).dfrac)
    tiles = model.problem.biosphere.tiles
    # area moves between tiles of the same cell: fractions are conserved per cell
    assert np.allclose(np.bincount(tiles.cell, dfrac, model.problem.biosphere.maps.ncell), 0.0, atol=1e-15)
    assert np.all(tiles.frac + dfrac >= -1e-15)


def test_parameter_gradients_predict_global_parameter_change(joint):
    """For a parameter change everywhere, the parameter gradients' and the flux footprints' predictions
    agree; the linear check's error shrinks like the amplitude (first order)."""
    _, _, model, arrays, _, out = joint
    sens = gradients(model)
    lin = linear_predictions(model, arrays, sens)
    names = [s.name for s in SCENARIOS]
    k = names.index("pmax_global")
    via_params = parameter_prediction(sens, unstack(arrays, k).log_mult)
    print("flux route", lin[k], "parameter route", via_params)
    assert np.allclose(lin[k], via_params, rtol=1e-8, atol=0.0)
    small = jax.tree_util.tree_map(np.asarray, simulate_batch(model, with_baseline(arrays).scaled(0.05)))
    for name in ("pmax_global", "pmax_jpn_forest"):
        k = names.index(name)
        fwd_full = out["metrics"][k + 1, :2] - out["metrics"][0, :2]
        fwd_small = small["metrics"][k + 1, :2] - small["metrics"][0, :2]
        err_full = np.abs(fwd_full - lin[k, :2]) / np.abs(fwd_full)
        err_small = np.abs(fwd_small - 0.05 * lin[k, :2]) / np.abs(fwd_small)
        print(name, "relative error at amplitude 1", err_full, "at 0.05", err_small)
        assert np.all(err_small < 0.15 * err_full) and np.all(err_small < 1e-2)
    for name in ("bio_key", "npp", "afforest_eas", "soil"):  # linear in the fluxes: exact
        k = names.index(name)
        d = out["metrics"][k + 1] - out["metrics"][0]
        assert np.allclose(lin[k], d, rtol=1e-8, atol=1e-12 * np.abs(out["metrics"][0]).max())


CONFIG = """
[setup]
resolution = [15.0, 20.0]
nlev = 2
days = 2
steps_per_day = 4
spinup = 0
horizontal_diffusion = false
satellite_step_seconds = 1800.0
noise = false
checkpoint = "none"

[experiment]
stations = ["RYO", "HAT", "MNM"]
extra_species = { "HFC-134a" = "120 ppt" }
budget_regions = ["JPN", "globe"]
one_by_one = false

[posterior]
sigma = { CO2 = "0.3 ppm", "HFC-134a" = "0.1 ppt" }

[[scenario]]
name = "japan_forest_sink"
kind = "flux"
flux = "CO2:npp"
pfts = ["forest"]
region = "JPN"
factor = 1.2
[[scenario]]
name = "kigali"
kind = "flux"
component = "hfc134a_anthropogenic"
schedule = { 2019 = 0.9 }

[[metric]]
name = "ryo_co2"
kind = "station"
station = "RYO"
species = "CO2"
"""


def test_command_end_to_end(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "diffflux.experiments", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for f in (
        "report.md",
        "budgets.csv",
        "stations.csv",
        "linear_check.csv",
        "parameter_sensitivities.csv",
        "scenarios.nc",
        "footprints.nc",
        "footprint_ryo_co2.png",
        "summary.json",
        "timing.json",
    ):
        assert (out / f).exists(), f
    text = (out / "report.md").read_text()
    assert "japan_forest_sink" in text and "detectable" in text
