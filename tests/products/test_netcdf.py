"""fluxes.nc and observations.nc: content, CF attributes, configuration echo, reproducibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr

from diffflux.products import cf_check, check_record, write_products
from diffflux.products.cf import parse_time_units
from diffflux.products.netcdf import TIME_DEPENDENT_ATTRS, flux_variable, flux_variables
from diffflux.products.record import FluxField


def test_fluxes_nc_round_trip(twin_products, twin_record):
    out, _ = twin_products
    with xr.open_dataset(out / "fluxes.nc") as ds:
        for f in twin_record.fluxes:
            for role, arr in f.arrays().items():
                name = flux_variable(f.species, f.component, role)
                np.testing.assert_array_equal(ds[name].values, arr)
                assert ds[name].attrs["units"] == "mol m-2 s-1"
                assert "time: mean" in ds[name].attrs["cell_methods"]
                assert ds[name].attrs["species"] == f.species
                assert ds[name].attrs["component"] == f.component
        # time blocks: bounds decode to the record's edges, time is their middle
        tb = twin_record.time_bounds.astype("datetime64[ns]")
        np.testing.assert_array_equal(ds["time_bnds"].values, tb)
        np.testing.assert_array_equal(ds["time"].values, tb[:, 0] + (tb[:, 1] - tb[:, 0]) / 2)
        assert ds["lat"].size == 18 and ds["lon"].size == 30
        np.testing.assert_allclose(ds["cell_area"].sum(), 4 * np.pi * 6.371e6**2, rtol=1e-12)
        # totals: CO2 posterior total = optimised posteriors + fossil prior (not optimised)
        by = {f.component: f for f in twin_record.fluxes if f.species == "CO2"}
        expect = by["fossil"].prior + by["nee"].posterior + by["ocean"].posterior
        np.testing.assert_allclose(ds["CO2_total_posterior"].values, expect, rtol=1e-12)
        assert ds["CO2_total_prior"].attrs["standard_name"] == "surface_upward_mole_flux_of_carbon_dioxide"
        assert "standard_name" not in ds["CH4_total_prior"].attrs  # CF has no methane mole-flux name
        assert "standard_name" not in ds["CO2_nee_prior"].attrs  # a component is not the whole flux
        assert ds["CO2_nee_posterior"].attrs["ancillary_variables"] == "CO2_nee_posterior_sigma"


def test_flux_variables_index(twin_products):
    out, _ = twin_products
    with xr.open_dataset(out / "fluxes.nc") as ds:
        idx = flux_variables(ds)
    assert set(idx) == {("CO2", "fossil"), ("CO2", "nee"), ("CO2", "ocean"), ("CH4", "wetland")}
    assert set(idx[("CO2", "nee")]) == {"prior", "posterior", "truth", "prior_sigma", "posterior_sigma"}
    assert set(idx[("CO2", "fossil")]) == {"prior", "truth"}


@pytest.mark.parametrize("name", ["fluxes.nc", "observations.nc"])
def test_cf_check_clean_and_config_echoed(twin_products, twin_record, name):
    out, _ = twin_products
    assert cf_check(out / name) == []
    with xr.open_dataset(out / name) as ds:
        a = ds.attrs
        assert a["Conventions"] == "CF-1.8"
        assert a["diffflux_config"] == twin_record.config_toml
        assert a["source"].startswith("diffflux ")
        assert "diffflux run test.toml" in a["history"]
        assert a["diffflux_mode"] == "twin"


def test_observations_nc_content(twin_products, twin_record):
    out, _ = twin_products
    obs = twin_record.observations
    with xr.open_dataset(out / "observations.nc") as ds:
        np.testing.assert_array_equal(ds["time"].values, obs.table["time"].values)
        np.testing.assert_array_equal(ds["site"].values.astype(str), obs.table["site"].values.astype(str))
        np.testing.assert_array_equal(ds["y"].values, obs.y)
        np.testing.assert_allclose(ds["residual_prior"].values, obs.y - obs.prior, rtol=0, atol=0)
        np.testing.assert_allclose(ds["residual_posterior"].values, obs.y - obs.posterior, rtol=0, atol=0)
        np.testing.assert_array_equal(ds["model_truth"].values, obs.truth)
        for v in ("y", "model_prior", "model_posterior", "sigma", "residual_prior"):
            assert ds[v].attrs["units"] == "mol mol-1"
        # column arrays survive
        assert ds["averaging_kernel"].dims == ("obs", "level_ret")


def test_forward_run_has_no_posterior_variables(tmp_path, forward_record):
    write_products(forward_record, tmp_path, plots=False)
    with xr.open_dataset(tmp_path / "fluxes.nc") as ds:
        assert not [v for v in ds.data_vars if "posterior" in v or "truth" in v]
        assert cf_check(tmp_path / "fluxes.nc") == []
    with xr.open_dataset(tmp_path / "observations.nc") as ds:
        assert "model_posterior" not in ds and "residual_posterior" not in ds and "model_truth" not in ds
    assert cf_check(tmp_path / "observations.nc") == []


def test_reproducible_apart_from_history(tmp_path, twin_record):
    a = write_products(twin_record, tmp_path / "a", plots=False, command="cmd one")
    b = write_products(twin_record, tmp_path / "b", plots=False, command="cmd two")
    for name in ("fluxes.nc", "observations.nc"):
        with xr.open_dataset(a[name]) as da, xr.open_dataset(b[name]) as db:
            xr.testing.assert_identical(da.drop_attrs(deep=False), db.drop_attrs(deep=False))
            keep = {k: v for k, v in da.attrs.items() if k not in TIME_DEPENDENT_ATTRS}
            assert keep == {k: v for k, v in db.attrs.items() if k not in TIME_DEPENDENT_ATTRS}
            assert set(da.attrs) == set(db.attrs)
    for name in ("budgets.csv", "parameters.csv", "history.csv", "config.toml"):
        assert a[name].read_bytes() == b[name].read_bytes(), name


def test_cf_check_finds_problems(tmp_path):
    """The checker is not a rubber stamp: each kind of problem is reported."""
    ds = xr.Dataset(
        {
            "no_units": ("x", np.zeros(3)),
            "bad_name": ("x", np.zeros(3), {"units": "1", "standard_name": "flux_of_everything"}),
            "bad_unit": ("x", np.zeros(3), {"units": "kg", "standard_name": "cell_area"}),
            "bad_ref": ("x", np.zeros(3), {"units": "1", "ancillary_variables": "missing_sigma"}),
            "bad_cm": ("x", np.zeros(3), {"units": "1", "cell_methods": "time: mean"}),
        },
        coords={
            "x": ("x", np.arange(3.0), {"units": "m"}),
            "t": ("t", np.arange(2.0), {"units": "seconds since someday", "axis": "T"}),
        },
        attrs={"Conventions": "none"},
    )
    path = tmp_path / "bad.nc"
    ds.to_netcdf(path)
    problems = "\n".join(cf_check(path))
    for text in (
        "Conventions",
        "'no_units' has no units",
        "flux_of_everything",
        "do not fit standard_name",
        "missing_sigma",
        "names 'time'",
        "coordinate 'x' has no axis",
        "cannot be parsed",
    ):
        assert text in problems, text


def test_parse_time_units():
    assert parse_time_units("seconds since 2021-01-01 00:00:00") == (
        "seconds",
        np.datetime64("2021-01-01", "s"),
    )
    assert parse_time_units("days since 1850-1-1") == ("days", np.datetime64("1850-01-01", "s"))
    assert parse_time_units("hours since 2021-02-30") is None
    assert parse_time_units("seconds") is None


def test_check_record_names_bad_shapes(twin_record):
    bad = dataclasses.replace(twin_record, fluxes=[FluxField("nee", "CO2", np.zeros((2, 18, 30)))])
    with pytest.raises(ValueError, match=r"CO2 nee prior has shape \(2, 18, 30\), expected .*\(3, 18, 30\)"):
        check_record(bad)
    dup = dataclasses.replace(twin_record, fluxes=twin_record.fluxes + twin_record.fluxes[:1])
    with pytest.raises(ValueError, match="listed twice"):
        check_record(dup)
    obs = dataclasses.replace(twin_record.observations, y=np.zeros(3))
    with pytest.raises(ValueError, match=r"ObservationRecord.y has shape \(3,\)"):
        check_record(dataclasses.replace(twin_record, observations=obs))
