"""The command line: exit codes, info, init, config errors, tracer outputs."""

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


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert main(["run"]) == 2  # missing CONFIG: argparse usage error


def test_bad_resolution_is_reported(tmp_path, capsys):
    assert main(["tracers", "--resolution", "4by5", "--out", str(tmp_path / "unused")]) == 2
    assert "--resolution" in capsys.readouterr().err
    assert main(["demo", "--resolution", "4by5", "--out", str(tmp_path / "unused")]) == 2
    err = capsys.readouterr().err
    assert "[grid.resolution]" in err and "must look like '4x5'" in err
    assert not (tmp_path / "unused").exists()  # nothing computed, nothing written


def test_init_writes_a_valid_commented_config(tmp_path, capsys):
    from diffflux.config import default_config, load_config

    path = tmp_path / "my.toml"
    assert main(["init", str(path)]) == 0
    assert load_config(path).values == default_config().values
    assert path.read_text().count("\n# ") > 40
    assert main(["init", str(path)]) == 2  # refuses to overwrite
    assert "--force" in capsys.readouterr().err
    assert main(["init", str(path), "--force"]) == 0


def test_run_config_errors_exit_2_before_computing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[solver]\nmax_iter = "ten"\n[outputs]\ndirectory = "%s"\n' % (tmp_path / "o"))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "[solver.max_iter] expected an integer, found string 'ten'" in err
    assert not (tmp_path / "o").exists()
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["run", str(cfg), "--set", "solver.max_iter"]) == 2
    assert "section.key=value" in capsys.readouterr().err


def test_unwritable_output_folder_exits_3(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--out", str(blocker / "sub"), "--quiet"]) == 3
    assert str(blocker) in capsys.readouterr().err


def test_report_of_missing_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) in (2, 3)
    assert "nothing" in capsys.readouterr().err


def test_tracers_small(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["tracers", "--days", "1", "--resolution", "12x15", "--out", str(out),
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


def test_unreadable_observation_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "obs.nc"
    bad.write_bytes(b"this is not netCDF")
    cfg = tmp_path / "inv.toml"
    cfg.write_text(f'[run]\nmode = "invert"\n[observations]\nfile = "{bad}"\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "cannot read observations" in err
    assert not (tmp_path / "o" / "fluxes.nc").exists()
