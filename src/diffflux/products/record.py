"""The in-memory record of one run that :func:`diffflux.products.write_products` turns into files.

Everything here is NumPy (no JAX arrays): the record is assembled after the differentiable chain has
finished. Units are SI, as inside the chain: fluxes in mol m-2 s-1 (positive = to the atmosphere), mole
fractions in mol mol-1. Conversions to reporting units (ppm, PgC/yr ...) happen when files and figures
are written, through :mod:`diffflux.species`.

Flux arrays are ``(ntime, nlat, nlon)`` on ``RunRecord.grid``: the mean flux over each time block
``time_bounds[k] = (start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from diffflux.grid import LatLonGrid

ROLES = ("prior", "posterior", "truth", "prior_sigma", "posterior_sigma")
"""The arrays a :class:`FluxField` may hold, in the order they are written."""


@dataclass
class FluxField:
    """One flux component of one species on the model grid.

    Attributes:
        component: e.g. ``"fossil"``, ``"nee"``, ``"ocean"``, ``"wetland"``.
        species: ``"CO2"``, ``"CH4"`` ... (any name :func:`diffflux.species.get_species` knows).
        prior: ``(ntime, nlat, nlon)`` [mol m-2 s-1], mean over each time block.
        posterior, truth: same shape or None (forward runs have no posterior, only twins a truth).
        posterior_sigma, prior_sigma: 1-sigma uncertainty, same shape, or None.
    """

    component: str
    species: str
    prior: np.ndarray
    posterior: np.ndarray | None = None
    truth: np.ndarray | None = None
    posterior_sigma: np.ndarray | None = None
    prior_sigma: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are set, by role (:data:`ROLES` order)."""
        return {r: getattr(self, r) for r in ROLES if getattr(self, r) is not None}


@dataclass
class ObservationRecord:
    """Observations and their model equivalents.

    Attributes:
        table: observation table (:mod:`diffflux.observations.table`; dim ``obs``).
        y: ``(nobs,)`` observed values [mol mol-1] (pseudo-observations in a twin).
        prior: ``(nobs,)`` model equivalents at the prior [mol mol-1].
        posterior: ``(nobs,)`` at the posterior, or None.
        truth: ``(nobs,)`` noise-free truth equivalents (twins), or None.
        sigma: ``(nobs,)`` total observation error, 1-sigma (measurement + mismatch) [mol mol-1].
    """

    table: xr.Dataset
    y: np.ndarray
    prior: np.ndarray
    posterior: np.ndarray | None
    truth: np.ndarray | None
    sigma: np.ndarray


@dataclass
class ParameterRecord:
    """Scalar controls (biosphere parameter multipliers ...), all in the same units (e.g. log-multiplier).

    Attributes:
        names: ``(npar,)`` labels.
        prior, prior_sigma: ``(npar,)``.
        posterior, posterior_sigma, truth: ``(npar,)`` or None.
    """

    names: list[str]
    prior: np.ndarray
    posterior: np.ndarray | None
    truth: np.ndarray | None
    prior_sigma: np.ndarray
    posterior_sigma: np.ndarray | None


@dataclass
class RunRecord:
    """Everything the output products of one run are made of.

    Attributes:
        grid: model grid.
        time_bounds: ``(ntime, 2)`` datetime64 edges of the flux time blocks.
        fluxes: flux components.
        observations: observations and model equivalents, or None.
        parameters: scalar controls, or None.
        history: ``{"iteration", "cost", "grad_norm"}`` 1-D arrays of equal length, or None.
        budgets: rows with keys ``region, period_start, period_end, component, species, unit, prior,
            posterior, prior_sigma, posterior_sigma, truth`` (None where unknown).
        summary: JSON-able diagnostics. Keys the report knows how to label: ``status, iterations,
            wall_time_s, cost_prior, cost_posterior, reduced_chi_square, dofs, n_obs, n_controls,
            error_reduction`` (a number or a mapping name -> number); any other key is listed as well.
        config_toml: the full resolved configuration (echoed into every file).
        title: run title.
        mode: ``"forward"``, ``"invert"`` or ``"twin"``.
    """

    grid: LatLonGrid
    time_bounds: np.ndarray
    fluxes: list[FluxField]
    observations: ObservationRecord | None = None
    parameters: ParameterRecord | None = None
    history: dict[str, np.ndarray] | None = None
    budgets: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    config_toml: str = ""
    title: str = "diffflux run"
    mode: str = "invert"

    @property
    def ntime(self) -> int:
        return int(np.shape(self.time_bounds)[0])


def check_record(record: RunRecord) -> None:
    """Raise ``ValueError`` naming the offending item if the record's arrays do not fit together."""
    grid = record.grid
    tb = np.asarray(record.time_bounds)
    if tb.ndim != 2 or tb.shape[1] != 2 or tb.shape[0] < 1 or tb.dtype.kind != "M":
        raise ValueError(
            f"RunRecord.time_bounds must be (ntime >= 1, 2) datetime64 edges, found shape {tb.shape} "
            f"dtype {tb.dtype}"
        )
    if np.any(tb[:, 1] <= tb[:, 0]):
        k = int(np.argmax(tb[:, 1] <= tb[:, 0]))
        raise ValueError(f"RunRecord.time_bounds: block {k} ends ({tb[k, 1]}) before it starts ({tb[k, 0]})")
    shape = (tb.shape[0], grid.nlat, grid.nlon)
    seen = set()
    for f in record.fluxes:
        key = (f.species, f.component)
        if key in seen:
            raise ValueError(f"RunRecord.fluxes: component {f.component!r} of {f.species} is listed twice")
        seen.add(key)
        for role, a in f.arrays().items():
            if np.shape(a) != shape:
                raise ValueError(
                    f"RunRecord.fluxes: {f.species} {f.component} {role} has shape {np.shape(a)}, expected "
                    f"(ntime, nlat, nlon) = {shape} [mol m-2 s-1]"
                )
    obs = record.observations
    if obs is not None:
        n = obs.table.sizes.get("obs", 0)
        for name in ("y", "prior", "posterior", "truth", "sigma"):
            a = getattr(obs, name)
            if a is not None and np.shape(a) != (n,):
                raise ValueError(
                    f"ObservationRecord.{name} has shape {np.shape(a)}, the table has {n} observations"
                )
    par = record.parameters
    if par is not None:
        n = len(par.names)
        for name in ("prior", "posterior", "truth", "prior_sigma", "posterior_sigma"):
            a = getattr(par, name)
            if a is not None and np.shape(a) != (n,):
                raise ValueError(
                    f"ParameterRecord.{name} has shape {np.shape(a)}, expected ({n},) (one per name)"
                )
    if record.history:
        lengths = {k: np.shape(v) for k, v in record.history.items()}
        if len({s for s in lengths.values()}) != 1 or len(next(iter(lengths.values()))) != 1:
            raise ValueError(f"RunRecord.history: arrays must be 1-D of equal length, found shapes {lengths}")
    if record.mode not in ("forward", "invert", "twin"):
        raise ValueError(f"RunRecord.mode must be 'forward', 'invert' or 'twin', found {record.mode!r}")
