"""The sensitivity configuration: the example parses; unknown keys, wrong types and impossible values fail
before any computation with the key path and what is allowed; the CLI returns 2 on them."""

import copy
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from diffflux.config import ConfigError
from diffflux.experiments import (
    AreaChange,
    FluxChange,
    ParameterChange,
    load_sensitivity_config,
    parse_config,
)
from diffflux.experiments.config import parse_setup, twin_components

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sensitivity.toml"


@pytest.fixture(scope="module")
def example():
    return tomllib.loads(EXAMPLE.read_text())


def test_example_config(example):
    cfg = load_sensitivity_config(EXAMPLE)
    assert len(cfg.scenarios) >= 8 and len(cfg.metrics) >= 3
    kinds = {type(c) for s in cfg.scenarios for c in s.changes}
    assert kinds == {FluxChange, ParameterChange, AreaChange}
    s = cfg.setting
    assert s.tracers == ("CO2", "CH4", "HFC-134a") and s.nsteps == 14 * 8 and s.dt == 10800.0
    assert s.start == np.datetime64("2025-07-01T00:00:00") and "hfc134a_anthropogenic" in s.components
    assert cfg.setup["resolution"] == (10.0, 12.0) and isinstance(cfg.setup["flask_sites"], tuple)
    assert cfg.setup["checkpoint"] is None  # "none" -> None
    sink = cfg.scenarios[0]
    assert sink.name == "japan_forest_sink" and sink.changes[0].pfts == (
        "TrEF",
        "TrDF",
        "TeBF",
        "TeNF",
        "BoF",
    )
    kig = [s for s in cfg.scenarios if s.name == "kigali_hfc134a"][0].changes[0]
    assert kig.schedule[:2] == ((2019, 0.9), (2024, 0.6))
    assert cfg.posterior.sigma["CO2"] == pytest.approx(0.3e-6)
    assert len([s for s in cfg.scenarios if s.name == "japan_policy_mix"][0].changes) == 2


def test_setup_follows_the_signature():
    out = parse_setup(
        {
            "resolution": [15, 20],
            "species": ["CO2"],
            "satellite_step_seconds": "none",
            "spinup": 1,
            "start": "2021-07-02",
            "dtype": "float32",
        }
    )
    assert out["resolution"] == (15.0, 20.0) and out["species"] == ("CO2",)
    assert out["satellite_step_seconds"] is None and out["spinup"] == 1
    import jax.numpy as jnp

    assert out["dtype"] is jnp.float32 and out["days"] == 14  # defaults of standard_twin


def _err(data, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_config(data, "test.toml")
    assert str(info.value).startswith("test.toml: ")
    return str(info.value)


CASES = [
    # (path into the document, value, expected message)
    (("setup", "resolutoin"), [10, 12], r"\[setup.resolutoin\] unknown key .*allowed keys: .*'resolution'"),
    (("setup", "days"), "two", r"\[setup.days\] expected an integer"),
    (("setup", "resolution"), [10, 13], r"\[setup.resolution\] .*divide 180 and 360"),
    (("setup", "species"), ["CO2", "N2O"], r"\[setup.species\] standard_twin transports CO2 and/or CH4"),
    (("setup", "observations"), "obs.nc", r"\[setup.observations\] takes a Python object"),
    (
        ("setup", "continuous_sites"),
        ["RYO", "XXX"],
        r"\[setup.continuous_sites\[1\]\] unknown station id 'XXX'",
    ),
    (("setup", "start"), "2024-12-31", r"\[setup.start\] must be a day .* on or after reference_time"),
    (("experiment", "stations"), ["RYO", "NOPE"], r"\[experiment.stations\[1\]\] unknown station"),
    (("experiment", "extra_species"), {"SF7": 1.0}, r"\[experiment.extra_species.SF7\] unknown species"),
    (("experiment", "linear_amplitude"), 2.0, r"\[experiment.linear_amplitude\] must lie in \(0, 1\]"),
    (("posterior", "sigma"), {"CO2": "0.3 ppx"}, r"\[posterior.sigma.CO2\] .*unknown units"),
    (("outputs", "format"), "png", r"\[outputs.format\] unknown key .*allowed keys"),
]


@pytest.mark.parametrize("where,value,match", CASES)
def test_bad_tables(example, where, value, match):
    data = copy.deepcopy(example)
    data[where[0]][where[1]] = value
    _err(data, match)


SCENARIO_CASES = [
    ({"factor": -1.2}, r"\[scenario\[0\].factor\] must be a finite number >= 0"),
    ({"region": "Atlantis"}, r"\[scenario\[0\].region\] .*Atlantis"),
    ({"flux": "CO2:photosynthesis"}, r"\[scenario\[0\].flux\] unknown biosphere flux .*CO2:npp"),
    ({"pfts": ["palm"]}, r"\[scenario\[0\].pfts\] unknown PFT 'palm'; codes: .*groups: forest"),
    ({"start": "2026-01-01"}, r"\[scenario\[0\].start/end\] period .* lies outside the window"),
    ({"end": "2025-06-01", "start": "2025-05-01"}, r"outside the window"),
    ({"colour": "green"}, r"\[scenario\[0\].colour\] unknown key .*allowed keys"),
    ({"kind": "weather"}, r"\[scenario\[0\].kind\] must be one of \['flux', 'parameter', 'area'\]"),
    ({"factor": None}, r"\[scenario\[0\]\] give exactly one magnitude"),
    (
        {"flux": None, "component": "coal"},
        r"\[scenario\[0\].component\] unknown component 'coal'; components: ",
    ),
    ({"box": [50, 40, 0, 10], "region": None}, r"\[scenario\[0\].box\] must be \[lat_min, lat_max"),
]


@pytest.mark.parametrize("change,match", SCENARIO_CASES)
def test_bad_scenarios(example, change, match):
    data = copy.deepcopy(example)
    sc = data["scenario"][0]
    for k, v in change.items():
        if v is None:
            sc.pop(k, None)
        else:
            sc[k] = v
    _err(data, match)


def test_more_impossible_values(example):
    data = copy.deepcopy(example)
    data["scenario"][1]["parameter"] = "leaf_colour"
    _err(data, r"\[scenario\[1\].parameter\] unknown parameter 'leaf_colour'; PFT parameters: .*pmax")
    data = copy.deepcopy(example)
    data["scenario"][1]["factor"] = 0.0
    _err(data, r"\[scenario\[1\].factor\] a parameter multiplier must be finite and > 0")
    data = copy.deepcopy(example)
    data["scenario"][5]["schedule"] = {"2030": 0.5}
    _err(data, r"\[scenario\[5\].schedule\] the schedule starts in 2030, after the window")
    data = copy.deepcopy(example)
    data["scenario"][1]["name"] = data["scenario"][0]["name"]
    _err(data, r"\[scenario\] scenario names must be unique")
    data = copy.deepcopy(example)
    data["metric"][0]["station"] = "SPO"
    _err(data, r"\[metric\[0\].station\] 'SPO' is not sampled")
    data = copy.deepcopy(example)
    data["setup"]["flux_forms"] = "additive"
    _err(data, r"\[experiment.add_biosphere_fluxes\[0\]\] needs a biosphere")
    del data["experiment"]["add_biosphere_fluxes"]
    _err(data, r"\[scenario\[0\].flux\] the problem has no biosphere")
    data = copy.deepcopy(example)
    data["scenario"][3]["flux"] = "N2O:soil"
    _err(data, r"\[scenario\[3\].flux\] species 'N2O' is not transported")


def test_twin_components_of_the_additive_twin(additive):
    """The components config.twin_components predicts are the ones standard_twin built."""
    tw = additive[0]
    built = {c.name: c.species for c in tw.problem.composer.components}
    assert built == twin_components(("CO2", "CH4"), "additive")


def test_cli_bad_config_exits_2(tmp_path, example):
    bad = tmp_path / "bad.toml"
    text = EXAMPLE.read_text().replace(
        "factor = 1.2\nstart = 2025-01-01", "factor = -1.2\nstart = 2025-01-01"
    )
    bad.write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "diffflux.experiments", str(bad), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "[scenario[0].factor] must be a finite number >= 0, found -1.2" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "diffflux.experiments", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "does not exist" in r.stderr
