"""Throughput of the full 3D transport step: JAX vs NumPy vs the memory-bandwidth bound.

For each grid (``4x5L10``, ``2x2.5L25``, ``1x1L25``; ``0.5x0.5L25`` in the GPU preset) and dtype
(float32, float64) with one tracer:

* model ``Transport(grid)``: monotone PPM advection ``X/2 Y/2 Z Y/2 X/2`` + implicit vertical
  diffusion (the defaults), met from :func:`benchmarks.common.benchmark_met` through
  ``InterpolatedMet`` (two snapshots read and interpolated every step), no emissions;
* JAX: ``jax.jit(lambda met, state: run(model, met, state, dt=dt, nsteps=N)[0])``, i.e. one
  ``lax.scan`` over ``N`` steps. Compile time (lower + compile) is reported separately; the steady
  state time is the best of ``reps`` calls after one warm-up call;
* NumPy: :class:`benchmarks.numpy_reference.NumpyTransport` stepping the same state with the same
  met (best step of ``k``). After those ``k`` steps the JAX single step is run from the same state
  and the two results are compared (a full-size correctness check of the benchmark);
* bandwidth bound: the *minimal* bytes a step must move per cell, for one fused pass over memory,
  are counted explicitly (see :func:`byte_counts`) and divided into the measured bandwidth
  (``bandwidth.json``, best JAX STREAM kernel): ``fraction = bytes/cell x cells/s / bandwidth``;
* profile: every operator of the step timed alone, each in its own jitted ``lax.scan``, to show
  which dominates, plus operation counts of the compiled step (XLA fusions, nested loops, gathers).

A cell update is one grid cell (level x lat x lon) advanced by one step for all ``ntracer`` tracers.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import os
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import common
from benchmarks.common import DEFAULT_RESULTS, log, write_result
from benchmarks.numpy_reference import NumpyTransport
from diffflux.constants import GRAVITY
from diffflux.transport import Transport, run
from diffflux.transport.advection import sweep_x, sweep_x_ffsl, sweep_y, sweep_z, vertical_mass_flux
from diffflux.transport.compensated import wants_compensation
from diffflux.transport.prefix import prefix_sum

PRESETS = {
    "quick": dict(
        specs=["4x5L10"],
        dtypes=["float32", "float64"],
        target_updates=2e6,
        min_steps=8,
        max_steps=64,
        reps=2,
        numpy_updates=1e5,
        numpy_max_steps=3,
        numpy_max_cells=2e6,
        profile_specs=["4x5L10"],
    ),
    "full": dict(
        specs=["4x5L10", "2x2.5L25", "1x1L25"],
        dtypes=["float32", "float64"],
        target_updates=3e7,
        min_steps=8,
        max_steps=400,
        reps=3,
        numpy_updates=1.5e6,
        numpy_max_steps=20,
        numpy_max_cells=2e6,
        profile_specs=["4x5L10", "2x2.5L25", "1x1L25"],
    ),
    "gpu": dict(
        specs=["2x2.5L25", "1x1L25", "0.5x0.5L25"],
        dtypes=["float32", "float64"],
        target_updates=4e8,
        min_steps=20,
        max_steps=1000,
        reps=5,
        numpy_updates=1.5e6,
        numpy_max_steps=2,
        numpy_max_cells=2e6,
        profile_specs=["1x1L25:float32"],
    ),
}


def byte_counts(ntracer: int, itemsize: int) -> dict:
    """Bytes per cell per step, explicit.

    Minimal (one fused pass; what any implementation of this step must move): read the state
    ``q`` (``ntracer`` words) and ``m`` (1), read two met snapshots of ``mfx, mfy, kz, temperature``
    for the time interpolation (8; the extra face row of ``mfy`` and interface of ``kz`` and the 2-D
    ``ps`` are below 1/nlat resp. 1/nlev and not counted), write ``q`` and ``m``:
    ``2 ntracer + 2 + 8`` words.

    Per-operator streaming estimate (each operator of the split scheme reads its inputs and writes
    its outputs once, no fusion across operators): met interpolation 8 + 4, vertical mass flux from
    ``fx, fy`` 3, four horizontal sweeps and one vertical sweep ``(2 ntracer + 3)`` each (q, m, F
    in; q, m out), vertical diffusion ``2 ntracer + 3`` (q, m, kz, T in; q out): ``33 + 12 ntracer``
    words.
    """
    minimal = 2 * ntracer + 2 + 8
    split = 12 + 3 + 5 * (2 * ntracer + 3) + (2 * ntracer + 3)
    return {
        "ntracer": ntracer,
        "itemsize": itemsize,
        "minimal_words_per_cell": minimal,
        "minimal_bytes_per_cell": minimal * itemsize,
        "minimal_breakdown": (
            f"read q ({ntracer}) + m (1) + 2 met snapshots x (mfx, mfy, kz, T) (8); "
            f"write q ({ntracer}) + m (1)"
        ),
        "split_words_per_cell": split,
        "split_bytes_per_cell": split * itemsize,
        "split_breakdown": (
            "met interpolation 12, vertical mass flux 3, 5 sweeps x (2 ntracer + 3), "
            "vertical diffusion (2 ntracer + 3)"
        ),
    }


def hlo_summary(text: str) -> dict:
    """Operation counts of a compiled XLA program (text of ``compiled.as_text()``).

    Counts the instructions executed as separate kernels: those in the entry computation, in
    while-loop bodies/conditions and in the branches of conditionals (all branches, transitively),
    excluding parameters, constants, tuples and bitcasts; fused computations are not expanded (a
    fusion counts once).
    """
    comps: dict[str, list[str]] = {}
    entry = None
    current = None
    for line in text.splitlines():
        m = re.match(r"^(ENTRY )?%(\S+) \(.*\{\s*$", line)
        if m:
            current = m.group(2)
            comps[current] = []
            if m.group(1):
                entry = current
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is not None and line.strip():
            comps[current].append(line)
    if entry is None:
        return {}
    skip = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast"}
    counts: collections.Counter = collections.Counter()
    whiles = 0
    seen = set()
    stack = [entry]
    while stack:
        name = stack.pop()
        if name in seen or name not in comps:
            continue
        seen.add(name)
        for ln in comps[name]:
            m = re.search(r"=\s.*?\s([a-z][\w-]*)\(", ln)
            if not m:
                continue
            op = m.group(1)
            if op in skip:
                continue
            counts[op] += 1
            if op == "while":
                whiles += 1
                stack += re.findall(r"(?:body|condition)=%([\w.-]+)", ln)
            elif op == "call":
                stack += re.findall(r"to_apply=%([\w.-]+)", ln)
            elif op == "conditional":
                for group in re.findall(r"branch_computations=\{([^}]*)\}", ln):
                    stack += re.findall(r"%([\w.-]+)", group)
                stack += re.findall(r"(?:true|false)_computation=%([\w.-]+)", ln)
    return {
        "executed_kernels": int(sum(counts.values())),
        "while_loops": whiles,
        "conditionals": int(counts.get("conditional", 0)),
        "by_op": dict(counts.most_common(12)),
    }


def _bandwidth_bound(outdir: Path) -> tuple[float, str]:
    path = Path(outdir) / "bandwidth.json"
    if path.exists():
        d = json.loads(path.read_text())
        return float(d["bound_gb_per_s"]), f"{d['bound_kernel']} from {path.name}"
    from benchmarks import bandwidth

    log("transport: no bandwidth.json; measuring the bandwidth first (quick settings)")
    d = bandwidth.main(outdir, quick=True)
    return float(d["bound_gb_per_s"]), f"{d['bound_kernel']} (quick measurement)"


def _compute_roof(outdir: Path, dtype_name: str) -> float | None:
    """Elementwise-ops roof [ops/s] of ``dtype_name`` from ``bandwidth.json`` (None if not measured)."""
    path = Path(outdir) / "bandwidth.json"
    if not path.exists():
        return None
    d = json.loads(path.read_text()).get("compute", {})
    return d.get(dtype_name, {}).get("roof_ops_per_s")


def _cost(compiled) -> dict:
    cost = compiled.cost_analysis()
    return cost[0] if isinstance(cost, list) else cost


def step_cost(model: Transport, met, state, dt: float) -> dict:
    """XLA's cost analysis of one step as :func:`~diffflux.transport.run` takes it (compensated in
    float32): elementwise operations ('flops', one per element per HLO operation), transcendentals
    and bytes accessed by the compiled kernels (after fusion; what this implementation moves).

    XLA counts both branches of a conditional: the zonal sweep's fallback branch (semi-Lagrangian on
    all rows, taken only when a mid-latitude Courant number reaches 1; not taken in this benchmark)
    is costed alone and subtracted, twice (two zonal sweeps per step).
    """
    s = state.with_residual() if wants_compensation(state.tracer.dtype) else state
    dtype = state.air.dtype
    t = jnp.asarray(0.5 * dt, dtype)
    step = jax.jit(lambda met_, s_, t_: model.step(s_, met_.fields(t_), dt))
    total = _cost(step.lower(met, s, t).compile())
    out = {k: float(total.get(k, 0.0)) for k in ("flops", "transcendentals", "bytes accessed")}
    p, nlat = model.polar_rows, model.grid.nlat
    fallback = {}
    if 0 < p and 2 * p < nlat:
        fx = (met.fields(t).mfx * (0.5 * dt)).astype(dtype)
        ffsl = jax.jit(lambda q, m, F, r: sweep_x_ffsl(q, m, F, model.advection, r))
        fallback = _cost(ffsl.lower(s.tracer, s.air, fx, s.residual).compile())
        for k in out:
            out[k] -= 2 * float(fallback.get(k, 0.0))
    cells = model.grid.nlev * model.grid.nlat * model.grid.nlon
    return {
        "ops_per_cell": out["flops"] / cells,
        "transcendentals_per_cell": out["transcendentals"] / cells,
        "bytes_accessed_per_cell": out["bytes accessed"] / cells,
        "fallback_ops_per_cell_subtracted": 2 * float(fallback.get("flops", 0.0)) / cells,
        "compensated": s.residual is not None,
        "note": "while-loop bodies (tridiagonal solves over levels, the semi-Lagrangian walk) are "
        "counted once by XLA's cost analysis, not per trip; the not-taken fallback branch of the "
        "zonal sweep is subtracted",
    }


def _pressure_interfaces(m, area, p_top):
    dp = m * GRAVITY / area[None]
    above = prefix_sum(dp, axis=0, reverse=True)
    return jnp.concatenate([p_top + above, jnp.full_like(dp[:1], p_top)], axis=0)


def profile_operators(model: Transport, met, state, dt: float, nsteps: int, reps: int) -> dict:
    """Time every operator of the step alone (each in a jitted scan of ``nsteps`` applications)."""
    grid = model.grid
    dtype = state.air.dtype
    r = model.advection
    q, m = state.tracer, state.air
    f0 = met.fields(jnp.asarray(0.5 * dt, dtype))
    fx = (f0.mfx * dt).astype(dtype)
    fy = (f0.mfy * dt).astype(dtype)
    fz = vertical_mass_flux(fx, fy, grid.levels.b)
    area = jnp.asarray(grid.area, dtype)
    p_top = jnp.asarray(grid.levels.p_top, dtype)
    vd = model.vertical_diffusion
    b = grid.levels.b

    def looped(body):
        def f(carry, *consts):
            return lax.scan(lambda c, _: (body(c, *consts), None), carry, None, length=nsteps)[0]

        return f

    def met_body(c, met_):
        acc_z, acc_k, acc_t, t = c
        f = met_.fields(t)
        w = vertical_mass_flux((f.mfx * dt).astype(dtype), (f.mfy * dt).astype(dtype), b)
        return acc_z + w, acc_k + f.kz, acc_t + f.temperature, t + dt

    def vd_body(qq, mm, kz, temp):
        E = vd.exchange(mm, kz, temp, _pressure_interfaces(mm, area, p_top), area)
        return vd(qq, mm, E, dt)

    # the zonal sweep as the model calls it (Eulerian rows + FFSL polar rows where the core supports
    # that split), and the all-rows FFSL sweep as a reference (not part of the step's sum)
    polar = getattr(model, "polar_rows", None)
    split_supported = "polar_rows" in inspect.signature(sweep_x).parameters and polar is not None
    if split_supported:
        x_name = "sweep_x"
        x_detail = f"FFSL in {polar} polar rows per pole, Eulerian elsewhere"

        def x_body(c, F):
            return sweep_x(*c, F, r, polar)
    else:
        x_name = "sweep_x"
        x_detail = "FFSL on all rows"

        def x_body(c, F):
            return sweep_x(*c, F, r)

    ops = {
        x_name: (looped(x_body), ((q, m), 0.5 * fx), 2),
        "sweep_y (meridional)": (looped(lambda c, F: sweep_y(*c, F, r)), ((q, m), 0.5 * fy), 2),
        "sweep_z (vertical)": (looped(lambda c, F: sweep_z(*c, F, r)), ((q, m), fz), 1),
        "vertical_diffusion": (
            looped(vd_body),
            (q, m, f0.kz.astype(dtype), f0.temperature.astype(dtype)),
            1,
        ),
        "met_interp + vertical_mass_flux": (
            looped(met_body),
            (
                (
                    jnp.zeros_like(fz),
                    jnp.zeros_like(f0.kz),
                    jnp.zeros_like(m),
                    jnp.asarray(0.5 * dt, dtype),
                ),
                met,
            ),
            1,
        ),
    }
    if split_supported:
        ops["reference: sweep_x FFSL on all rows"] = (
            looped(lambda c, F: sweep_x(*c, F, r)),
            ((q, m), 0.5 * fx),
            0,
        )
    out = {}
    for name, (fn, args, mult) in ops.items():
        compiled, tc = common.compile_timed(fn, *args)
        best, _, _ = common.timed(compiled, *args, reps=reps)
        out[name] = {
            "seconds_per_call": best / nsteps,
            "calls_per_step": mult,
            "seconds_per_step": mult * best / nsteps,
            "compile_seconds": tc,
        }
    out[x_name]["detail"] = x_detail
    return out


def bench_config(
    spec: str,
    dtype_name: str,
    settings: dict,
    bound_gbs: float,
    ntracer: int = 1,
    do_profile: bool = False,
    outdir: Path | None = None,
) -> dict:
    """Benchmark one grid and dtype; returns the result record (``outdir``: where bandwidth.json
    with the compute roof is read from)."""
    load_start = os.getloadavg()[0]
    res, grid = common.parse_grid(spec)
    dtype = jnp.dtype(dtype_name)
    cells = grid.nlev * grid.nlat * grid.nlon
    nsteps = int(
        min(
            settings["max_steps"],
            max(settings["min_steps"], round(settings["target_updates"] / cells)),
        )
    )
    dt = common.DEFAULT_DT[res]
    times, snaps, met_desc = common.benchmark_met(grid, nsteps * dt)
    model = Transport(grid)
    met = common.jax_met(times, snaps, dtype)
    chi = common.initial_mixing_ratio(grid, ntracer)
    state = model.initial_state(jnp.asarray(chi, dtype), jnp.asarray(snaps[0]["ps"], dtype))
    check_times = times[:: max(1, len(times) // 6)]
    dt, courant = common.choose_dt(model, met, state, dt, check_times)
    log(
        f"transport {spec} {dtype_name}: {grid.describe()}, {cells} cells, {nsteps} steps of "
        f"{dt:g} s, met: {met_desc[:60]}"
    )

    # --- JAX: steady-state scan of nsteps steps -------------------------------------------------
    def forward(met_, s):
        return run(model, met_, s, dt=dt, nsteps=nsteps)[0]

    compiled, compile_s = common.compile_timed(forward, met, state)
    best, all_t, out = common.timed(compiled, met, state, reps=settings["reps"])
    if out.tracer.dtype != dtype:
        raise RuntimeError(f"transport bench: output dtype {out.tracer.dtype}, expected {dtype}")
    cells_per_s = cells * nsteps / best
    q0 = np.asarray(state.tracer, np.float64).sum()
    mass_rel = float(np.asarray(out.tracer, np.float64).sum() / q0 - 1.0)
    air_min = float(np.asarray(out.air).min())
    if not np.all(np.isfinite(np.asarray(out.tracer))) or air_min <= 0:
        raise RuntimeError(f"transport bench {spec} {dtype_name}: non-finite tracer or air <= 0")
    bytes_ = byte_counts(ntracer, dtype.itemsize)
    rec = {
        "grid": spec,
        "resolution": res,
        "description": grid.describe(),
        "dtype": dtype_name,
        "ntracer": ntracer,
        "cells": cells,
        "dt_seconds": dt,
        "courant": courant,
        "met": met_desc,
        "met_snapshots": len(times),
        "nsteps": nsteps,
        "jax": {
            "compile_seconds": compile_s,
            "best_seconds": best,
            "all_seconds": all_t,
            "seconds_per_step": best / nsteps,
            "cell_updates_per_s": cells_per_s,
            "tracer_mass_rel_change": mass_rel,
            "air_min_kg": air_min,
            "memory": common.memory_stats(compiled),
            "hlo": hlo_summary(compiled.as_text()),
        },
        "bytes": bytes_,
        "bandwidth_bound_gb_per_s": bound_gbs,
    }
    rec["jax"]["achieved_gb_per_s_minimal"] = bytes_["minimal_bytes_per_cell"] * cells_per_s / 1e9
    rec["jax"]["fraction_of_bound_minimal"] = rec["jax"]["achieved_gb_per_s_minimal"] / bound_gbs
    rec["jax"]["fraction_of_bound_split"] = bytes_["split_bytes_per_cell"] * cells_per_s / 1e9 / bound_gbs
    rec["bound_cell_updates_per_s"] = bound_gbs * 1e9 / bytes_["minimal_bytes_per_cell"]
    # roofline: the step's elementwise operations per cell against the measured compute roof
    cost = step_cost(model, met, state, dt)
    rec["xla_step"] = cost
    rec["jax"]["ops_per_s"] = cost["ops_per_cell"] * cells_per_s
    rec["jax"]["achieved_gb_per_s_xla_bytes"] = cost["bytes_accessed_per_cell"] * cells_per_s / 1e9
    roof = _compute_roof(outdir, dtype_name) if outdir is not None else None
    if roof:
        rec["compute_roof_ops_per_s"] = roof
        rec["compute_bound_cell_updates_per_s"] = roof / cost["ops_per_cell"]
        rec["jax"]["fraction_of_compute_roof"] = rec["jax"]["ops_per_s"] / roof
        rec["roofline_bound_cell_updates_per_s"] = min(rec["bound_cell_updates_per_s"],
                                                        rec["compute_bound_cell_updates_per_s"])
        rec["jax"]["fraction_of_roofline"] = cells_per_s / rec["roofline_bound_cell_updates_per_s"]
        log(f"  roofline: {cost['ops_per_cell']:.0f} XLA ops/cell, {cost['bytes_accessed_per_cell']:.0f} "
            f"B/cell accessed; {100 * rec['jax']['fraction_of_compute_roof']:.1f}% of the compute roof "
            f"{roof / 1e9:.1f} Gops/s")
    log(
        f"  jax: compile {compile_s:.1f} s, {best / nsteps * 1e3:.2f} ms/step, "
        f"{cells_per_s / 1e6:.2f} Mcell/s, "
        f"{100 * rec['jax']['fraction_of_bound_minimal']:.1f}% of bound"
    )

    # --- NumPy reference ----------------------------------------------------------------------
    if cells <= settings["numpy_max_cells"]:
        k = int(min(settings["numpy_max_steps"], max(1, round(settings["numpy_updates"] / cells))))
        ref = NumpyTransport.from_grid(grid)
        npmet = common.numpy_met(times, snaps, np.dtype(dtype_name))
        q, m = np.asarray(state.tracer), np.asarray(state.air)
        step_times = []
        for n in range(k):
            t = time.perf_counter()
            q, m = ref.step(q, m, npmet.fields((n + 0.5) * dt), dt)
            step_times.append(time.perf_counter() - t)
        np_best = min(step_times)
        # same k steps with the JAX single step, from the same state
        one = jax.jit(lambda met_, s, t: model.step(s, met_.fields(t), dt))
        s = state
        for n in range(k):
            s = one(met, s, jnp.asarray((n + 0.5) * dt, dtype))
        qj, mj = np.asarray(s.tracer), np.asarray(s.air)
        rec["numpy"] = {
            "steps": k,
            "best_seconds_per_step": np_best,
            "all_seconds_per_step": step_times,
            "cell_updates_per_s": cells / np_best,
            "dtype_out": str(q.dtype),
            "max_rel_diff_tracer_vs_jax": float(np.max(np.abs(qj - q)) / np.max(np.abs(q))),
            "max_rel_diff_air_vs_jax": float(np.max(np.abs(mj - m)) / np.max(np.abs(m))),
            "fraction_of_bound_minimal": bytes_["minimal_bytes_per_cell"] * cells / np_best / 1e9 / bound_gbs,
        }
        rec["jax_over_numpy"] = cells_per_s / rec["numpy"]["cell_updates_per_s"]
        log(
            f"  numpy: {np_best:.3f} s/step -> JAX/NumPy = {rec['jax_over_numpy']:.1f}x; "
            f"max rel diff {rec['numpy']['max_rel_diff_tracer_vs_jax']:.1e}"
        )
    else:
        rec["numpy"] = {"skipped": f"cells {cells} > numpy_max_cells {settings['numpy_max_cells']:g}"}

    # --- per-operator profile -------------------------------------------------------------------
    if do_profile:
        prof = profile_operators(model, met, state, dt, nsteps, settings["reps"])
        total = sum(v["seconds_per_step"] for v in prof.values())
        step_s = best / nsteps
        for v in prof.values():
            v["share_of_step"] = v["seconds_per_step"] / step_s
        rec["profile"] = {
            "operators": prof,
            "sum_seconds_per_step": total,
            "full_step_seconds": step_s,
            "sum_over_full_step": total / step_s,
        }
        top = max(prof, key=lambda k_: prof[k_]["seconds_per_step"])
        log(f"  profile: {top} dominates ({100 * prof[top]['share_of_step']:.0f}% of a step)")
    rec["loadavg_1min"] = [load_start, os.getloadavg()[0]]
    return rec


def main(
    outdir: Path = DEFAULT_RESULTS, quick: bool = False, preset: str | None = None, ntracer: int = 1
) -> dict:
    """Run the preset (``quick``/``full``/``gpu``) and write ``transport.json``."""
    preset = preset or ("quick" if quick else "full")
    settings = PRESETS[preset]
    bound, bound_src = _bandwidth_bound(outdir)
    payload = {
        "preset": preset,
        "method": (
            "cell-updates/s of Transport(grid) (PPM advection + implicit vertical diffusion), "
            f"{ntracer} tracer(s), InterpolatedMet; JAX: jitted lax.scan over nsteps, best of "
            f"{settings['reps']} after warm-up, compile timed separately; NumPy: best step; "
            "bound = bandwidth / minimal bytes per cell; float32 states compensated as run() does "
            "by default; roofline: XLA cost analysis of one step (elementwise ops, bytes accessed) "
            "against the compute roof of bandwidth.json"
        ),
        "bandwidth_bound_gb_per_s": bound,
        "bandwidth_source": bound_src,
        "settings": settings,
        "configs": [],
    }
    t0 = time.perf_counter()
    for spec in settings["specs"]:
        for dt_name in settings["dtypes"]:
            try:
                rec = bench_config(
                    spec,
                    dt_name,
                    settings,
                    bound,
                    ntracer,
                    do_profile=bool({spec, f"{spec}:{dt_name}"} & set(settings["profile_specs"])),
                    outdir=outdir,
                )
            except Exception as exc:  # record and continue with the other configurations
                log(f"transport {spec} {dt_name} FAILED: {type(exc).__name__}: {exc}")
                rec = {"grid": spec, "dtype": dt_name, "error": f"{type(exc).__name__}: {exc}"}
            payload["configs"].append(rec)
            payload["wall_seconds"] = time.perf_counter() - t0
            write_result("transport", payload, outdir)  # incremental: partial results survive
    if any("error" in c for c in payload["configs"]):
        log("transport: some configurations failed (see transport.json)")
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args()
    main(args.out, args.quick, args.preset)
