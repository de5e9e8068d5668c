"""Problem assembly: the whole differentiable chain ``z -> x -> biosphere -> fluxes -> transport -> y_model``.

:class:`Problem` (an ``equinox.Module``; every array a pytree leaf, every shape/setting static) holds

* the control vector (:class:`~diffflux.inversion.control.ControlVector`),
* the biosphere model, its drivers, the spun-up state at the window start and the base parameter
  multipliers (optional: a problem may have no biosphere),
* the flux composer with its prior components; components *linked* to the biosphere take their prior at
  every transport step from the biosphere run inside the chain (``priors=`` at call time),
* the transport model, met source, initial air mass and mixing ratio,
* the observation operator (sampled inside the transport scan), the observations ``y`` and ``R``,
* the record -> bias-group index.

The observation operator ``H`` of the cost is the chain (all pure JAX, differentiable)::

    x = x_b + B^1/2 z                                    (control.py)
    p = p_0 exp(x_bio)                                   biosphere multipliers, log-normal
    daily = Biosphere.simulate(p, state_0, drivers, ndays, day0)      daily fluxes over the window
    F_c(t_n) = BiosphereFluxes(daily).at(t_n)            sub-daily prior of the linked components
    f(t_n) = FluxComposer.step(x_flux, n, priors=F(t_n))              corrected fluxes per tracer
    chi_0 = chi_b + x_initial                            initial mixing ratio [mol mol-1]
    y_model = sample_run(transport, met, chi_0, operator, flux=f, checkpoint="nested")
    H(x) = y_model + x_bias[group]                       [mol mol-1]

and the cost is ``J(z) = 1/2 z.z + 1/2 |R^-1/2 (y - H(x(z)))|^2`` (:mod:`diffflux.inversion.cost`).

The biosphere state at the window start is fixed (spun up once with the prior parameters, outside the
chain): parameters act on the fluxes of the window, not on the pools' history (an implicit-function
dependence, :func:`diffflux.models.biosphere.implicit_steady_state`, would add a year-long simulation to
each cost evaluation).

:func:`standard_twin` builds a small configurable twin experiment on the built-in climatology (the
future ``diffflux demo`` inversion).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from diffflux.inversion.control import ControlVector
from diffflux.inversion.obs_error import ObservationError

SECONDS_PER_DAY = 86400.0


def bias_index(table, groups: Sequence[str]) -> np.ndarray:
    """``(nobs,)`` index of each record's bias group, -1 for none. A group is ``"SITE:SPECIES"``
    (matched first) or ``"SITE"`` (site or platform id of the table's ``site`` variable)."""
    site = table["site"].values.astype(str)
    species = table["species"].values.astype(str)
    pos = {g: k for k, g in enumerate(groups)}
    out = np.full(site.size, -1, dtype=np.int32)
    for i, (s, sp) in enumerate(zip(site, species)):
        out[i] = pos.get(f"{s}:{sp}", pos.get(s, -1))
    unused = sorted(set(groups) - {groups[k] for k in np.unique(out[out >= 0])})
    if unused:
        raise ValueError(f"bias_index: bias groups {unused} match no observation (groups are 'SITE' or "
                         f"'SITE:SPECIES'; sites present: {sorted(set(site))[:20]})")
    return out


class Problem(eqx.Module):
    """A variational inversion problem (see the module docstring for the chain).

    Attributes (arrays are leaves; the rest static):
        control: the control vector.
        composer: flux composer; its components named in ``bio_links`` take the biosphere's fluxes as prior.
        transport, met: transport model and met source (``met.fields(t)``, ``t`` on the run clock [s]).
        air0: ``(nlev, nlat, nlon)`` initial dry-air mass [kg].
        chi0: ``(ntracer, nlev, nlat, nlon)`` prior initial mixing ratio [mol mol-1].
        operator: :class:`~diffflux.observations.ObservationOperator` over the window.
        y: ``(nobs,)`` observations [mol mol-1].
        obs_error: :class:`ObservationError` (``R``).
        bias_group: ``(nobs,)`` int bias-group index of every record (-1 none).
        biosphere, drivers, bio_state, bio_params: the biosphere (or None), its driver source, state at the
            window start, base multipliers ``p_0``.
        bio_names: parameter names of the biosphere block (static).
        bio_links: ``((component, BiosphereFluxes key), ...)`` e.g. ``(("nee", "CO2:biosphere"),)``.
        day0: driver-cycle day of the window start; ``ndays`` simulated days; ``steps_per_day``.
        t_start: window start on the run clock [s] (= ``day0 * 86400``).
        tracers: species of the transport's tracer axis.
        checkpoint: transport checkpointing (``"nested"`` default).
        bio_checkpoint: rematerialise biosphere days in the backward pass.
    """

    control: ControlVector
    composer: eqx.Module
    transport: eqx.Module
    met: eqx.Module
    air0: jax.Array
    chi0: jax.Array
    operator: eqx.Module
    y: jax.Array
    obs_error: ObservationError
    bias_group: jax.Array
    biosphere: eqx.Module | None = None
    drivers: eqx.Module | None = None
    bio_state: eqx.Module | None = None
    bio_params: eqx.Module | None = None
    bio_names: tuple[str, ...] = eqx.field(static=True, default=())
    bio_links: tuple[tuple[str, str], ...] = eqx.field(static=True, default=())
    day0: int = eqx.field(static=True, default=0)
    ndays: int = eqx.field(static=True, default=0)
    steps_per_day: int = eqx.field(static=True, default=24)
    t_start: float = eqx.field(static=True, default=0.0)
    tracers: tuple[str, ...] = eqx.field(static=True, default=())
    checkpoint: str | None = eqx.field(static=True, default="nested")
    bio_checkpoint: bool = eqx.field(static=True, default=True)

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, control: ControlVector, composer, transport, met, initial_state, operator, y,
               obs_error: ObservationError, bias_group=None, biosphere=None, drivers=None, bio_state=None,
               bio_params=None, bio_links: Sequence[tuple[str, str]] = (), tracers: Sequence[str] = (),
               checkpoint: str | None = "nested", bio_checkpoint: bool = True) -> Problem:
        """Validated problem. ``initial_state`` is the prior :class:`TransportState`; the window is the
        operator's (``t0``, ``dt``, ``nsteps``); with a biosphere the window must start at 00 UTC and
        ``86400 / dt`` must be an integer."""
        from diffflux.models.biosphere.fluxes import FLUX_KEYS

        op = operator
        nobs = int(op.nobs)
        y = jnp.asarray(y)
        if y.shape != (nobs,):
            raise ValueError(
                f"Problem: y must have shape ({nobs},) (the operator's records), found {y.shape}"
            )
        if nobs == 0:
            raise ValueError("Problem: no observations")
        if obs_error.nobs != nobs:
            raise ValueError(f"Problem: R has {obs_error.nobs} records, the operator {nobs}")
        if not np.all(np.isfinite(np.asarray(y))):
            raise ValueError("Problem: y has non-finite values")
        composer._check(control_flux_corrections(control, control.prior(), composer))
        if composer.nsteps != op.nsteps:
            raise ValueError(f"Problem: composer has {composer.nsteps} steps, the operator {op.nsteps}")
        ntr = len(composer.tracer_names)
        if initial_state.tracer.shape[0] != ntr:
            raise ValueError(f"Problem: initial state has {initial_state.tracer.shape[0]} tracers, the "
                             f"composer "
                             f"{ntr} ({composer.tracer_names})")
        bias_blocks = control.by_role("bias")
        if bias_blocks:
            if bias_group is None:
                raise ValueError("Problem: a bias block needs bias_group (see bias_index)")
            bg = np.asarray(bias_group)
            if bg.shape != (nobs,) or bg.max() >= bias_blocks[0].size:
                raise ValueError(f"Problem: bias_group must be ({nobs},) indices < {bias_blocks[0].size}")
        bias_group = jnp.asarray(np.full(nobs, -1) if bias_group is None else bias_group, jnp.int32)
        ic = control.by_role("initial")
        if ic and ic[0].shape not in ((ntr,), initial_state.tracer.shape):
            raise ValueError(f"Problem: initial block shape {ic[0].shape} must be ({ntr},) or "
                             f"{tuple(initial_state.tracer.shape)}")
        dt = float(op.dt)
        spd = SECONDS_PER_DAY / dt
        t_start = float(op.t0)
        bio_blocks = control.by_role("biosphere")
        names: tuple[str, ...] = ()
        day0, ndays = 0, 0
        if biosphere is not None:
            if drivers is None or bio_state is None or bio_params is None:
                raise ValueError("Problem: a biosphere needs drivers, bio_state and bio_params")
            if abs(spd - round(spd)) > 1e-9:
                raise ValueError(f"Problem: 86400 s must be a whole number of transport steps, dt={dt}")
            if abs(t_start / SECONDS_PER_DAY - round(t_start / SECONDS_PER_DAY)) > 1e-9:
                raise ValueError(f"Problem: with a biosphere the window must start at 00 UTC, t0={t_start} s")
            day0 = int(round(t_start / SECONDS_PER_DAY))
            ndays = int(math.ceil(op.nsteps * dt / SECONDS_PER_DAY - 1e-9))
            comps = {c.name: c for c in composer.components}
            for comp, key in bio_links:
                if comp not in comps:
                    raise KeyError(f"Problem: bio_links names unknown component {comp!r}; components "
                                   f"{sorted(comps)}")
                if key not in FLUX_KEYS:
                    raise KeyError(f"Problem: unknown biosphere flux {key!r}; available {FLUX_KEYS}")
                if comps[comp].flux.shape[0] != 1:
                    raise ValueError(f"Problem: linked component {comp!r} must have a single record "
                                     f"(its prior comes from the biosphere)")
                if comps[comp].species != key.split(":")[0]:
                    raise ValueError(f"Problem: component {comp!r} is {comps[comp].species}, biosphere flux "
                                     f"{key!r} is not")
            if bio_blocks:
                names = tuple(_names_from_labels(bio_blocks[0].target))
        elif bio_blocks or bio_links:
            raise ValueError("Problem: biosphere blocks or links given without a biosphere")
        return cls(control=control, composer=composer, transport=transport, met=met, air0=initial_state.air,
                   chi0=initial_state.mixing_ratio(), operator=op, y=y, obs_error=obs_error,
                   bias_group=bias_group, biosphere=biosphere, drivers=drivers, bio_state=bio_state,
                   bio_params=bio_params, bio_names=names, bio_links=tuple(tuple(x) for x in bio_links),
                   day0=day0, ndays=ndays, steps_per_day=int(round(spd)), t_start=t_start,
                   tracers=tuple(tracers or composer.tracer_names), checkpoint=checkpoint,
                   bio_checkpoint=bio_checkpoint)

    def with_observations(self, y) -> Problem:
        """Copy with other observations ``y`` ``(nobs,)`` [mol mol-1]."""
        y = jnp.asarray(y, self.y.dtype)
        if y.shape != self.y.shape:
            raise ValueError(f"with_observations: y must have shape {self.y.shape}, found {y.shape}")
        return eqx.tree_at(lambda p: p.y, self, y)

    # ---- pieces of the chain -------------------------------------------------------------------------
    def parameters(self, x):
        """``BiosphereParams`` of the physical control ``x`` (dict): ``p_0 exp(x_bio)`` on the selected
        multipliers, ``p_0`` elsewhere."""
        blocks = self.control.by_role("biosphere")
        if not blocks:
            return self.bio_params
        spec = self.bio_params.filter_spec(self.bio_names)
        sel, rest = eqx.partition(self.bio_params, spec)
        flat, unravel = ravel_pytree(sel)
        new = unravel(flat * jnp.exp(x[blocks[0].name]))
        return eqx.combine(new, rest)

    def daily_fluxes(self, x):
        """:class:`BiosphereFluxes` of the window for the physical control ``x`` (None without biosphere)."""
        if self.biosphere is None:
            return None
        from diffflux.models.biosphere.fluxes import NEEDED_OUTPUTS, BiosphereFluxes

        _, daily, _ = self.biosphere.simulate(self.parameters(x), self.bio_state, self.drivers, self.ndays,
                                              day0=self.day0, outputs=NEEDED_OUTPUTS,
                                              checkpoint=self.bio_checkpoint)
        return BiosphereFluxes(daily=daily, maps=self.biosphere.maps, drivers=self.drivers, day0=self.day0)

    def flux_function(self, x):
        """``flux(t) -> (ntracer, nlat, nlon)`` [mol m-2 s-1] for the transport (``t`` on the run clock)."""
        corr = control_flux_corrections(self.control, x, self.composer)
        bf = self.daily_fluxes(x)
        dt = float(self.operator.dt)
        links = self.bio_links
        spd = self.steps_per_day
        t_start = self.t_start
        nsteps = self.composer.nsteps

        def flux(t):
            n = jnp.clip(jnp.floor((t - t_start) / dt).astype(jnp.int32), 0, nsteps - 1)
            priors = None
            if bf is not None and links:
                at = bf.at(t - t_start, spd)
                priors = {comp: at[key][None] for comp, key in links}
            return self.composer.step(corr, n, priors)

        return flux

    def initial_state(self, x):
        """Initial :class:`TransportState` with the initial-condition block added to ``chi0``."""
        from diffflux.transport import TransportState

        chi = self.chi0
        blocks = self.control.by_role("initial")
        if blocks:
            off = x[blocks[0].name]
            chi = chi + (off[:, None, None, None] if off.ndim == 1 else off)
        return TransportState.from_mixing_ratio(chi, self.air0)

    def observe(self, x):
        """``H(x)``: model equivalents ``(nobs,)`` [mol mol-1] of the physical control ``x`` (dict)."""
        from diffflux.observations import sample_run

        _, ym, _ = sample_run(self.transport, self.met, self.initial_state(x), self.operator,
                              flux=self.flux_function(x), checkpoint=self.checkpoint)
        blocks = self.control.by_role("bias")
        if blocks:
            b = x[blocks[0].name]
            g = self.bias_group
            ym = ym + jnp.where(g >= 0, b[jnp.clip(g, 0, None)], 0.0)
        return ym

    def observe_z(self, z):
        """``H(x(z))`` for a flat whitened control vector ``z``."""
        return self.observe(self.control.unwhiten(z))

    def whitened_residual(self, z):
        """``r(z) = R^-1/2 (H(x(z)) - y)`` ``(nobs,)`` [1] for the flat whitened control ``z``."""
        return self.obs_error.whiten(self.observe_z(z) - self.y)

    def least_squares(self):
        """The problem as a :class:`diffflux.solvers.LeastSquaresCost` (``J = 1/2 |z|^2 + 1/2 |r(z)|^2``)
        for :func:`diffflux.solvers.minimise` (all solvers, including Gauss-Newton and Exact)."""
        from diffflux.solvers import LeastSquaresCost

        return LeastSquaresCost(residual=self.whitened_residual, unwhiten=self.control.unwhiten)

    def cost(self, z):
        """``J(z)`` (see :func:`diffflux.inversion.cost.cost`)."""
        from diffflux.inversion.cost import cost

        return cost(self, z)


def _names_from_labels(labels) -> list[str]:
    out = []
    for lab in labels:
        n = lab.split("[")[0]
        if n not in out:
            out.append(n)
    return out


def control_flux_corrections(control: ControlVector, x, composer) -> dict:
    """The composer's corrections dict ``{component: u}`` from the physical control ``x``; corrected
    components without a block get zeros (their prior is kept)."""
    corr = {k: jnp.zeros(s, composer.components[0].flux.dtype)
            for k, s in composer.correction_shapes().items()}
    for b in control.by_role("flux"):
        if b.target not in corr:
            raise KeyError(f"flux block {b.name!r} targets {b.target!r}, not a corrected component "
                           f"({sorted(corr)})")
        corr[b.target] = x[b.name]
    return corr


# -------------------------------------------------------------------------------------------------
# the standard twin
# -------------------------------------------------------------------------------------------------

DEFAULT_FLASK_SITES = ("MLO", "SPO", "BRW", "SMO", "CGO", "ALT", "ZEP", "MHD", "ASC", "NWR", "WLG", "CPT")
DEFAULT_CONTINUOUS_SITES = ("HAT", "RYO", "LEF", "JFJ")
DEFAULT_PARAMETERS = ("pmax", "q10_resp")


@dataclasses.dataclass
class Twin:
    """A twin experiment: the problem (with pseudo-observations), the truth and the design.

    Attributes:
        problem: the :class:`Problem` (``y`` = truth + noise).
        z_true: flat whitened truth; ``x_true`` its physical blocks (dict).
        y_true: noise-free model equivalents of the truth [mol mol-1].
        table: the observation table (values = pseudo-observations).
        info: settings and sizes (for reports).
    """

    problem: Problem
    z_true: jax.Array
    x_true: dict
    y_true: jax.Array
    table: object
    info: dict


def standard_twin(*, resolution: tuple[float, float] = (10.0, 12.0), nlev: int = 4, days: int = 14,
                  steps_per_day: int = 8, species: Sequence[str] = ("CO2", "CH4"),
                  start: str = "2021-07-01", reference_time: str = "2021-01-01",
                  flask_sites: Sequence[str] = DEFAULT_FLASK_SITES,
                  continuous_sites: Sequence[str] = DEFAULT_CONTINUOUS_SITES,
                  satellite_step_seconds: float | None = 600.0,
                  parameters: Sequence[str] = DEFAULT_PARAMETERS,
                  parameter_sigma: float = 0.2, block_days: float = 7.0, spinup: str | int = "newton",
                  flux_forms: str = "joint", truth_scale: float = 1.0, noise: bool = True, seed: int = 0,
                  checkpoint: str | None = "nested", biases: bool = True, initial: bool = True,
                  horizontal_diffusion: bool = True, correlation_km: tuple[float, float] | None = None,
                  sigmas: dict | None = None, observations=None, dtype=jnp.float64) -> Twin:
    """A small twin experiment on the built-in climatology (configurable grid, window and species).

    Configuration (defaults: 10 x 12 degrees, 4 levels, 14 days of 3-hour steps from 1 July, CO2 + CH4):

    * transport: linear (unlimited) piecewise-linear advection, implicit vertical and (unless
      ``horizontal_diffusion=False``) horizontal diffusion on :class:`~diffflux.met.Climatology` (a
      linear transport keeps the chain's nonlinearity
      in the biosphere and the log-normal corrections);
    * biosphere: :func:`~diffflux.models.biosphere.climatology_maps` on the model grid, state at the window
      start from ``spinup`` (``"newton"``: :func:`~diffflux.models.biosphere.spinup`; an int ``n``: ``n``
      plain simulated years from the default initial state, faster, not cyclo-stationary), then simulated
      with the prior parameters up to the window start;
    * fluxes (``flux_forms="joint"``): CO2 fossil (default inventory, log-normal per cell, sigma 0.3),
      ocean (:class:`~diffflux.models.ocean.OceanCO2`, additive, 1e-8 mol m-2 s-1), biosphere NEE (additive
      per land cell, 1e-7 x land fraction), CH4 anthropogenic (log-normal 0.3) and wetland (log-normal 0.3,
      biosphere prior), blocks of ``block_days``; ``flux_forms="additive"``: only the additive components
      (ocean and NEE for CO2, and anthropogenic CH4 made additive), no biosphere block: a linear problem
      when ``biases``/``initial`` are also linear (they are);
    * prior covariance of the grid-cell flux blocks: diagonal, or with ``correlation_km = (land, ocean)``
      the operators of :mod:`diffflux.inversion.covariance`: ``Scaled(sigma, Kronecker(TemporalCorrelation
      (block times, block length), LandOceanCorrelation(grid, land, ocean)))``;
    * control: flux blocks, the log multipliers of ``parameters`` (``parameter_sigma``), global initial
      offsets per tracer (1 ppm CO2, 10 ppb CH4), biases per satellite platform and species (0.3 ppm,
      3 ppb);
    * observations: weekly flasks at ``flask_sites``, afternoon continuous records at ``continuous_sites``
      (every hour of 12-16 LST), satellite-like columns along a sun-synchronous track
      (``satellite_step_seconds`` along-track spacing, land only; None: none); ``R`` from
      :class:`ObservationError` (measurement + mismatch table);
    * truth: ``z_true = truth_scale N(0, I)`` (seeded), ``y = H(x(z_true)) + N(0, R)``.

    ``sigmas`` overrides the prior 1-sigma scales by component name (``"fossil"``, ``"ocean"``, ``"nee"``,
    ``"ch4_anthropogenic"``, ``"wetland"``; the numbers above: 0.3, 1e-8, 1e-7, 0.3 or 3e-10, 0.3; the
    ocean/land weighting is kept). ``observations`` (an observation table, e.g. from
    :func:`~diffflux.observations.read_obspack`) replaces the synthetic network: its records inside the
    window and of the chosen species are inverted as they are (no truth: ``z_true``, ``x_true`` and
    ``y_true`` are None).
    """
    from diffflux.geography import land_fraction
    from diffflux.grid import LatLonGrid, stretched_hybrid_levels
    from diffflux.inversion.control import (
        bias_block,
        biosphere_block,
        flux_block,
        initial_block,
    )
    from diffflux.met.climatology import Climatology
    from diffflux.models.biosphere import Biosphere, BiosphereParams, climatology_maps
    from diffflux.models.biosphere import spinup as bio_spinup
    from diffflux.models.composer import (
        Additive,
        Correction,
        FluxComponent,
        FluxComposer,
        GridBasis,
        LogNormal,
        TemporalBlocks,
    )
    from diffflux.models.inventories import default_inventory
    from diffflux.models.ocean import OceanCO2
    from diffflux.observations import (
        build_operator,
        concat_tables,
        continuous_design,
        flask_design,
        satellite_design,
        select,
        sort_table,
        to_arrays,
    )
    from diffflux.species import get_species
    from diffflux.transport import (
        HorizontalDiffusion,
        ImplicitVerticalDiffusion,
        PiecewiseLinear,
        Transport,
        check_time_step,
    )

    species = tuple(get_species(s).name for s in species)
    bad = sorted(set(species) - {"CO2", "CH4"})
    if bad or not species:
        raise ValueError(f"standard_twin: species must be among CO2, CH4, found {list(species)}")
    if flux_forms not in ("joint", "additive"):
        raise ValueError(f"standard_twin: flux_forms must be 'joint' or 'additive', found {flux_forms!r}")
    if days < 1 or steps_per_day < 1:
        raise ValueError("standard_twin: days and steps_per_day must be >= 1")
    joint = flux_forms == "joint"
    use_bio = joint and bool(parameters)
    dlat, dlon = resolution
    grid = LatLonGrid.from_resolution(dlat, dlon, stretched_hybrid_levels(nlev, 1.0e3, 1.5))
    met = Climatology(grid, dtype=np.dtype(dtype).name)
    transport = Transport(grid, advection=PiecewiseLinear(None),
                          vertical_diffusion=ImplicitVerticalDiffusion(),
                          horizontal_diffusion=HorizontalDiffusion() if horizontal_diffusion else None)
    dt = SECONDS_PER_DAY / steps_per_day
    nsteps = days * steps_per_day
    ref = np.datetime64(reference_time, "s")
    t_start = float((np.datetime64(start, "s") - ref) / np.timedelta64(1, "s"))
    if t_start < 0 or t_start % SECONDS_PER_DAY:
        raise ValueError(f"standard_twin: start {start} must be a day on or after {reference_time}")
    day0 = int(t_start // SECONDS_PER_DAY)
    step_times = t_start + (np.arange(nsteps) + 0.5) * dt
    nblock = int(math.ceil(days / block_days - 1e-9))
    blocks = TemporalBlocks.regular(t_start, block_days * SECONDS_PER_DAY, nblock)
    land = np.asarray(land_fraction(grid))

    # ---- biosphere ----
    bio = drivers = state = params0 = None
    if joint:
        maps, drivers = climatology_maps(grid)
        bio = Biosphere.from_maps(maps)
        params0 = BiosphereParams.ones(dtype)
        if spinup == "newton":
            state, _ = bio_spinup(bio, params0, drivers)
        else:
            state = bio.initial_state(params0, dtype)
            if int(spinup) > 0:
                state = _simulate_jit(bio, params0, state, drivers, 365 * int(spinup), 0)
        if day0 > 0:
            state = _simulate_jit(bio, params0, state, drivers, day0, 0)

    # ---- flux components ----
    comps, links, sig = [], [], {}
    zeros = np.zeros((grid.nlat, grid.nlon))
    if "CO2" in species:
        if joint:
            comps.append(FluxComponent.from_inventory(default_inventory("CO2", grid), name="fossil",
                                                      correction=Correction(LogNormal(), GridBasis(), blocks),
                                                      dtype=dtype))
            sig["fossil"] = 0.3
        ocean = OceanCO2.build(grid, dtype=dtype)
        comps.append(ocean.monthly_component("ocean", correction=Correction(Additive(), GridBasis(), blocks)))
        sig["ocean"] = 1e-8 * (1.0 - land) + 1e-11
        if joint:
            comps.append(FluxComponent.create("nee", "CO2", zeros, dtype=dtype,
                                              correction=Correction(Additive(), GridBasis(), blocks)))
            links.append(("nee", "CO2:biosphere"))
        else:
            nee = np.where(land > 0, -2e-7 * land, 0.0)  # a fixed daily-mean sink pattern as prior
            comps.append(FluxComponent.create("nee", "CO2", nee, dtype=dtype,
                                              correction=Correction(Additive(), GridBasis(), blocks)))
        sig["nee"] = 1e-7 * land + 1e-10
    if "CH4" in species:
        form = LogNormal() if joint else Additive()
        comps.append(FluxComponent.from_inventory(default_inventory("CH4", grid), name="ch4_anthropogenic",
                                                  correction=Correction(form, GridBasis(), blocks),
                                                  dtype=dtype))
        sig["ch4_anthropogenic"] = 0.3 if joint else 3e-10 * land + 1e-12
        if joint:
            comps.append(FluxComponent.create("wetland", "CH4", zeros, dtype=dtype,
                                              correction=Correction(LogNormal(), GridBasis(), blocks)))
            links.append(("wetland", "CH4:wetland"))
            sig["wetland"] = 0.3
    composer = FluxComposer.build(comps, step_times, step_edges=t_start + np.arange(nsteps + 1) * dt,
                                  species_order=species)

    # ---- observations ----
    end = np.datetime64(start, "s") + np.timedelta64(int(nsteps * dt), "s")
    tables = []
    meas = {"CO2": (0.1e-6, 0.1e-6, 0.5e-6), "CH4": (2e-9, 2e-9, 6e-9)}
    for s in species:
        if flask_sites:
            tables.append(flask_design(flask_sites, start, end, species=s, uncertainty=meas[s][0]))
        if continuous_sites:
            tables.append(continuous_design(continuous_sites, start, end, species=s, afternoon_only=True,
                                            uncertainty=meas[s][1]))
        if satellite_step_seconds:
            tables.append(satellite_design(start, end, species=s, step_seconds=satellite_step_seconds,
                                           nret=8, uncertainty=meas[s][2]))
    if observations is not None:
        tables = [observations]
    if not tables:
        raise ValueError("standard_twin: no observations (no sites and no satellite)")
    table, _ = select(sort_table(concat_tables(tables)), start=np.datetime64(start, "s"), end=end,
                      good_only=observations is not None)
    if observations is not None:
        keep = np.isin(np.asarray(table["species"].values).astype(str), list(species))
        table = table.isel(obs=np.flatnonzero(keep))
        if table.sizes["obs"] == 0:
            raise ValueError(f"standard_twin: the observation table has no good records of {list(species)} "
                             f"between {start} and {end}")
    arrays = to_arrays(table, species, ref, dtype=dtype)
    op = build_operator(arrays, grid, t0=t_start, dt=dt, nsteps=nsteps)
    R = ObservationError.from_table(table, dtype=dtype)

    # ---- transport initial state ----
    ps = np.asarray(met.fields(jnp.asarray(t_start, dtype)).ps)
    background = {"CO2": 410e-6, "CH4": 1.88e-6}
    gradient = {"CO2": 3e-6, "CH4": 0.08e-6}  # north-south difference [mol mol-1]
    s_lat = np.sin(np.deg2rad(grid.lat))[None, :, None]
    chi0 = np.stack([np.broadcast_to(background[s] + 0.5 * gradient[s] * s_lat, grid.shape) for s in species])
    state0 = transport.initial_state(jnp.asarray(chi0, dtype), jnp.asarray(ps, dtype))
    check_time_step(transport, met, state0, dt=dt, times=np.linspace(t_start, t_start + nsteps * dt, 3))

    # ---- prior scales ----
    base = {"fossil": 0.3, "ocean": 1e-8, "nee": 1e-7, "ch4_anthropogenic": 0.3 if joint else 3e-10,
            "wetland": 0.3}
    unknown = sorted(set(sigmas or {}) - set(base))
    if unknown:
        raise ValueError(f"standard_twin: sigmas for unknown component(s) {unknown}; "
                         f"components: {sorted(base)}")
    for name, value in (sigmas or {}).items():
        if name in sig:
            if not value > 0:
                raise ValueError(f"standard_twin: sigmas[{name!r}] must be > 0, found {value}")
            sig[name] = np.asarray(sig[name]) * (value / base[name])

    # ---- control vector ----
    if correlation_km is None:
        blist = [flux_block(composer, c.name, sigma=sig[c.name], dtype=dtype) for c in comps]
    else:
        from diffflux.inversion.covariance import (
            Kronecker,
            LandOceanCorrelation,
            Scaled,
            TemporalCorrelation,
        )

        mids = t_start + (np.arange(nblock) + 0.5) * block_days * SECONDS_PER_DAY
        corr = Kronecker(TemporalCorrelation(mids, block_days * SECONDS_PER_DAY),
                         LandOceanCorrelation(grid, correlation_km[0] * 1e3, correlation_km[1] * 1e3))
        shape = (nblock, grid.nlat, grid.nlon)
        blist = [flux_block(composer, c.name, cov=Scaled(np.broadcast_to(sig[c.name], shape), corr),
                            dtype=dtype) for c in comps]
    if use_bio:
        blist.append(biosphere_block(parameters, sigma=parameter_sigma, dtype=dtype))
    if initial:
        blist.append(initial_block(species, sigma=[{"CO2": 1e-6, "CH4": 10e-9}[s] for s in species],
                                   dtype=dtype))
    group = None
    if biases and satellite_step_seconds:
        groups = [f"OSSE-SAT:{s}" for s in species]
        blist.append(bias_block(groups, sigma=[{"CO2": 0.3e-6, "CH4": 3e-9}[s] for s in species],
                                dtype=dtype))
        group = bias_index(table, groups)
    control = ControlVector.create(blist)
    problem = Problem.create(control=control, composer=composer, transport=transport, met=met,
                             initial_state=state0, operator=op, y=jnp.zeros(op.nobs, dtype), obs_error=R,
                             bias_group=group, biosphere=bio if joint else None,
                             drivers=drivers if joint else None, bio_state=state if joint else None,
                             bio_params=params0 if joint else None, bio_links=links, tracers=species,
                             checkpoint=checkpoint)

    if observations is not None:
        y = np.asarray(table["value"].values, dtype=np.dtype(dtype))
        problem = problem.with_observations(jnp.asarray(y, dtype))
        info = {"grid": grid.describe(), "nsteps": nsteps, "dt": dt, "days": days, "species": species,
                "nobs": op.nobs, "ncontrol": control.size, "blocks": control.shapes,
                "obs_classes": R.summary(), "spinup": spinup, "flux_forms": flux_forms, "truth": False}
        return Twin(problem=problem, z_true=None, x_true=None, y_true=None, table=table, info=info)

    # ---- truth and pseudo-observations ----
    rng = np.random.default_rng(seed)
    z_true = jnp.asarray(truth_scale * rng.standard_normal(control.size), dtype)
    from diffflux.inversion.cost import observe

    y_true = observe(problem, z_true)
    y = np.asarray(y_true)
    if noise:
        y = y + rng.standard_normal(y.size) * np.asarray(R.sigma)
    problem = problem.with_observations(y)
    table = table.copy()
    table["value"] = (table["value"].dims, np.asarray(y), table["value"].attrs)
    info = {"grid": grid.describe(), "nsteps": nsteps, "dt": dt, "days": days, "species": species,
            "nobs": op.nobs, "ncontrol": control.size, "blocks": control.shapes,
            "obs_classes": R.summary(), "spinup": spinup, "flux_forms": flux_forms}
    return Twin(problem=problem, z_true=z_true, x_true=control.unwhiten(z_true), y_true=y_true, table=table,
                info=info)


@eqx.filter_jit
def _simulate_jit(bio, params, state, drivers, ndays, day0):
    return bio.simulate(params, state, drivers, ndays, day0=day0, outputs=None)[0]
