"""Readers: ObsPack-style netCDF, CSV and satellite lite files; units; bad input; round trips."""

import numpy as np
import pytest
import xarray as xr

from diffflux.observations import (
    check_table,
    concat_tables,
    continuous_design,
    flask_design,
    make_table,
    read_csv,
    read_obspack,
    read_obspack_dir,
    read_osse,
    read_satellite,
    satellite_design,
    select,
    sort_table,
    write_csv,
    write_obspack,
    write_osse,
    write_satellite,
)
from diffflux.observations.units import mole_fraction_scale


def _obspack(path, *, n=5, units="mol mol-1", scale=1.0, drop=(), **overrides):
    secs = 1609459200 + 3600 * np.arange(n)  # 2021-01-01 00 UTC, hourly
    data = {
        "time": ("obs", secs, {"units": "seconds since 1970-01-01T00:00:00Z"}),
        "latitude": ("obs", np.full(n, 19.5362)),
        "longitude": ("obs", np.full(n, -155.5763)),
        "altitude": ("obs", np.full(n, 3437.0), {"units": "m"}),
        "value": ("obs", np.linspace(410e-6, 411e-6, n) / scale, {"units": units}),
        "value_std_dev": ("obs", np.full(n, 0.1e-6) / scale, {"units": units}),
        "obs_flag": ("obs", np.ones(n, np.int8)),
    }
    for k, v in overrides.items():
        data[k] = ("obs", v, data[k][2] if len(data[k]) > 2 else {})
    for k in drop:
        data.pop(k)
    xr.Dataset(
        data, attrs={"site_code": "MLO", "dataset_parameter": "co2", "dataset_project": "surface-insitu"}
    ).to_netcdf(path)
    return path


@pytest.mark.parametrize(
    "units,scale",
    [
        ("mol mol-1", 1.0),
        ("ppm", 1e-6),
        ("micromol mol-1", 1e-6),
        ("1e-6", 1e-6),
        ("umol/mol", 1e-6),
        ("ppb", 1e-9),
        ("nmol mol-1", 1e-9),
        ("ppt", 1e-12),
    ],
)
def test_obspack_units_converted_to_mol_per_mol(tmp_path, units, scale):
    ds, rep = read_obspack(_obspack(tmp_path / "co2_mlo.nc", units=units, scale=scale))
    np.testing.assert_allclose(ds["value"].values, np.linspace(410e-6, 411e-6, 5), rtol=1e-14)
    np.testing.assert_allclose(ds["uncertainty"].values, 0.1e-6, rtol=1e-14)
    assert rep.n_kept == 5 and rep.n_dropped == 0
    assert ds["time"].values[1] == np.datetime64("2021-01-01T01:00:00")
    assert set(ds["site"].values) == {"MLO"} and set(ds["sampling"].values) == {"insitu"}
    assert set(ds["species"].values) == {"CO2"}


def test_unit_parser_refuses_unknown_units():
    assert mole_fraction_scale("1.0e-06") == 1e-6
    with pytest.raises(ValueError, match="unknown units 'furlongs'"):
        mole_fraction_scale("furlongs", where="f.nc", variable="value")
    with pytest.raises(ValueError, match="no units"):
        mole_fraction_scale(None, where="f.nc")


def test_obspack_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"bad_units\.nc: variable 'value' has unknown units 'kg'"):
        read_obspack(_obspack(tmp_path / "bad_units.nc", units="kg"))
    with pytest.raises(ValueError, match=r"missing variable 'value_std_dev'"):
        read_obspack(_obspack(tmp_path / "nostd.nc", drop=("value_std_dev",)))
    ds, _ = read_obspack(_obspack(tmp_path / "nostd2.nc", drop=("value_std_dev",)), uncertainty=0.5e-6)
    assert np.all(ds["uncertainty"].values == 0.5e-6)
    with pytest.raises(ValueError, match=r"missing variable 'latitude'"):
        read_obspack(_obspack(tmp_path / "nolat.nc", drop=("latitude",)))
    with pytest.raises(ValueError, match="above 1 mol mol-1"):
        read_obspack(_obspack(tmp_path / "ppm_as_molmol.nc", scale=1e-6))  # ppm numbers labelled mol mol-1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_obspack(tmp_path / "missing.nc")

    val = np.linspace(410e-6, 411e-6, 5)
    val[[1, 3]] = np.nan
    path = _obspack(tmp_path / "nan.nc", value=val)
    with pytest.raises(ValueError, match=r"nan\.nc: 2 record\(s\) with NaN value"):
        read_obspack(path)
    ds, rep = read_obspack(path, on_bad="drop")
    assert ds.sizes["obs"] == 3 and rep.dropped == {"NaN value": 2}
    assert "dropped 2" in str(rep)

    with pytest.raises(ValueError, match=r"uncertainty NaN or <= 0"):
        read_obspack(_obspack(tmp_path / "zero_unc.nc", value_std_dev=np.array([1e-7, 0, 1e-7, -1e-7, 1e-7])))
    with pytest.raises(ValueError, match="outside the model grid"):
        read_obspack(_obspack(tmp_path / "lat.nc", latitude=np.array([19.5, 95.0, 19.5, 19.5, 19.5])))
    path = _obspack(tmp_path / "window.nc")
    window = (np.datetime64("2021-01-01T01:00"), np.datetime64("2021-01-01T03:00"))
    with pytest.raises(ValueError, match="outside the run window"):
        read_obspack(path, window=window)
    ds, rep = read_obspack(path, window=window, on_bad="drop")
    assert ds.sizes["obs"] == 3 and sum(rep.dropped.values()) == 2


def test_drop_counts_each_reason(tmp_path):
    val = np.linspace(410e-6, 411e-6, 5)
    val[0] = np.nan
    path = _obspack(
        tmp_path / "mixed.nc",
        value=val,
        value_std_dev=np.array([1e-7, -1, 1e-7, 1e-7, 1e-7]),
        latitude=np.array([0.0, 0.0, -91.0, 0.0, 0.0]),
    )
    ds, rep = read_obspack(path, on_bad="drop")
    assert rep.dropped == {"NaN value": 1, "uncertainty NaN or <= 0": 1, "outside the model grid": 1}
    assert rep.n_in == 5 and rep.n_kept == 2 == ds.sizes["obs"]


def test_csv_documented_format(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text(
        "# diffflux observation CSV v1\n"
        "time,site,latitude,longitude,altitude,species,value,uncertainty,unit,pressure,qc,sampling\n"
        "2021-03-01T14:00:00,MLO,19.5362,-155.5763,3437.0,CO2,417.12,0.15,ppm,,0,continuous\n"
        "2021-03-01T15:00:00Z,HAT,24.054,123.81,46,methane,1890.5,2.0,ppb,,1,continuous\n"
        "2021-03-02T00:00:00,AC1,35.0,140.0,,CO2,0.000415,3e-7,mol mol-1,50000,0,aircraft\n"
    )
    ds, rep = read_csv(path)
    np.testing.assert_allclose(ds["value"].values, [417.12e-6, 1890.5e-9, 415e-6], rtol=1e-14)
    np.testing.assert_allclose(ds["uncertainty"].values, [0.15e-6, 2e-9, 3e-7], rtol=1e-14)
    assert list(ds["species"].values) == ["CO2", "CH4", "CO2"]
    assert np.isnan(ds["altitude"].values[2]) and ds["pressure"].values[2] == 50000.0
    assert list(ds["qc"].values) == [0, 1, 0]
    good, srep = select(ds)
    assert good.sizes["obs"] == 2 and srep.dropped == {"quality flag != 0": 1}
    co2, _ = select(ds, species="CO2", sites=["MLO"])
    assert co2.sizes["obs"] == 1


def test_csv_bad_input(tmp_path):
    head = "time,latitude,longitude,altitude,species,value,uncertainty,unit\n"
    p = tmp_path / "a.csv"
    p.write_text("time,latitude,longitude,species,value,unit\n2021-01-01,0,0,CO2,400,ppm\n")
    with pytest.raises(
        ValueError, match=r"missing column\(s\) \['uncertainty', 'altitude \(or pressure\)'\]"
    ):
        read_csv(p)
    p.write_text(head + "2021-01-01,0,0,10,CO2,400,0.1,parts\n")
    with pytest.raises(ValueError, match="unknown units 'parts'"):
        read_csv(p)
    p.write_text(head + "2021-01-01,0,0,10,CO2,four hundred,0.1,ppm\n")
    with pytest.raises(ValueError, match="column 'value', data line 1"):
        read_csv(p)
    p.write_text(head + "2021-01-01,0,0,10,CO2,nan,0.1,ppm\n2021-01-01,0,0,10,CO2,400,0.1,ppm\n")
    with pytest.raises(ValueError, match="NaN value"):
        read_csv(p)
    assert read_csv(p, on_bad="drop")[1].dropped == {"NaN value": 1}
    p.write_text(head + "2021-01-01,0,0,10,XYZ,400,0.1,ppm\n")
    with pytest.raises(ValueError, match="unknown species 'XYZ'"):
        read_csv(p)


def test_satellite_reader_units_and_missing_variables(tmp_path):
    sat = satellite_design("2021-06-01", "2021-06-01T06:00", step_seconds=60.0, nret=8)
    sat["value"][:] = 410e-6
    path = write_satellite(sat, tmp_path / "sat.nc")
    ds, rep = read_satellite(path)
    xr.testing.assert_equal(ds.drop_attrs(), sat.drop_attrs())
    # lite-file units: ppm and hPa
    raw = xr.open_dataset(path).load()
    for k in ("xco2", "xco2_uncertainty", "co2_profile_apriori", "xco2_apriori"):
        raw[k] = raw[k] * 1e6
        raw[k].attrs["units"] = "ppm"
    raw["pressure_levels"] = raw["pressure_levels"] / 100.0
    raw["pressure_levels"].attrs["units"] = "hPa"
    raw.to_netcdf(tmp_path / "sat_ppm.nc")
    ds2, _ = read_satellite(tmp_path / "sat_ppm.nc")
    np.testing.assert_allclose(ds2["value"].values, 410e-6, rtol=1e-13)
    np.testing.assert_allclose(ds2["ret_pressure"].values, sat["ret_pressure"].values, rtol=1e-13)
    raw.drop_vars("xco2_averaging_kernel").to_netcdf(tmp_path / "sat_noak.nc")
    with pytest.raises(ValueError, match=r"sat_noak\.nc: missing variable 'xco2_averaging_kernel'"):
        read_satellite(tmp_path / "sat_noak.nc")
    raw.drop_vars("xco2").to_netcdf(tmp_path / "sat_nox.nc")
    with pytest.raises(ValueError, match="expected exactly one of the variables"):
        read_satellite(tmp_path / "sat_nox.nc")


def _designs():
    rng = np.random.default_rng(1)
    a = flask_design(["MLO", "SPO", "HAT", "ZEP"], "2021-01-01", "2021-01-31")
    b = continuous_design(
        ["RYO", "MNM"], "2021-01-03", "2021-01-04", species="CH4", afternoon_only=True, uncertainty=5e-9
    )
    c = satellite_design("2021-01-10", "2021-01-10T12:00", step_seconds=30.0, footprints=3, nret=6)
    pts = concat_tables([a, b])
    pts["value"][:] = rng.uniform(400e-6, 420e-6, pts.sizes["obs"])
    pts["qc"][:3] = 2
    c["value"][:] = rng.uniform(400e-6, 420e-6, c.sizes["obs"])
    return pts, c


def test_round_trip_writers_readers_identical(tmp_path):
    pts, cols = _designs()
    table = sort_table(concat_tables([pts, cols]))
    write_osse(table, tmp_path / "osse")
    for points in ("obspack", "csv"):
        back, rep = read_osse(tmp_path / "osse", points=points)
        assert rep.n_dropped == 0
        xr.testing.assert_equal(back.drop_attrs(), table.drop_attrs())
    # the individual formats too
    write_csv(pts, tmp_path / "p.csv")
    xr.testing.assert_equal(read_csv(tmp_path / "p.csv")[0].drop_attrs(), pts.drop_attrs())
    files = write_obspack(pts, tmp_path / "op")
    assert len(files) == 6
    back, _ = read_obspack_dir(tmp_path / "op")
    xr.testing.assert_equal(sort_table(back).drop_attrs(), sort_table(pts).drop_attrs())


def test_check_table_catches_invalid_columns():
    _, cols = _designs()
    cols = cols.isel(obs=slice(0, 4)).copy(deep=True)
    cols["pressure_weight"][1, :] = 0.5
    with pytest.raises(ValueError, match="pressure weights not summing to 1"):
        check_table(cols)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_table(["2021-01-01"], [0], [0], [4e-4], 1e-6, "CO2", kind="profile")
