"""Flux composer: surface flux per species (or per tagged tracer) from prior components and control-vector
corrections. Pure JAX, differentiable and jit-able in the corrections (and in the prior fields).

For each component ``c`` (fossil CO2, ocean CO2, biosphere NEE, fire, wetland CH4, ...), with prior flux
``F_c(x, y, t)`` [mol m-2 s-1] and a correction ``u_c`` (a leaf of the corrections pytree), the corrected
flux at transport step ``n`` (time ``t_n``, temporal block ``b = block(t_n)``) is

* ``Additive``:     ``F'_c = F_c + delta``,           ``delta = u_c[b]`` [mol m-2 s-1]
* ``LogNormal``:    ``F'_c = F_c exp(u)``,            ``u = u_c[b]`` [1] (log of the scaling factor)
* ``LinearScale``:  ``F'_c = F_c (1 + u)``,           ``u = u_c[b]`` [1] (fractional change)

on a **grid basis** (``u_c`` has shape ``(nblock, nlat, nlon)``: one value per cell), or on a **region
basis** (``u_c`` has shape ``(nblock, nregion)``; fractional masks ``m_r`` (:mod:`diffflux.regions`) that
must not overlap, ``sum_r m_r <= 1``). On a region basis the part of the flux in region ``r`` is
corrected by that region's value and the rest of the flux is left alone:

* additive:         ``F' = F + sum_r m_r delta_r``  (``delta_r`` a flux density spread uniformly over ``r``)
* multiplicative:   ``F' = F (1 - sum_r m_r) + sum_r m_r F g(u_r)``  (``g = exp`` or ``1 + u``), so a region's
  total (weighted by its mask) is scaled exactly by ``g(u_r)``.

Zero corrections reproduce the prior exactly in every form (:meth:`FluxComposer.zero_corrections`).
The inversion wraps these corrections into its control vector: ``x = x_b + B^1/2 z`` with ``x_b`` = 0 and
``B`` the prior covariance of ``u`` (dimensionless for LogNormal/LinearScale, (mol m-2 s-1)^2 for
Additive).

Temporal blocks (:class:`TemporalBlocks`, edges in seconds) are mapped to transport steps by each step's
time ``t_n`` (e.g. the step's middle): ``block(t_n) = b`` with ``edges[b] <= t_n < edges[b + 1]``. Prior
records (e.g. monthly fields) are mapped the same way, optionally cyclically (climatologies).

Output: ``(nsteps, ntracer, nlat, nlon)`` [mol m-2 s-1] (:meth:`FluxComposer.__call__`), or one step
``(ntracer, nlat, nlon)`` (:meth:`FluxComposer.step`) for use inside the transport scan, or a function of
time (:meth:`FluxComposer.as_function`) for :func:`diffflux.transport.run.run`'s ``flux=`` argument. The
tracers are chosen by ``tagging``:

* ``"species"``: one tracer per species (the sum of its components);
* ``"component"``: one tracer per component (``"CO2:ocean"``), for attribution by process;
* ``"region"``: per species one tracer per tagging region plus ``"rest"`` (``"CO2@ar6:EAS"``), for
  attribution by origin.

The tracers of a species always sum to its total (:meth:`FluxComposer.species_totals`).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid

# -------------------------------------------------------------------------------------------------
# strategy objects
# -------------------------------------------------------------------------------------------------


class Additive(eqx.Module):
    """Additive correction ``F + delta``, ``delta`` [mol m-2 s-1]."""

    name = "additive"

    def factor(self, u):  # pragma: no cover - additive corrections have no factor
        raise TypeError("Additive corrections have no multiplicative factor")


class LogNormal(eqx.Module):
    """Multiplicative log-normal correction ``F exp(u)``, ``u`` [1] (keeps the sign of the prior)."""

    name = "lognormal"

    def factor(self, u):
        return jnp.exp(u)


class LinearScale(eqx.Module):
    """Multiplicative linear correction ``F (1 + u)``, ``u`` [1]."""

    name = "linear"

    def factor(self, u):
        return 1.0 + u


class GridBasis(eqx.Module):
    """One correction per grid cell: ``u`` has shape ``(nblock, nlat, nlon)``."""


class RegionBasis(eqx.Module):
    """One correction per region: ``u`` has shape ``(nblock, nregion)``.

    Attributes:
        masks: ``(nregion, nlat, nlon)`` fractional masks [1] that do not overlap (``sum <= 1``).
        names: region names (static).
    """

    masks: jax.Array
    names: tuple[str, ...] = eqx.field(static=True)

    @classmethod
    def from_names(cls, grid: LatLonGrid, names: Sequence[str], *, surface: str | None = None,
                   overlaps: str = "error", dtype=jnp.float64) -> RegionBasis:
        """Masks of named regions (:func:`diffflux.regions.region_masks`); ``overlaps`` as in
        :meth:`from_masks`."""
        from diffflux.regions import region, region_masks

        return cls.from_masks(region_masks(grid, names, surface=surface),
                              [region(n).name for n in names], overlaps=overlaps, dtype=dtype)

    @classmethod
    def from_masks(cls, masks, names: Sequence[str], *, overlaps: str = "error",
                   dtype=jnp.float64) -> RegionBasis:
        """Custom masks ``(nregion, nlat, nlon)`` in [0, 1].

        ``overlaps="error"`` (default) rejects masks whose sum exceeds 1 anywhere; ``"normalise"`` divides
        the masks by their sum in those cells (for sets such as the AR6 regions, whose published polygons
        overlap in thin slivers along a few shared edges).
        """
        m = np.asarray(masks, dtype=np.float64)
        if m.ndim != 3 or m.shape[0] != len(names):
            raise ValueError(f"RegionBasis: masks must be ({len(names)}, nlat, nlon), found {m.shape}")
        if m.min() < -1e-12 or m.max() > 1 + 1e-12:
            raise ValueError(f"RegionBasis: masks must lie in [0, 1], found {m.min():g} .. {m.max():g}")
        if overlaps not in ("error", "normalise"):
            raise ValueError(f"RegionBasis: overlaps must be 'error' or 'normalise', found {overlaps!r}")
        total = m.sum(axis=0)
        over = total.max()
        if over > 1 + 1e-9:
            if overlaps == "error":
                raise ValueError(
                    f"RegionBasis: regions {list(names)} overlap (mask sum up to {over:.4f} > 1 in "
                    f"{int((total > 1 + 1e-9).sum())} cells); use non-overlapping regions or "
                    f"overlaps='normalise'"
                )
            m = m / np.maximum(total, 1.0)[None]
        return cls(masks=jnp.asarray(m, dtype=dtype), names=tuple(names))


class TemporalBlocks(eqx.Module):
    """Temporal blocks of a correction: block ``b`` spans ``edges[b] <= t < edges[b + 1]`` [s].

    ``TemporalBlocks.regular(start, length, n)`` gives ``n`` blocks of ``length`` seconds (e.g. weekly).
    """

    edges: np.ndarray = eqx.field(static=True, converter=lambda e: tuple(float(x) for x in e))

    @classmethod
    def regular(cls, start: float, length: float, n: int) -> TemporalBlocks:
        return cls(edges=tuple(start + length * np.arange(n + 1)))

    @property
    def n(self) -> int:
        return len(self.edges) - 1


class Correction(eqx.Module):
    """How a component is corrected: ``form`` (Additive, LogNormal, LinearScale), ``basis`` (GridBasis or
    RegionBasis) and ``blocks`` (TemporalBlocks; None = one block for the whole window)."""

    form: Additive | LogNormal | LinearScale = LogNormal()
    basis: GridBasis | RegionBasis = GridBasis()
    blocks: TemporalBlocks | None = None


class FluxComponent(eqx.Module):
    """A prior flux component.

    Attributes:
        name: component name (unique within the composer; the key of its correction).
        species: species name (tracers of the same species are summed).
        flux: ``(nrec, nlat, nlon)`` prior flux [mol m-2 s-1], positive = emission.
        record_edges: ``(nrec + 1,)`` record edges [s] (None for a single record valid at all times).
        period: cycle length [s] for climatological records (0 = not cyclic: times outside the records
            take the nearest record).
        correction: :class:`Correction` or None (fixed component).
    """

    name: str = eqx.field(static=True)
    species: str = eqx.field(static=True)
    flux: jax.Array
    record_edges: tuple[float, ...] | None = eqx.field(static=True, default=None)
    period: float = eqx.field(static=True, default=0.0)
    correction: Correction | None = None

    @classmethod
    def create(cls, name: str, species: str, flux, *, record_edges=None, period: float = 0.0,
               correction: Correction | None = None, dtype=jnp.float64) -> FluxComponent:
        """Validated component (``flux`` ``(nlat, nlon)`` or ``(nrec, nlat, nlon)``)."""
        f = jnp.asarray(flux, dtype=dtype)
        if f.ndim == 2:
            f = f[None]
        if f.ndim != 3:
            raise ValueError(f"FluxComponent {name}: flux must be (nrec, nlat, nlon), found {f.shape}")
        if f.shape[0] > 1 and record_edges is None:
            raise ValueError(
                f"FluxComponent {name}: {f.shape[0]} records need record_edges (nrec + 1 times [s])"
            )
        edges = None
        if record_edges is not None:
            e = np.asarray(record_edges, dtype=np.float64)
            if e.shape != (f.shape[0] + 1,) or np.any(np.diff(e) <= 0):
                raise ValueError(
                    f"FluxComponent {name}: record_edges must be {f.shape[0] + 1} increasing times [s], "
                    f"found {e.tolist()}"
                )
            edges = tuple(float(x) for x in e)
        from diffflux.species import get_species

        return cls(name=name, species=get_species(species).name, flux=f, record_edges=edges,
                   period=float(period), correction=correction)

    @classmethod
    def from_inventory(cls, inventory, *, name: str | None = None, sectors: Sequence[str] | None = None,
                       reference_time="2000-01-01", period: float = 0.0,
                       correction: Correction | None = None, dtype=jnp.float64) -> FluxComponent:
        """Component from a :class:`diffflux.models.inventories.Inventory` (sum of ``sectors``, default
        all); record edges relative to ``reference_time``."""
        flux = inventory.flux if sectors is None else np.stack([inventory.sector(s) for s in sectors], 1)
        edges = inventory.record_edges(reference_time) if inventory.ntime > 1 else None
        return cls.create(name or inventory.component, inventory.species.name, flux.sum(axis=1),
                          record_edges=edges, period=period, correction=correction, dtype=dtype)


def _index_of(times: np.ndarray, edges, period: float, what: str, strict: bool) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if period > 0:
        t = e[0] + np.mod(t - e[0], period)
    k = np.searchsorted(e, t, side="right") - 1
    if strict and (np.any(k < 0) or np.any(k >= e.size - 1)):
        bad = t[(k < 0) | (k >= e.size - 1)]
        raise ValueError(
            f"{what}: step times {bad[:3].tolist()} [s] lie outside the blocks {e[0]:g} .. {e[-1]:g} [s]"
        )
    return np.clip(k, 0, e.size - 2)


class FluxComposer(eqx.Module):
    """Sum of corrected components per tracer at the transport steps (see the module docstring).

    Build with :meth:`build`. Attributes (set by ``build``):
        components: the components.
        species: species in tracer order of the untagged output.
        tracer_names: names of the output tracers; ``tracer_species`` the species of each.
        tagging: ``"species"``, ``"component"`` or ``"region"``.
        tag_masks: ``(ntag, nlat, nlon)`` masks for region tagging (None otherwise).
        step_edges: ``(nsteps + 1,)`` [s] for :meth:`as_function`.
    """

    components: tuple[FluxComponent, ...]
    record_index: tuple[jax.Array, ...]
    block_index: tuple[jax.Array, ...]
    tag_masks: jax.Array | None
    step_edges: jax.Array
    species: tuple[str, ...] = eqx.field(static=True)
    tracer_names: tuple[str, ...] = eqx.field(static=True)
    tracer_species: tuple[str, ...] = eqx.field(static=True)
    tagging: str = eqx.field(static=True)
    nsteps: int = eqx.field(static=True)

    @classmethod
    def build(cls, components: Sequence[FluxComponent], step_times, *, step_edges=None,
              tagging: str = "species", tag_regions: RegionBasis | None = None,
              species_order: Sequence[str] | None = None) -> FluxComposer:
        """Composer for transport steps at times ``step_times`` ``(nsteps,)`` [s].

        Args:
            components: the flux components (names unique; all on the same grid).
            step_times: the time of each transport step (e.g. its middle) [s].
            step_edges: ``(nsteps + 1,)`` step boundaries [s] for :meth:`as_function` (default: half-way
                between step times).
            tagging: ``"species"``, ``"component"`` or ``"region"``.
            tag_regions: the regions of ``"region"`` tagging (a :class:`RegionBasis`).
            species_order: order of the species tracers (default: order of first appearance).
        """
        comps = tuple(components)
        if not comps:
            raise ValueError("FluxComposer: no components")
        names = [c.name for c in comps]
        if len(set(names)) != len(names):
            raise ValueError(f"FluxComposer: component names must be unique, found {names}")
        shapes = {c.flux.shape[1:] for c in comps}
        if len(shapes) != 1:
            raise ValueError(f"FluxComposer: components are on different grids: {shapes}")
        times = np.atleast_1d(np.asarray(step_times, dtype=np.float64))
        if times.ndim != 1 or np.any(np.diff(times) <= 0):
            raise ValueError("FluxComposer: step_times must be increasing times [s]")
        species = tuple(dict.fromkeys(species_order or [c.species for c in comps]))
        missing = {c.species for c in comps} - set(species)
        if missing:
            raise ValueError(f"FluxComposer: species_order lacks {sorted(missing)}")
        rec_idx, blk_idx = [], []
        for c in comps:
            if c.record_edges is None:
                rec_idx.append(jnp.zeros(times.size, dtype=jnp.int32))
            else:
                rec_idx.append(jnp.asarray(_index_of(times, c.record_edges, c.period,
                                                     f"component {c.name} records", False), jnp.int32))
            blocks = c.correction.blocks if c.correction is not None else None
            if blocks is None:
                blk_idx.append(jnp.zeros(times.size, dtype=jnp.int32))
            else:
                blk_idx.append(jnp.asarray(_index_of(times, blocks.edges, 0.0,
                                                     f"component {c.name} temporal blocks", True), jnp.int32))
            if c.correction is not None and isinstance(c.correction.basis, RegionBasis):
                if c.correction.basis.masks.shape[1:] != c.flux.shape[1:]:
                    raise ValueError(f"component {c.name}: region masks and flux are on different grids")
        if tagging == "species":
            tracers = species
            tracer_species = species
            tag_masks = None
        elif tagging == "component":
            order = sorted(range(len(comps)), key=lambda i: species.index(comps[i].species))
            comps = tuple(comps[i] for i in order)
            rec_idx = [rec_idx[i] for i in order]
            blk_idx = [blk_idx[i] for i in order]
            tracers = tuple(f"{c.species}:{c.name}" for c in comps)
            tracer_species = tuple(c.species for c in comps)
            tag_masks = None
        elif tagging == "region":
            if tag_regions is None:
                raise ValueError("FluxComposer: tagging='region' needs tag_regions (a RegionBasis)")
            labels = (*tag_regions.names, "rest")
            tracers = tuple(f"{s}@{r}" for s in species for r in labels)
            tracer_species = tuple(s for s in species for _ in labels)
            tag_masks = tag_regions.masks
        else:
            raise ValueError(
                f"FluxComposer: tagging must be 'species', 'component' or 'region', found {tagging!r}"
            )
        if step_edges is None:
            mid = 0.5 * (times[1:] + times[:-1])
            first = times[0] - (mid[0] - times[0] if times.size > 1 else 0.5)
            last = times[-1] + (times[-1] - mid[-1] if times.size > 1 else 0.5)
            step_edges = np.concatenate([[first], mid, [last]])
        dtype = comps[0].flux.dtype
        return cls(components=comps, record_index=tuple(rec_idx), block_index=tuple(blk_idx),
                   tag_masks=tag_masks, step_edges=jnp.asarray(step_edges, dtype=dtype), species=species,
                   tracer_names=tracers, tracer_species=tracer_species, tagging=tagging,
                   nsteps=int(times.size))

    # ---- corrections pytree -----------------------------------------------------------------------
    def correction_shapes(self) -> dict[str, tuple[int, ...]]:
        """Component name -> shape of its correction (corrected components only)."""
        out = {}
        for c in self.components:
            if c.correction is None:
                continue
            nb = 1 if c.correction.blocks is None else c.correction.blocks.n
            if isinstance(c.correction.basis, RegionBasis):
                out[c.name] = (nb, len(c.correction.basis.names))
            else:
                out[c.name] = (nb,) + tuple(c.flux.shape[1:])
        return out

    def zero_corrections(self, dtype=None) -> dict[str, jax.Array]:
        """The prior: zeros of the right shapes (a dict pytree, component name -> array)."""
        dt = dtype or self.components[0].flux.dtype
        return {k: jnp.zeros(s, dtype=dt) for k, s in self.correction_shapes().items()}

    def _check(self, corrections) -> None:
        shapes = self.correction_shapes()
        got = set(corrections) if corrections is not None else set()
        if got != set(shapes):
            raise ValueError(
                f"FluxComposer: corrections must have keys {sorted(shapes)}, found {sorted(got)}"
            )
        for k, s in shapes.items():
            if tuple(corrections[k].shape) != s:
                raise ValueError(
                    f"FluxComposer: correction '{k}' must have shape {s}, found {corrections[k].shape}"
                )

    # ---- evaluation ------------------------------------------------------------------------------
    def component_flux(self, i: int, corrections, n, priors=None):
        """Corrected flux ``(nlat, nlon)`` [mol m-2 s-1] of component ``i`` at step ``n`` (traceable).

        ``priors`` optionally maps component names to replacement prior fields ``(nrec, nlat, nlon)``
        (e.g. the NEE of a differentiable biosphere model evaluated inside the cost function)."""
        c = self.components[i]
        field = c.flux if priors is None or c.name not in priors else priors[c.name]
        prior = field[self.record_index[i][n]]
        if c.correction is None:
            return prior
        u = corrections[c.name][self.block_index[i][n]]
        form, basis = c.correction.form, c.correction.basis
        if isinstance(basis, RegionBasis):
            m = basis.masks
            if isinstance(form, Additive):
                return prior + jnp.tensordot(u, m, axes=1)
            g = form.factor(u)
            return prior * (1.0 + jnp.tensordot(g - 1.0, m, axes=1))
        if isinstance(form, Additive):
            return prior + u
        return prior * form.factor(u)

    def step(self, corrections, n, priors=None):
        """Tracer fluxes ``(ntracer, nlat, nlon)`` [mol m-2 s-1] at step ``n`` (an int or traced int)."""
        fluxes = [self.component_flux(i, corrections, n, priors) for i in range(len(self.components))]
        if self.tagging == "component":
            return jnp.stack(fluxes)
        per_species = []
        for s in self.species:
            parts = [f for f, c in zip(fluxes, self.components) if c.species == s]
            per_species.append(sum(parts[1:], parts[0]) if parts else jnp.zeros_like(fluxes[0]))
        tot = jnp.stack(per_species)  # (nspecies, nlat, nlon)
        if self.tagging == "species":
            return tot
        m = self.tag_masks
        rest = 1.0 - m.sum(axis=0)
        tagged = jnp.concatenate([tot[:, None] * m[None], (tot * rest[None])[:, None]], axis=1)
        return tagged.reshape((-1,) + tot.shape[1:])

    def _check_priors(self, priors) -> None:
        if priors is None:
            return
        by_name = {c.name: c for c in self.components}
        for k, v in priors.items():
            if k not in by_name:
                raise ValueError(
                    f"FluxComposer: priors for unknown component {k!r}; components: {sorted(by_name)}"
                )
            if tuple(v.shape) != tuple(by_name[k].flux.shape):
                raise ValueError(
                    f"FluxComposer: prior '{k}' must have shape {tuple(by_name[k].flux.shape)}, "
                    f"found {v.shape}"
                )

    def __call__(self, corrections=None, priors=None):
        """All steps: ``(nsteps, ntracer, nlat, nlon)`` [mol m-2 s-1]. ``corrections=None`` = the prior;
        ``priors``: optional replacement prior fields by component name (see :meth:`component_flux`)."""
        corr = self.zero_corrections() if corrections is None else corrections
        self._check(corr)
        self._check_priors(priors)
        return jax.lax.map(lambda n: self.step(corr, n, priors), jnp.arange(self.nsteps))

    def as_function(self, corrections=None, priors=None):
        """``flux(t) -> (ntracer, nlat, nlon)``: the step containing ``t`` [s] (for ``run(flux=...)``)."""
        corr = self.zero_corrections() if corrections is None else corrections
        self._check(corr)
        self._check_priors(priors)

        def flux(t):
            n = jnp.clip(jnp.searchsorted(self.step_edges, t, side="right") - 1, 0, self.nsteps - 1)
            return self.step(corr, n, priors)

        return flux

    def species_totals(self, tracer_flux):
        """Sum tracers ``(..., ntracer, nlat, nlon)`` to species ``(..., nspecies, nlat, nlon)``."""
        sel = np.array([[ts == s for ts in self.tracer_species] for s in self.species], dtype=float)
        return jnp.einsum("st,...tyx->...syx", jnp.asarray(sel, dtype=tracer_flux.dtype), tracer_flux)
