"""The observation table (xarray, for I/O and selection) and its numerical core (:class:`ObsArrays`).

**Table** (an ``xarray.Dataset`` with dimension ``obs``, and ``level_ret`` for satellite columns). Units
are SI whatever the file said (readers convert):

============== ============ =========================================================================
variable        dims         meaning [unit]
============== ============ =========================================================================
time            obs          sampling time, ``datetime64[ns]`` UTC
latitude        obs          [degrees north], -90..90
longitude       obs          [degrees east], -180..360 (wrapped to [-180, 180) when sampling)
altitude        obs          sampling altitude above sea level [m] (ground + inlet); NaN for columns
                             and for point observations located by ``pressure``
pressure        obs          sampling pressure [Pa] for point observations located by pressure
                             (aircraft), else NaN
value           obs          dry-air mole fraction [mol mol-1] (column-averaged for columns)
uncertainty     obs          1-sigma uncertainty of ``value`` [mol mol-1], > 0
species         obs          canonical species name (``diffflux.species``), e.g. ``"CO2"``
kind            obs          ``"point"`` or ``"column"``
site            obs          site code or platform id (``"MLO"``, ``"OCO-2"`` ...)
sampling        obs          ``"flask"``, ``"continuous"``, ``"aircraft"``, ``"tower"``, ``"satellite"``,
                             ``"tccon"`` ... (free text, used for selection)
qc              obs          quality flag, 0 = good (anything else is dropped by :func:`select` unless
                             asked otherwise)
ret_pressure    obs,         retrieval pressure levels [Pa] (columns; NaN for point rows)
                level_ret
averaging_kernel obs,        column averaging kernel ``a_k`` [1]
                level_ret
prior_profile   obs,         a-priori profile ``x_prior_k`` [mol mol-1]
                level_ret
pressure_weight obs,         pressure weights ``w_k`` [1], sum to 1
                level_ret
prior_value     obs          a-priori column ``X_prior`` [mol mol-1] (columns; NaN for point rows)
============== ============ =========================================================================

**Numerical core**: :func:`to_arrays` turns a checked table into :class:`ObsArrays`, a pytree of
JAX arrays (times in seconds since the run's reference time, species as tracer indices) from which the
observation operators (:mod:`diffflux.observations.operators`) are built.

Nothing is dropped silently: :func:`check_table` and :func:`select` return a :class:`FilterReport`
with the number of records removed for every reason.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from diffflux.species import get_species

OBS_DIM = "obs"
"""Name of the observation dimension."""
RET_DIM = "level_ret"
"""Name of the retrieval-level dimension of column observations."""
KINDS = ("point", "column")
COLUMN_VARS = ("ret_pressure", "averaging_kernel", "prior_profile", "pressure_weight")
_STRING_VARS = ("species", "kind", "site", "sampling")

_ATTRS = {
    "time": {"long_name": "sampling time (UTC)"},
    "latitude": {"units": "degrees_north", "standard_name": "latitude"},
    "longitude": {"units": "degrees_east", "standard_name": "longitude"},
    "altitude": {"units": "m", "long_name": "sampling altitude above sea level (ground + inlet)"},
    "pressure": {"units": "Pa", "long_name": "sampling pressure (point observations located by pressure)"},
    "value": {"units": "mol mol-1", "long_name": "dry-air mole fraction"},
    "uncertainty": {"units": "mol mol-1", "long_name": "1-sigma uncertainty of value"},
    "species": {"long_name": "species name"},
    "kind": {"long_name": "point or column"},
    "site": {"long_name": "site code or platform id"},
    "sampling": {"long_name": "sampling strategy (flask, continuous, aircraft, satellite, ...)"},
    "qc": {"long_name": "quality flag, 0 = good"},
    "ret_pressure": {"units": "Pa", "long_name": "retrieval pressure levels"},
    "averaging_kernel": {"units": "1", "long_name": "column averaging kernel"},
    "prior_profile": {"units": "mol mol-1", "long_name": "a-priori profile"},
    "pressure_weight": {"units": "1", "long_name": "pressure weighting function"},
    "prior_value": {"units": "mol mol-1", "long_name": "a-priori column-averaged mole fraction"},
}


# ------------------------------------------------------------------------------------------------
# building tables
# ------------------------------------------------------------------------------------------------


def _as_time(values, n: int) -> np.ndarray:
    t = np.asarray(values)
    if t.dtype.kind != "M":
        t = np.asarray(values, dtype="datetime64[ns]")
    t = t.astype("datetime64[ns]")
    return np.broadcast_to(t, (n,)).copy()


def _as_str(values, n: int) -> np.ndarray:
    a = np.asarray(values).astype(str)
    return np.broadcast_to(a, (n,)).copy()


def make_table(
    time,
    latitude,
    longitude,
    value,
    uncertainty,
    species: str | Sequence[str],
    *,
    altitude=None,
    pressure=None,
    site: str | Sequence[str] = "",
    kind: str | Sequence[str] = "point",
    sampling: str | Sequence[str] = "",
    qc=0,
    column: dict | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Observation table from arrays (all in SI: mole fractions in mol mol-1, altitude in m, pressure in Pa).

    Args:
        time: ``(nobs,)`` datetime64 (or ISO strings) UTC.
        latitude, longitude: ``(nobs,)`` [degrees].
        value, uncertainty: ``(nobs,)`` [mol mol-1].
        species: one name or ``(nobs,)`` names (canonicalised through :func:`diffflux.species.get_species`).
        altitude: ``(nobs,)`` [m a.s.l.] or None (NaN).
        pressure: ``(nobs,)`` [Pa] or None (NaN).
        site, kind, sampling, qc: scalars or ``(nobs,)``.
        column: for column observations, a dict with ``ret_pressure``, ``averaging_kernel``,
            ``prior_profile``, ``pressure_weight`` each ``(nobs, nret)`` and ``prior_value`` ``(nobs,)``.
        attrs: global attributes.
    """
    value = np.asarray(value, dtype=np.float64).ravel()
    n = value.size

    def num(x, fill=np.nan):
        if x is None:
            return np.full(n, fill)
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    names = _as_str(species, n)
    canon = {s: get_species(s).name for s in np.unique(names)}
    data = {
        "time": (OBS_DIM, _as_time(time, n)),
        "latitude": (OBS_DIM, num(latitude)),
        "longitude": (OBS_DIM, num(longitude)),
        "altitude": (OBS_DIM, num(altitude)),
        "pressure": (OBS_DIM, num(pressure)),
        "value": (OBS_DIM, value),
        "uncertainty": (OBS_DIM, num(uncertainty)),
        "species": (OBS_DIM, np.array([canon[s] for s in names]).astype(str)),
        "kind": (OBS_DIM, _as_str(kind, n)),
        "site": (OBS_DIM, _as_str(site, n)),
        "sampling": (OBS_DIM, _as_str(sampling, n)),
        "qc": (OBS_DIM, np.broadcast_to(np.asarray(qc, dtype=np.int32), (n,)).copy()),
    }
    bad_kind = sorted(set(np.unique(data["kind"][1])) - set(KINDS))
    if bad_kind:
        raise ValueError(f"make_table: kind must be one of {KINDS}, found {bad_kind}")
    if column is not None:
        for key in COLUMN_VARS:
            if key not in column:
                raise ValueError(f"make_table: column dict lacks {key!r} (needs {COLUMN_VARS} + prior_value)")
            arr = np.asarray(column[key], dtype=np.float64)
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(f"make_table: column {key!r} must be (nobs={n}, nret), found {arr.shape}")
            data[key] = ((OBS_DIM, RET_DIM), arr)
        data["prior_value"] = (OBS_DIM, num(column.get("prior_value")))
    ds = xr.Dataset(data)
    for k, a in _ATTRS.items():
        if k in ds:
            ds[k].attrs.update(a)
    ds.attrs.update({"title": "diffflux observation table", **(attrs or {})})
    return ds


def concat_tables(tables: Sequence[xr.Dataset]) -> xr.Dataset:
    """Concatenate tables along ``obs``; column arrays are padded with NaN to the largest ``level_ret``."""
    tables = [t for t in tables if t.sizes.get(OBS_DIM, 0) > 0] or list(tables[:1])
    nret = max((t.sizes.get(RET_DIM, 0) for t in tables), default=0)
    out = []
    for t in tables:
        t = t.copy()
        if nret:
            n = t.sizes[OBS_DIM]
            if RET_DIM not in t.dims:
                for key in COLUMN_VARS:
                    t[key] = ((OBS_DIM, RET_DIM), np.full((n, nret), np.nan))
                t["prior_value"] = (OBS_DIM, np.full(n, np.nan))
            elif t.sizes[RET_DIM] < nret:
                t = t.pad({RET_DIM: (0, nret - t.sizes[RET_DIM])}, constant_values=np.nan)
        out.append(t)
    ds = xr.concat(out, dim=OBS_DIM, data_vars="all", join="outer") if len(out) > 1 else out[0]
    for k in _STRING_VARS:
        ds[k] = ds[k].astype(str)
    for k, a in _ATTRS.items():
        if k in ds:
            ds[k].attrs.update(a)
    return ds


def normalise_table(ds: xr.Dataset) -> xr.Dataset:
    """Canonical dtypes (strings as ``str``, time as ``datetime64[ns]``, qc int32) and attributes."""
    ds = ds.copy()
    for k in _STRING_VARS:
        if k in ds:
            ds[k] = (ds[k].dims, np.asarray(ds[k].values).astype(str))
    ds["time"] = (OBS_DIM, np.asarray(ds["time"].values).astype("datetime64[ns]"))
    ds["qc"] = (OBS_DIM, np.asarray(ds["qc"].values).astype(np.int32))
    for k, a in _ATTRS.items():
        if k in ds:
            ds[k].attrs = dict(a)
    return ds


# ------------------------------------------------------------------------------------------------
# filter reports, checks and selection
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FilterReport:
    """How many records a check or selection kept and why it dropped the others.

    Attributes:
        n_in: records before.
        n_kept: records after.
        dropped: reason -> number of records dropped for it (each record is counted once, under the
            first reason that applied, in the order the checks ran).
        where: origin (file name or step) for messages.
    """

    n_in: int
    n_kept: int
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    where: str = ""

    @property
    def n_dropped(self) -> int:
        return self.n_in - self.n_kept

    def __str__(self) -> str:
        head = f"{self.where + ': ' if self.where else ''}kept {self.n_kept} of {self.n_in} observations"
        if not self.dropped:
            return head
        reasons = "; ".join(f"{k}: {v}" for k, v in self.dropped.items() if v)
        return f"{head} (dropped {self.n_dropped}: {reasons})"

    def merge(self, other: FilterReport) -> FilterReport:
        """Report of two independent inputs read side by side (counts add up)."""
        dropped = dict(self.dropped)
        for k, v in other.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
        return FilterReport(self.n_in + other.n_in, self.n_kept + other.n_kept, dropped, self.where)

    def then(self, other: FilterReport) -> FilterReport:
        """Report of this filter followed by ``other``."""
        dropped = dict(self.dropped)
        for k, v in other.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
        return FilterReport(self.n_in, other.n_kept, dropped, self.where or other.where)


def _time_window(start, end):
    s = None if start is None else np.datetime64(start, "ns")
    e = None if end is None else np.datetime64(end, "ns")
    return s, e


def bad_records(
    ds: xr.Dataset,
    *,
    window: tuple | None = None,
    p_top: float | None = None,
) -> list[tuple[str, np.ndarray]]:
    """Masks ``(nobs,)`` of invalid records, one per reason, in the order they are checked.

    Reasons: non-finite coordinates or time, NaN value, uncertainty NaN or <= 0, outside the grid
    (latitude beyond +-90, longitude outside [-180, 360], altitude below -500 m or above 100 km, pressure
    outside ``(p_top, 110000]`` Pa, point records with neither altitude nor pressure), invalid column arrays
    (non-finite, or pressure weights not summing to 1 within 1e-6), and time outside ``window``
    (``(start, end)``, the run window; end inclusive).
    """
    lat = ds["latitude"].values
    lon = ds["longitude"].values
    alt = ds["altitude"].values
    prs = ds["pressure"].values
    val = ds["value"].values
    unc = ds["uncertainty"].values
    time = ds["time"].values
    is_col = ds["kind"].values.astype(str) == "column"
    out = []
    out.append(
        ("non-finite latitude/longitude or time", ~np.isfinite(lat) | ~np.isfinite(lon) | np.isnat(time))
    )
    out.append(("NaN value", ~np.isfinite(val)))
    out.append(("uncertainty NaN or <= 0", ~(unc > 0) | ~np.isfinite(unc)))
    with np.errstate(invalid="ignore"):
        outside = (np.abs(lat) > 90.0) | (lon < -180.0) | (lon > 360.0)
        has_alt, has_p = np.isfinite(alt), np.isfinite(prs)
        outside |= ~is_col & ~has_alt & ~has_p
        outside |= has_alt & ((alt < -500.0) | (alt > 1.0e5))
        ptop = 0.0 if p_top is None else p_top
        outside |= has_p & ((prs <= ptop) | (prs > 1.1e5))
    out.append(("outside the model grid", outside))
    if is_col.any():
        if "ret_pressure" not in ds:
            raise ValueError(
                "observation table has column records but no ret_pressure/averaging_kernel/... variables"
            )
        col_ok = np.ones(val.shape, bool)
        for key in COLUMN_VARS:
            arr = ds[key].values
            col_ok &= np.all(np.isfinite(arr), axis=1)
        col_ok &= np.isfinite(ds["prior_value"].values)
        with np.errstate(invalid="ignore"):
            col_ok &= np.abs(np.sum(ds["pressure_weight"].values, axis=1) - 1.0) <= 1e-6
            col_ok &= np.all(ds["ret_pressure"].values > 0, axis=1)
        out.append(("invalid column arrays (NaN, or pressure weights not summing to 1)", is_col & ~col_ok))
    if window is not None:
        s, e = _time_window(*window)
        bad = np.zeros(val.shape, bool)
        if s is not None:
            bad |= time < s
        if e is not None:
            bad |= time > e
        out.append((f"time outside the run window [{s}, {e}]", bad))
    return out


def check_table(
    ds: xr.Dataset,
    *,
    window: tuple | None = None,
    p_top: float | None = None,
    on_bad: str = "raise",
    where: str = "",
) -> tuple[xr.Dataset, FilterReport]:
    """Validate a table: raise on the first invalid record, or drop invalid records and report them.

    Args:
        ds: observation table.
        window: ``(start, end)`` datetimes of the run window (records outside are invalid).
        p_top: model-top pressure [Pa] (pressure-located records at or above it are outside the grid).
        on_bad: ``"raise"`` (default) or ``"drop"`` (documented filter; the report counts each reason).
        where: origin for messages (file name).

    Returns:
        ``(table, report)``.
    """
    if on_bad not in ("raise", "drop"):
        raise ValueError(f"check_table: on_bad must be 'raise' or 'drop', found {on_bad!r}")
    n = ds.sizes[OBS_DIM]
    keep = np.ones(n, bool)
    dropped: dict[str, int] = {}
    for reason, mask in bad_records(ds, window=window, p_top=p_top):
        new = mask & keep
        if new.any():
            if on_bad == "raise":
                i = int(np.argmax(new))
                site = str(ds["site"].values[i])
                raise ValueError(
                    f"{where or 'observation table'}: {int(new.sum())} record(s) with {reason}; first at "
                    f"index {i} (site {site!r}, time {ds['time'].values[i]}, lat {ds['latitude'].values[i]}, "
                    f"lon {ds['longitude'].values[i]}, value {ds['value'].values[i]}, uncertainty "
                    f"{ds['uncertainty'].values[i]}); pass on_bad='drop' to drop and count them instead"
                )
            dropped[reason] = int(new.sum())
            keep &= ~mask
    return ds.isel({OBS_DIM: np.flatnonzero(keep)}), FilterReport(n, int(keep.sum()), dropped, where)


def select(
    ds: xr.Dataset,
    *,
    start=None,
    end=None,
    species: str | Iterable[str] | None = None,
    sites: str | Iterable[str] | None = None,
    kinds: str | Iterable[str] | None = None,
    sampling: str | Iterable[str] | None = None,
    good_only: bool = True,
) -> tuple[xr.Dataset, FilterReport]:
    """Select records by time window (``start <= time <= end``), species, site, kind, sampling and quality.

    Returns ``(table, report)``; the report counts the records removed by each criterion.
    """
    n = ds.sizes[OBS_DIM]
    keep = np.ones(n, bool)
    dropped: dict[str, int] = {}

    def apply(reason, ok):
        nonlocal keep
        new = keep & ~ok
        if new.any():
            dropped[reason] = int(new.sum())
        keep &= ok

    s, e = _time_window(start, end)
    t = ds["time"].values
    if s is not None:
        apply(f"before {s}", t >= s)
    if e is not None:
        apply(f"after {e}", t <= e)

    def as_set(x):
        return {x} if isinstance(x, str) else set(x)

    if species is not None:
        wanted = {get_species(x).name for x in as_set(species)}
        apply(f"species not in {sorted(wanted)}", np.isin(ds["species"].values.astype(str), list(wanted)))
    if sites is not None:
        wanted = as_set(sites)
        apply(f"site not in {sorted(wanted)}", np.isin(ds["site"].values.astype(str), list(wanted)))
    if kinds is not None:
        wanted = as_set(kinds)
        apply(f"kind not in {sorted(wanted)}", np.isin(ds["kind"].values.astype(str), list(wanted)))
    if sampling is not None:
        wanted = as_set(sampling)
        apply(f"sampling not in {sorted(wanted)}", np.isin(ds["sampling"].values.astype(str), list(wanted)))
    if good_only:
        apply("quality flag != 0", ds["qc"].values == 0)
    return ds.isel({OBS_DIM: np.flatnonzero(keep)}), FilterReport(n, int(keep.sum()), dropped)


# ------------------------------------------------------------------------------------------------
# numerical core
# ------------------------------------------------------------------------------------------------


class ObsArrays(eqx.Module):
    """Observations as a pytree of arrays (the input of the observation operators). Shapes ``(nobs,)``.

    Attributes:
        time: [s] since the run's reference time.
        latitude, longitude: [degrees].
        altitude: [m a.s.l.] (0 where unused).
        pressure: [Pa] (0 where unused).
        use_pressure: bool, point record located by ``pressure`` instead of ``altitude``.
        value, uncertainty: [mol mol-1].
        tracer: int, index of the species in the run's tracer list.
        is_column: bool, column record.
        ret_pressure, averaging_kernel, prior_profile, pressure_weight: ``(nobs, nret)`` [Pa, 1, mol mol-1,
            1] (``nret >= 1``; zeros for point records).
        prior_value: ``(nobs,)`` [mol mol-1] (0 for point records).
    """

    time: jax.Array
    latitude: jax.Array
    longitude: jax.Array
    altitude: jax.Array
    pressure: jax.Array
    use_pressure: jax.Array
    value: jax.Array
    uncertainty: jax.Array
    tracer: jax.Array
    is_column: jax.Array
    ret_pressure: jax.Array
    averaging_kernel: jax.Array
    prior_profile: jax.Array
    pressure_weight: jax.Array
    prior_value: jax.Array

    @property
    def nobs(self) -> int:
        return int(self.value.shape[0])

    def take(self, index) -> ObsArrays:
        """Subset ``index`` (integer array or boolean mask) of the records."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return jax.tree_util.tree_map(lambda a: a[index], self)


def to_arrays(
    ds: xr.Dataset,
    tracers: Sequence[str],
    reference_time,
    *,
    dtype=None,
) -> ObsArrays:
    """:class:`ObsArrays` from a (checked) table.

    Args:
        ds: observation table (run :func:`check_table` first; NaN here raises).
        tracers: species names of the run's tracer axis, in order; every record's species must be one.
        reference_time: datetime of ``t = 0`` of the run (times become seconds since it).
        dtype: float dtype (default: JAX's default float).
    """
    dtype = dtype or jnp.result_type(float)
    names = [get_species(s).name for s in tracers]
    sp = ds["species"].values.astype(str)
    unknown = sorted(set(np.unique(sp)) - set(names))
    if unknown:
        raise ValueError(
            f"to_arrays: species {unknown} of the observations are not among the run's tracers "
            f"{names}; select them out first (select(ds, species=...))"
        )
    tracer = np.array([names.index(s) for s in sp], dtype=np.int32)
    ref = np.datetime64(reference_time, "ns")
    t = (ds["time"].values.astype("datetime64[ns]") - ref).astype("timedelta64[ns]").astype(np.int64) * 1e-9
    alt = ds["altitude"].values
    prs = ds["pressure"].values
    is_col = ds["kind"].values.astype(str) == "column"
    use_p = ~is_col & ~np.isfinite(alt) & np.isfinite(prs)
    for name, arr in (
        ("latitude", ds["latitude"].values),
        ("longitude", ds["longitude"].values),
        ("value", ds["value"].values),
        ("uncertainty", ds["uncertainty"].values),
    ):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"to_arrays: variable '{name}' has non-finite values; run check_table first")
    n = ds.sizes[OBS_DIM]
    if RET_DIM in ds.dims and is_col.any():
        cols = {k: np.where(is_col[:, None], np.nan_to_num(ds[k].values), 0.0) for k in COLUMN_VARS}
        prior_value = np.where(is_col, np.nan_to_num(ds["prior_value"].values), 0.0)
    else:
        cols = {k: np.zeros((n, 1)) for k in COLUMN_VARS}
        prior_value = np.zeros(n)

    def f(a):
        return jnp.asarray(np.asarray(a, dtype=np.float64), dtype=dtype)

    return ObsArrays(
        time=f(t),
        latitude=f(ds["latitude"].values),
        longitude=f(ds["longitude"].values),
        altitude=f(np.where(np.isfinite(alt), alt, 0.0)),
        pressure=f(np.where(np.isfinite(prs), prs, 0.0)),
        use_pressure=jnp.asarray(use_p),
        value=f(ds["value"].values),
        uncertainty=f(ds["uncertainty"].values),
        tracer=jnp.asarray(tracer),
        is_column=jnp.asarray(is_col),
        prior_value=f(prior_value),
        **{k: f(v) for k, v in cols.items()},
    )


def seconds_since(time, reference_time) -> np.ndarray:
    """Seconds (float64) from ``reference_time`` to ``time`` (datetime64 array)."""
    ref = np.datetime64(reference_time, "ns")
    return (np.asarray(time).astype("datetime64[ns]") - ref).astype(np.int64) * 1e-9


def datetime_from_seconds(seconds, reference_time) -> np.ndarray:
    """``datetime64[ns]`` for seconds since ``reference_time`` (rounded to whole nanoseconds)."""
    ref = np.datetime64(reference_time, "ns")
    return ref + np.round(np.asarray(seconds, dtype=np.float64) * 1e9).astype("timedelta64[ns]")


def as_datetime64(t) -> np.datetime64:
    """``np.datetime64[ns]`` from a datetime, string or datetime64."""
    if isinstance(t, _dt.datetime) and t.tzinfo is not None:
        t = t.astimezone(_dt.UTC).replace(tzinfo=None)
    return np.datetime64(t, "ns")
