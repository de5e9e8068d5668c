"""The command line: exit codes, info, demo outputs."""

import json

import pytest
import xarray as xr

from diffflux.cli import main


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend" in out and "jax" in out


def test_bad_resolution_is_reported(capsys):
    assert main(["demo", "--resolution", "4by5", "--out", "unused"]) == 2
    assert "--resolution" in capsys.readouterr().err


def test_demo_small(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--days", "1", "--resolution", "12x15", "--out", str(out),
                 "--float64"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 2000 < summary["sf6_implied_lifetime_yr"] < 5000  # AR6: ~3200 yr
    assert abs(summary["co2_pulse_budget_relative_error"]) < 1e-10
    assert abs(summary["air_mass_relative_change"]) < 1e-12
    assert summary["sf6_surface_nh_minus_sh_ppt"] > 0
    assert 7.0 < summary["ch4_implied_lifetime_yr"] < 11.5
    ds = xr.open_dataset(out / "mixing_ratios.nc")
    assert ds.SF6.attrs["units"] == "ppt"
    assert ds.CH4.dims == ("time", "level", "lat", "lon")
    assert ds.sizes["time"] == 1


@pytest.mark.parametrize("argv", [["verify", "--list"]])
def test_verify_list(argv, capsys):
    pytest.importorskip("diffflux.verify.suite")
    assert main(argv) == 0
    assert "williamson" in capsys.readouterr().out.lower()


def test_biosphere_command_coarse(tmp_path, capsys):
    out = tmp_path / "bio.json"
    assert main(["biosphere", "--resolution", "20x30", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "GPP [PgC/yr]" in text and "Beer et al. 2010" in text
    doc = json.loads(out.read_text())
    assert doc["spinup"]["max_nep"] < 1.0
    assert doc["totals"]["GPP [PgC/yr]"] > 0 and doc["totals"]["soil carbon [PgC]"] > 0
