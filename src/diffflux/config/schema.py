"""The configuration schema of ``diffflux run``: every section, key, type, default and allowed value.

The schema is data: :func:`diffflux.config.load_config` validates against it, :func:`example_toml`
writes the commented example config (``diffflux init``) from it, and :func:`reference_markdown`
writes the reference table in ``docs/config.md`` from it, so the three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from diffflux.inversion.problem import DEFAULT_CONTINUOUS_SITES, DEFAULT_FLASK_SITES

_RES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_resolution(v: str) -> str | None:
    m = _RES.match(v)
    if not m:
        return "must look like '4x5' (latitude x longitude spacing in degrees)"
    dlat, dlon = float(m.group(1)), float(m.group(2))
    if dlat <= 0 or dlon <= 0:
        return "spacings must be positive"
    if abs(180.0 / dlat - round(180.0 / dlat)) > 1e-9:
        return f"180 / {dlat} is not a whole number of latitude bands"
    n = 360.0 / dlon
    if abs(n - round(n)) > 1e-9 or round(n) % 2:
        return f"360 / {dlon} must be an even whole number of longitudes"
    return None


def _check_date(v: str) -> str | None:
    if not _DATE.match(v):
        return "must be a date YYYY-MM-DD"
    import numpy as np

    try:
        np.datetime64(v, "D")
    except ValueError:
        return "is not a valid calendar date"
    return None


def _positive(v) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _between(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(v):
        return None if lo <= v <= hi else f"must be between {lo} and {hi}"

    return check


def _spinup(v) -> str | None:
    if isinstance(v, str):
        return None if v == "newton" else 'must be "newton" or a number of years >= 0'
    return None if v >= 0 else 'must be "newton" or a number of years >= 0'


def _pair_positive(v) -> str | None:
    if len(v) != 2:
        return f"must hold 2 lengths [land_km, ocean_km], found {len(v)}"
    return None if all(x > 0 for x in v) else "lengths must be > 0"


@dataclasses.dataclass(frozen=True)
class Key:
    """One configuration key.

    Attributes:
        name: key name inside its section.
        type: ``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"list[str]"``, ``"list[float]"``,
            ``"str|int"``, ``"list[float]|none"`` (``none``: the key may be set to the string "none").
        default: value used when the key is absent.
        doc: one-line description with units.
        choices: allowed values (strings), if restricted.
        check: extra check returning an error message or None.
        item_choices: allowed values of the items of a list.
    """

    name: str
    type: str
    default: Any
    doc: str
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None
    item_choices: Callable[[], list[str]] | None = None


@dataclasses.dataclass(frozen=True)
class Section:
    name: str
    doc: str
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key | None:
        for k in self.keys:
            if k.name == name:
                return k
        return None


def _species_names() -> list[str]:
    return ["CO2", "CH4"]


def _station_codes() -> list[str]:
    from diffflux.observations import load_station_catalogue

    return sorted(str(c) for c in load_station_catalogue()["site"].values)


def _parameter_names() -> list[str]:
    from diffflux.models.biosphere.params import GLOBAL_DEFAULTS, PFT_MULTIPLIED

    return sorted(set(PFT_MULTIPLIED) | set(GLOBAL_DEFAULTS))


def _check_regions(v: list[str]) -> str | None:
    import difflib

    from diffflux.regions import region_names
    from diffflux.regions.masks import region

    for name in v:
        try:
            region(name)
        except (KeyError, ValueError):
            names = region_names()
            bare = [n.split(":", 1)[1] for n in names if ":" in n]
            hint = difflib.get_close_matches(name, names + bare, n=3)
            return (
                f"unknown region {name!r}"
                + (f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else "")
                + "; `diffflux info --regions` lists the names"
            )
    return None


SECTIONS: tuple[Section, ...] = (
    Section(
        "run",
        "what to do and how to name it",
        (
            Key(
                "mode",
                "str",
                "twin",
                '"twin": pseudo-observations from a random truth, then invert; "invert": '
                'invert the observations of [observations].file; "forward": prior run only',
                choices=("twin", "invert", "forward"),
            ),
            Key("title", "str", "diffflux run", "title written into every output file and the report"),
            Key(
                "seed",
                "int",
                0,
                "seed of the twin's truth and noise (fixed: re-runs give identical results)",
                check=_non_negative,
            ),
        ),
    ),
    Section(
        "grid",
        "the model grid",
        (
            Key(
                "resolution",
                "str",
                "10x12",
                "latitude x longitude spacing [degrees]",
                check=_check_resolution,
            ),
            Key(
                "levels",
                "int",
                4,
                "number of vertical levels (stretched hybrid, top at 10 hPa)",
                check=_between(2, 100),
            ),
            Key(
                "horizontal_diffusion",
                "bool",
                True,
                "add the horizontal (sub-grid) diffusion to the transport",
            ),
        ),
    ),
    Section(
        "period",
        "the assimilation window",
        (
            Key(
                "start",
                "str",
                "2021-07-01",
                "first day of the window (YYYY-MM-DD, 00 UTC)",
                check=_check_date,
            ),
            Key("days", "int", 14, "window length [days]", check=_between(1, 3660)),
            Key(
                "steps_per_day", "int", 8, "transport steps per day (8: 3-hour steps)", check=_between(1, 288)
            ),
            Key(
                "reference_time",
                "str",
                "2021-01-01",
                "zero of the model clock and of the built-in climatology's seasonal cycle (YYYY-MM-DD)",
                check=_check_date,
            ),
        ),
    ),
    Section(
        "species",
        "the tracers transported and inverted",
        (Key("names", "list[str]", ["CO2", "CH4"], "species (CO2 and/or CH4)", item_choices=_species_names),),
    ),
    Section(
        "met",
        "the meteorology driving the transport",
        (
            Key(
                "source",
                "str",
                "climatology",
                '"climatology": the built-in analytic climatology (no files)',
                choices=("climatology",),
            ),
        ),
    ),
    Section(
        "biosphere",
        "the VISIT-like biosphere (prior of NEE and wetland CH4, optimised parameters)",
        (
            Key(
                "spinup",
                "str|int",
                1,
                '"newton": periodic-orbit spin-up (cyclo-stationary, slower); a number '
                "n: n plain simulated years from the default initial state",
                check=_spinup,
            ),
            Key(
                "parameters",
                "list[str]",
                ["pmax", "q10_resp"],
                "biosphere multipliers in the control vector (log-multipliers; empty: none)",
                item_choices=_parameter_names,
            ),
            Key("parameter_sigma", "float", 0.2, "prior 1-sigma of each log-multiplier [1]", check=_positive),
        ),
    ),
    Section(
        "fluxes",
        "flux components and their prior uncertainties",
        (
            Key(
                "forms",
                "str",
                "joint",
                '"joint": fossil, ocean, biosphere-linked NEE (additive), anthropogenic '
                'and wetland CH4 (log-normal); "additive": only additive corrections, no biosphere (a linear '
                "problem)",
                choices=("joint", "additive"),
            ),
            Key(
                "block_days",
                "float",
                7.0,
                "length of the flux-correction time blocks [days]",
                check=_positive,
            ),
            Key(
                "correlation_km",
                "list[float]|none",
                "none",
                "prior spatial correlation lengths [land_km, "
                "ocean_km] (exponential in great-circle distance, with temporal correlation over one block "
                'length), or "none" for a diagonal prior',
                check=_pair_positive,
            ),
            Key(
                "sigma_fossil",
                "float",
                0.3,
                "prior 1-sigma of the fossil CO2 log-correction [1]",
                check=_positive,
            ),
            Key(
                "sigma_ocean",
                "float",
                1e-8,
                "prior 1-sigma of the ocean CO2 correction over the ocean [mol m-2 s-1]",
                check=_positive,
            ),
            Key(
                "sigma_nee",
                "float",
                1e-7,
                "prior 1-sigma of the NEE correction over land, scaled by land fraction [mol m-2 s-1]",
                check=_positive,
            ),
            Key(
                "sigma_ch4_anthropogenic",
                "float",
                0.3,
                "prior 1-sigma of the anthropogenic CH4 log-correction "
                "[1] (additive forms: 3e-10 mol m-2 s-1 x land fraction)",
                check=_positive,
            ),
            Key(
                "sigma_wetland",
                "float",
                0.3,
                "prior 1-sigma of the wetland CH4 log-correction [1]",
                check=_positive,
            ),
        ),
    ),
    Section(
        "control",
        "further control-vector blocks",
        (
            Key(
                "initial", "bool", True, "optimise a global initial offset per tracer (1 ppm CO2, 10 ppb CH4)"
            ),
            Key(
                "biases", "bool", True, "optimise a bias per satellite platform and species (0.3 ppm, 3 ppb)"
            ),
        ),
    ),
    Section(
        "observations",
        "the observing network",
        (
            Key(
                "flask_sites",
                "list[str]",
                list(DEFAULT_FLASK_SITES),
                "weekly flask sites (station codes of the packaged catalogue)",
                item_choices=_station_codes,
            ),
            Key(
                "continuous_sites",
                "list[str]",
                list(DEFAULT_CONTINUOUS_SITES),
                "continuous sites (afternoon hours 12-16 LST)",
                item_choices=_station_codes,
            ),
            Key(
                "satellite",
                "bool",
                True,
                "satellite-like column retrievals along a sun-synchronous track, land only",
            ),
            Key(
                "satellite_step_seconds",
                "float",
                600.0,
                "along-track spacing of retained soundings [s]",
                check=_positive,
            ),
            Key(
                "file",
                "str",
                "",
                'observation file for mode = "invert" (ObsPack netCDF or diffflux CSV); empty in twins',
            ),
        ),
    ),
    Section(
        "solver",
        "the minimisation",
        (
            Key(
                "name",
                "str",
                "lbfgs",
                '"lbfgs" (optax L-BFGS with zoom line search), "adam", '
                '"gauss-newton" (CG with Lanczos eigenpairs), "exact" (small problems: Jacobian, full '
                "posterior)",
                choices=("lbfgs", "adam", "gauss-newton", "exact"),
            ),
            Key(
                "max_iter",
                "int",
                40,
                "maximum iterations (outer iterations for gauss-newton)",
                check=_positive,
            ),
            Key("gtol", "float", 1e-4, "stop when |grad J| <= gtol |grad J(prior)|", check=_positive),
            Key("learning_rate", "float", 0.05, "Adam step size [whitened units]", check=_positive),
            Key(
                "uncertainty",
                "str",
                "lanczos",
                'posterior uncertainty: "lanczos" (low-rank Hessian at the '
                'posterior), "exact" (dense, small problems), "none"',
                choices=("lanczos", "exact", "none"),
            ),
            Key("lanczos_rank", "int", 40, "Lanczos iterations / Hessian eigenpairs kept", check=_positive),
            Key(
                "checkpoint_every",
                "int",
                1,
                "write the optimiser checkpoint every n iterations (a killed run resumes from it)",
                check=_positive,
            ),
        ),
    ),
    Section(
        "outputs",
        "what to write",
        (
            Key("directory", "str", "diffflux-output", "output folder (created; must be writable)"),
            Key("plots", "bool", True, "write PNG plots (needs matplotlib)"),
            Key(
                "regions",
                "list[str]",
                [
                    "globe",
                    "NH",
                    "SH",
                    "land",
                    "ocean",
                    "lat:30N-90N",
                    "lat:30S-30N",
                    "lat:90S-30S",
                    "ar6:ENA",
                    "ar6:NEU",
                    "ar6:EAS",
                    "ar6:NES",
                    "ar6:WAF",
                ],
                "regions of budgets.csv (diffflux.regions names: globe, land, ocean, NH, SH, lat:A-B bands, "
                "ar6:XXX, basin:NAME; `diffflux info --regions` lists them)",
                check=_check_regions,
            ),
            Key(
                "countries",
                "list[str]",
                ["USA", "CHN", "IND", "BRA", "RUS", "JPN", "DEU"],
                "countries of budgets.csv (ISO 3166 alpha-3 codes or English names), land share of each cell",
                check=_check_regions,
            ),
        ),
    ),
    Section(
        "device",
        "numerics and devices",
        (
            Key(
                "precision",
                "str",
                "float64",
                "floating-point precision of the whole chain",
                choices=("float32", "float64"),
            ),
            Key(
                "checkpoint",
                "str",
                "nested",
                "gradient checkpointing of the transport scan (auto: per-step if it fits half the device "
                "memory or DIFFFLUX_MEMORY_BUDGET_GB, else nested)",
                choices=("none", "step", "nested", "auto"),
            ),
        ),
    ),
)


def section(name: str) -> Section | None:
    for s in SECTIONS:
        if s.name == name:
            return s
    return None


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def _wrap(text: str, prefix: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=prefix, subsequent_indent=prefix)


def example_toml() -> str:
    """The fully commented example config (``diffflux init``): every key at its default."""
    lines = [
        "# diffflux configuration (TOML). Every key is optional; shown here at its default.",
        "# Run with:  diffflux run THIS_FILE      Reference: docs/config.md",
        "",
    ]
    for s in SECTIONS:
        lines += [f"# ---- {s.doc}", f"[{s.name}]"]
        for k in s.keys:
            doc = k.doc
            if k.choices:
                doc += f". Allowed: {', '.join(map(str, k.choices))}"
            lines += _wrap(doc, "# ")
            lines.append(f"{k.name} = {_toml_value(k.default)}")
        lines.append("")
    return "\n".join(lines)


def reference_markdown() -> str:
    """The config reference (``docs/config.md``), generated from :data:`SECTIONS`."""
    out = [
        "# Configuration reference",
        "",
        "Generated from `src/diffflux/config/schema.py` by `python -m diffflux.config --markdown` "
        "(a test checks it is current). `diffflux init` writes the same keys as a commented TOML file. "
        "Unknown sections or keys, wrong types and impossible values are errors that name the key path "
        "and the allowed values, raised before any computation.",
        "",
    ]
    for s in SECTIONS:
        out += [f"## `[{s.name}]`: {s.doc}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for k in s.keys:
            doc = k.doc.replace("|", "\\|")
            if k.choices:
                doc += ". Allowed: " + ", ".join(f"`{c}`" for c in k.choices) + "."
            out.append(f"| `{k.name}` | {k.type} | `{_toml_value(k.default)}` | {doc} |")
        out.append("")
    return "\n".join(out)
