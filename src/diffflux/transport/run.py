"""Running the transport over many steps with ``lax.scan``, optional outputs and checkpointing.

``run`` jits nothing by itself: call it inside ``jax.jit`` (or use :func:`make_runner`) so that the whole
window compiles once. Memory for reverse-mode gradients is controlled by ``checkpoint``:

* ``None``: store every step's residuals (fastest gradient, memory ~ T x step residuals),
* ``"step"``: ``jax.checkpoint`` around each step (stores one state per step, recomputes a step),
* ``"nested"``: two-level checkpointing, an outer scan over segments whose inner scans are
  rematerialised (Griewank 1992; memory ~ (T / s + s) states with segment length ``s ~ sqrt(T)``),
* ``"auto"``: the cheapest of ``"step"`` and ``"nested"`` whose memory fits a budget
  (:func:`plan_checkpoint`; ``memory_budget=`` bytes, default :func:`default_memory_budget`).

Sampling inside the scan (``observe=``): a pure function ``observe(n, state_before, state_after, met)``
called in every step ``n`` with the states at ``t0 + n dt`` and ``t0 + (n + 1) dt`` and the met of the
step; its outputs (any pytree of arrays of fixed shape) are stacked along a leading ``nsteps`` axis and
returned as a third result. It sits inside the checkpointed step, so it is recomputed, not stored, in the
backward pass. :class:`diffflux.observations.ObservationOperator` is such a function.

Compensated summation (``compensate=``): in float32 the tracer increments of the flux-form operators
are added with a carried compensation term (Kahan 1965, Neumaier 1974; see
:mod:`diffflux.transport.compensated`), which keeps the global tracer mass to ~1e-7 over a year instead
of drifting by a few 1e-6 (``scripts/float32_mass_drift.py``). The default (``None``) compensates states
narrower than float64; float64 runs are unchanged. A state without a ``residual`` gets a zero one for
the run, and the returned final state has it folded back into ``tracer`` (same pytree structure as the
input); a state that carries one keeps it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.met.fields import MetSource
from diffflux.transport.compensated import wants_compensation
from diffflux.transport.model import Transport, TransportState


def _segment_length(nsteps: int) -> int:
    """Divisor of ``nsteps`` closest to ``sqrt(nsteps)``."""
    root = math.sqrt(nsteps)
    divisors = [d for d in range(1, nsteps + 1) if nsteps % d == 0]
    return min(divisors, key=lambda d: (abs(d - root), d))


RESIDUAL_STATES_PER_STEP = 80
"""Reverse-mode residuals of one step, in units of the state's bytes (upper estimate). Measured with
XLA's memory analysis of un-checkpointed gradients (``benchmarks/RESULTS.md``, gradient table): 624 B per
cell and step for a compensated float32 state of 12 B per cell (52 states) and 1096 B for a float64 state
of 16 B per cell (68.5 states), one tracer, PPM + implicit vertical diffusion."""


def default_memory_budget() -> int:
    """Bytes a gradient may use: ``DIFFFLUX_MEMORY_BUDGET_GB`` if set, else half of the memory of the
    first device (its allocator limit on GPUs, the available RAM on CPUs)."""
    env = os.environ.get("DIFFFLUX_MEMORY_BUDGET_GB")
    if env:
        try:
            return int(float(env) * 1e9)
        except ValueError:
            raise ValueError(f"DIFFFLUX_MEMORY_BUDGET_GB must be a number of GB, found {env!r}") from None
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # pragma: no cover - backends without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"] // 2)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 10**9


def plan_checkpoint(state: TransportState, nsteps: int, memory_budget: float | None = None,
                    compensate: bool | None = None) -> dict:
    """Checkpointing that fits ``memory_budget`` [bytes] for a gradient through ``nsteps`` steps.

    Memory of the transport's reverse pass, from the state's bytes ``S`` (tracer, its float32
    compensation term, air) and one step's residuals ``R = RESIDUAL_STATES_PER_STEP x S``:
    ``"step"`` stores ``T S + R``, ``"nested"`` with segments of ``s`` steps ``(T / s + s) S + R``
    (smallest at ``s ~ sqrt(T)``), no checkpointing ``T R``. ``"step"`` is chosen when it fits (one
    recomputed forward; measured as fast as no checkpointing on CPU), else ``"nested"`` (one more
    forward). Met, fluxes and observation tables are not counted.

    Returns:
        ``{"checkpoint", "segment", "bytes", "budget", "state_bytes", "bytes_by_mode"}``.

    Raises:
        ValueError: when even nested checkpointing needs more than the budget (the message gives
            both figures).
    """
    nsteps = int(nsteps)
    budget = float(default_memory_budget() if memory_budget is None else memory_budget)
    if compensate is None:
        compensate = wants_compensation(state.tracer.dtype)
    leaves = [state.tracer, state.air] + ([state.tracer] if compensate or state.residual is not None else [])
    S = float(sum(x.size * jnp.dtype(x.dtype).itemsize for x in leaves))
    R = RESIDUAL_STATES_PER_STEP * S
    seg = _segment_length(nsteps)
    by_mode = {"none": nsteps * R, "step": nsteps * S + R, "nested": (nsteps / seg + seg) * S + R}
    if by_mode["step"] <= budget:
        mode = "step"
    elif by_mode["nested"] <= budget:
        mode = "nested"
    else:
        raise ValueError(
            f"run: checkpoint='auto': a gradient through {nsteps} steps needs about "
            f"{by_mode['nested'] / 1e9:.2f} GB even with nested checkpointing (segments of {seg} steps, "
            f"state {S / 1e6:.1f} MB), more than the memory budget of {budget / 1e9:.2f} GB; shorten the "
            "window, use fewer tracers or a coarser grid, or raise the budget (memory_budget= or "
            "DIFFFLUX_MEMORY_BUDGET_GB)"
        )
    return {"checkpoint": mode, "segment": seg if mode == "nested" else None, "bytes": by_mode[mode],
            "budget": budget, "state_bytes": S, "bytes_by_mode": by_mode}


def run(
    model: Transport,
    met: MetSource,
    state: TransportState,
    *,
    dt: float,
    nsteps: int,
    t0=0.0,
    flux: jax.Array | Callable | None = None,
    elevated: jax.Array | Callable | None = None,
    save_every: int | None = None,
    checkpoint: str | None = None,
    segment: int | None = None,
    observe: Callable | None = None,
    compensate: bool | None = None,
    memory_budget: float | None = None,
):
    """Integrate ``nsteps`` steps of length ``dt`` [s] from time ``t0`` [s].

    Args:
        model: the :class:`Transport`.
        met: a met source; evaluated at the middle of each step.
        state: initial :class:`TransportState`.
        dt: step length [s] (static).
        nsteps: number of steps (static).
        t0: start time [s] (may be traced).
        flux: surface flux [mol m-2 s-1]: None, an array ``(ntr, nlat, nlon)`` held constant, an array
            ``(nsteps, ntr, nlat, nlon)`` (one field per step), or a pure function ``flux(t)``.
        elevated: emissions into all levels [mol m-2 s-1]: None, an array ``(ntr, nlev, nlat, nlon)``
            held constant, or a pure function ``elevated(t)`` returning that shape.
        save_every: if given, the mixing ratio is saved after every ``save_every`` steps; ``nsteps`` must
            be a multiple of it.
        checkpoint: ``None``, ``"step"``, ``"nested"`` or ``"auto"`` (see module docstring).
        segment: inner segment length for ``"nested"`` (default: divisor of nsteps nearest sqrt(nsteps)).
        observe: None (default) or a pure function ``observe(n, state_before, state_after, met_fields)``
            returning a pytree of fixed-shape arrays per step (see module docstring).
        compensate: compensated tracer summation (see module docstring): None (default) for float32
            and narrower states only, True or False to force it. False with a state that carries a
            ``residual`` folds it into ``tracer`` first.
        memory_budget: bytes for ``checkpoint="auto"`` (default :func:`default_memory_budget`).

    Returns:
        ``(final_state, saved)`` where ``saved`` is ``(nsave, ntr, nlev, nlat, nlon)`` mixing ratios
        [mol mol-1] (None without ``save_every``); with ``observe``, ``(final_state, saved, observed)``
        where ``observed`` holds the outputs of ``observe`` stacked along a leading ``nsteps`` axis.
    """
    if checkpoint not in (None, "step", "nested", "auto"):
        raise ValueError(f"run: checkpoint must be None, 'step', 'nested' or 'auto', found {checkpoint!r}")
    nsteps = int(nsteps)
    if nsteps < 1:
        raise ValueError(f"run: nsteps must be >= 1, found {nsteps}")
    if checkpoint == "auto":
        plan = plan_checkpoint(state, nsteps, memory_budget, compensate)
        checkpoint = plan["checkpoint"]
        segment = segment or plan["segment"]
    if save_every is not None and (save_every < 1 or nsteps % save_every):
        raise ValueError(
            f"run: nsteps={nsteps} must be a positive multiple of save_every={save_every}"
        )
    dtype = state.air.dtype
    t0 = jnp.asarray(t0, dtype=dtype)
    if compensate is None:
        compensate = wants_compensation(state.tracer.dtype)
    fold = compensate and state.residual is None  # residual added here: fold it back at the end
    state = state.with_residual() if compensate else state.folded()

    if flux is None:
        def flux_at(n, t):
            return None
    elif callable(flux):
        def flux_at(n, t):
            return flux(t)
    else:
        flux_arr = jnp.asarray(flux)
        if flux_arr.ndim == 4:
            if flux_arr.shape[0] != nsteps:
                raise ValueError(
                    f"run: a per-step flux must have leading length nsteps={nsteps}, "
                    f"found shape {flux_arr.shape}"
                )
            def flux_at(n, t):
                return lax.dynamic_index_in_dim(flux_arr, n, axis=0, keepdims=False)
        elif flux_arr.ndim == 3:
            def flux_at(n, t):
                return flux_arr
        else:
            raise ValueError(
                f"run: flux must be (ntr, nlat, nlon) or (nsteps, ntr, nlat, nlon), found {flux_arr.shape}"
            )

    if elevated is None or callable(elevated):
        elevated_at = elevated if elevated is not None else (lambda t: None)
    else:
        elev_arr = jnp.asarray(elevated)
        if elev_arr.shape[1:] != state.air.shape or elev_arr.ndim != 4:
            raise ValueError(f"run: elevated emissions must be (ntr,) + {state.air.shape}, "
                             f"found {elev_arr.shape}")

        def elevated_at(t):
            return elev_arr

    def one_step(s: TransportState, n):
        t = t0 + (n.astype(dtype) + 0.5) * dt
        fields = met.fields(t)
        new = model.step(s, fields, dt, flux_at(n, t), elevated_at(t))
        return new, (None if observe is None else observe(n, s, new, fields))

    body = jax.checkpoint(one_step) if checkpoint in ("step", "nested") else one_step

    def finish(state, saved, observed):
        if fold:
            state = state.folded()
        return (state, saved) if observe is None else (state, saved, observed)

    def inner(s, n_start, length):
        def f(c, k):
            return body(c, n_start + k)
        return lax.scan(f, s, jnp.arange(length))

    if save_every is None and checkpoint != "nested":
        state, observed = lax.scan(body, state, jnp.arange(nsteps))
        return finish(state, None, observed)

    if save_every is not None:
        seg = save_every
    else:
        seg = segment or _segment_length(nsteps)
        if nsteps % seg:
            raise ValueError(f"run: segment={seg} must divide nsteps={nsteps}")
    nseg = nsteps // seg
    def seg_fn(s, n0):
        return inner(s, n0, seg)

    if checkpoint == "nested":
        seg_fn = jax.checkpoint(seg_fn)

    def outer(s, i):
        s, observed = seg_fn(s, i * seg)
        out = s.mixing_ratio() if save_every is not None else None
        return s, (out, observed)

    state, (saved, observed) = lax.scan(outer, state, jnp.arange(nseg))
    if observe is not None:  # (nseg, seg, ...) -> (nsteps, ...)
        observed = jax.tree_util.tree_map(lambda a: a.reshape((nsteps,) + a.shape[2:]), observed)
    return finish(state, saved, observed)


def make_runner(model: Transport, *, dt: float, nsteps: int, **kwargs):
    """A jitted ``runner(met, state, flux=None, t0=0.0) -> (state, saved)`` for fixed step settings."""

    @jax.jit
    def runner(met, state, flux=None, t0=0.0):
        return run(model, met, state, dt=dt, nsteps=nsteps, t0=t0, flux=flux, **kwargs)

    return runner


def courant_numbers(model: Transport, met: MetSource, state: TransportState, *, dt: float, times):
    """Maximum Courant numbers over the given met times (evaluated eagerly, outside the scan).

    Courant numbers are air-mass fractions: the mass crossing a face in one sweep divided by the air
    mass of the upwind cell. The meridional and vertical ones must be <= 1 for the Eulerian sweeps
    (meridional sweeps use ``dt / 2``); the zonal one may exceed 1 (semi-Lagrangian zonal sweep).

    With a convection scheme and a convective mass flux in the met, ``convective`` is the largest
    ``dt_sub max(Mu) / m`` of one convective sub-step (it must be <= 1 as well).

    Returns:
        dict with ``zonal``, ``meridional``, ``vertical`` (and ``convective``) maxima (floats).
    """
    from diffflux.transport.advection import vertical_mass_flux
    from diffflux.transport.convection import convective_courant

    m = np.asarray(state.air, dtype=np.float64)
    out = {"zonal": 0.0, "meridional": 0.0, "vertical": 0.0}
    for t in np.atleast_1d(np.asarray(times, dtype=np.float64)):
        f = met.fields(jnp.asarray(t, dtype=state.air.dtype))
        fx = np.asarray(f.mfx, dtype=np.float64) * dt
        fy = np.asarray(f.mfy, dtype=np.float64) * dt
        for name, arr in (("fx", fx), ("fy", fy)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"courant_numbers: met mass flux {name} has non-finite values at t={t} s")
        fz = np.asarray(vertical_mass_flux(jnp.asarray(fx), jnp.asarray(fy), model.grid.levels.b))
        cx = np.maximum(np.maximum(fx, 0) / np.roll(m, 1, -1), np.maximum(-fx, 0) / m)
        cy_pos = np.maximum(fy[:, 1:-1], 0) / m[:, :-1]
        cy_neg = np.maximum(-fy[:, 1:-1], 0) / m[:, 1:]
        cz_pos = np.maximum(fz[1:-1], 0) / m[:-1] if m.shape[0] > 1 else np.zeros(1)
        cz_neg = np.maximum(-fz[1:-1], 0) / m[1:] if m.shape[0] > 1 else np.zeros(1)
        out["zonal"] = max(out["zonal"], 0.5 * float(cx.max()))
        out["meridional"] = max(out["meridional"], 0.5 * float(max(cy_pos.max(), cy_neg.max())))
        out["vertical"] = max(out["vertical"], float(max(cz_pos.max(), cz_neg.max())))
        if model.convection is not None and f.conv_mflux is not None:
            sub = int(getattr(model.convection, "substeps", 1))
            cc = float(convective_courant(np.asarray(f.conv_mflux, np.float64), m, dt / sub))
            out["convective"] = max(out.get("convective", 0.0), cc)
    return out


def check_time_step(model: Transport, met: MetSource, state: TransportState, *, dt: float, times,
                    limit: float = 1.0):
    """Raise a clear error if ``dt`` violates the meridional or vertical Courant limit.

    Returns the Courant dict (so callers can report the CFL the run used).
    """
    c = courant_numbers(model, met, state, dt=dt, times=times)
    for key in ("meridional", "vertical", "convective"):
        if c.get(key, 0.0) > limit:
            raise ValueError(
                f"unstable time step: dt={dt:g} s gives a {key} Courant number of {c[key]:.3f} "
                f"(limit {limit}); use dt <= {dt * limit / c[key]:.0f} s"
            )
    return c
