"""Regional and period budgets of the flux components as functions of the control, with prior and
posterior uncertainty.

For a :class:`~diffflux.inversion.problem.Problem` and a physical control ``x`` the corrected flux of
component ``c`` at transport step ``n`` is the composer's ``F_c(n; x)`` [mol m-2 s-1], with the prior of
the components linked to the biosphere taken from the biosphere run inside the chain (as in
:meth:`Problem.flux_function`). The total of region ``r`` (fractional mask ``m_r``, cell areas ``A``) over
period ``p`` (the steps whose middle lies in ``[t0, t1)`` on the run clock) is the mean rate

    ``T_rcp(x) = s_c / N_p sum_{n in p} sum_xy m_r A F_c(n; x)``

in the species' reporting unit per year (``s_c`` = :attr:`Species.flux_scale`: PgC/yr for CO2, TgCH4/yr
for CH4, i.e. Tg of the species per year; N2O in TgN/yr, as everywhere in diffflux). A key may also be a
species name: the sum of that species' components (the net flux).

Uncertainty by linearisation (whitened control ``z``, ``x = x_b + B^1/2 z``): with the gradient row
``w = dT/dz`` (``jax.jacrev``/``jax.jacfwd`` over ``z``, all totals at once), the prior variance is
``|w(0)|^2`` (the whitened prior is the identity) and the posterior variance ``w(z_a)^T A_z w(z_a)``
with ``A_z`` from an :class:`~diffflux.solvers.ExactPosterior`, a
:class:`~diffflux.solvers.LowRankPosterior` (Gauss-Newton/CG Ritz pairs) or, when none is given, a
Lanczos posterior of the problem's least-squares cost at ``z_a``
(:func:`~diffflux.solvers.lanczos_posterior`).
For additive corrections ``T`` is affine in ``z`` and the variances are exact; for log-normal corrections
and biosphere parameters they are those of the Laplace (linearised) approximation.

References: Chevallier et al. (2005) JGR 110 D24309 (Lanczos posterior errors of regional CO2 budgets);
Rodgers (2000) Inverse Methods for Atmospheric Sounding, ch. 2-3 (error of linear functionals).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.inversion.problem import control_flux_corrections

__all__ = [
    "DEFAULT_REGIONS",
    "budget_table",
    "error_reduction",
    "regional_totals",
    "standard_region_masks",
]

DEFAULT_REGIONS: tuple[str, ...] = (
    "globe", "NH", "SH", "land", "ocean",
    "lat:90S-30S", "lat:30S-30N", "lat:30N-90N",
    "ar6:ENA", "ar6:WCE", "ar6:EAS", "ar6:SAS", "ar6:SAM", "ar6:CAF", "ar6:NAU", "ar6:NPO", "ar6:SOO",
    "country:USA", "country:CHN", "country:BRA", "country:IND",
)
"""Regions of :func:`standard_region_masks` by default: globe, hemispheres, land/ocean, three latitude
bands, a set of IPCC AR6 land and ocean regions and four large countries."""


def standard_region_masks(grid, names: Sequence[str] = DEFAULT_REGIONS, *,
                          surface: str | None = None) -> dict[str, np.ndarray]:
    """Fractional masks ``{canonical name: (nlat, nlon)}`` of named regions on ``grid``
    (:func:`diffflux.regions.region_mask`; names as in :mod:`diffflux.regions.masks`, e.g. ``"globe"``,
    ``"NH"``, ``"land"``, ``"ar6:EAS"``, ``"JPN"``). Keys are the canonical names (``"country:JPN"``).

    ``surface="land"`` or ``"ocean"`` restricts every region to land or sea (at 1/12 degree).
    """
    from diffflux.regions import region, region_mask

    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("standard_region_masks: no region names given")
    out: dict[str, np.ndarray] = {}
    for n in names:
        key = region(n).name
        if key in out:
            raise ValueError(f"standard_region_masks: region {n!r} is given twice (as {key!r})")
        out[key] = np.asarray(region_mask(grid, n, surface=surface), dtype=np.float64)
    return out


# -------------------------------------------------------------------------------------------------
# the totals as a differentiable function of the control
# -------------------------------------------------------------------------------------------------


def _grid(problem):
    return problem.transport.grid


def _area_weights(problem, masks: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Region names and ``(nreg, nlat, nlon)`` weights ``mask * cell area`` [m2]."""
    grid = _grid(problem)
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError("budgets: masks must be a non-empty dict {region name: (nlat, nlon) weights}")
    names, rows = [], []
    for name, m in masks.items():
        a = np.asarray(m, dtype=np.float64)
        if a.shape != (grid.nlat, grid.nlon):
            raise ValueError(f"budgets: mask {name!r} must have shape ({grid.nlat}, {grid.nlon}) (the "
                             f"problem's grid), found {a.shape}")
        if not np.all(np.isfinite(a)) or a.min() < 0:
            raise ValueError(f"budgets: mask {name!r} must be finite fractional weights >= 0")
        names.append(str(name))
        rows.append(a * np.asarray(grid.area, dtype=np.float64))
    return names, np.stack(rows)


def _combination(problem, components) -> tuple[list[str], list[str], np.ndarray]:
    """Keys, their species, and the ``(nkey, ncomp)`` matrix from component rates [mol s-1] to the keys in
    reporting units (a component key selects one component, a species key sums the species')."""
    from diffflux.species import get_species

    comps = problem.composer.components
    cnames = [c.name for c in comps]
    species = list(dict.fromkeys(c.species for c in comps))
    if components is None:
        keys = cnames + [s for s in species if sum(c.species == s for c in comps) > 1]
    else:
        keys = [components] if isinstance(components, str) else list(components)
        if not keys:
            raise ValueError("budgets: no components given")
    out_species, rows = [], []
    for k in keys:
        if k in cnames:
            sel = np.array([c.name == k for c in comps], dtype=np.float64)
            sp = comps[cnames.index(k)].species
        elif k in species:
            sel = np.array([c.species == k for c in comps], dtype=np.float64)
            sp = k
        else:
            raise KeyError(f"budgets: unknown component {k!r}; components {cnames}, species totals {species}")
        out_species.append(sp)
        rows.append(sel * get_species(sp).flux_scale)
    return keys, out_species, np.stack(rows)


def _window(problem) -> tuple[float, float]:
    t0 = float(problem.t_start)
    return t0, t0 + problem.composer.nsteps * float(problem.operator.dt)


def _period_weights(problem, periods) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Periods ``[(t0, t1)]`` [s, run clock] and ``(nper, nsteps)`` step weights (1/N_p on the steps whose
    middle lies in ``[t0, t1)``)."""
    w0, w1 = _window(problem)
    if periods is None:
        periods = [(w0, w1)]
    else:
        periods = [tuple(float(v) for v in p) for p in periods]
    dt = float(problem.operator.dt)
    mids = w0 + (np.arange(problem.composer.nsteps) + 0.5) * dt
    rows = []
    for p in periods:
        if len(p) != 2 or not p[0] < p[1]:
            raise ValueError(f"budgets: a period must be (t0, t1) with t0 < t1 [s], found {p}")
        inside = (mids >= p[0]) & (mids < p[1])
        if not inside.any():
            raise ValueError(f"budgets: period [{p[0]:g}, {p[1]:g}) s contains no transport step of the "
                             f"window [{w0:g}, {w1:g}) s")
        rows.append(inside / inside.sum())
    return periods, np.stack(rows)


def _component_rates(problem, x, weights):
    """``(nsteps, ncomp, nreg)`` regional rates [mol s-1] of every composer component at every step."""
    composer = problem.composer
    corr = control_flux_corrections(problem.control, x, composer)
    bf = problem.daily_fluxes(x)
    links = problem.bio_links if bf is not None else ()
    dt = float(problem.operator.dt)
    spd = problem.steps_per_day
    ncomp = len(composer.components)
    w = jnp.asarray(weights, problem.y.dtype)

    def step(n):
        priors = None
        if links:  # the biosphere's sub-daily fluxes at the step's middle, as in Problem.flux_function
            at = bf.at((n.astype(w.dtype) + 0.5) * dt, spd)
            priors = {comp: at[key][None] for comp, key in links}
        f = jnp.stack([composer.component_flux(i, corr, n, priors) for i in range(ncomp)])
        return jnp.einsum("ryx,cyx->cr", w, f)

    return jax.lax.map(jax.checkpoint(step), jnp.arange(composer.nsteps))


def _totals_x(problem, x, weights, step_w, combine):
    """``(nper, nkey, nreg)`` totals [reporting unit] of the physical control ``x``."""
    rates = _component_rates(problem, x, weights)
    return jnp.einsum("pn,ncr,kc->pkr", jnp.asarray(step_w, rates.dtype), rates,
                      jnp.asarray(combine, rates.dtype))


@eqx.filter_jit
def _totals_jit(problem, x, weights, step_w, combine):
    return _totals_x(problem, x, weights, step_w, combine)


@eqx.filter_jit
def _totals_and_rows(problem, z, weights, step_w, combine, forward: bool):
    """Totals ``(K,)`` at the whitened ``z`` and their gradient rows ``(K, n)`` ``dT/dz``."""

    def f(zz):
        return _totals_x(problem, problem.control.unwhiten(zz), weights, step_w, combine).ravel()

    jac = jax.jacfwd(f) if forward else jax.jacrev(f)
    return f(z), jac(z)


def regional_totals(problem, x, masks: Mapping[str, np.ndarray], components=None,
                    period: tuple[float, float] | None = None) -> dict[tuple[str, str], jax.Array]:
    """Totals of flux components per region over the window (or ``period``) as functions of the control.

    Args:
        problem: a :class:`~diffflux.inversion.problem.Problem`.
        x: physical control (dict of blocks, :meth:`ControlVector.unwhiten`), or None for the prior.
        masks: ``{region: (nlat, nlon)}`` fractional weights (e.g. :func:`standard_region_masks`).
        components: composer component names and/or species names (their sum); default every component
            and the total of every species with several components.
        period: ``(t0, t1)`` on the run clock [s]: the steps whose middle lies in ``[t0, t1)``; default the
            window.

    Returns:
        ``{(region, component): scalar}``: mean rate [PgC/yr for CO2, TgCH4/yr for CH4; the species'
        reporting unit], differentiable in ``x`` (jitted; usable inside ``jax.grad``).
    """
    names, weights = _area_weights(problem, masks)
    keys, _, combine = _combination(problem, components)
    _, step_w = _period_weights(problem, None if period is None else [period])
    x = problem.control.prior() if x is None else x
    tot = _totals_jit(problem, x, weights, step_w, combine)[0]  # (nkey, nreg)
    return dict(zip([(r, k) for k in keys for r in names], list(tot.ravel())))  # one split, not K slices


# -------------------------------------------------------------------------------------------------
# budget table with uncertainties
# -------------------------------------------------------------------------------------------------


def _posterior_operator(posterior, problem, z_post, n_lanczos: int, key):
    """An object with ``functional_variance(W)``: the given posterior, the one of a solver result, or a
    Lanczos posterior at ``z_post``."""
    if posterior is not None and hasattr(posterior, "solver_result"):  # InversionResult
        posterior = posterior.solver_result
    if posterior is not None and hasattr(posterior, "status") and hasattr(posterior, "posterior"):  # Result
        posterior = posterior.posterior
    if posterior is not None:
        if not hasattr(posterior, "functional_variance"):
            raise TypeError(f"budget_table: posterior must be an ExactPosterior, a LowRankPosterior, a "
                            f"solver Result or None, found {type(posterior).__name__}")
        return posterior
    from diffflux.solvers import lanczos_posterior

    if n_lanczos < 1:
        raise ValueError(f"budget_table: n_lanczos must be >= 1, found {n_lanczos}")
    key = jax.random.key(0) if key is None else key
    return lanczos_posterior(problem.least_squares(), z_post, min(int(n_lanczos), problem.control.size), key)


def budget_table(problem, z_post, posterior=None, masks: Mapping[str, np.ndarray] | None = None,
                 periods: Sequence[tuple[float, float]] | None = None, z_true=None, n_lanczos: int = 64,
                 *, components=None, key=None) -> list[dict]:
    """Prior, posterior (and true) regional totals per period and component with 1-sigma uncertainties.

    Args:
        problem: a :class:`~diffflux.inversion.problem.Problem`.
        z_post: posterior whitened control ``(n,)`` (e.g. :attr:`InversionResult.z`).
        posterior: :class:`~diffflux.solvers.ExactPosterior`, :class:`~diffflux.solvers.LowRankPosterior`,
            a solver :class:`~diffflux.solvers.Result` or :class:`~diffflux.inversion.InversionResult`
            (their posterior), or None: a Lanczos posterior of ``problem.least_squares()`` at ``z_post``
            with ``n_lanczos`` pairs (exact once ``n_lanczos`` exceeds the number of observations).
        masks: ``{region: (nlat, nlon)}`` weights; default :func:`standard_region_masks` on the problem's
            grid.
        periods: ``[(t0, t1), ...]`` on the run clock [s]; default the whole window.
        z_true: the truth of a twin experiment (whitened), or None.
        n_lanczos: Lanczos pairs when ``posterior`` is None.
        components: as in :func:`regional_totals`.
        key: PRNG key of the Lanczos start vector (default ``jax.random.key(0)``).

    Returns:
        One dict per (period, region, component) with keys ``region, period_start, period_end, component,
        species, unit, prior, posterior, prior_sigma, posterior_sigma, truth`` (``truth`` None without
        ``z_true``); totals are mean rates in ``unit`` (e.g. PgC/yr), sigmas from the linearisation at the
        prior (``|dT/dz|``) and at the posterior (``sqrt(w A_z w^T)``).
    """
    masks = standard_region_masks(_grid(problem)) if masks is None else masks
    names, weights = _area_weights(problem, masks)
    keys, species, combine = _combination(problem, components)
    plist, step_w = _period_weights(problem, periods)
    n = problem.control.size
    dtype = problem.y.dtype
    z_post = jnp.asarray(z_post, dtype)
    if z_post.shape != (n,):
        raise ValueError(f"budget_table: z_post must have shape ({n},), found {z_post.shape}")
    if not bool(jnp.all(jnp.isfinite(z_post))):
        raise ValueError("budget_table: z_post has non-finite values (a failed inversion?)")
    op = _posterior_operator(posterior, problem, z_post, n_lanczos, key)
    nout = len(plist) * len(keys) * len(names)
    forward = n <= nout  # fewer JVPs than VJPs
    prior, w_prior = _totals_and_rows(problem, jnp.zeros(n, dtype), weights, step_w, combine, forward)
    post, w_post = _totals_and_rows(problem, z_post, weights, step_w, combine, forward)
    var_prior = np.sum(np.square(np.asarray(w_prior)), axis=1)
    var_post = np.asarray(op.functional_variance(w_post))
    truth = None
    if z_true is not None:
        z_true = jnp.asarray(z_true, dtype)
        if z_true.shape != (n,):
            raise ValueError(f"budget_table: z_true must have shape ({n},), found {z_true.shape}")
        truth = np.asarray(_totals_jit(problem, problem.control.unwhiten(z_true), weights, step_w,
                                       combine)).ravel()
    from diffflux.species import get_species

    prior, post = np.asarray(prior), np.asarray(post)
    nk, nr = len(keys), len(names)
    rows = []
    for ip, (p0, p1) in enumerate(plist):
        for ir, r in enumerate(names):
            for ik, (k, sp) in enumerate(zip(keys, species)):
                i = (ip * nk + ik) * nr + ir  # the totals are (period, key, region) in C order
                rows.append({
                    "region": r, "period_start": p0, "period_end": p1, "component": k, "species": sp,
                    "unit": get_species(sp).flux_unit, "prior": float(prior[i]), "posterior": float(post[i]),
                    "prior_sigma": float(np.sqrt(max(var_prior[i], 0.0))),
                    "posterior_sigma": float(np.sqrt(max(var_post[i], 0.0))),
                    "truth": None if truth is None else float(truth[i]),
                })
    return rows


def error_reduction(rows: Sequence[dict]) -> list[dict]:
    """Per row of :func:`budget_table` with a truth: errors of the prior and the posterior and
    ``error_reduction = 1 - |posterior - truth| / |prior - truth|`` (nan where the prior is exact), with
    ``within_2sigma`` (``|posterior - truth| <= 2 posterior_sigma``) and ``uncertainty_reduction``
    (``1 - posterior_sigma / prior_sigma``, nan where the prior sigma is 0)."""
    out = []
    for r in rows:
        if r.get("truth") is None:
            continue
        e0 = abs(r["prior"] - r["truth"])
        e1 = abs(r["posterior"] - r["truth"])
        s0, s1 = r["prior_sigma"], r["posterior_sigma"]
        out.append({
            "region": r["region"], "period_start": r["period_start"], "period_end": r["period_end"],
            "component": r["component"], "unit": r["unit"], "prior_error": e0, "posterior_error": e1,
            "error_reduction": 1.0 - e1 / e0 if e0 > 0 else float("nan"),
            "within_2sigma": bool(e1 <= 2.0 * s1),
            "uncertainty_reduction": 1.0 - s1 / s0 if s0 > 0 else float("nan"),
        })
    if rows and not out:
        raise ValueError("error_reduction: no row has a truth (budget_table(..., z_true=...))")
    return out
