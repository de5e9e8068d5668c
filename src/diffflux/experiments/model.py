"""The experiment model: a :class:`~diffflux.inversion.Problem`'s chain with scenario changes, sampled at
stations and along satellite-like tracks.

:class:`ExperimentModel` (an ``equinox.Module``) reuses the problem's pieces (biosphere, drivers and state
at the window start, flux composer and corrections of the control ``x``, transport, met, initial state)
and adds

* extra passive tracers with their built-in inventory (e.g. HFC-134a for a phase-down scenario; the
  problem's transport has no chemistry, which over weeks is immaterial for a 14-year lifetime),
* biosphere fluxes added to the baseline that the problem's composer does not carry (e.g. ``CH4:soil``),
* an observation operator for the experiment's stations (every hour, every tracer) and columns,
* scenario changes of three kinds (:mod:`diffflux.experiments.scenarios`) and metric weights.

A scenario becomes :class:`ScenarioArrays` of fixed shapes, so a list of scenarios stacks into one pytree
and ``jax.vmap`` runs them in one compiled call. The flux of scenario ``s`` at transport step ``n``
[mol m-2 s-1] per tracer is::

    F_s(n) = F(n; p) + sum_c coef_s[c, n] mask_s[c] B_c(n)              flux changes (channels)
           + w_s(n) m_s (F(n; p exp(d_s)) - F(n; p))                    parameter change in a region
           + v_s(n) sum_t dfrac_s[t] f_t(n)                             PFT-fraction change (CO2)

with ``F(n; p)`` the problem's flux (composer with the biosphere run for parameters ``p``, plus extra
tracers and added biosphere fluxes), ``B_c`` the basis of channel ``c`` (a component's corrected flux, a
biosphere flux (restricted to PFTs), or 1 for additive changes), ``coef = (factor - 1) x period weight``
(or the added density x period weight) and ``f_t`` the per-tile carbon fluxes. The biosphere is run once
for ``p`` (shared by the batch) and once per scenario with parameter changes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.experiments.metrics import MetricWeights
from diffflux.experiments.scenarios import (
    GROSS_CO2,
    AreaChange,
    FluxChange,
    ParameterChange,
    Scenario,
    Setting,
    _fail,
    resolve_pfts,
)

SECONDS_PER_DAY = 86400.0


@dataclasses.dataclass(frozen=True)
class Channel:
    """One flux basis of the batch: ``kind`` ``"component"`` | ``"biosphere"`` | ``"add"``, the component,
    biosphere key or species ``name``, ``pfts`` (biosphere CO2 keys), the ``tracer`` index and a ``slot``
    (the k-th change of the same basis within one scenario)."""

    kind: str
    name: str
    pfts: tuple[str, ...]
    tracer: int
    slot: int = 0


class ScenarioArrays(eqx.Module):
    """A scenario as arrays (leading batch axis when stacked); None fields: unused by the whole batch.

    Attributes:
        coef: ``(nchan, nsteps)`` per-step coefficient of each channel.
        mask: ``(nchan, nlat, nlon)`` region mask of each channel [1].
        log_mult: log parameter multipliers (a ``BiosphereParams`` pytree, zeros where unchanged).
        param_mask, param_weight: ``(nlat, nlon)`` region and ``(nsteps,)`` period of the parameter change.
        dfrac: ``(ntile,)`` change of each tile's share of its cell's land [1].
        area_weight: ``(nsteps,)`` period of the area change.
    """

    coef: jax.Array
    mask: jax.Array
    log_mult: eqx.Module | None = None
    param_mask: jax.Array | None = None
    param_weight: jax.Array | None = None
    dfrac: jax.Array | None = None
    area_weight: jax.Array | None = None

    def scaled(self, alpha) -> ScenarioArrays:
        """The scenario at amplitude ``alpha`` (1 = as defined, 0 = no change): changes of the flux
        channels, of the log multipliers and of the fractions times ``alpha``."""
        out = eqx.tree_at(lambda a: a.coef, self, self.coef * alpha)
        if self.log_mult is not None:
            out = eqx.tree_at(
                lambda a: a.log_mult, out, jax.tree_util.tree_map(lambda v: v * alpha, self.log_mult)
            )
        if self.dfrac is not None:
            out = eqx.tree_at(lambda a: a.dfrac, out, self.dfrac * alpha)
        return out


def stack(arrays: Sequence[ScenarioArrays]) -> ScenarioArrays:
    """Stack scenarios along a new leading axis (for ``jax.vmap``)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *arrays)


def unstack(arrays: ScenarioArrays, k: int) -> ScenarioArrays:
    return jax.tree_util.tree_map(lambda v: v[k], arrays)


class _Context(eqx.Module):
    corr: dict
    bf0: eqx.Module | None
    tiles0: dict | None
    channel_bf: tuple
    bfs: eqx.Module | None
    bfa: eqx.Module | None


class ExperimentModel(eqx.Module):
    """See the module docstring. Build with :meth:`build`; run with :meth:`simulate`.

    Attributes:
        problem: the inversion problem whose chain is reused.
        x: physical control (dict of blocks) at which the experiment is evaluated.
        extra: composer of the extra tracers (after the problem's tracers), or None.
        chi_extra: ``(nextra, nlev, nlat, nlon)`` initial mixing ratio of the extra tracers [mol mol-1].
        operator: observation operator of the experiment's stations and columns.
        weights: metric weights.
        tracers: species of the tracer axis (static).
        added: ``((biosphere key, tracer), ...)`` added to the baseline (static).
        channels: the flux channels of the batch (static).
        has_params, has_area: whether the batch has parameter / area changes (static).
    """

    problem: eqx.Module
    x: dict
    extra: eqx.Module | None
    chi_extra: jax.Array | None
    operator: eqx.Module
    weights: MetricWeights
    tracers: tuple[str, ...] = eqx.field(static=True)
    added: tuple[tuple[str, int], ...] = eqx.field(static=True, default=())
    channels: tuple[Channel, ...] = eqx.field(static=True, default=())
    has_params: bool = eqx.field(static=True, default=False)
    has_area: bool = eqx.field(static=True, default=False)

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        problem,
        setting: Setting,
        *,
        x=None,
        extra_species: dict[str, float] | None = None,
        added_fluxes: Sequence[str] = (),
        metrics=(),
        satellite_step_seconds: float | None = None,
    ):
        """Model and its observation table ``(model, table)``.

        Args:
            problem: the :class:`~diffflux.inversion.Problem`.
            setting: its :class:`Setting` (``tracers`` = problem tracers then ``extra_species``).
            x: physical control (default the prior ``control.prior()``).
            extra_species: species -> uniform initial mixing ratio [mol mol-1] of the extra tracers.
            added_fluxes: biosphere flux keys added to the baseline (e.g. ``("CH4:soil",)``).
            metrics: :class:`~diffflux.experiments.metrics.Metric` list.
            satellite_step_seconds: along-track spacing of the columns (None: no columns).
        """
        from diffflux.models.composer import FluxComponent, FluxComposer
        from diffflux.models.inventories import default_inventory
        from diffflux.species import get_species

        extra_species = dict(extra_species or {})
        dtype = problem.air0.dtype
        if tuple(problem.tracers) + tuple(extra_species) != setting.tracers:
            raise ValueError(
                f"ExperimentModel: setting tracers {setting.tracers} differ from the problem's "
                f"{problem.tracers} + extra {tuple(extra_species)}"
            )
        if problem.composer.tagging != "species":
            raise ValueError("ExperimentModel: the problem's composer must be tagged by species")
        op = problem.operator
        extra = chi_extra = None
        if extra_species:
            grid = setting.grid
            comps = [
                FluxComponent.from_inventory(
                    default_inventory(s, grid), name=extra_component_name(s), dtype=dtype
                )
                for s in extra_species
            ]
            edges = op.t0 + np.arange(op.nsteps + 1) * op.dt
            extra = FluxComposer.build(
                comps,
                0.5 * (edges[1:] + edges[:-1]),
                step_edges=edges,
                species_order=[get_species(s).name for s in extra_species],
            )
            shape = problem.chi0.shape[1:]
            chi_extra = jnp.stack([jnp.full(shape, float(v), dtype) for v in extra_species.values()])
        added = []
        for key in added_fluxes:
            if problem.biosphere is None:
                raise ValueError(f"ExperimentModel: added flux {key!r} needs a biosphere")
            added.append((key, setting.tracer(key.split(":")[0], "experiment.add_biosphere_fluxes")))
        table = experiment_table(setting, satellite_step_seconds)
        operator = _operator(table, setting, op, dtype)
        weights = MetricWeights.build(metrics, setting, table, dtype)
        model = cls(
            problem=problem,
            x=problem.control.prior() if x is None else x,
            extra=extra,
            chi_extra=chi_extra,
            operator=operator,
            weights=weights,
            tracers=setting.tracers,
            added=tuple(added),
        )
        return model, table

    def with_scenarios(self, scenarios: Sequence[Scenario], setting: Setting):
        """``(model, stacked ScenarioArrays, notes)``: the model with the channels of ``scenarios`` and
        their arrays; ``notes`` per scenario (e.g. the part of an area change that could be applied)."""
        channels: list[Channel] = []
        per_scenario = []
        for s in scenarios:
            seen: dict[tuple, int] = {}
            mine = []
            for c in s.changes:
                if isinstance(c, FluxChange):
                    kind = "add" if c.add is not None else ("component" if c.component else "biosphere")
                    sp = c.species_of(setting)
                    name = sp if kind == "add" else c.target
                    pf = resolve_pfts(c.pfts, "pfts") if c.pfts else ()
                    key = (kind, name, pf)
                    slot = seen.get(key, 0)
                    seen[key] = slot + 1
                    ch = Channel(kind, name, pf, setting.tracer(sp, "species"), slot)
                    if ch not in channels:
                        channels.append(ch)
                    mine.append((ch, c))
            per_scenario.append(mine)
        model = dataclasses.replace(
            self,
            channels=tuple(channels),
            has_params=any(c.kind == "parameter" for s in scenarios for c in s.changes),
            has_area=any(c.kind == "area" for s in scenarios for c in s.changes),
        )
        arrays, notes = [], []
        for s, mine in zip(scenarios, per_scenario):
            a, note = model._compile(s, mine, setting)
            arrays.append(a)
            notes.append(note)
        return model, stack(arrays), notes

    def _compile(self, scenario: Scenario, mine, setting: Setting):
        grid, edges = setting.grid, setting.step_edges
        dtype = self.problem.air0.dtype
        nch, nsteps = len(self.channels), setting.nsteps
        coef = np.zeros((nch, nsteps))
        mask = np.zeros((nch, grid.nlat, grid.nlon))
        note = {}
        from diffflux.species import get_species

        for ch, c in mine:
            k = self.channels.index(ch)
            m = c.region.mask(grid, c.default_share(), f"scenario {scenario.name!r} region")
            w = c.period.weights(edges)
            if c.add is not None:
                density = float(c.add)
                if c.units != "mol m-2 s-1":
                    density = get_species(c.species_of(setting)).flux_from_reporting(density) / float(
                        np.sum(m * grid.area)
                    )
                coef[k] = density * w
            else:
                coef[k] = (c.factors(edges) - 1.0) * w
            mask[k] = m
        out = {"coef": jnp.asarray(coef, dtype), "mask": jnp.asarray(mask, dtype)}
        if self.has_params:
            pc = next((c for c in scenario.changes if isinstance(c, ParameterChange)), None)
            out["log_mult"], out["param_mask"], out["param_weight"] = self._parameter_arrays(pc, setting)
        if self.has_area:
            ac = next((c for c in scenario.changes if isinstance(c, AreaChange)), None)
            out["dfrac"], out["area_weight"], note = self._area_arrays(ac, setting, scenario.name)
        return ScenarioArrays(**out), note

    def _parameter_arrays(self, pc: ParameterChange | None, setting: Setting):
        from diffflux.models.biosphere.pft import PFT_CODES

        dtype = self.problem.air0.dtype
        base = self.problem.bio_params
        zeros = jax.tree_util.tree_map(jnp.zeros_like, base)
        grid = setting.grid
        if pc is None:
            return zeros, jnp.zeros((grid.nlat, grid.nlon), dtype), jnp.zeros(setting.nsteps, dtype)
        lf = math.log(pc.factor)
        pft = dict(zeros.pft)
        glob = dict(zeros.glob)
        idx = (
            [PFT_CODES.index(p) for p in resolve_pfts(pc.pfts, "pfts")]
            if pc.pfts
            else list(range(len(PFT_CODES)))
        )
        for name in pc.parameters:
            if name in pft:
                pft[name] = pft[name].at[jnp.asarray(idx)].set(lf)
            else:
                glob[name] = jnp.asarray(lf, dtype)
        lm = type(base)(pft=pft, glob=glob)
        m = pc.region.mask(grid, "land", "parameter change region")
        return lm, jnp.asarray(m, dtype), jnp.asarray(pc.period.weights(setting.step_edges), dtype)

    def _area_arrays(self, ac: AreaChange | None, setting: Setting, name: str):
        """Tile fraction changes (NumPy) and what could be applied (see :class:`AreaChange`)."""
        from diffflux.models.biosphere.pft import PFT_CODES

        dtype = self.problem.air0.dtype
        bio = self.problem.biosphere
        tiles, maps = bio.tiles, bio.maps
        ntile = tiles.ntile
        if ac is None:
            return jnp.zeros(ntile, dtype), jnp.zeros(setting.nsteps, dtype), {}
        m_cell = ac.region.mask(setting.grid, "land", f"scenario {name!r} region")[maps.cell_j, maps.cell_i]
        to_idx = [PFT_CODES.index(p) for p in resolve_pfts(ac.to, "to")]
        is_to = np.isin(tiles.pft, to_idx)
        to_frac = np.bincount(tiles.cell, tiles.frac * is_to, maps.ncell)
        bare = ac.source == ("bare",)
        if bare:
            is_src = np.zeros(ntile, bool)
            src_frac = np.clip(1.0 - maps.pft_fraction.sum(axis=1), 0.0, None)
        else:
            src_idx = [PFT_CODES.index(p) for p in resolve_pfts(ac.source, "from")]
            is_src = np.isin(tiles.pft, src_idx)
            src_frac = np.bincount(tiles.cell, tiles.frac * is_src, maps.ncell)
        want = (
            (ac.factor - 1.0) * to_frac if ac.factor is not None else ac.fraction * np.ones(maps.ncell)
        ) * m_cell
        gain = np.where(want > 0, np.minimum(want, src_frac) * (to_frac > 0), 0.0)
        # a shrinking 'to' area goes to bare ground, or to source PFTs that have tiles in the cell
        loss = np.where(want < 0, want * (1.0 if bare else (src_frac > 0)), 0.0)
        applied = gain + loss
        dfrac = np.zeros(ntile)
        share_to = np.where(
            to_frac[tiles.cell] > 0, tiles.frac / np.maximum(to_frac[tiles.cell], 1e-300), 0.0
        )
        dfrac[is_to] = (applied[tiles.cell] * share_to)[is_to]
        if not bare:
            share_src = tiles.frac / np.maximum(src_frac[tiles.cell], 1e-300)
            dfrac[is_src] = (-applied[tiles.cell] * share_src)[is_src]
        land_area = maps.cell_area  # m2 of land per cell
        note = {
            "requested_km2": float(np.sum(np.abs(want) * land_area) / 1e6),
            "applied_km2": float(np.sum(np.abs(applied) * land_area) / 1e6),
        }
        if note["requested_km2"] == 0:
            _fail(
                f"scenario {name!r}",
                f"the area change requests no area in {ac.region.label} (no "
                f"{'/'.join(ac.to)} there to scale)",
            )
        return (jnp.asarray(dfrac, dtype), jnp.asarray(ac.period.weights(setting.step_edges), dtype), note)

    # ---- the chain --------------------------------------------------------------------------------
    def _biosphere(self, params, checkpoint: bool):
        """Daily cell outputs ``{name: (ndays, ncell)}`` and tile carbon fluxes ``{gpp, ar, hr: (ndays,
        ntile)}`` of the window (:meth:`Biosphere.simulate` keeps no tile fluxes, so the daily loop is
        run here with :meth:`Biosphere.step`)."""
        from diffflux.models.biosphere.fluxes import NEEDED_OUTPUTS

        p = self.problem
        bio = p.biosphere

        def body(state, day):
            new, tile, out = bio.step(params, state, p.drivers.weather(day))
            return new, ({k: tile[k] for k in ("gpp", "ar", "hr")}, {k: out[k] for k in NEEDED_OUTPUTS})

        if checkpoint:
            body = jax.checkpoint(body)
        _, (tile, cell) = lax.scan(body, p.bio_state, p.day0 + jnp.arange(p.ndays))
        return cell, tile

    def _fluxes_of(self, daily):
        from diffflux.models.biosphere.fluxes import BiosphereFluxes

        p = self.problem
        return BiosphereFluxes(daily=daily, maps=p.biosphere.maps, drivers=p.drivers, day0=p.day0)

    def _gross(self, cell, tile, key, pfts):
        """Fluxes object whose ``CO2:biosphere`` is the CO2 key ``key`` restricted to ``pfts``."""
        from diffflux.models.biosphere.pft import PFT_CODES

        bio = self.problem.biosphere
        src = cell
        if pfts:
            sel = jnp.asarray(np.isin(bio.tiles.pft, [PFT_CODES.index(c) for c in pfts]), cell["gpp"].dtype)
            src = {k: bio._cell_sum(tile[k] * sel) for k in ("gpp", "ar", "hr")}
        d = dict(cell)
        for w, k in zip(GROSS_CO2[key], ("gpp", "ar", "hr")):
            d[k] = w * src[k]
        return self._fluxes_of(d)

    def _context(self, a, log_mult, checkpoint: bool) -> _Context:
        from diffflux.inversion.problem import control_flux_corrections

        p = self.problem
        corr = control_flux_corrections(p.control, self.x, p.composer)
        bf0 = tiles0 = bfs = bfa = None
        channel_bf = ()
        if p.biosphere is not None:
            params = p.parameters(self.x)
            if log_mult is not None:
                params = jax.tree_util.tree_map(lambda v, d: v * jnp.exp(d), params, log_mult)
            cell0, tiles0 = self._biosphere(params, checkpoint)
            bf0 = self._fluxes_of(cell0)
            channel_bf = tuple(
                self._gross(cell0, tiles0, ch.name, ch.pfts)
                if ch.kind == "biosphere" and ch.name in GROSS_CO2
                else None
                for ch in self.channels
            )
            if a is not None and self.has_params:
                ps = jax.tree_util.tree_map(lambda v, d: v * jnp.exp(d), params, a.log_mult)
                bfs = self._fluxes_of(self._biosphere(ps, checkpoint)[0])
            if a is not None and self.has_area:
                cells = jnp.asarray(p.biosphere.tiles.cell)
                ncell = p.biosphere.maps.ncell
                d = {
                    k: jax.ops.segment_sum((tiles0[k] * a.dfrac).T, cells, num_segments=ncell).T
                    for k in ("gpp", "ar", "hr")
                }
                bfa = self._fluxes_of({**cell0, **d})
        return _Context(corr=corr, bf0=bf0, tiles0=tiles0, channel_bf=channel_bf, bfs=bfs, bfa=bfa)

    def _basis(self, c: int, ch: Channel, n, ctx: _Context, at0, priors0, t_rel):
        p = self.problem
        if ch.kind == "add":
            return 1.0
        if ch.kind == "component":
            names = [x.name for x in p.composer.components]
            if ch.name in names:
                return p.composer.component_flux(names.index(ch.name), ctx.corr, n, priors0)
            names = [x.name for x in self.extra.components]
            return self.extra.component_flux(names.index(ch.name), {}, n)
        if ctx.channel_bf[c] is not None:
            return ctx.channel_bf[c].at(t_rel, p.steps_per_day)["CO2:biosphere"]
        return at0[ch.name]

    def _step_flux(self, n, ctx: _Context, a):
        """Tracer fluxes ``(ntr, nlat, nlon)`` [mol m-2 s-1] of transport step ``n`` (module docstring)."""
        p = self.problem
        dtype = p.air0.dtype
        t_rel = (n.astype(dtype) + 0.5) * float(p.operator.dt)
        at0 = priors0 = None
        if ctx.bf0 is not None:
            at0 = ctx.bf0.at(t_rel, p.steps_per_day)
            priors0 = {comp: at0[key][None] for comp, key in p.bio_links}
        base = p.composer.step(ctx.corr, n, priors0)
        F = base if self.extra is None else jnp.concatenate([base, self.extra.step({}, n)])
        for key, tr in self.added:
            F = F.at[tr].add(at0[key])
        if a is None:
            return F
        for c, ch in enumerate(self.channels):
            F = F.at[ch.tracer].add(
                a.coef[c, n] * a.mask[c] * self._basis(c, ch, n, ctx, at0, priors0, t_rel)
            )
        if self.has_params:
            ats = ctx.bfs.at(t_rel, p.steps_per_day)
            d = p.composer.step(ctx.corr, n, {comp: ats[key][None] for comp, key in p.bio_links}) - base
            if self.extra is not None:
                d = jnp.concatenate([d, jnp.zeros((F.shape[0] - d.shape[0],) + d.shape[1:], dtype)])
            for key, tr in self.added:
                d = d.at[tr].add(ats[key] - at0[key])
            F = F + a.param_weight[n] * a.param_mask * d
        if self.has_area:
            co2 = self.tracers.index("CO2")
            F = F.at[co2].add(a.area_weight[n] * ctx.bfa.at(t_rel, p.steps_per_day)["CO2:biosphere"])
        return F

    def initial_state(self):
        from diffflux.transport import TransportState

        s = self.problem.initial_state(self.x)
        if self.chi_extra is None:
            return s
        return TransportState.from_mixing_ratio(jnp.concatenate([s.mixing_ratio(), self.chi_extra]), s.air)

    def flux_sequence(
        self, a: ScenarioArrays | None = None, *, log_mult=None, flux_pert=None, bio_checkpoint: bool = False
    ):
        """Tracer fluxes of every step ``(nsteps, ntr, nlat, nlon)`` [mol m-2 s-1] (module docstring), plus
        ``flux_pert`` when given. Computed once per run (``lax.map`` over the steps) and handed to the
        transport as a per-step array, so the flux model is traced once; this holds the window's fluxes in
        memory (small on the coarse grids of sensitivity runs; the problem's own chain evaluates its
        fluxes inside the transport scan instead)."""
        ctx = self._context(a, log_mult, bio_checkpoint)
        seq = lax.map(lambda n: self._step_flux(n, ctx, a), jnp.arange(int(self.problem.operator.nsteps)))
        return seq if flux_pert is None else seq + flux_pert

    def simulate(
        self,
        a: ScenarioArrays | None = None,
        *,
        log_mult=None,
        flux_pert=None,
        checkpoint: str | None = None,
        bio_checkpoint: bool = False,
    ) -> dict:
        """One run of the window. Pure JAX (jit, vmap over ``a``, grad).

        Args:
            a: one scenario's arrays (None: the baseline).
            log_mult: log multipliers applied to every biosphere parameter everywhere (for gradients).
            flux_pert: ``(nsteps, ntr, nlat, nlon)`` added flux [mol m-2 s-1] (for footprints).
            checkpoint, bio_checkpoint: transport and biosphere checkpointing (gradients).

        Returns:
            dict: ``y`` ``(nobs,)`` model equivalents [mol mol-1] of the experiment table, ``burden``
            ``(ntr,)`` [mol] at the end, ``flux_mean`` ``(ntr, nlat, nlon)`` window-mean flux [mol m-2 s-1],
            ``surface`` ``(ntr, nlat, nlon)`` surface-layer mixing ratio at the end [mol mol-1],
            ``metrics`` ``(nm,)`` [SI].
        """
        from diffflux.observations import sample_run

        p = self.problem
        seq = self.flux_sequence(a, log_mult=log_mult, flux_pert=flux_pert, bio_checkpoint=bio_checkpoint)
        final, y, _ = sample_run(
            p.transport, p.met, self.initial_state(), self.operator, flux=seq, checkpoint=checkpoint
        )
        burden = jnp.sum(final.tracer, axis=(1, 2, 3))
        return {
            "y": y,
            "burden": burden,
            "flux_mean": seq.mean(axis=0),
            "surface": final.mixing_ratio()[:, 0],
            "metrics": self.weights.apply(y, burden, seq),
        }

    def flux_functional(self, a: ScenarioArrays, weights):
        """``sum_n <weights[:, n], F_n(a)>`` ``(nm,)`` for weights ``(nm, nsteps, ntr, nlat, nlon)`` (e.g. the
        per-step footprints: then the tangent of this in ``a``'s amplitude is the adjoint's prediction)."""
        return jnp.einsum("mntyx,ntyx->m", weights, self.flux_sequence(a))


def extra_component_name(species: str) -> str:
    """Composer component of an extra species' built-in inventory, e.g. ``"hfc134a_anthropogenic"``."""
    from diffflux.models.inventories import DEFAULT_COMPONENT
    from diffflux.species import get_species

    name = get_species(species).name
    return (
        "".join(ch for ch in name.lower() if ch.isalnum())
        + "_"
        + DEFAULT_COMPONENT.get(name, "anthropogenic")
    )


def experiment_table(setting: Setting, satellite_step_seconds: float | None):
    """Observation table of the experiment: hourly records of every tracer at ``setting.stations`` and
    (with ``satellite_step_seconds``) satellite-like columns of the problem's CO2/CH4 (as
    :func:`~diffflux.inversion.standard_twin` designs them: land soundings, 8 retrieval levels)."""
    from diffflux.observations import concat_tables, continuous_design, satellite_design, select, sort_table
    from diffflux.observations.osse import DEFAULT_PRIOR

    tables = []
    for s in setting.tracers:
        if setting.stations:
            tables.append(
                continuous_design(
                    list(setting.stations),
                    setting.start,
                    setting.end,
                    species=s,
                    every_hours=1,
                    uncertainty=1e-12,
                )
            )
        if satellite_step_seconds and s in DEFAULT_PRIOR:
            tables.append(
                satellite_design(
                    setting.start,
                    setting.end,
                    species=s,
                    step_seconds=satellite_step_seconds,
                    nret=8,
                    uncertainty=1e-12,
                )
            )
    if not tables:
        raise ValueError("experiment: no stations and no columns to sample")
    table, _ = select(
        sort_table(concat_tables(tables)), start=setting.start, end=setting.end, good_only=False
    )
    return table


def _operator(table, setting: Setting, op, dtype):
    from diffflux.observations import build_operator, to_arrays

    arrays = to_arrays(table, list(setting.tracers), setting.reference_time, dtype=dtype)
    return build_operator(arrays, setting.grid, t0=op.t0, dt=op.dt, nsteps=op.nsteps)


def setting_from_problem(
    problem,
    reference_time,
    *,
    stations: Sequence[str] = (),
    extra_species: Sequence[str] = (),
    columns: bool = False,
) -> Setting:
    """The :class:`Setting` of a built problem (its grid, window, tracers and components) plus extra
    species and the experiment's stations."""
    from diffflux.species import get_species

    op = problem.operator
    ref = np.datetime64(reference_time, "s")
    extra = tuple(get_species(s).name for s in extra_species)
    comps = {c.name: c.species for c in problem.composer.components}
    comps.update({extra_component_name(s): s for s in extra})
    return Setting(
        grid=op.grid,
        start=ref + np.timedelta64(int(round(op.t0)), "s"),
        nsteps=int(op.nsteps),
        dt=float(op.dt),
        reference_time=ref,
        tracers=tuple(problem.tracers) + extra,
        components=comps,
        biosphere=problem.biosphere is not None,
        stations=tuple(stations),
        columns=columns,
    )


@eqx.filter_jit
def simulate_batch(model: ExperimentModel, arrays: ScenarioArrays) -> dict:
    """All scenarios of the stacked ``arrays`` in one compiled call (``jax.vmap`` over the leading axis)."""
    return jax.vmap(lambda a: model.simulate(a))(arrays)


@eqx.filter_jit
def simulate_one(model: ExperimentModel, a: ScenarioArrays) -> dict:
    """One scenario (compiled once for all scenarios of the same shapes; used one by one for timing and
    for the baseline, ``a.scaled(0)``)."""
    return model.simulate(a)
