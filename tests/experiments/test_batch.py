"""Eight scenarios and the baseline in one vmapped call: agreement with one-by-one runs, mass balance,
magnitudes (additive totals, yearly schedules), the linear check and the report files."""

import numpy as np
import pytest
from exp_helpers import METRICS

from diffflux.constants import SECONDS_PER_YEAR
from diffflux.experiments import linear_predictions, simulate_batch
from diffflux.experiments import report as R
from diffflux.regions import budget


def test_batch_equals_one_by_one(additive, batch):
    _, _, _, _, _, scn = additive
    b, base, timing = batch
    assert len(scn) >= 8 and b["metrics"].shape[0] == len(scn)
    print("timing", timing)
    assert timing["max_rel_diff_batch_vs_one_by_one"] <= 1e-12
    assert timing["batch_s"] > 0 and timing["one_by_one_s"] > 0


def test_burden_change_equals_integrated_flux_change(additive, batch):
    """Passive tracers, mass-conserving transport: the change of the global burden at the end equals the
    change of the surface flux integrated over area and window."""
    _, setting, _, _, _, scn = additive
    b, base, _ = batch
    duration = setting.nsteps * setting.dt
    dF = b["flux_mean"] - base["flux_mean"][None]
    integral = np.einsum("styx,yx->st", dF, setting.grid.area) * duration
    dB = b["burden"] - base["burden"][None]
    scale = np.abs(integral).max(axis=0, keepdims=True)
    assert np.max(np.abs(dB - integral) / scale) <= 1e-9


def test_magnitudes(additive, batch):
    _, setting, _, _, _, scn = additive
    b, base, _ = batch
    names = [s.name for s in scn]
    dF = b["flux_mean"] - base["flux_mean"][None]
    co2, ch4, hfc = (setting.tracers.index(s) for s in ("CO2", "CH4", "HFC-134a"))
    # -0.01 PgC/yr spread over Japan's land-share mask: the global change is exactly the request
    total = budget(dF[names.index("sink_jpn"), co2], setting.grid, "CO2", "globe").total[0, 0]
    assert abs(total + 0.01) <= 1e-12
    # a CH4 flux density added on the second day only: half the window
    model, arrays = additive[2], additive[3]

    def channel(kind, name):
        return [c for c, ch in enumerate(model.channels) if ch.kind == kind and ch.name == name][0]

    k = names.index("box_day2")
    mask = arrays.mask[k, channel("add", "CH4")]
    expected = 0.5 * 1e-9 * float(np.sum(np.asarray(mask) * setting.grid.area))
    assert abs(float(np.sum(dF[k, ch4] * setting.grid.area)) - expected) <= 1e-12 * expected
    # Kigali step-down: July 2021 lies in the 2019 step (x0.9): -10 % of the 250 Gg/yr inventory
    kig = budget(dF[names.index("kigali"), hfc], setting.grid, "HFC-134a", "globe").total[0, 0]
    assert abs(kig + 25.0) <= 1e-9
    # switching HFC-134a off in Japan removes Japan's share (land-share mask) of it and nothing else
    d = dF[names.index("hfc_jpn_off"), hfc]
    jpn = np.asarray(arrays.mask[names.index("hfc_jpn_off"), channel("component", "hfc134a_anthropogenic")])
    assert np.all(d <= 0) and np.all(d[jpn == 0] == 0) and np.any(d < 0)
    # a scenario touches only its own tracers (exactly, or within round-off of the batch)
    co2_rec = additive[4]["species"].values.astype(str) == "CO2"
    k = names.index("kigali")
    assert not R.touched(b["y"][k, co2_rec] - base["y"][co2_rec], base["y"][co2_rec])
    assert R.touched(b["y"][k, ~co2_rec] - base["y"][~co2_rec], base["y"][~co2_rec])


def test_linear_check_is_exact_for_flux_changes(additive, batch, sens):
    """Flux changes are linear in the fluxes and the transport is linear: the adjoint's prediction equals
    the forward change at any amplitude (to round-off)."""
    from diffflux.experiments.run import with_baseline

    _, _, model, arrays, _, scn = additive
    b, base, _ = batch
    lin = linear_predictions(model, arrays, sens)
    d_full = b["metrics"] - base["metrics"][None]
    small = simulate_batch(model, with_baseline(arrays).scaled(0.05))
    d_small = np.asarray(small["metrics"][1:]) - np.asarray(small["metrics"][0])[None]
    scale = np.abs(d_full).max(axis=0, keepdims=True) + 1e-300
    assert np.max(np.abs(lin - d_full) / scale) <= 1e-8
    assert np.max(np.abs(0.05 * lin - d_small) / scale) <= 1e-8


def test_report_tables_and_files(additive, batch, sens, tmp_path):
    """Budget, station (with detectability), column, burden and linear-check tables; CF netCDF and PNG."""
    import xarray as xr

    from diffflux.experiments.config import Posterior

    _, setting, model, _, table, scn = additive
    b, base, _ = batch
    post = Posterior(
        sigma={"CO2": 0.3e-6, "CH4": 3e-9, "HFC-134a": 0.1e-12}, column_sigma={"CO2": 0.5e-6}, threshold=2.0
    )
    st = R.station_rows(setting, scn, table, base, b, post)
    kig = [r for r in st if r["scenario"] == "kigali" and r["station"] == "RYO"]
    assert len(kig) == 1 and kig[0]["species"] == "HFC-134a" and kig[0]["unit"] == "ppt"
    r = kig[0]
    assert r["n_blocks"] == 2 and r["sigma"] == pytest.approx(0.1)
    assert r["sigma_of_mean"] == pytest.approx(0.1 / np.sqrt(2))
    assert r["detectable"] == (abs(r["afternoon_mean_change"]) >= 2.0 * r["sigma_of_mean"])
    assert {x["species"] for x in st if x["scenario"] == "ch4_jpn"} == {"CH4"}
    cols = R.column_rows(setting, scn, table, base, b, post)
    assert cols and all(c["species"] in ("CO2", "CH4") for c in cols)
    assert "soundings_above" in [c for c in cols if c["species"] == "CO2"][0]
    bud = R.budget_rows(setting, scn, base, b, ["JPN", "globe"], "land")
    row = [x for x in bud if x["scenario"] == "sink_jpn" and x["region"] == "globe"][0]
    assert row["change"] == pytest.approx(-0.01, abs=1e-12) and row["total_change"] == row["change"]
    assert row["change_over_window"] == pytest.approx(-0.01 * 2 * 86400 / SECONDS_PER_YEAR, rel=1e-12)
    ds = R.scenarios_dataset(setting, scn, table, base, b)
    ds.to_netcdf(tmp_path / "scenarios.nc")
    fp = R.footprints_dataset(setting, METRICS, sens, 24.0)
    fp.to_netcdf(tmp_path / "footprints.nc")
    with xr.open_dataset(tmp_path / "footprints.nc") as back:
        v = back["footprint_ryo_co2"]
        assert v.dims == ("block", "lat", "lon") and v.attrs["units"] == "mol mol-1 (mol m-2 s-1)-1"
        assert np.allclose(back["footprint_ryo_co2_window"].values, v.values.sum(axis=0))
        assert back.attrs["Conventions"] == "CF-1.8"
    with xr.open_dataset(tmp_path / "scenarios.nc") as back:
        assert back["d_flux_HFC_134a"].attrs["units"] == "mol m-2 s-1"
        assert back.sizes["scenario"] == len(scn)
    R.map_png(
        tmp_path / "fp.png",
        setting.grid,
        sens.window_footprint(0, 0),
        "t",
        "u",
        log=True,
        points=[("RYO", 39.03, 141.82)],
    )
    assert (tmp_path / "fp.png").stat().st_size > 10_000
