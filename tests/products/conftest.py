"""Synthetic run records on a coarse grid (10 x 12 degrees) for the product tests.

Fields are fake but shaped like the real thing: fossil CO2 on northern mid-latitude land, a seasonal NEE
with a twin perturbation over Europe, an ocean sink, tropical wetland CH4; observations from the flask,
continuous and satellite designs of :mod:`diffflux.observations`; budgets from
:func:`diffflux.regions.budget`.
"""

from __future__ import annotations

import numpy as np
import pytest

from diffflux.geography import land_fraction
from diffflux.grid import LatLonGrid
from diffflux.observations import concat_tables, continuous_design, flask_design, satellite_design
from diffflux.products import FluxField, ObservationRecord, ParameterRecord, RunRecord
from diffflux.regions import budget

CONFIG = """# resolved configuration (test)
[run]
mode = "twin"
start = "2021-01-01"
end = "2021-04-01"

[grid]
resolution = [10.0, 12.0]
"""

REGIONS = ("globe", "land", "ocean", "NH", "SH", "ar6:WCE")


def _fields(grid, ntime):
    land = np.asarray(land_fraction(grid))
    lat = grid.lat[:, None] * np.ones((1, grid.nlon))
    lon = grid.lon[None, :] * np.ones((grid.nlat, 1))
    month = np.arange(ntime)[:, None, None]
    fossil = 4e-7 * land * np.exp(-(((lat - 40.0) / 15.0) ** 2))[None] * np.ones((ntime, 1, 1))
    season = np.cos(2 * np.pi * (month + 0.5) / 12.0)
    nee_prior = land * (0.6e-6 * season * np.tanh(lat / 30.0) - 0.05e-6)
    europe = np.exp(-(((lat - 50.0) / 12.0) ** 2 + ((lon - 10.0) / 20.0) ** 2))
    nee_truth = nee_prior - 0.4e-6 * land * europe
    ocean_prior = -0.15e-7 * (1 - land) * (1 + np.abs(lat) / 45.0) * np.ones((ntime, 1, 1))
    wetland = 2e-8 * land * np.exp(-((lat / 15.0) ** 2)) * np.ones((ntime, 1, 1))
    return land, fossil, nee_prior, nee_truth, ocean_prior, wetland


def _observations(mode: str, rng) -> ObservationRecord:
    start, end = "2021-01-01", "2021-03-31T23:59:59"
    sites = ["MLO", "BRW", "SPO", "CGO", "MHD", "ALT", "SMO", "ZEP"]
    tables = [
        flask_design(sites, start, end, every_days=7),
        continuous_design(["LEF"], start, end, every_hours=12, afternoon_only=False),
        flask_design(["MLO", "MHD", "CGO"], start, end, every_days=14, species="CH4", uncertainty=2e-9),
        satellite_design("2021-01-01", "2021-01-08", step_seconds=120.0),
    ]
    table = concat_tables(tables)
    n = table.sizes["obs"]
    lat = table["latitude"].values
    days = (table["time"].values - np.datetime64("2021-01-01")) / np.timedelta64(1, "D")
    is_ch4 = table["species"].values.astype(str) == "CH4"
    base = np.where(is_ch4, 1.90e-6 + 0.1e-6 * lat / 90.0, 414e-6 + 3e-6 * np.sin(np.deg2rad(lat)))
    truth = base + np.where(is_ch4, 5e-9, 1.5e-6) * np.sin(2 * np.pi * days / 45.0 + lat / 30.0)
    noise = table["uncertainty"].values
    y = truth + noise * rng.standard_normal(n)
    prior = truth + np.where(is_ch4, 12e-9, 1.2e-6) * (0.6 + np.cos(np.deg2rad(lat)))
    posterior = truth + 0.25 * (prior - truth) + 0.3 * noise * rng.standard_normal(n)
    sigma = np.sqrt(noise**2 + np.where(is_ch4, 5e-9, 0.5e-6) ** 2)
    if mode == "forward":
        return ObservationRecord(table=table, y=y, prior=prior, posterior=None, truth=None, sigma=sigma)
    return ObservationRecord(
        table=table,
        y=y,
        prior=prior,
        posterior=posterior,
        truth=truth if mode == "twin" else None,
        sigma=sigma,
    )


def _budget_rows(grid, time_bounds, fluxes: list[FluxField]) -> list[dict]:
    durations = (time_bounds[:, 1] - time_bounds[:, 0]) / np.timedelta64(1, "s")
    periods = {"all": list(range(len(durations)))} | {f"m{k}": [k] for k in range(len(durations))}
    spans = {"all": (time_bounds[0, 0], time_bounds[-1, 1])} | {
        f"m{k}": (time_bounds[k, 0], time_bounds[k, 1]) for k in range(len(durations))
    }
    rows = []
    for f in fluxes:
        out = {}
        for role in ("prior", "posterior", "truth"):
            arr = getattr(f, role)
            if arr is None:
                continue
            cov = getattr(f, f"{role}_sigma", None)
            b = budget(
                arr,
                grid,
                f.species,
                REGIONS,
                durations=durations,
                periods=periods,
                covariance=None if cov is None else cov**2,
            )
            out[role] = b
        b0 = out["prior"]
        for i, region in enumerate(b0.regions):
            for j, p in enumerate(b0.periods):
                row = {
                    "region": region,
                    "period_start": str(spans[p][0]),
                    "period_end": str(spans[p][1]),
                    "component": f.component,
                    "species": f.species,
                    "unit": b0.unit,
                }
                for role in ("prior", "posterior", "truth"):
                    b = out.get(role)
                    row[role] = None if b is None else float(b.total[i, j])
                    if role != "truth":
                        row[f"{role}_sigma"] = None if b is None or b.sigma is None else float(b.sigma[i, j])
                rows.append(row)
    return rows


def make_record(mode: str = "twin", seed: int = 0) -> RunRecord:
    """A synthetic :class:`RunRecord`: ``mode`` ``"forward"`` (priors only), ``"invert"`` or ``"twin"``."""
    rng = np.random.default_rng(seed)
    grid = LatLonGrid.from_resolution(10, 12)
    time_bounds = np.array(
        [["2021-01-01", "2021-02-01"], ["2021-02-01", "2021-03-01"], ["2021-03-01", "2021-04-01"]],
        dtype="datetime64[s]",
    )
    ntime = time_bounds.shape[0]
    land, fossil, nee_prior, nee_truth, ocean_prior, wetland = _fields(grid, ntime)
    inv = mode != "forward"
    twin = mode == "twin"
    shape = (ntime, grid.nlat, grid.nlon)
    nee_sig = np.broadcast_to(0.3e-6 * land + 1e-9, shape)
    ocean_sig = np.broadcast_to(0.5e-8 * (1 - land) + 1e-11, shape)
    ch4_sig = np.broadcast_to(0.5e-8 * land + 1e-12, shape)
    nee_post = (
        nee_prior + 0.7 * (nee_truth - nee_prior) + 0.02e-6 * land * rng.standard_normal(nee_prior.shape)
    )
    fluxes = [
        FluxField("fossil", "CO2", fossil, None, fossil if twin else None, None, None),
        FluxField(
            "nee",
            "CO2",
            nee_prior,
            nee_post if inv else None,
            nee_truth if twin else None,
            0.6 * nee_sig if inv else None,
            nee_sig,
        ),
        FluxField(
            "ocean",
            "CO2",
            ocean_prior,
            1.1 * ocean_prior if inv else None,
            1.2 * ocean_prior if twin else None,
            0.8 * ocean_sig if inv else None,
            ocean_sig,
        ),
        FluxField(
            "wetland",
            "CH4",
            wetland,
            0.9 * wetland if inv else None,
            0.85 * wetland if twin else None,
            0.6 * ch4_sig if inv else None,
            ch4_sig,
        ),
    ]
    names = [f"{p}[pft={k}]" for p in ("vcmax", "q10") for k in (1, 2, 3, 4)]
    prior = np.zeros(len(names))
    truth = rng.normal(0.0, 0.2, len(names))
    params = ParameterRecord(
        names=names,
        prior=prior,
        posterior=0.8 * truth if inv else None,
        truth=truth if twin else None,
        prior_sigma=np.full(len(names), 0.3),
        posterior_sigma=np.full(len(names), 0.12) if inv else None,
    )
    it = np.arange(16)
    history = (
        {"iteration": it, "cost": 4200.0 * np.exp(-it / 3.0) + 610.0, "grad_norm": 80.0 * np.exp(-it / 2.2)}
        if inv
        else None
    )
    obs = _observations(mode, rng)
    summary = {"status": "converged" if inv else "forward run", "n_obs": int(obs.table.sizes["obs"])}
    if inv:
        summary |= {
            "iterations": 15,
            "wall_time_s": 12.5,
            "cost_prior": 4810.0,
            "cost_posterior": 610.3,
            "reduced_chi_square": 1.04,
            "dofs": 37.2,
            "error_reduction": {"CO2 nee globe": 0.41, "CO2 ocean globe": 0.2},
        }
    return RunRecord(
        grid=grid,
        time_bounds=time_bounds,
        fluxes=fluxes,
        observations=obs,
        parameters=params if inv else None,
        history=history,
        budgets=_budget_rows(grid, time_bounds, fluxes),
        summary=summary,
        config_toml=CONFIG,
        title=f"synthetic {mode} test",
        mode=mode,
    )


@pytest.fixture(scope="session")
def twin_record() -> RunRecord:
    return make_record("twin")


@pytest.fixture(scope="session")
def forward_record() -> RunRecord:
    return make_record("forward")


@pytest.fixture(scope="session")
def twin_products(tmp_path_factory, twin_record):
    """A folder written once by write_products for the twin record (shared by read-only tests)."""
    from diffflux.products import write_products

    out = tmp_path_factory.mktemp("twin")
    paths = write_products(twin_record, out, command="diffflux run test.toml")
    return out, paths
