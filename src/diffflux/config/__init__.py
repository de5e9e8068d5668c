"""Configuration of ``diffflux run``: TOML in, validated :class:`Config` out.

``load_config(path)`` reads a TOML file and checks it against :mod:`diffflux.config.schema` before any
computation: unknown sections or keys, wrong types and impossible values raise :class:`ConfigError`,
whose message names the file, the key path (``solver.max_iter``), what was expected (type, allowed
values) and what was found. Absent keys take their documented defaults; :meth:`Config.to_toml` writes
the fully resolved config (echoed into every output file).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from typing import Any

from diffflux.config.schema import SECTIONS, Key, example_toml, reference_markdown, section

__all__ = [
    "Config",
    "ConfigError",
    "load_config",
    "parse_config",
    "default_config",
    "example_toml",
    "reference_markdown",
    "SECTIONS",
]


class ConfigError(ValueError):
    """A configuration that cannot be run. ``path`` is the key path (``"grid.resolution"``)."""

    def __init__(self, message: str, path: str = "", source: str = ""):
        self.path = path
        self.source = source
        where = f"{source}: " if source else ""
        key = f"[{path}] " if path else ""
        super().__init__(f"{where}{key}{message}")


_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list[str]": "a list of strings",
    "list[float]": "a list of numbers",
    "str|int": "a string or an integer",
    "list[float]|none": 'a list of numbers or "none"',
}


def _typename(v: Any) -> str:
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, int):
        return f"integer {v}"
    if isinstance(v, float):
        return f"number {v}"
    if isinstance(v, str):
        return f"string {v!r}"
    if isinstance(v, list):
        return f"list {v!r}"
    if isinstance(v, dict):
        return "a table"
    return type(v).__name__


def _coerce(key: Key, v: Any, path: str, source: str) -> Any:
    """Check the TOML value ``v`` against ``key.type``; return it in its Python form."""
    t = key.type
    bad = ConfigError(f"expected {_TYPE_WORDS[t]}, found {_typename(v)}", path, source)
    if t == "str":
        if not isinstance(v, str):
            raise bad
    elif t == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad
    elif t == "float":
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad
        v = float(v)
    elif t == "bool":
        if not isinstance(v, bool):
            raise bad
    elif t == "str|int":
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise bad
    elif t in ("list[str]", "list[float]", "list[float]|none"):
        if t.endswith("|none") and v == "none":
            return None
        if not isinstance(v, list):
            raise bad
        item = str if t == "list[str]" else (int, float)
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, item):
                raise ConfigError(
                    f"item {i} expected {'a string' if item is str else 'a number'}, found {_typename(x)}",
                    path,
                    source,
                )
        v = [float(x) for x in v] if item is not str else list(v)
    else:  # pragma: no cover - schema error
        raise AssertionError(t)
    if key.choices is not None and v not in key.choices:
        hint = difflib.get_close_matches(str(v), [str(c) for c in key.choices], n=1)
        raise ConfigError(
            f"found {v!r}; allowed: {', '.join(map(str, key.choices))}"
            + (f" (did you mean {hint[0]!r}?)" if hint else ""),
            path,
            source,
        )
    if key.item_choices is not None:
        allowed = key.item_choices()
        for x in v:
            if x not in allowed:
                hint = difflib.get_close_matches(x, allowed, n=3)
                shown = ", ".join(allowed) if len(allowed) <= 40 else (", ".join(allowed[:40]) + ", ...")
                raise ConfigError(
                    f"unknown value {x!r}"
                    + (f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else "")
                    + f"; allowed: {shown}",
                    path,
                    source,
                )
    if key.check is not None and v is not None:
        msg = key.check(v)
        if msg:
            raise ConfigError(
                msg if "found" in msg or "unknown" in msg else f"{msg}, found {_typename(v)}", path, source
            )
    return v


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated configuration: ``values[section][key]`` with every default filled in.

    Attributes:
        values: ``{section: {key: value}}``.
        source: the file it came from ("" for defaults / strings).
    """

    values: dict
    source: str = ""

    def __getitem__(self, path: str) -> Any:
        """``cfg["solver.max_iter"]``."""
        sec, key = path.split(".", 1)
        return self.values[sec][key]

    def section(self, name: str) -> dict:
        return dict(self.values[name])

    def replace(self, **paths: Any) -> Config:
        """Copy with keys replaced, e.g. ``cfg.replace(**{"period.days": 3})``, re-validated."""
        raw = {s: dict(v) for s, v in self.values.items()}
        for path, v in paths.items():
            sec, key = path.split(".", 1)
            if v is None and section(sec).key(key).type.endswith("|none"):
                v = "none"
            raw.setdefault(sec, {})[key] = v
        return parse_config(_to_toml_types(raw), source=self.source)

    def to_toml(self) -> str:
        """The resolved config as TOML (every key)."""
        from diffflux.config.schema import _toml_value

        lines = []
        for s in SECTIONS:
            lines.append(f"[{s.name}]")
            for k in s.keys:
                v = self.values[s.name][k.name]
                lines.append(f"{k.name} = {_toml_value('none' if v is None else v)}")
            lines.append("")
        return "\n".join(lines)


def _to_toml_types(raw: dict) -> dict:
    return {s: {k: ("none" if v is None else v) for k, v in d.items()} for s, d in raw.items()}


def parse_config(data: dict, *, source: str = "") -> Config:
    """Validate a parsed TOML document ``data`` (``{section: {key: value}}``)."""
    if not isinstance(data, dict):
        raise ConfigError("the document must be a TOML table", "", source)
    names = [s.name for s in SECTIONS]
    values: dict = {}
    for sec, table in data.items():
        if section(sec) is None:
            hint = difflib.get_close_matches(sec, names, n=1)
            raise ConfigError(
                f"unknown section [{sec}]"
                + (f" (did you mean [{hint[0]}]?)" if hint else "")
                + f"; sections: {', '.join(names)}",
                sec,
                source,
            )
        if not isinstance(table, dict):
            raise ConfigError(f"expected a table [{sec}], found {_typename(table)}", sec, source)
    for s in SECTIONS:
        table = data.get(s.name, {})
        out = {}
        known = [k.name for k in s.keys]
        for key in table:
            if s.key(key) is None:
                hint = difflib.get_close_matches(key, known, n=1)
                raise ConfigError(
                    f"unknown key {key!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; keys of [{s.name}]: {', '.join(known)}",
                    f"{s.name}.{key}",
                    source,
                )
        for k in s.keys:
            path = f"{s.name}.{k.name}"
            if k.name in table:
                out[k.name] = _coerce(k, table[k.name], path, source)
            else:
                out[k.name] = (
                    None
                    if k.default == "none"
                    else (list(k.default) if isinstance(k.default, list) else k.default)
                )
        values[s.name] = out
    _cross_checks(values, source)
    return Config(values=values, source=source)


def _cross_checks(v: dict, source: str) -> None:
    """Checks that involve more than one key."""
    import numpy as np

    if not v["species"]["names"]:
        raise ConfigError("at least one species is needed; allowed: CO2, CH4", "species.names", source)
    if len(set(v["species"]["names"])) != len(v["species"]["names"]):
        raise ConfigError(f"species listed twice: {v['species']['names']}", "species.names", source)
    start = np.datetime64(v["period"]["start"], "D")
    ref = np.datetime64(v["period"]["reference_time"], "D")
    if start < ref:
        raise ConfigError(
            f"the window start {start} is before period.reference_time {ref}; it must be on or after it",
            "period.start",
            source,
        )
    mode = v["run"]["mode"]
    if mode == "invert" and not v["observations"]["file"]:
        raise ConfigError(
            'mode = "invert" needs an observation file; set observations.file (or use mode = "twin")',
            "observations.file",
            source,
        )
    if mode != "invert" and v["observations"]["file"]:
        raise ConfigError(
            f'observations.file is only read with mode = "invert" (mode is {mode!r})',
            "observations.file",
            source,
        )
    if v["observations"]["file"] and not os.path.isfile(v["observations"]["file"]):
        raise ConfigError(f"file not found: {v['observations']['file']!r}", "observations.file", source)
    obs = v["observations"]
    if mode != "invert" and not (obs["flask_sites"] or obs["continuous_sites"] or obs["satellite"]):
        raise ConfigError(
            "no observations: flask_sites and continuous_sites are empty and satellite is false",
            "observations",
            source,
        )
    if v["fluxes"]["forms"] == "additive" and v["biosphere"]["parameters"]:
        # additive forms have no biosphere; its parameters cannot be controls
        raise ConfigError(
            'fluxes.forms = "additive" has no biosphere, so biosphere.parameters must be [] '
            f"(found {v['biosphere']['parameters']})",
            "biosphere.parameters",
            source,
        )
    if v["solver"]["name"] == "exact" and v["grid"]["resolution"] not in ("10x12", "15x15", "20x24", "30x30"):
        dlat, dlon = (float(x) for x in v["grid"]["resolution"].split("x"))
        ncell = (180 / dlat) * (360 / dlon)
        if ncell > 2000:
            raise ConfigError(
                f'solver.name = "exact" forms the dense Jacobian; {ncell:.0f} grid cells per '
                'flux block is too many (use "gauss-newton" or "lbfgs")',
                "solver.name",
                source,
            )
    if v["fluxes"]["block_days"] > v["period"]["days"]:
        raise ConfigError(
            f"fluxes.block_days = {v['fluxes']['block_days']} is longer than the window "
            f"(period.days = {v['period']['days']})",
            "fluxes.block_days",
            source,
        )


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> Config:
    """Read and validate a TOML config file; raises :class:`ConfigError` (never a traceback).

    ``overrides`` ``{"section.key": value}`` (e.g. from ``--set``) replace keys of the file before the
    validation."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("config file not found", "", path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a TOML file", "", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", "", path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not a text file ({exc.reason})", "", path) from None
    for key, value in (overrides or {}).items():
        sec, _, name = key.partition(".")
        if not name:
            raise ConfigError(f"an override must name section.key, found {key!r}", key, path)
        table = data.setdefault(sec, {})
        if not isinstance(table, dict):
            raise ConfigError(f"expected a table [{sec}], found {table!r}", sec, path)
        table[name] = value
    return parse_config(data, source=path + (" (with --set)" if overrides else ""))


def default_config() -> Config:
    """The defaults of every key (the embedded default run's config)."""
    return parse_config({})
