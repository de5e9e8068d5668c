"""The sensitivity configuration (TOML): strict parsing and validation before any computation.

Tables (see the README section and ``examples/sensitivity.toml``):

* ``[setup]``: keyword arguments of :func:`diffflux.inversion.standard_twin`, checked against its
  signature and annotations (lists become tuples; ``"none"`` is None for optional keys; ``dtype`` is
  ``"float32"`` or ``"float64"``);
* ``[experiment]``: stations, extra species, added biosphere fluxes, budget regions, evaluation state,
  footprint blocks, linear-check amplitude, one-by-one timing;
* ``[posterior]`` (optional): observation-space 1-sigma uncertainties for the detectability statement;
* ``[[scenario]]``: scenarios (:mod:`diffflux.experiments.scenarios`), one change per table or several
  under ``[[scenario.change]]``;
* ``[[metric]]``: metrics for the adjoint (:mod:`diffflux.experiments.metrics`);
* ``[outputs]``: output directory and formats.

Unknown keys, wrong types and impossible values raise :class:`ConfigError` naming the file, the key path
(``scenario[2].factor``, 0-based) and what is allowed. Everything that can be checked without building the
problem is checked here: regions are looked up and rasterised on the model grid, periods are compared with
the window, components with the ones ``standard_twin`` builds for the chosen species and flux forms.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import tomllib
import typing
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from diffflux.experiments.metrics import Metric, validate_metrics
from diffflux.experiments.scenarios import (
    AreaChange,
    ConfigError,
    FluxChange,
    ParameterChange,
    Period,
    RegionSpec,
    Scenario,
    Setting,
    _fail,
    as_datetime,
    resolve_pfts,
    validate_scenarios,
)

__all__ = [
    "ConfigError",
    "Experiment",
    "Outputs",
    "Posterior",
    "SensitivityConfig",
    "load_sensitivity_config",
    "parse_config",
    "twin_components",
]

TOP_KEYS = ("setup", "experiment", "posterior", "scenario", "metric", "outputs")


# -------------------------------------------------------------------------------------------------
# small typed getters
# -------------------------------------------------------------------------------------------------


def _check_keys(table, allowed: Sequence[str], path: str) -> None:
    if not isinstance(table, dict):
        _fail(path, f"expected a table, found {type(table).__name__}")
    bad = sorted(set(table) - set(allowed))
    if bad:
        _fail(
            f"{path}.{bad[0]}" if path else bad[0],
            f"unknown key{'s' if len(bad) > 1 else ''} {bad}; allowed keys: {sorted(allowed)}",
        )


def _number(v, path: str, *, integer: bool = False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        _fail(path, f"expected {'an integer' if integer else 'a number'}, found {v!r}")
    if not math.isfinite(v):
        _fail(path, f"must be finite, found {v}")
    return v


def _string(v, path: str) -> str:
    if not isinstance(v, str):
        _fail(path, f"expected a string, found {v!r}")
    return v


def _strings(v, path: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        _fail(path, f"expected a string or a list of strings, found {v!r}")
    return tuple(v)


def _bool(v, path: str) -> bool:
    if not isinstance(v, bool):
        _fail(path, f"expected true or false, found {v!r}")
    return v


def mixing_ratio(v, species: str, path: str) -> float:
    """A mole fraction [mol mol-1] from a number or a string such as ``"0.5 ppm"``."""
    from diffflux.observations import mole_fraction_scale

    if isinstance(v, str):
        parts = v.split()
        if len(parts) != 2:
            _fail(path, f"expected a number [mol mol-1] or '<value> <unit>' such as '0.5 ppm', found {v!r}")
        try:
            value = float(parts[0])
            scale = mole_fraction_scale(parts[1], where=path, variable=species)
        except ValueError as exc:
            _fail(path, str(exc))
        v = value * scale
    v = _number(v, path)
    if v < 0:
        _fail(path, f"must be >= 0, found {v}")
    return float(v)


# -------------------------------------------------------------------------------------------------
# [setup]: keyword arguments of standard_twin
# -------------------------------------------------------------------------------------------------


def _twin_signature():
    from diffflux.inversion import problem

    sig = inspect.signature(problem.standard_twin)
    hints = typing.get_type_hints(problem.standard_twin, vars(problem))
    return sig, hints


def _convert(value, hint, path: str):
    """``value`` (TOML) converted to the annotation ``hint`` (tuples from lists), or ConfigError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if type(None) in args and isinstance(value, str) and value.lower() == "none":
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError:
                pass
        _fail(path, f"expected {_describe(hint)}, found {value!r}")
    if hint is bool:
        return _bool(value, path)
    if hint is int:
        return _number(value, path, integer=True)
    if hint is float:
        return float(_number(value, path))
    if hint is str:
        if hasattr(value, "isoformat"):  # a TOML date for a date string (start, reference_time)
            return value.isoformat()
        return _string(value, path)
    if origin is tuple:
        if not isinstance(value, list):
            _fail(path, f"expected {_describe(hint)}, found {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{k}]") for k, v in enumerate(value))
        if len(value) != len(args):
            _fail(path, f"expected {_describe(hint)} ({len(args)} values), found {value!r}")
        return tuple(_convert(v, a, f"{path}[{k}]") for k, (v, a) in enumerate(zip(value, args)))
    if origin in (Sequence, list, tuple) or (origin is not None and issubclass(origin, Sequence)):
        if isinstance(value, str) or not isinstance(value, list):
            _fail(path, f"expected {_describe(hint)}, found {value!r}")
        return tuple(_convert(v, args[0], f"{path}[{k}]") for k, v in enumerate(value))
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            _fail(path, f"expected a table, found {value!r}")
        return dict(value)
    _fail(path, f"cannot be set from TOML (annotation {hint}); use the Python API")


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join("'none'" if a is type(None) else _describe(a) for a in args)
    if origin is tuple:
        return "a list of " + (
            f"{_describe(args[0])}s"
            if args[-1] is Ellipsis
            else f"{len(args)} values ({', '.join(_describe(a) for a in args)})"
        )
    if origin is not None:
        return f"a list of {_describe(args[0])}s"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", dict: "a table"}.get(
        hint, str(hint)
    )


def parse_setup(table, path: str = "setup") -> dict:
    """Validated keyword arguments of :func:`~diffflux.inversion.standard_twin` (defaults filled in)."""
    sig, hints = _twin_signature()
    allowed = [k for k in sig.parameters]
    _check_keys(table, allowed, path)
    out = {k: p.default for k, p in sig.parameters.items()}
    for key, value in table.items():
        kp = f"{path}.{key}"
        if key == "dtype":
            if value not in ("float32", "float64"):
                _fail(kp, f"must be 'float32' or 'float64', found {value!r}")
            import jax.numpy as jnp

            out[key] = getattr(jnp, value)
            continue
        if key not in hints:
            _fail(
                kp,
                f"takes a Python object and cannot be set from TOML; pass it to "
                f"diffflux.inversion.standard_twin({key}=...) from Python",
            )
        out[key] = _convert(value, hints[key], kp)
    _check_setup_values(out, path)
    return out


def _check_setup_values(s: dict, path: str) -> None:
    from diffflux.models.biosphere.params import GLOBAL_DEFAULTS, PFT_MULTIPLIED
    from diffflux.observations import get_station
    from diffflux.species import get_species

    dlat, dlon = s["resolution"]
    if (
        not (dlat > 0 and dlon > 0)
        or abs(180 / dlat - round(180 / dlat)) > 1e-9
        or abs(360 / dlon - round(360 / dlon)) > 1e-9
        or round(360 / dlon) % 2
    ):
        _fail(
            f"{path}.resolution",
            f"[dlat, dlon] must divide 180 and 360 degrees into an even number of "
            f"longitudes, found {list(s['resolution'])}",
        )
    for key in ("nlev", "days", "steps_per_day"):
        if s[key] < 1:
            _fail(f"{path}.{key}", f"must be >= 1, found {s[key]}")
    if 86400 % s["steps_per_day"]:
        _fail(f"{path}.steps_per_day", f"must divide 86400 s into whole seconds, found {s['steps_per_day']}")
    try:
        species = tuple(get_species(x).name for x in s["species"])
    except ValueError as exc:
        _fail(f"{path}.species", str(exc))
    if not species or set(species) - {"CO2", "CH4"} or len(set(species)) != len(species):
        _fail(
            f"{path}.species",
            f"standard_twin transports CO2 and/or CH4 (once each), found {list(s['species'])}; "
            f"other species go to [experiment].extra_species",
        )
    if s["flux_forms"] not in ("joint", "additive"):
        _fail(f"{path}.flux_forms", f"must be 'joint' or 'additive', found {s['flux_forms']!r}")
    start = as_datetime(s["start"], f"{path}.start")
    ref = as_datetime(s["reference_time"], f"{path}.reference_time")
    if start < ref or (start - ref) % np.timedelta64(1, "D"):
        _fail(f"{path}.start", f"must be a day (00 UTC) on or after reference_time {ref}, found {start}")
    for key in ("flask_sites", "continuous_sites"):
        for k, site in enumerate(s[key]):
            try:
                get_station(site)
            except KeyError as exc:
                _fail(f"{path}.{key}[{k}]", str(exc).strip("'\""))
    sat = s["satellite_step_seconds"]
    if sat is not None and sat <= 0:
        _fail(f"{path}.satellite_step_seconds", f"must be > 0 or 'none', found {sat}")
    for k, name in enumerate(s["parameters"]):
        if name not in PFT_MULTIPLIED and name not in GLOBAL_DEFAULTS:
            _fail(
                f"{path}.parameters[{k}]",
                f"unknown parameter {name!r}; PFT parameters: "
                f"{', '.join(PFT_MULTIPLIED)}; global: {', '.join(GLOBAL_DEFAULTS)}",
            )
    for key in ("parameter_sigma", "block_days"):
        if not s[key] > 0:
            _fail(f"{path}.{key}", f"must be > 0, found {s[key]}")
    if s["truth_scale"] < 0:
        _fail(f"{path}.truth_scale", f"must be >= 0, found {s['truth_scale']}")
    if s["checkpoint"] not in (None, "step", "nested", "auto"):
        _fail(f"{path}.checkpoint", f"must be 'none', 'step', 'nested' or 'auto', found {s['checkpoint']!r}")
    sp = s["spinup"]
    if not (sp == "newton" or (isinstance(sp, int) and sp >= 0)):
        _fail(f"{path}.spinup", f"must be 'newton' or a number of years >= 0, found {sp!r}")
    sigmas = s.get("sigmas") or {}
    comps = twin_components(species, s["flux_forms"])
    for name, v in sigmas.items():
        if name not in comps:
            _fail(f"{path}.sigmas.{name}", f"unknown component; components: {sorted(comps)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            _fail(f"{path}.sigmas.{name}", f"must be a number > 0, found {v!r}")
    if s["correlation_km"] is not None and not all(v > 0 for v in s["correlation_km"]):
        _fail(f"{path}.correlation_km", f"lengths must be > 0, found {list(s['correlation_km'])}")


def twin_components(species: Sequence[str], flux_forms: str) -> dict[str, str]:
    """Components ``standard_twin`` builds (name -> species), in its order. A test compares this with the
    twin itself, so that scenarios can be checked before the twin is built."""
    joint = flux_forms == "joint"
    out = {}
    if "CO2" in species:
        if joint:
            out["fossil"] = "CO2"
        out["ocean"] = "CO2"
        out["nee"] = "CO2"
    if "CH4" in species:
        out["ch4_anthropogenic"] = "CH4"
        if joint:
            out["wetland"] = "CH4"
    return out


# -------------------------------------------------------------------------------------------------
# [experiment], [posterior], [outputs]
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Experiment:
    """``[experiment]``.

    Attributes:
        stations: sampled every hour for every tracer (default: the setup's flask and continuous sites).
        state: ``"prior"`` or ``"truth"``: the control the scenarios are evaluated at.
        extra_species: species -> initial (uniform) mixing ratio [mol mol-1] of extra passive tracers with
            their built-in inventory as baseline (e.g. HFC-134a).
        add_biosphere_fluxes: biosphere flux keys added to the baseline (e.g. ``CH4:soil``).
        budget_regions: regions of the budget table (scenario regions are added).
        budget_share: ``"land"``, ``"ocean"`` or ``"area"`` masks for the budgets.
        footprint_block_hours: length of the footprint time blocks [h].
        linear_amplitude: amplitude of the small scenarios of the linear check (0 < a <= 1).
        one_by_one: also run the scenarios one by one (timing comparison).
    """

    stations: tuple[str, ...] = ()
    state: str = "prior"
    extra_species: dict = dataclasses.field(default_factory=dict)
    add_biosphere_fluxes: tuple[str, ...] = ()
    budget_regions: tuple[str, ...] = ("globe",)
    budget_share: str = "land"
    footprint_block_hours: float = 24.0
    linear_amplitude: float = 0.05
    one_by_one: bool = True


@dataclasses.dataclass(frozen=True)
class Posterior:
    """``[posterior]``: 1-sigma uncertainty of one record [mol mol-1] by species, per-station overrides,
    for columns, whether the site-class model-data mismatch is added in quadrature, the detection
    threshold (in sigmas) and the time over which record errors are taken as fully correlated [h]."""

    sigma: dict
    station_sigma: dict = dataclasses.field(default_factory=dict)
    column_sigma: dict = dataclasses.field(default_factory=dict)
    include_mismatch: bool = False
    threshold: float = 2.0
    independent_hours: float = 24.0


@dataclasses.dataclass(frozen=True)
class Outputs:
    directory: str = "sensitivity_out"
    netcdf: bool = True
    png: bool = True


@dataclasses.dataclass(frozen=True)
class SensitivityConfig:
    """A validated configuration (:func:`load_sensitivity_config`)."""

    setup: dict
    experiment: Experiment
    scenarios: tuple[Scenario, ...]
    metrics: tuple[Metric, ...]
    posterior: Posterior | None
    outputs: Outputs
    setting: Setting
    source: str = "<config>"


def _parse_experiment(t, setup: dict, path: str = "experiment") -> Experiment:
    from diffflux.observations import get_station
    from diffflux.regions import region
    from diffflux.species import get_species

    fields = [f.name for f in dataclasses.fields(Experiment)]
    _check_keys(t, fields, path)
    kw = {}
    if "stations" in t:
        ids = []
        for k, s in enumerate(_strings(t["stations"], f"{path}.stations")):
            try:
                ids.append(get_station(s).id)
            except KeyError as exc:
                _fail(f"{path}.stations[{k}]", str(exc).strip("'\""))
        kw["stations"] = tuple(dict.fromkeys(ids))
    else:
        kw["stations"] = tuple(
            dict.fromkeys(
                get_station(s).id for s in tuple(setup["flask_sites"]) + tuple(setup["continuous_sites"])
            )
        )
    if "state" in t:
        kw["state"] = _string(t["state"], f"{path}.state")
        if kw["state"] not in ("prior", "truth"):
            _fail(f"{path}.state", f"must be 'prior' or 'truth', found {kw['state']!r}")
    if "extra_species" in t:
        es = t["extra_species"]
        _check_keys(es, list(es) if isinstance(es, dict) else [], f"{path}.extra_species")
        out = {}
        for name, v in es.items():
            kp = f"{path}.extra_species.{name}"
            try:
                sp = get_species(name).name
            except ValueError as exc:
                _fail(kp, str(exc))
            if sp in setup["species"] or sp in out:
                _fail(kp, f"{sp} is already transported")
            from diffflux.models.inventories import GLOBAL_TOTALS

            if sp not in GLOBAL_TOTALS:
                _fail(kp, f"{sp} has no built-in inventory; extra species: {sorted(GLOBAL_TOTALS)}")
            out[sp] = mixing_ratio(v, sp, kp)
        kw["extra_species"] = out
    if "add_biosphere_fluxes" in t:
        keys = _strings(t["add_biosphere_fluxes"], f"{path}.add_biosphere_fluxes")
        from diffflux.models.biosphere.fluxes import FLUX_KEYS

        links = {"CO2:biosphere", "CH4:wetland"}
        for k, key in enumerate(keys):
            kp = f"{path}.add_biosphere_fluxes[{k}]"
            if key not in FLUX_KEYS:
                _fail(kp, f"unknown biosphere flux {key!r}; fluxes: {list(FLUX_KEYS)}")
            if key in links:
                _fail(kp, f"{key} is already in the baseline (linked to a composer component)")
            if setup["flux_forms"] != "joint":
                _fail(kp, "needs a biosphere: [setup].flux_forms = 'joint'")
        kw["add_biosphere_fluxes"] = tuple(dict.fromkeys(keys))
    if "budget_regions" in t:
        regs = _strings(t["budget_regions"], f"{path}.budget_regions")
        for k, r in enumerate(regs):
            try:
                region(r)
            except (KeyError, ValueError) as exc:
                _fail(f"{path}.budget_regions[{k}]", str(exc).strip("'\""))
        kw["budget_regions"] = regs
    if "budget_share" in t:
        kw["budget_share"] = _string(t["budget_share"], f"{path}.budget_share")
        if kw["budget_share"] not in ("land", "ocean", "area"):
            _fail(f"{path}.budget_share", f"must be 'land', 'ocean' or 'area', found {kw['budget_share']!r}")
    if "footprint_block_hours" in t:
        v = _number(t["footprint_block_hours"], f"{path}.footprint_block_hours")
        if v <= 0:
            _fail(f"{path}.footprint_block_hours", f"must be > 0, found {v}")
        kw["footprint_block_hours"] = float(v)
    if "linear_amplitude" in t:
        v = _number(t["linear_amplitude"], f"{path}.linear_amplitude")
        if not 0 < v <= 1:
            _fail(f"{path}.linear_amplitude", f"must lie in (0, 1], found {v}")
        kw["linear_amplitude"] = float(v)
    if "one_by_one" in t:
        kw["one_by_one"] = _bool(t["one_by_one"], f"{path}.one_by_one")
    return Experiment(**kw)


def _parse_posterior(t, setting: Setting, path: str = "posterior") -> Posterior:
    fields = [f.name for f in dataclasses.fields(Posterior)]
    _check_keys(t, fields, path)
    if "sigma" not in t:
        _fail(
            f"{path}.sigma",
            "required: the 1-sigma uncertainty of one record per species, e.g. "
            "{CO2 = '0.5 ppm', CH4 = '5 ppb'}",
        )

    def by_species(tab, kp):
        _check_keys(tab, list(tab) if isinstance(tab, dict) else [], kp)
        out = {}
        for sp, v in tab.items():
            tr = setting.tracer(sp, f"{kp}.{sp}")
            out[setting.tracers[tr]] = mixing_ratio(v, sp, f"{kp}.{sp}")
            if out[setting.tracers[tr]] <= 0:
                _fail(f"{kp}.{sp}", "must be > 0")
        return out

    kw = {"sigma": by_species(t["sigma"], f"{path}.sigma")}
    if not kw["sigma"]:
        _fail(f"{path}.sigma", "give the uncertainty of at least one species")
    if "station_sigma" in t:
        st = t["station_sigma"]
        _check_keys(st, list(setting.stations), f"{path}.station_sigma")
        kw["station_sigma"] = {s: by_species(v, f"{path}.station_sigma.{s}") for s, v in st.items()}
    if "column_sigma" in t:
        kw["column_sigma"] = by_species(t["column_sigma"], f"{path}.column_sigma")
    if "include_mismatch" in t:
        kw["include_mismatch"] = _bool(t["include_mismatch"], f"{path}.include_mismatch")
    for key in ("threshold", "independent_hours"):
        if key in t:
            v = _number(t[key], f"{path}.{key}")
            if v <= 0:
                _fail(f"{path}.{key}", f"must be > 0, found {v}")
            kw[key] = float(v)
    return Posterior(**kw)


def _parse_outputs(t, path: str = "outputs") -> Outputs:
    _check_keys(t, ["directory", "netcdf", "png"], path)
    kw = {}
    if "directory" in t:
        kw["directory"] = _string(t["directory"], f"{path}.directory")
    for key in ("netcdf", "png"):
        if key in t:
            kw[key] = _bool(t[key], f"{path}.{key}")
    return Outputs(**kw)


# -------------------------------------------------------------------------------------------------
# scenarios and metrics
# -------------------------------------------------------------------------------------------------

REGION_KEYS = ("region", "box", "mask_file", "mask_variable", "share")
PERIOD_KEYS = ("start", "end")
CHANGE_KEYS = {
    "flux": ("component", "flux", "species", "pfts", "factor", "schedule", "add", "units"),
    "parameter": ("parameter", "pfts", "factor"),
    "area": ("to", "from", "factor", "fraction"),
}


def _region(t, path: str) -> RegionSpec:
    kw = {}
    if "region" in t:
        kw["name"] = _string(t["region"], f"{path}.region")
    if "box" in t:
        b = t["box"]
        if not isinstance(b, list) or len(b) != 4:
            _fail(f"{path}.box", f"expected [lat_min, lat_max, lon_min, lon_max], found {b!r}")
        kw["box"] = tuple(float(_number(v, f"{path}.box[{k}]")) for k, v in enumerate(b))
    for key in ("mask_file", "mask_variable", "share"):
        if key in t:
            kw[key] = _string(t[key], f"{path}.{key}")
    return RegionSpec(**kw)


def _period(t, path: str) -> Period:
    return Period(
        start=as_datetime(t["start"], f"{path}.start") if "start" in t else None,
        end=as_datetime(t["end"], f"{path}.end") if "end" in t else None,
    )


def _change(t, path: str):
    if "kind" not in t:
        _fail(f"{path}.kind", f"required: one of {list(CHANGE_KEYS)}")
    kind = t["kind"]
    if kind not in CHANGE_KEYS:
        _fail(f"{path}.kind", f"must be one of {list(CHANGE_KEYS)}, found {kind!r}")
    _check_keys(t, ("kind",) + CHANGE_KEYS[kind] + REGION_KEYS + PERIOD_KEYS, path)
    common = {"region": _region(t, path), "period": _period(t, path)}
    pfts = resolve_pfts(_strings(t["pfts"], f"{path}.pfts"), f"{path}.pfts") if "pfts" in t else ()
    if kind == "flux":
        kw = {k: _string(t[k], f"{path}.{k}") for k in ("component", "flux", "species", "units") if k in t}
        if "factor" in t:
            kw["factor"] = float(_number(t["factor"], f"{path}.factor"))
        if "add" in t:
            kw["add"] = float(_number(t["add"], f"{path}.add"))
        if "schedule" in t:
            sch = t["schedule"]
            if not isinstance(sch, dict) or not sch:
                _fail(
                    f"{path}.schedule",
                    f"expected a table year = factor, e.g. {{2019 = 0.9, 2024 = 0.6}}, found {sch!r}",
                )
            items = []
            for y, f in sch.items():
                if not y.isdigit():
                    _fail(f"{path}.schedule.{y}", "keys must be years such as 2024")
                items.append((int(y), float(_number(f, f"{path}.schedule.{y}"))))
            kw["schedule"] = tuple(sorted(items))
        return FluxChange(pfts=pfts, **kw, **common)
    if kind == "parameter":
        if "parameter" not in t or "factor" not in t:
            _fail(path, "a parameter change needs parameter and factor")
        return ParameterChange(
            parameters=_strings(t["parameter"], f"{path}.parameter"),
            factor=float(_number(t["factor"], f"{path}.factor")),
            pfts=pfts,
            **common,
        )
    if "to" not in t:
        _fail(f"{path}.to", "an area change needs the gaining PFTs 'to' (e.g. ['forest'])")
    to = resolve_pfts(_strings(t["to"], f"{path}.to"), f"{path}.to")
    src = _strings(t.get("from", ["bare"]), f"{path}.from")
    source = src if src == ("bare",) else resolve_pfts(src, f"{path}.from")
    kw = {k: float(_number(t[k], f"{path}.{k}")) for k in ("factor", "fraction") if k in t}
    return AreaChange(to=to, source=source, **kw, **common)


def _scenario(t, path: str) -> Scenario:
    if not isinstance(t, dict):
        _fail(path, f"expected a table, found {type(t).__name__}")
    head = ("name", "description")
    if "change" in t:
        _check_keys(t, head + ("change",), path)
        ch = t["change"]
        if not isinstance(ch, list) or not ch:
            _fail(f"{path}.change", "expected [[scenario.change]] tables")
        changes = tuple(_change(c, f"{path}.change[{k}]") for k, c in enumerate(ch))
    else:
        body = {k: v for k, v in t.items() if k not in head}
        changes = (_change(body, path),)
    if "name" not in t:
        _fail(f"{path}.name", "required")
    return Scenario(
        name=_string(t["name"], f"{path}.name"),
        changes=changes,
        description=_string(t.get("description", ""), f"{path}.description"),
    )


def _metric(t, path: str) -> Metric:
    _check_keys(t, ("name", "kind", "species", "station", "hours") + REGION_KEYS + PERIOD_KEYS, path)
    for key in ("name", "kind", "species"):
        if key not in t:
            _fail(f"{path}.{key}", "required")
    kw = {k: _string(t[k], f"{path}.{k}") for k in ("name", "kind", "species", "hours") if k in t}
    if "station" in t:
        from diffflux.observations import get_station

        try:
            kw["station"] = get_station(_string(t["station"], f"{path}.station")).id
        except KeyError as exc:
            _fail(f"{path}.station", str(exc).strip("'\""))
    return Metric(region=_region(t, path), period=_period(t, path), **kw)


# -------------------------------------------------------------------------------------------------
# entry points
# -------------------------------------------------------------------------------------------------


def make_setting(setup: dict, experiment: Experiment) -> Setting:
    """The :class:`Setting` implied by a validated setup (no computation but region rasters)."""
    from diffflux.experiments.model import extra_component_name
    from diffflux.grid import LatLonGrid
    from diffflux.species import get_species

    start = as_datetime(setup["start"], "setup.start")
    species = tuple(get_species(s).name for s in setup["species"])
    comps = twin_components(species, setup["flux_forms"])
    comps.update({extra_component_name(s): s for s in experiment.extra_species})
    return Setting(
        grid=LatLonGrid.from_resolution(*setup["resolution"]),
        start=start,
        nsteps=int(setup["days"] * setup["steps_per_day"]),
        dt=86400.0 / setup["steps_per_day"],
        reference_time=as_datetime(setup["reference_time"], "setup.reference_time"),
        tracers=species + tuple(experiment.extra_species),
        components=comps,
        biosphere=setup["flux_forms"] == "joint",
        stations=experiment.stations,
        columns=setup["satellite_step_seconds"] is not None,
    )


def parse_config(data: dict, source: str = "<config>", base_dir: Path | None = None) -> SensitivityConfig:
    """A validated :class:`SensitivityConfig` from the parsed TOML ``data`` (errors name ``source``)."""
    try:
        return _parse(data, source, base_dir)
    except ConfigError as exc:
        if exc.source:
            raise
        bare = str(exc).removeprefix(f"[{exc.path}] ") if exc.path else str(exc)
        raise ConfigError(bare, exc.path, source) from None


def _parse(data: dict, source: str, base_dir: Path | None) -> SensitivityConfig:
    _check_keys(data, TOP_KEYS, "")
    for key in ("setup", "experiment", "posterior", "outputs"):
        if key in data and not isinstance(data[key], dict):
            _fail(key, f"expected a table [{key}]")
    for key in ("scenario", "metric"):
        if key in data and not isinstance(data[key], list):
            _fail(key, f"expected an array of tables [[{key}]]")
    setup = parse_setup(data.get("setup", {}))
    experiment = _parse_experiment(data.get("experiment", {}), setup)
    setting = make_setting(setup, experiment)
    raw = data.get("scenario", [])
    if not raw:
        _fail("scenario", "no [[scenario]] given")
    scenarios = tuple(_scenario(t, f"scenario[{k}]") for k, t in enumerate(raw))
    if base_dir is not None:  # mask files relative to the config
        scenarios = tuple(_rebase(s, base_dir) for s in scenarios)
    validate_scenarios(scenarios, setting)
    for k, s in enumerate(scenarios):  # regions must cover a cell of the grid
        for c in s.changes:
            c.region.mask(setting.grid, c.default_share(), f"scenario[{k}] region")
    metrics = tuple(_metric(t, f"metric[{k}]") for k, t in enumerate(data.get("metric", [])))
    validate_metrics(metrics, setting)
    for k, m in enumerate(metrics):
        if m.kind == "flux":
            m.region.mask(setting.grid, "land", f"metric[{k}] region")
    if experiment.add_biosphere_fluxes:
        for k, key in enumerate(experiment.add_biosphere_fluxes):
            setting.tracer(key.split(":")[0], f"experiment.add_biosphere_fluxes[{k}]")
    for k, r in enumerate(experiment.budget_regions):
        RegionSpec(r).mask(setting.grid, experiment.budget_share, f"experiment.budget_regions[{k}]")
    posterior = _parse_posterior(data["posterior"], setting) if "posterior" in data else None
    outputs = _parse_outputs(data.get("outputs", {}))
    return SensitivityConfig(
        setup=setup,
        experiment=experiment,
        scenarios=scenarios,
        metrics=metrics,
        posterior=posterior,
        outputs=outputs,
        setting=setting,
        source=source,
    )


def _rebase(s: Scenario, base: Path) -> Scenario:
    def fix(c):
        r = c.region
        if r.mask_file is None or Path(r.mask_file).is_absolute():
            return c
        return dataclasses.replace(c, region=dataclasses.replace(r, mask_file=str(base / r.mask_file)))

    return dataclasses.replace(s, changes=tuple(fix(c) for c in s.changes))


def load_sensitivity_config(path) -> SensitivityConfig:
    """Read and validate a sensitivity configuration (TOML); see the module docstring.

    Raises:
        ConfigError: unknown keys, wrong types or impossible values (the message names the file and the
            key path, and lists what is allowed); FileNotFoundError: no such file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"sensitivity config {path} does not exist") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", "", str(path)) from None
    return parse_config(data, str(path), base_dir=path.parent)
