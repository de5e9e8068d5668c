"""Configuration: defaults, the example file, the generated reference and strict validation."""

import tomllib
from pathlib import Path

import pytest

from diffflux.config import (
    ConfigError,
    default_config,
    example_toml,
    load_config,
    parse_config,
    reference_markdown,
)
from diffflux.config.schema import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_example_agree():
    cfg = default_config()
    assert parse_config(tomllib.loads(example_toml())).values == cfg.values
    # every key of the schema is in the example, with its documentation line above it
    text = example_toml()
    for s in SECTIONS:
        assert f"[{s.name}]" in text
        for k in s.keys:
            assert f"\n{k.name} = " in text


def test_resolved_config_round_trips():
    cfg = default_config().replace(
        **{"period.days": 3, "fluxes.block_days": 3.0, "fluxes.correlation_km": [500.0, 1000.0]}
    )
    again = parse_config(tomllib.loads(cfg.to_toml()))
    assert again.values == cfg.values
    assert again["fluxes.correlation_km"] == [500.0, 1000.0]
    assert default_config()["fluxes.correlation_km"] is None


def test_reference_document_is_current():
    assert (ROOT / "docs" / "config.md").read_text() == reference_markdown() + "\n", (
        "docs/config.md is out of date: python -m diffflux.config --markdown > docs/config.md"
    )


BAD = [
    ({"solverr": {}}, "solverr", "did you mean [solver]"),
    ({"grid": {"resolutin": "4x5"}}, "grid.resolutin", "did you mean 'resolution'"),
    ({"grid": {"resolution": "4by5"}}, "grid.resolution", "must look like '4x5'"),
    ({"grid": {"resolution": "7x5"}}, "grid.resolution", "not a whole number of latitude bands"),
    ({"grid": {"resolution": "4x7"}}, "grid.resolution", "even whole number"),
    ({"grid": {"levels": 1}}, "grid.levels", "between 2 and 100"),
    ({"solver": {"max_iter": "many"}}, "solver.max_iter", "expected an integer, found string 'many'"),
    ({"solver": {"max_iter": 2.5}}, "solver.max_iter", "expected an integer, found number 2.5"),
    ({"solver": {"name": "bfgs"}}, "solver.name", "allowed: lbfgs, adam, gauss-newton, exact"),
    ({"run": {"mode": "inverse"}}, "run.mode", "did you mean 'invert'"),
    ({"run": {"mode": "invert"}}, "observations.file", "needs an observation file"),
    ({"period": {"start": "2021-02-30"}}, "period.start", "not a valid calendar date"),
    ({"period": {"start": "2020-12-01"}}, "period.start", "before period.reference_time"),
    ({"period": {"days": 0}}, "period.days", "between 1 and 3660"),
    ({"species": {"names": ["CO2", "N2O"]}}, "species.names", "unknown value 'N2O'"),
    ({"species": {"names": []}}, "species.names", "at least one species"),
    ({"observations": {"flask_sites": ["MLOO"]}}, "observations.flask_sites", "did you mean 'MLO'"),
    (
        {"observations": {"flask_sites": [], "continuous_sites": [], "satellite": False}},
        "observations",
        "no observations",
    ),
    ({"outputs": {"countries": ["Japn"]}}, "outputs.countries", "unknown region 'Japn'"),
    ({"fluxes": {"sigma_fossil": -0.3}}, "fluxes.sigma_fossil", "must be > 0"),
    ({"fluxes": {"correlation_km": [500]}}, "fluxes.correlation_km", "2 lengths"),
    ({"fluxes": {"block_days": 30}}, "fluxes.block_days", "longer than the window"),
    ({"fluxes": {"forms": "additive"}}, "biosphere.parameters", "must be []"),
    ({"biosphere": {"parameters": ["pmaxx"]}}, "biosphere.parameters", "did you mean 'pmax'"),
    ({"biosphere": {"spinup": "fast"}}, "biosphere.spinup", "newton"),
    ({"device": {"precision": "float16"}}, "device.precision", "float32, float64"),
    ({"grid": {"horizontal_diffusion": "yes"}}, "grid.horizontal_diffusion", "expected true or false"),
    ({"grid": "4x5"}, "grid", "expected a table"),
]


@pytest.mark.parametrize("data,path,words", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_configs_name_the_key_and_the_problem(data, path, words):
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="bad.toml")
    msg = str(info.value)
    assert info.value.path == path
    assert msg.startswith(f"bad.toml: [{path}]")
    assert words in msg, msg


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid\nresolution = 4x5\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError):
        load_config(binary)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    obs = tmp_path / "run.toml"
    obs.write_text('[run]\nmode = "invert"\n[observations]\nfile = "nowhere.nc"\n')
    with pytest.raises(ConfigError, match="file not found: 'nowhere.nc'"):
        load_config(obs)


def test_replace_revalidates():
    cfg = default_config()
    assert cfg.replace(**{"solver.max_iter": 3})["solver.max_iter"] == 3
    with pytest.raises(ConfigError, match="solver.max_iter"):
        cfg.replace(**{"solver.max_iter": -1})
