"""Scenario definitions: what changes, where, when and by how much (validated dataclasses).

A :class:`Scenario` is a named list of changes; each change is one of

* :class:`FluxChange`: a flux is scaled or shifted. The flux is a flux-composer component of the problem
  (``"fossil"``, ``"ocean"``, ``"nee"``, ``"ch4_anthropogenic"``, ``"wetland"``, the inventory component of
  an extra species such as ``"hfc134a_anthropogenic"``), a biosphere flux (:data:`BIOSPHERE_KEYS`, e.g.
  ``"CO2:npp"`` = the net primary production as an atmospheric flux ``AR - GPP``, ``"CH4:soil"``), optionally
  restricted to plant functional types (``pfts = ["forest"]``, CO2 keys only), or for an additive change a
  species. Magnitude: ``factor`` (``F -> factor F``), a yearly ``schedule`` of factors (a step function:
  the factor of the last listed year that has begun, 1 before the first), or ``add`` (a flux density in
  mol m-2 s-1, or a regional total in the species' reporting unit such as ``PgC/yr`` spread uniformly
  over the region's area).
* :class:`ParameterChange`: biosphere parameter multipliers times ``factor`` (per-PFT parameters for
  chosen PFTs). Inside a region the atmosphere sees ``F(p) + m (F(p') - F(p))``: the biosphere has no
  lateral exchange between cells, so this is the regional parameter change itself. The run with ``p'``
  starts at the window start; a period that begins later applies the flux difference from its start
  (pools' memory of the earlier days is not removed: small for windows of weeks).
* :class:`AreaChange`: land-cover change as a PFT-fraction change. ``SurfaceMaps`` and the biosphere's
  tiling are static NumPy (a different map means another compiled model whose new tiles have no spun-up
  state), so the change is applied as a re-weighting of the existing tiles: cell fluxes are
  ``sum_t frac_t f_t`` over tiles, and a fraction change ``dfrac_t`` adds ``sum_t dfrac_t f_t`` (per m2 of
  tile ``f_t`` of the gaining PFT in the same cell: the new area behaves like the PFT's existing area
  there). Only PFTs that already have a tile in a cell can gain area there; what cannot be applied is
  reported. Carbon fluxes (GPP, AR, HR) only: cell-level CH4/N2O and fire keep their maps.

Every change has a region (a named region of :mod:`diffflux.regions`, a lat-lon ``box`` or a mask from a
netCDF file; default the globe) and a period (default the window). Everything here is checked against a
:class:`Setting` (grid, window, tracers, components), known before any computation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from diffflux.config import ConfigError
from diffflux.grid import LatLonGrid

PFT_GROUPS: dict[str, tuple[str, ...]] = {
    "forest": ("TrEF", "TrDF", "TeBF", "TeNF", "BoF"),
    "grass": ("C3G", "C4G"),
    "savanna": ("SAV",),
    "shrub": ("SHR",),
    "tundra": ("TUN",),
    "crop": ("CRP",),
}
"""PFT groups accepted wherever PFT codes are (``"all"`` = every PFT)."""

GROSS_CO2: dict[str, tuple[float, float, float]] = {
    "CO2:biosphere": (1.0, 1.0, 1.0),
    "CO2:gpp": (1.0, 0.0, 0.0),
    "CO2:npp": (1.0, 1.0, 0.0),
    "CO2:respiration": (0.0, 1.0, 1.0),
}
"""CO2 biosphere fluxes built from (GPP, AR, HR) with these weights (atmospheric sign: ``AR + HR - GPP``
for ``CO2:biosphere``, ``-GPP`` for ``CO2:gpp``, ``AR - GPP = -NPP`` for ``CO2:npp``); the only keys that
can be restricted to PFTs (they are sums over tiles)."""

SHARES = ("land", "ocean", "area")


def _fail(path: str, message: str):
    """Raise the project's :class:`~diffflux.config.ConfigError` for key ``path``."""
    raise ConfigError(message, path)


def biosphere_keys() -> tuple[str, ...]:
    """Biosphere flux keys a change or an experiment can name."""
    from diffflux.models.biosphere.fluxes import FLUX_KEYS

    return tuple(dict.fromkeys(FLUX_KEYS + tuple(GROSS_CO2)))


def resolve_pfts(names: Sequence[str], path: str) -> tuple[str, ...]:
    """PFT codes (in table order) of codes and group names; ``"all"`` = every PFT."""
    from diffflux.models.biosphere.pft import PFT_CODES

    out: set[str] = set()
    for n in names:
        if n == "all":
            out.update(PFT_CODES)
        elif n in PFT_GROUPS:
            out.update(PFT_GROUPS[n])
        elif n in PFT_CODES:
            out.add(n)
        else:
            _fail(
                path,
                f"unknown PFT {n!r}; codes: {', '.join(PFT_CODES)}; groups: {', '.join(PFT_GROUPS)}, all",
            )
    if not out:
        _fail(path, "no PFTs given")
    return tuple(c for c in PFT_CODES if c in out)


def as_datetime(value, path: str) -> np.datetime64:
    """A TOML date/datetime or an ISO string as ``datetime64[s]``."""
    try:
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        if not isinstance(value, str):
            raise TypeError
        return np.datetime64(value.replace("Z", ""), "s")
    except (TypeError, ValueError):
        _fail(path, f"expected a date such as 2025-07-01 or '2025-07-01T06:00', found {value!r}")


# -------------------------------------------------------------------------------------------------
# setting: what is known before anything is computed
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    """The frame scenarios and metrics are checked against.

    Attributes:
        grid: model grid (horizontal geometry; levels irrelevant here).
        start: window start; ``nsteps`` steps of ``dt`` seconds.
        reference_time: ``t = 0`` of the run clock.
        tracers: species of the transport's tracer axis (problem species, then extra species).
        components: composer component -> species (problem components, then extra-species components).
        biosphere: whether the problem has a biosphere.
        stations: station ids sampled by the experiment.
        columns: whether satellite-like columns are sampled.
    """

    grid: LatLonGrid
    start: np.datetime64
    nsteps: int
    dt: float
    reference_time: np.datetime64
    tracers: tuple[str, ...]
    components: dict[str, str]
    biosphere: bool
    stations: tuple[str, ...] = ()
    columns: bool = False

    @property
    def end(self) -> np.datetime64:
        return self.start + np.timedelta64(int(round(self.nsteps * self.dt)), "s")

    @property
    def step_edges(self) -> np.ndarray:
        """``(nsteps + 1,)`` step boundaries (``datetime64[s]``)."""
        return self.start + (np.arange(self.nsteps + 1) * self.dt).round().astype("timedelta64[s]")

    def tracer(self, species: str, path: str) -> int:
        from diffflux.species import get_species

        try:
            name = get_species(species).name
        except ValueError as exc:
            _fail(path, str(exc))
        if name not in self.tracers:
            _fail(
                path,
                f"species {name!r} is not transported; tracers: {list(self.tracers)} (add it with "
                f"[experiment].extra_species)",
            )
        return self.tracers.index(name)


# -------------------------------------------------------------------------------------------------
# region and period
# -------------------------------------------------------------------------------------------------


def _box_fraction(grid: LatLonGrid, box) -> np.ndarray:
    """Area fraction of each cell inside ``box = (lat_min, lat_max, lon_min, lon_max)`` [degrees]; a box
    with ``lon_min > lon_max`` crosses the date line."""
    la0, la1, lo0, lo1 = box
    s = np.sin(np.deg2rad(grid.lat_edges))
    fy = np.clip(
        np.minimum(s[1:], math.sin(math.radians(la1))) - np.maximum(s[:-1], math.sin(math.radians(la0))),
        0.0,
        None,
    ) / (s[1:] - s[:-1])
    e = grid.lon_edges

    def overlap(a, b):
        return np.clip(np.minimum(e[1:], b) - np.maximum(e[:-1], a), 0.0, None)

    ox = overlap(lo0, lo1) if lo0 <= lo1 else overlap(lo0, 180.0) + overlap(-180.0, lo1)
    return fy[:, None] * (ox / np.diff(e))[None, :]


@dataclasses.dataclass(frozen=True)
class RegionSpec:
    """Where a change applies: exactly one of ``name`` (:func:`diffflux.regions.region_mask`), ``box``
    ``(lat_min, lat_max, lon_min, lon_max)`` [degrees] or ``mask_file`` + ``mask_variable`` (a netCDF
    variable ``(lat, lon)`` on the model grid, values in [0, 1]); none of them = the globe.

    ``share`` (named regions): ``"land"`` = the region's share of each cell's land (for land fluxes on
    coarse grids: a coastal cell's land flux belongs to the country owning its land), ``"ocean"`` the same
    for the sea, ``"area"`` = the fraction of the cell's area; None = the change's default (``"ocean"`` for
    the ocean component, else ``"land"``).
    """

    name: str | None = None
    box: tuple[float, float, float, float] | None = None
    mask_file: str | None = None
    mask_variable: str | None = None
    share: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.box:
            return "box({:g}..{:g}N, {:g}..{:g}E)".format(*self.box)
        if self.mask_file:
            return f"{self.mask_file}:{self.mask_variable}"
        return "globe"

    def validate(self, path: str) -> None:
        given = [k for k in ("name", "box", "mask_file") if getattr(self, k) is not None]
        if len(given) > 1:
            _fail(path, f"give one of region, box or mask_file, found {given}")
        if self.share is not None and self.share not in SHARES:
            _fail(f"{path}.share", f"must be one of {list(SHARES)}, found {self.share!r}")
        if self.name is not None:
            from diffflux.regions import region

            try:
                region(self.name)
            except (KeyError, ValueError) as exc:
                _fail(f"{path}.region", str(exc).strip("'\""))
        if self.box is not None:
            b = self.box
            if len(b) != 4 or not (-90 <= b[0] < b[1] <= 90) or not all(-180 <= v <= 180 for v in b[2:]):
                _fail(
                    f"{path}.box",
                    f"must be [lat_min, lat_max, lon_min, lon_max] with -90 <= lat_min < "
                    f"lat_max <= 90 and longitudes in [-180, 180], found {list(b)}",
                )
        if (self.mask_file is None) != (self.mask_variable is None):
            _fail(path, "mask_file and mask_variable go together")

    def mask(self, grid: LatLonGrid, default_share: str = "land", path: str = "region") -> np.ndarray:
        """``(nlat, nlon)`` fraction in [0, 1]; raises if it covers no cell of ``grid``."""
        if self.box is not None:
            m = _box_fraction(grid, self.box)
        elif self.mask_file is not None:
            m = _mask_from_file(self.mask_file, self.mask_variable, grid, path)
        else:
            from diffflux.regions import region_mask

            share = self.share or default_share
            name = self.name or "globe"
            m = np.asarray(region_mask(grid, name, share=None if share == "area" else share))
        if not np.any(m > 0):
            _fail(
                path,
                f"region {self.label!r} covers no cell of the {grid.nlat} x {grid.nlon} grid "
                f"(share={self.share or default_share!r})",
            )
        return np.asarray(m, dtype=np.float64)


def _mask_from_file(path_nc: str, variable: str, grid: LatLonGrid, path: str) -> np.ndarray:
    import xarray as xr

    try:
        with xr.open_dataset(path_nc) as ds:
            if variable not in ds:
                _fail(
                    f"{path}.mask_variable",
                    f"{path_nc} has no variable {variable!r}; variables: {sorted(ds.data_vars)}",
                )
            m = np.asarray(ds[variable].values, dtype=np.float64)
    except FileNotFoundError:
        _fail(f"{path}.mask_file", f"no such file {path_nc!r}")
    if m.shape != (grid.nlat, grid.nlon):
        _fail(
            f"{path}.mask_variable",
            f"{path_nc}:{variable} has shape {m.shape}; the model grid is "
            f"(lat, lon) = ({grid.nlat}, {grid.nlon}), south to north, from -180 E",
        )
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        _fail(f"{path}.mask_variable", f"{path_nc}:{variable} must hold fractions in [0, 1]")
    return m


@dataclasses.dataclass(frozen=True)
class Period:
    """``start <= t < end`` (either None = the window's edge)."""

    start: np.datetime64 | None = None
    end: np.datetime64 | None = None

    @property
    def label(self) -> str:
        if self.start is None and self.end is None:
            return "window"
        return f"{self.start or '...'} .. {self.end or '...'}"

    def validate(self, setting: Setting, path: str) -> None:
        s = self.start if self.start is not None else setting.start
        e = self.end if self.end is not None else setting.end
        if self.start is not None and self.end is not None and self.end <= self.start:
            _fail(path, f"end {e} must come after start {s}")
        if e <= setting.start or s >= setting.end:
            _fail(path, f"period {s} .. {e} lies outside the window {setting.start} .. {setting.end}")

    def weights(self, edges: np.ndarray) -> np.ndarray:
        """``(nsteps,)`` fraction of each step (``edges`` ``(nsteps + 1,)`` datetime64) inside the period."""
        t = (edges - edges[0]).astype("timedelta64[s]").astype(np.float64)
        s = -np.inf if self.start is None else float((self.start - edges[0]) / np.timedelta64(1, "s"))
        e = np.inf if self.end is None else float((self.end - edges[0]) / np.timedelta64(1, "s"))
        inside = np.clip(np.minimum(t[1:], e) - np.maximum(t[:-1], s), 0.0, None)
        return inside / np.diff(t)


# -------------------------------------------------------------------------------------------------
# changes
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FluxChange:
    """Scale or shift one flux (see the module docstring).

    Attributes:
        component / flux / species: exactly one: a composer component, a biosphere key, a species (``add``).
        pfts: PFT codes (CO2 biosphere keys only; after :func:`resolve_pfts`).
        factor, schedule, add: exactly one magnitude. ``schedule``: ``((year, factor), ...)`` increasing.
        units: of ``add``: ``"mol m-2 s-1"`` or the species' reporting unit (e.g. ``"PgC/yr"``: a regional
            total spread over the region).
    """

    component: str | None = None
    flux: str | None = None
    species: str | None = None
    pfts: tuple[str, ...] = ()
    factor: float | None = None
    schedule: tuple[tuple[int, float], ...] = ()
    add: float | None = None
    units: str = "mol m-2 s-1"
    region: RegionSpec = RegionSpec()
    period: Period = Period()
    kind = "flux"

    @property
    def target(self) -> str:
        return self.component or self.flux or self.species

    def species_of(self, setting: Setting) -> str:
        if self.component is not None:
            return setting.components[self.component]
        if self.flux is not None:
            return self.flux.split(":")[0]
        from diffflux.species import get_species

        return get_species(self.species).name

    def default_share(self) -> str:
        return "ocean" if self.component == "ocean" else "land"

    def validate(self, setting: Setting, path: str) -> None:
        targets = [k for k in ("component", "flux", "species") if getattr(self, k) is not None]
        if len(targets) != 1:
            _fail(
                path,
                f"a flux change names exactly one of component, flux or species; found {targets or 'none'}",
            )
        mags = [k for k in ("factor", "schedule", "add") if getattr(self, k) not in (None, ())]
        if len(mags) != 1:
            _fail(path, f"give exactly one magnitude: factor, schedule or add; found {mags or 'none'}")
        if self.component is not None and self.component not in setting.components:
            _fail(
                f"{path}.component",
                f"unknown component {self.component!r}; components: {sorted(setting.components)}",
            )
        if self.flux is not None:
            keys = biosphere_keys()
            if self.flux not in keys:
                _fail(f"{path}.flux", f"unknown biosphere flux {self.flux!r}; fluxes: {list(keys)}")
            if not setting.biosphere:
                _fail(f"{path}.flux", "the problem has no biosphere (set [setup].flux_forms = 'joint')")
        if self.species is not None and self.add is None:
            _fail(path, "a change of a whole species is additive: give add (and units), or name a component")
        sp = self.species_of(setting) if self.component or self.flux else self.species
        setting.tracer(sp, f"{path}.{targets[0]}")
        if self.pfts and (self.flux not in GROSS_CO2):
            _fail(
                f"{path}.pfts",
                f"PFTs restrict only the CO2 biosphere fluxes {list(GROSS_CO2)} (sums over "
                f"tiles); {self.target!r} is not one",
            )
        if self.factor is not None and not (self.factor >= 0 and math.isfinite(self.factor)):
            _fail(f"{path}.factor", f"must be a finite number >= 0, found {self.factor}")
        if self.schedule:
            years = [y for y, _ in self.schedule]
            if years != sorted(set(years)):
                _fail(f"{path}.schedule", f"years must be distinct and increasing, found {years}")
            bad = [(y, f) for y, f in self.schedule if not (f >= 0 and math.isfinite(f))]
            if bad:
                _fail(f"{path}.schedule", f"factors must be finite and >= 0, found {bad}")
            if np.datetime64(f"{years[0]:04d}-01-01", "s") >= setting.end:
                _fail(
                    f"{path}.schedule",
                    f"the schedule starts in {years[0]}, after the window "
                    f"{setting.start} .. {setting.end}: the change would do nothing",
                )
        if self.add is not None:
            if not math.isfinite(self.add):
                _fail(f"{path}.add", f"must be finite, found {self.add}")
            allowed = self.allowed_units(setting)
            if self.units not in allowed:
                _fail(f"{path}.units", f"must be one of {allowed}, found {self.units!r}")
        elif self.units != "mol m-2 s-1":
            _fail(f"{path}.units", "units go with add only")
        self.region.validate(path)
        self.period.validate(setting, f"{path}.start/end")

    def allowed_units(self, setting: Setting) -> list[str]:
        from diffflux.species import get_species

        return ["mol m-2 s-1", get_species(self.species_of(setting)).flux_unit]

    def factors(self, edges: np.ndarray) -> np.ndarray:
        """``(nsteps,)`` factor of each step (``factor`` or the schedule at the step's middle)."""
        n = edges.size - 1
        if self.factor is not None:
            return np.full(n, float(self.factor))
        if not self.schedule:
            return np.ones(n)
        mid = edges[:-1] + (edges[1:] - edges[:-1]) // 2
        year = mid.astype("datetime64[Y]").astype(int) + 1970
        out = np.ones(n)
        for y, f in self.schedule:
            out[year >= y] = f
        return out


@dataclasses.dataclass(frozen=True)
class ParameterChange:
    """Biosphere parameter multipliers times ``factor`` (> 0), for ``pfts`` of per-PFT parameters."""

    parameters: tuple[str, ...]
    factor: float
    pfts: tuple[str, ...] = ()
    region: RegionSpec = RegionSpec()
    period: Period = Period()
    kind = "parameter"

    def default_share(self) -> str:
        return "land"

    def validate(self, setting: Setting, path: str) -> None:
        from diffflux.models.biosphere.params import GLOBAL_DEFAULTS, PFT_MULTIPLIED

        if not setting.biosphere:
            _fail(path, "the problem has no biosphere (set [setup].flux_forms = 'joint')")
        if not self.parameters:
            _fail(f"{path}.parameter", "no parameter given")
        for p in self.parameters:
            if p not in PFT_MULTIPLIED and p not in GLOBAL_DEFAULTS:
                _fail(
                    f"{path}.parameter",
                    f"unknown parameter {p!r}; PFT parameters: {', '.join(PFT_MULTIPLIED)}; "
                    f"global parameters: {', '.join(GLOBAL_DEFAULTS)}",
                )
            if self.pfts and p in GLOBAL_DEFAULTS:
                _fail(f"{path}.pfts", f"{p!r} is a global parameter: it has no PFTs")
        if not (self.factor > 0 and math.isfinite(self.factor)):
            _fail(f"{path}.factor", f"a parameter multiplier must be finite and > 0, found {self.factor}")
        self.region.validate(path)
        self.period.validate(setting, f"{path}.start/end")


@dataclasses.dataclass(frozen=True)
class AreaChange:
    """Land-cover change: PFTs ``to`` gain area from ``source`` (PFT codes or ``("bare",)``).

    ``factor``: the area of ``to`` in each cell times ``factor`` (>= 0; e.g. 1.1 = +10 % forest area);
    ``fraction``: that fraction of each cell's land (0 < fraction <= 1) converted. Both scale with the
    region mask's value in the cell.
    """

    to: tuple[str, ...]
    source: tuple[str, ...] = ("bare",)
    factor: float | None = None
    fraction: float | None = None
    region: RegionSpec = RegionSpec()
    period: Period = Period()
    kind = "area"

    def default_share(self) -> str:
        return "land"

    def validate(self, setting: Setting, path: str) -> None:
        if not setting.biosphere:
            _fail(path, "the problem has no biosphere (set [setup].flux_forms = 'joint')")
        if "CO2" not in setting.tracers:
            _fail(path, "an area change acts on CO2 fluxes; CO2 is not transported")
        if (self.factor is None) == (self.fraction is None):
            _fail(path, "give exactly one of factor or fraction")
        if self.factor is not None and not (self.factor >= 0 and math.isfinite(self.factor)):
            _fail(f"{path}.factor", f"must be finite and >= 0, found {self.factor}")
        if self.fraction is not None and not (0 < self.fraction <= 1):
            _fail(f"{path}.fraction", f"must lie in (0, 1], found {self.fraction}")
        if "bare" in self.source and len(self.source) > 1:
            _fail(f"{path}.from", "'bare' cannot be combined with PFTs")
        if set(self.to) & set(self.source):
            _fail(
                f"{path}.from", f"PFTs {sorted(set(self.to) & set(self.source))} are both gaining and losing"
            )
        self.region.validate(path)
        self.period.validate(setting, f"{path}.start/end")


Change = FluxChange | ParameterChange | AreaChange


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named set of changes run together."""

    name: str
    changes: tuple[Change, ...]
    description: str = ""

    def validate(self, setting: Setting, path: str) -> None:
        if not self.name or not all(c.isalnum() or c in "_-+.%" for c in self.name):
            _fail(
                f"{path}.name", f"must be a non-empty name of letters, digits and _-+.%, found {self.name!r}"
            )
        if not self.changes:
            _fail(path, "no change given")
        for k, c in enumerate(self.changes):
            c.validate(setting, f"{path}.change[{k}]" if len(self.changes) > 1 else path)
        for kind in ("parameter", "area"):
            if sum(c.kind == kind for c in self.changes) > 1:
                _fail(
                    path,
                    f"at most one {kind} change per scenario (one biosphere run / one tiling each); "
                    f"split it into two scenarios or list the parameters in one change",
                )


def validate_all(items, setting: Setting, path: str) -> None:
    """Validate named items (scenarios or metrics): unique names, then each at ``path[k]``."""
    names = [x.name for x in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        _fail(path, f"{path} names must be unique; repeated: {dup}")
    for k, x in enumerate(items):
        x.validate(setting, f"{path}[{k}]")


def validate_scenarios(scenarios: Sequence[Scenario], setting: Setting, path: str = "scenario") -> None:
    validate_all(scenarios, setting, path)
