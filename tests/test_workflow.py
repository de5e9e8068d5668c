"""``diffflux run``: config -> problem mapping, checkpoint matching, and (slow) end-to-end runs."""

import json
import logging
import shutil

import numpy as np
import pytest

from diffflux.config import default_config
from diffflux.workflow import _match_checkpoint, make_solver, twin_kwargs

TINY = {
    "run.title": "tiny",
    "grid.resolution": "30x30",
    "grid.levels": 3,
    "period.days": 2,
    "period.steps_per_day": 4,
    "biosphere.spinup": 0,
    "fluxes.block_days": 1.0,
    "observations.flask_sites": ["MLO", "SPO", "BRW", "MHD"],
    "observations.continuous_sites": ["HAT"],
    "observations.satellite_step_seconds": 3000.0,
    "solver.max_iter": 8,
    "solver.lanczos_rank": 6,
    "outputs.regions": ["globe", "NH", "SH", "land", "ocean"],
    "outputs.countries": ["USA", "CHN"],
}


def test_twin_kwargs_follow_the_config():
    cfg = default_config().replace(
        **{
            "grid.resolution": "4x5",
            "fluxes.correlation_km": [300.0, 900.0],
            "observations.satellite": False,
            "device.checkpoint": "none",
            "fluxes.sigma_nee": 2e-7,
            "device.precision": "float32",
        }
    )
    kw = twin_kwargs(cfg)
    assert kw["resolution"] == (4.0, 5.0)
    assert kw["correlation_km"] == (300.0, 900.0)
    assert kw["satellite_step_seconds"] is None
    assert kw["checkpoint"] is None
    assert kw["sigmas"]["nee"] == 2e-7 and set(kw["sigmas"]) == {
        "fossil",
        "ocean",
        "nee",
        "ch4_anthropogenic",
        "wetland",
    }
    assert np.dtype(kw["dtype"]) == np.float32
    import inspect

    from diffflux.inversion import standard_twin

    assert set(kw) <= set(inspect.signature(standard_twin).parameters)


@pytest.mark.parametrize(
    "name,cls", [("lbfgs", "LBFGS"), ("adam", "Adam"), ("gauss-newton", "GaussNewtonCG"), ("exact", "Exact")]
)
def test_make_solver(name, cls):
    s = make_solver(default_config().replace(**{"solver.name": name, "solver.max_iter": 7}))
    assert type(s).__name__ == cls and s.max_iter == 7


def test_checkpoint_belongs_to_its_config(tmp_path):
    log = logging.getLogger("test")
    ckpt = tmp_path / "optimiser_checkpoint.npz"
    cfg = default_config()
    _match_checkpoint(ckpt, cfg, log)  # no checkpoint yet: records the key
    ckpt.write_bytes(b"state")
    _match_checkpoint(ckpt, cfg.replace(**{"solver.max_iter": 99}), log)  # same problem: kept
    assert ckpt.exists()
    _match_checkpoint(ckpt, cfg.replace(**{"run.seed": 3}), log)  # another problem: removed
    assert not ckpt.exists()


def _run(tmp_path, name, **over):
    from diffflux.cli import main

    cfg = default_config().replace(**{**TINY, **over})
    path = tmp_path / f"{name}.toml"
    path.write_text(cfg.to_toml())
    out = tmp_path / name
    code = main(["run", str(path), "--out", str(out), "--quiet"])
    return code, out


@pytest.mark.slow
def test_twin_run_end_to_end_and_reproducible(tmp_path):
    import xarray as xr

    from diffflux.products import cf_check, read_budgets_csv

    code, out = _run(tmp_path, "a")
    assert code in (0, 1)
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["status"] in ("CONVERGED_GRAD", "CONVERGED_COST", "MAX_ITER")
    assert summary["cost_posterior"] < summary["cost_prior"]
    assert np.isfinite(summary["dofs"]) and summary["dofs"] > 0
    for f in (
        "fluxes.nc",
        "observations.nc",
        "budgets.csv",
        "parameters.csv",
        "history.csv",
        "config.toml",
        "report.html",
        "report.md",
        "diffflux.log",
    ):
        assert (out / f).exists(), f
    for f in ("fluxes.nc", "observations.nc"):
        assert cf_check(out / f) == [], f
    pngs = sorted((out / "plots").glob("*.png"))
    assert len(pngs) >= 5
    rows = read_budgets_csv(out / "budgets.csv")
    glob = [r for r in rows if r["region"] == "globe" and r["component"] == "CO2"]
    assert glob and glob[0]["posterior_sigma"] < glob[0]["prior_sigma"]
    ds = xr.open_dataset(out / "fluxes.nc")
    assert "tiny" in ds.attrs["title"] and "[grid]" in ds.attrs["diffflux_config"]
    # the same config again: identical results apart from timestamps
    shutil.copy(tmp_path / "a.toml", tmp_path / "b.toml")
    from diffflux.cli import main

    assert main(["run", str(tmp_path / "b.toml"), "--out", str(tmp_path / "b"), "--quiet"]) == code
    for f in ("fluxes.nc", "observations.nc"):
        a, b = xr.open_dataset(out / f), xr.open_dataset(tmp_path / "b" / f)
        for k in ("history", "date_created"):
            a.attrs.pop(k, None)
            b.attrs.pop(k, None)
        xr.testing.assert_identical(a, b)
    for f in ("budgets.csv", "parameters.csv", "history.csv"):
        assert (out / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


@pytest.mark.slow
def test_forward_run(tmp_path):
    from diffflux.products import read_budgets_csv

    code, out = _run(tmp_path, "fwd", **{"run.mode": "forward"})
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["status"] == "FORWARD"
    rows = read_budgets_csv(out / "budgets.csv")
    assert rows and all(r["posterior"] is None for r in rows)
    assert not (out / "history.csv").exists()
