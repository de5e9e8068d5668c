"""Readers and writers of observation files (the edge of the chain: xarray/netCDF/CSV live here).

Three formats; every reader returns ``(table, report)`` with values in mol mol-1 (see
:mod:`diffflux.observations.table`) and a :class:`~diffflux.observations.table.FilterReport`. Invalid
records (NaN values, uncertainties <= 0, positions outside the grid, times outside ``window``) raise a
``ValueError`` naming the file, the variable and the first bad record, unless ``on_bad="drop"``: then they
are dropped and counted per reason in the report.

**ObsPack-style netCDF** (one file per site and species; NOAA GML ObsPack conventions), dimension ``obs``:

* ``time``: seconds (or minutes/hours/days) since a date, e.g. ``"seconds since 1970-01-01T00:00:00Z"``;
* ``latitude`` [degrees_north], ``longitude`` [degrees_east], ``altitude`` [m] (sampling altitude above
  sea level = ground elevation + intake height); optionally ``pressure`` [Pa or hPa] for records located
  by pressure (``altitude`` NaN);
* ``value`` and ``value_std_dev`` with a mole-fraction ``units`` attribute (``"mol mol-1"``, ``"ppm"``,
  ``"ppb"``, ``"micromol mol-1"``, ``"1e-6"`` ...; converted to mol mol-1);
* optional ``obs_flag`` (1 = representative/use, ObsPack convention; other values become ``qc = 1``)
  or ``qc_flag`` (diffflux: the integer ``qc`` itself, 0 = good);
* global attributes ``site_code``, ``dataset_parameter`` (species, e.g. ``"co2"``) and optionally
  ``dataset_project`` (``"surface-flask"``, ``"surface-insitu"``, ``"aircraft-pfp"``, ``"tower-insitu"``;
  its second part becomes ``sampling``).

**Simple CSV** (:data:`CSV_COLUMNS`): comment lines start with ``#``; one header line; one record per
line::

    # diffflux observation CSV v1
    time,site,latitude,longitude,altitude,species,value,uncertainty,unit,pressure,qc,sampling
    2021-03-01T14:00:00,MLO,19.5362,-155.5763,3437.0,CO2,417.12,0.15,ppm,,0,continuous

``time`` is ISO 8601 UTC (a trailing ``Z`` is accepted); ``altitude`` in m a.s.l.; ``pressure`` in Pa
(used when ``altitude`` is empty); ``unit`` applies to ``value`` and ``uncertainty`` of that line;
``qc`` (0 = good) and ``sampling`` are optional, ``site`` too. Columns may appear in any order.

**Satellite lite-file style netCDF** (OCO-2/GOSAT lite files), dimensions ``sounding`` (or
``sounding_id``) and ``levels``: ``time`` (seconds since a date), ``latitude``, ``longitude``, ``xco2`` (or
``xch4``) with its units, ``xco2_uncertainty``, optional ``xco2_quality_flag`` (0 = good),
``xco2_averaging_kernel`` (sounding, levels), ``pressure_levels`` (sounding, levels) [hPa or Pa],
``pressure_weight`` (sounding, levels), ``co2_profile_apriori`` (sounding, levels) and ``xco2_apriori``
(sounding), both with mole-fraction units (``ch4_...``/``xch4_...`` for methane). Global attribute
``platform`` (or ``sensor``) becomes the ``site`` of the records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from diffflux.observations.table import (
    OBS_DIM,
    FilterReport,
    check_table,
    concat_tables,
    make_table,
)
from diffflux.observations.units import length_scale, mole_fraction_scale, pressure_scale
from diffflux.species import get_species

CSV_COLUMNS = (
    "time",
    "site",
    "latitude",
    "longitude",
    "altitude",
    "species",
    "value",
    "uncertainty",
    "unit",
    "pressure",
    "qc",
    "sampling",
)
"""Columns of the simple CSV format, in the order the writer uses."""
CSV_REQUIRED = ("time", "latitude", "longitude", "species", "value", "uncertainty", "unit")

_EPOCH = np.datetime64("1970-01-01T00:00:00", "ns")
_TIME_UNITS = {
    "seconds": 1_000_000_000,
    "second": 1_000_000_000,
    "s": 1_000_000_000,
    "minutes": 60_000_000_000,
    "hours": 3_600_000_000_000,
    "days": 86_400_000_000_000,
}


def decode_time(values, units: str | None, *, where: str, variable: str = "time") -> np.ndarray:
    """``datetime64[ns]`` from numbers and a CF units string ``"<unit> since <date>"``."""
    m = re.fullmatch(r"\s*(\w+)\s+since\s+(.+?)\s*", str(units or ""))
    if not m or m.group(1).lower() not in _TIME_UNITS:
        raise ValueError(
            f"{where}: variable '{variable}' has units {units!r}; expected '<seconds|minutes|hours|"
            f"days> since <date>', e.g. 'seconds since 1970-01-01T00:00:00Z'"
        )
    ref_s = m.group(2).strip().replace(" UTC", "").rstrip("Z").strip().replace(" ", "T")
    offset = np.timedelta64(0, "m")
    tz = re.search(r"([+-])(\d\d):?(\d\d)$", ref_s) if "T" in ref_s else None
    if tz:  # "+09:00": local time ahead of UTC
        sign = 1 if tz.group(1) == "+" else -1
        offset = np.timedelta64(sign * (60 * int(tz.group(2)) + int(tz.group(3))), "m")
        ref_s = ref_s[: tz.start()]
    try:
        ref = np.datetime64(ref_s, "ns") - offset
    except ValueError:
        raise ValueError(
            f"{where}: variable '{variable}': cannot parse the reference date {m.group(2)!r}"
        ) from None
    scale = _TIME_UNITS[m.group(1).lower()]
    v = np.asarray(values)
    if v.dtype.kind in "iu":
        return ref + (v.astype(np.int64) * scale).astype("timedelta64[ns]")
    v = v.astype(np.float64)
    out = np.full(v.shape, np.datetime64("NaT"), "datetime64[ns]")
    ok = np.isfinite(v)
    out[ok] = ref + np.round(v[ok] * scale).astype(np.int64).astype("timedelta64[ns]")
    return out


def encode_time(time) -> tuple[np.ndarray, str]:
    """Seconds since 1970-01-01 (int64 when all times are whole seconds, else float64) and the units."""
    ns = (np.asarray(time).astype("datetime64[ns]") - _EPOCH).astype(np.int64)
    if np.all(ns % 1_000_000_000 == 0):
        return ns // 1_000_000_000, "seconds since 1970-01-01T00:00:00Z"
    return ns * 1e-9, "seconds since 1970-01-01T00:00:00Z"


def _var(ds: xr.Dataset, name: str | Sequence[str], where: str, what: str):
    names = [name] if isinstance(name, str) else list(name)
    for n in names:
        if n in ds.variables:
            return ds[n]
    raise ValueError(
        f"{where}: missing variable {' or '.join(repr(n) for n in names)} ({what}); "
        f"the file has {sorted(map(str, ds.variables))}"
    )


def _open(path) -> xr.Dataset:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"observation file {path} does not exist")
    with xr.open_dataset(path, decode_times=False, mask_and_scale=True) as ds:
        return ds.load()


# ------------------------------------------------------------------------------------------------
# ObsPack
# ------------------------------------------------------------------------------------------------


def read_obspack(
    path,
    *,
    species: str | None = None,
    sampling: str | None = None,
    uncertainty: float | None = None,
    window: tuple | None = None,
    on_bad: str = "raise",
) -> tuple[xr.Dataset, FilterReport]:
    """Read one ObsPack-style netCDF file (see module docstring).

    Args:
        path: file name.
        species: species name (default: the ``dataset_parameter`` attribute).
        sampling: sampling label (default: from ``dataset_project``, e.g. ``"flask"``).
        uncertainty: uncertainty [mol mol-1] for files without ``value_std_dev`` (otherwise missing
            ``value_std_dev`` is an error).
        window: ``(start, end)`` datetimes; records outside are invalid (error or dropped).
        on_bad: ``"raise"`` or ``"drop"``.
    """
    where = str(path)
    ds = _open(path)
    sp = species or ds.attrs.get("dataset_parameter")
    if sp is None:
        raise ValueError(f"{where}: no species given and no 'dataset_parameter' global attribute")
    try:
        sp = get_species(str(sp)).name
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    t = _var(ds, "time", where, "sampling time")
    time = decode_time(t.values, t.attrs.get("units"), where=where)
    lat = _var(ds, "latitude", where, "degrees_north").values.astype(np.float64)
    lon = _var(ds, "longitude", where, "degrees_east").values.astype(np.float64)
    val = _var(ds, "value", where, "mole fraction")
    scale = mole_fraction_scale(val.attrs.get("units"), where=where, variable="value")
    value = val.values.astype(np.float64) * scale
    if "value_std_dev" in ds.variables:
        sd = ds["value_std_dev"]
        unc = sd.values.astype(np.float64) * mole_fraction_scale(
            sd.attrs.get("units", val.attrs.get("units")), where=where, variable="value_std_dev"
        )
    elif uncertainty is not None:
        unc = np.full(value.shape, float(uncertainty))
    else:
        raise ValueError(
            f"{where}: missing variable 'value_std_dev' (1-sigma uncertainty); pass uncertainty= "
            f"[mol mol-1] to assign one; the file has {sorted(map(str, ds.variables))}"
        )
    if "altitude" in ds.variables:
        alt = ds["altitude"].values.astype(np.float64) * length_scale(
            ds["altitude"].attrs.get("units", "m"), where=where
        )
    elif "pressure" in ds.variables:
        alt = np.full(value.shape, np.nan)
    else:
        _var(ds, ("altitude", "pressure"), where, "sampling altitude [m a.s.l.] or pressure")
    prs = np.full(value.shape, np.nan)
    if "pressure" in ds.variables:
        prs = ds["pressure"].values.astype(np.float64) * pressure_scale(
            ds["pressure"].attrs.get("units"), where=where
        )
    if np.any(np.abs(value[np.isfinite(value)]) > 1.0):
        raise ValueError(
            f"{where}: variable 'value' has values above 1 mol mol-1 after applying units "
            f"{val.attrs.get('units')!r}; are the units right (e.g. 'ppm' written as 'mol mol-1')?"
        )
    if "qc_flag" in ds.variables:
        qc = ds["qc_flag"].values.astype(np.int32)
    elif "obs_flag" in ds.variables:
        qc = np.where(ds["obs_flag"].values == 1, 0, 1).astype(np.int32)
    else:
        qc = np.zeros(value.shape, np.int32)
    project = str(ds.attrs.get("dataset_project", ""))
    samp = sampling if sampling is not None else (project.split("-", 1)[1] if "-" in project else project)
    site = str(ds.attrs.get("site_code", Path(path).stem))
    table = make_table(
        time,
        lat,
        lon,
        value,
        unc,
        sp,
        altitude=alt,
        pressure=prs,
        site=site,
        kind="point",
        sampling=samp,
        qc=qc,
        attrs={"source_files": where},
    )
    return check_table(table, window=window, on_bad=on_bad, where=where)


def read_obspack_dir(directory, pattern: str = "*.nc", **kwargs) -> tuple[xr.Dataset, FilterReport]:
    """Read every ObsPack-style file matching ``pattern`` in ``directory`` (sorted by name) into one table."""
    files = sorted(Path(directory).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no files matching {pattern!r} in {directory}")
    tables, report = [], None
    for f in files:
        t, r = read_obspack(f, **kwargs)
        tables.append(t)
        report = r if report is None else report.merge(r)
    report.where = str(directory)
    out = concat_tables(tables)
    out.attrs["source_files"] = ", ".join(f.name for f in files)
    return out, report


def write_obspack(ds: xr.Dataset, directory) -> list[Path]:
    """Write point records as ObsPack-style files, one per (species, site, sampling): ``{species}_{site}_
    {sampling}.nc`` in ``directory``. Values in mol mol-1; times in seconds since 1970 (int64 when whole)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    kind = ds["kind"].values.astype(str)
    if np.any(kind != "point"):
        raise ValueError("write_obspack: the table has column records; write them with write_satellite")
    keys = np.array(
        [
            "\t".join(r)
            for r in zip(
                ds["species"].values.astype(str),
                ds["site"].values.astype(str),
                ds["sampling"].values.astype(str),
            )
        ]
    )
    paths = []
    for key in dict.fromkeys(keys):
        sp, site, samp = key.split("\t")
        sub = ds.isel({OBS_DIM: np.flatnonzero(keys == key)})
        secs, units = encode_time(sub["time"].values)
        out = xr.Dataset(
            {
                "time": (OBS_DIM, secs, {"units": units, "long_name": "sampling time (UTC)"}),
                "latitude": (OBS_DIM, sub["latitude"].values, {"units": "degrees_north"}),
                "longitude": (OBS_DIM, sub["longitude"].values, {"units": "degrees_east"}),
                "altitude": (
                    OBS_DIM,
                    sub["altitude"].values,
                    {"units": "m", "long_name": "sampling altitude above sea level"},
                ),
                "value": (OBS_DIM, sub["value"].values, {"units": "mol mol-1"}),
                "value_std_dev": (OBS_DIM, sub["uncertainty"].values, {"units": "mol mol-1"}),
                "obs_flag": (OBS_DIM, (sub["qc"].values == 0).astype(np.int8)),
                "qc_flag": (
                    OBS_DIM,
                    sub["qc"].values.astype(np.int32),
                    {"long_name": "quality flag, 0 = good"},
                ),
            },
            attrs={
                "site_code": site,
                "dataset_parameter": sp.lower(),
                "dataset_project": f"diffflux-{samp}",
                "Conventions": "CF-1.8",
                "source": "diffflux",
            },
        )
        if np.any(np.isfinite(sub["pressure"].values)):
            out["pressure"] = (OBS_DIM, sub["pressure"].values, {"units": "Pa"})
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sp}_{site}_{samp or 'obs'}")
        path = directory / f"{safe}.nc"
        out.to_netcdf(path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------
# CSV
# ------------------------------------------------------------------------------------------------


def read_csv(path, *, window: tuple | None = None, on_bad: str = "raise") -> tuple[xr.Dataset, FilterReport]:
    """Read the simple CSV format (see module docstring and :data:`CSV_COLUMNS`)."""
    import pandas as pd

    where = str(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"observation file {path} does not exist")
    df = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False, skipinitialspace=True)
    df.columns = [c.strip().lower() for c in df.columns]
    missing = [c for c in CSV_REQUIRED if c not in df.columns]
    if "altitude" not in df.columns and "pressure" not in df.columns:
        missing.append("altitude (or pressure)")
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {missing}; the header has {list(df.columns)}; "
            f"expected {list(CSV_COLUMNS)}"
        )

    def num(col):
        if col not in df.columns:
            return np.full(len(df), np.nan)
        s = df[col].str.strip()
        out = pd.to_numeric(s.where(s != "", "nan"), errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(out) & ~s.str.lower().isin(["", "nan"]).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{where}: column '{col}', data line {i + 1}: cannot parse {df[col].iloc[i]!r} as a number"
            )
        return out

    units = df["unit"].str.strip().to_numpy()
    scale = np.ones(len(df))
    for u in np.unique(units):
        scale[units == u] = mole_fraction_scale(u, where=where, variable="unit")
    value = num("value") * scale
    unc = num("uncertainty") * scale
    raw_t = df["time"].str.strip().str.rstrip("Z").to_numpy()
    try:
        time = np.array(
            [np.datetime64(t, "ns") if t else np.datetime64("NaT") for t in raw_t], "datetime64[ns]"
        )
    except ValueError as exc:
        raise ValueError(
            f"{where}: column 'time': {exc}; expected ISO 8601 UTC, e.g. 2021-03-01T14:00:00"
        ) from None
    try:
        species = [get_species(s.strip()).name for s in df["species"]]
    except ValueError as exc:
        raise ValueError(f"{where}: column 'species': {exc}") from None
    qc = num("qc") if "qc" in df.columns else np.zeros(len(df))
    if np.any(~np.isfinite(qc)):
        raise ValueError(f"{where}: column 'qc' has empty or non-numeric entries")
    table = make_table(
        time,
        num("latitude"),
        num("longitude"),
        value,
        unc,
        np.array(species, dtype=str),
        altitude=num("altitude"),
        pressure=num("pressure"),
        site=df["site"].str.strip().to_numpy() if "site" in df.columns else "",
        sampling=df["sampling"].str.strip().to_numpy() if "sampling" in df.columns else "",
        qc=qc.astype(np.int32),
        kind="point",
        attrs={"source_files": where},
    )
    return check_table(table, window=window, on_bad=on_bad, where=where)


def write_csv(ds: xr.Dataset, path, *, unit: str = "mol mol-1") -> Path:
    """Write point records in the simple CSV format.

    Values are written with 17 significant digits, so with ``unit="mol mol-1"`` (default) the file reads
    back bit-identically; other units (``"ppm"`` ...) are for people and round to the last digit.
    """
    path = Path(path)
    if np.any(ds["kind"].values.astype(str) != "point"):
        raise ValueError(
            "write_csv: the CSV format holds point records only; write columns with write_satellite"
        )
    scale = mole_fraction_scale(unit, where="write_csv", variable="unit")

    def f(x):
        return "" if not np.isfinite(x) else repr(float(x))

    lines = [
        "# diffflux observation CSV v1: time ISO 8601 UTC; altitude m a.s.l.; pressure Pa; "
        "value and uncertainty in 'unit'; qc 0 = good",
        ",".join(CSV_COLUMNS),
    ]
    times = np.datetime_as_string(ds["time"].values.astype("datetime64[ns]"), unit="auto")
    cols = {k: ds[k].values for k in ds.data_vars}
    for i in range(ds.sizes[OBS_DIM]):
        row = [
            times[i],
            str(cols["site"][i]),
            f(cols["latitude"][i]),
            f(cols["longitude"][i]),
            f(cols["altitude"][i]),
            str(cols["species"][i]),
            f(cols["value"][i] / scale),
            f(cols["uncertainty"][i] / scale),
            unit,
            f(cols["pressure"][i]),
            str(int(cols["qc"][i])),
            str(cols["sampling"][i]),
        ]
        if any("," in c for c in row):
            raise ValueError(f"write_csv: record {i} has a comma in a text field: {row}")
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------------
# satellite lite files
# ------------------------------------------------------------------------------------------------

_SAT = {
    "CO2": dict(value="xco2", profile="co2_profile_apriori"),
    "CH4": dict(value="xch4", profile="ch4_profile_apriori"),
}


def read_satellite(
    path,
    *,
    species: str | None = None,
    window: tuple | None = None,
    on_bad: str = "raise",
    sampling: str | None = None,
) -> tuple[xr.Dataset, FilterReport]:
    """Read a satellite lite-file style netCDF (see module docstring) into column records.

    ``sampling`` defaults to the file's ``sampling`` attribute, else ``"satellite"``.
    """
    where = str(path)
    ds = _open(path)
    if species is None:
        found = [s for s, v in _SAT.items() if v["value"] in ds.variables]
        if len(found) != 1:
            raise ValueError(
                f"{where}: expected exactly one of the variables {[v['value'] for v in _SAT.values()]} "
                f"(or pass species=); found {found or 'none'}"
            )
        species = found[0]
    species = get_species(species).name
    if species not in _SAT:
        raise ValueError(f"{where}: satellite columns are supported for {sorted(_SAT)}, not {species}")
    names = _SAT[species]
    x = names["value"]
    val = _var(ds, x, where, "column-averaged mole fraction")
    scale = mole_fraction_scale(val.attrs.get("units"), where=where, variable=x)
    unc = _var(ds, f"{x}_uncertainty", where, "1-sigma uncertainty")
    unc_scale = mole_fraction_scale(
        unc.attrs.get("units", val.attrs.get("units")), where=where, variable=f"{x}_uncertainty"
    )
    ak = _var(ds, f"{x}_averaging_kernel", where, "column averaging kernel (sounding, levels)").values
    pl = _var(ds, "pressure_levels", where, "retrieval pressure levels (sounding, levels)")
    p = pl.values.astype(np.float64) * pressure_scale(
        pl.attrs.get("units"), where=where, variable="pressure_levels"
    )
    pw = _var(ds, "pressure_weight", where, "pressure weighting function (sounding, levels)").values
    prof = _var(ds, names["profile"], where, "a-priori profile (sounding, levels)")
    prof_v = prof.values.astype(np.float64) * mole_fraction_scale(
        prof.attrs.get("units"), where=where, variable=names["profile"]
    )
    xap = _var(ds, f"{x}_apriori", where, "a-priori column")
    xap_v = xap.values.astype(np.float64) * mole_fraction_scale(
        xap.attrs.get("units"), where=where, variable=f"{x}_apriori"
    )
    t = _var(ds, "time", where, "sounding time")
    time = decode_time(t.values, t.attrs.get("units"), where=where)
    n = val.shape[0]
    for name, arr in (
        ("pressure_levels", p),
        (f"{x}_averaging_kernel", ak),
        ("pressure_weight", pw),
        (names["profile"], prof_v),
    ):
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(
                f"{where}: variable '{name}' must be (sounding, levels) with {n} soundings, "
                f"found shape {arr.shape}"
            )
    value = val.values.astype(np.float64) * scale
    if np.any(np.abs(value[np.isfinite(value)]) > 1.0):
        raise ValueError(
            f"{where}: variable '{x}' has values above 1 mol mol-1 after applying units "
            f"{val.attrs.get('units')!r}"
        )
    qc_name = f"{x}_quality_flag"
    qc = ds[qc_name].values.astype(np.int32) if qc_name in ds.variables else np.zeros(n, np.int32)
    platform = str(ds.attrs.get("platform", ds.attrs.get("sensor", "satellite")))
    sampling = sampling or str(ds.attrs.get("sampling", "satellite"))
    table = make_table(
        time,
        _var(ds, "latitude", where, "degrees_north").values,
        _var(ds, "longitude", where, "degrees_east").values,
        value,
        unc.values.astype(np.float64) * unc_scale,
        species,
        site=platform,
        kind="column",
        sampling=sampling,
        qc=qc,
        column={
            "ret_pressure": p,
            "averaging_kernel": ak,
            "pressure_weight": pw,
            "prior_profile": prof_v,
            "prior_value": xap_v,
        },
        attrs={"source_files": where},
    )
    return check_table(table, window=window, on_bad=on_bad, where=where)


def write_satellite(ds: xr.Dataset, path, *, platform: str | None = None) -> Path:
    """Write column records (one species, one platform) as a lite-file style netCDF (mol mol-1, Pa)."""
    path = Path(path)
    if np.any(ds["kind"].values.astype(str) != "column"):
        raise ValueError(
            "write_satellite: the table has point records; write them with write_obspack/write_csv"
        )
    species = np.unique(ds["species"].values.astype(str))
    if species.size != 1 or species[0] not in _SAT:
        raise ValueError(f"write_satellite: one species of {sorted(_SAT)} per file, found {list(species)}")
    names = _SAT[species[0]]
    x = names["value"]
    secs, units = encode_time(ds["time"].values)
    sd, lv = "sounding", "levels"
    mf = {"units": "mol mol-1"}
    out = xr.Dataset(
        {
            "time": (sd, secs, {"units": units}),
            "latitude": (sd, ds["latitude"].values, {"units": "degrees_north"}),
            "longitude": (sd, ds["longitude"].values, {"units": "degrees_east"}),
            x: (sd, ds["value"].values, mf),
            f"{x}_uncertainty": (sd, ds["uncertainty"].values, mf),
            f"{x}_quality_flag": (sd, ds["qc"].values.astype(np.int32)),
            f"{x}_averaging_kernel": ((sd, lv), ds["averaging_kernel"].values, {"units": "1"}),
            "pressure_levels": ((sd, lv), ds["ret_pressure"].values, {"units": "Pa"}),
            "pressure_weight": ((sd, lv), ds["pressure_weight"].values, {"units": "1"}),
            names["profile"]: ((sd, lv), ds["prior_profile"].values, mf),
            f"{x}_apriori": (sd, ds["prior_value"].values, mf),
        },
        attrs={
            "platform": platform or (str(ds["site"].values[0]) if ds.sizes[OBS_DIM] else "satellite"),
            "sampling": str(ds["sampling"].values[0]) if ds.sizes[OBS_DIM] else "satellite",
            "Conventions": "CF-1.8",
            "source": "diffflux",
        },
    )
    sites = np.unique(ds["site"].values.astype(str))
    if sites.size > 1:
        raise ValueError(f"write_satellite: one platform per file, found {list(sites)}")
    out.to_netcdf(path)
    return path
