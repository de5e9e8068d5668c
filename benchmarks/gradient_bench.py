"""Gradient-to-forward time ratio and peak memory of a 200-step transport window.

Cost function (a 4D-Var-like misfit): run ``Transport(grid)`` (PPM + implicit Kz) for ``nsteps``
steps from an initial tracer field with a constant surface flux [mol m-2 s-1], then
``J = 1/2 sum(((chi_final - chi_obs) / 1 ppm)^2)`` over the lowest three levels. The gradient is
``jax.value_and_grad(J)`` with respect to both the surface flux ``(ntr, nlat, nlon)`` and the
initial tracer field; the forward is ``J`` alone. Each is jitted; ``run(..., checkpoint=...)``
selects

* ``None``: store all per-step residuals,
* ``"step"``: ``jax.checkpoint`` around every step (one state per step, recompute one step),
* ``"nested"``: two-level checkpointing with segments of ~sqrt(nsteps) steps.

Every (grid, dtype, checkpoint) runs in its own Python process so that memory figures do not mix.
Peak memory, two methods:

* XLA's compile-time buffer assignment (``compiled.memory_analysis()``: ``temp`` = scratch incl.
  residuals, plus arguments and outputs; ``peak_memory_in_bytes`` where the backend reports it);
* measured: on Linux the process's peak resident set (``VmHWM``) is reset (``/proc/self/clear_refs``
  = 5) just before the first execution and the increase over the resident set before it is reported
  (includes XLA's runtime buffers, not the compiled code); on GPU the device allocator's
  ``peak_bytes_in_use``.

A variant whose predicted memory exceeds the budget (default: half the available RAM) is compiled
and reported but not executed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DEFAULT_RESULTS, REPO_ROOT, log, write_result

PRESETS = {
    "quick": dict(cases=[("4x5L10", "float32", 20)], reps=1, timeout=600),
    "full": dict(
        cases=[
            ("4x5L10", "float32", 200),
            ("4x5L10", "float64", 200),
            ("2x2.5L25", "float32", 200),
        ],
        reps=3,
        timeout=2400,
    ),
    "gpu": dict(cases=[("1x1L25", "float32", 200)], reps=2, timeout=150),
}
WINDOW_CASES = {
    "quick": [("4x5L10", "float32", 10), ("4x5L10", "float32", 40)],
    "full": [("4x5L10", "float32", 100), ("4x5L10", "float32", 1000), ("4x5L10", "float32", 10000)],
    "gpu": [("1x1L25", "float32", 100), ("1x1L25", "float32", 1000)],
}
"""Window-length sweep (``python -m benchmarks --only gradient_window``): gradient/forward time and
memory of the same case at growing numbers of steps, written to ``gradient_window.json``."""
CHECKPOINTS = (None, "step", "nested")
REPEAT_BUDGET_S = 60.0
"""Repeated calls (after the first) stop once they have taken this long [s]."""
_MARK = "GRADIENT_BENCH_RESULT:"


def _proc_status() -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of this process [bytes] (empty off Linux)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _available_ram() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def worker(
    spec: str,
    dtype_name: str,
    nsteps: int,
    checkpoint: str | None,
    reps: int,
    mem_budget: int,
    budget_explicit: bool = False,
) -> dict:
    """Measure one variant in this process (called through ``--worker``)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks import common
    from diffflux.transport import Transport, TransportState, run

    res, grid = common.parse_grid(spec)
    dtype = jnp.dtype(dtype_name)
    dt = common.DEFAULT_DT[res]
    times, snaps, met_desc = common.benchmark_met(grid, nsteps * dt)
    model = Transport(grid)
    met = common.jax_met(times, snaps, dtype)
    state = model.initial_state(
        jnp.asarray(common.initial_mixing_ratio(grid, 1), dtype), jnp.asarray(snaps[0]["ps"], dtype)
    )
    dt, courant = common.choose_dt(model, met, state, dt, times[:: max(1, len(times) // 6)])
    flux = jnp.asarray(common.surface_flux(grid, 1), dtype)
    obs = state.mixing_ratio()[:, :3] * (1.0 + 1e-3)
    air = state.air

    def cost(flux_, tracer0, met_):
        s, _ = run(
            model,
            met_,
            TransportState(tracer=tracer0, air=air),
            dt=dt,
            nsteps=nsteps,
            flux=flux_,
            checkpoint=checkpoint,
        )
        misfit = (s.mixing_ratio()[:, :3] - obs) / 1e-6
        return 0.5 * jnp.sum(misfit * misfit)

    grad_fn = jax.value_and_grad(cost, argnums=(0, 1))
    args = (flux, state.tracer, met)
    fwd_c, fwd_compile = common.compile_timed(cost, *args)
    grad_c, grad_compile = common.compile_timed(grad_fn, *args)
    fwd_mem = common.memory_stats(fwd_c)
    grad_mem = common.memory_stats(grad_c)
    # (the CPU backend's peak_memory_in_bytes leaves out the temporaries: take the larger figure)
    predicted = max(
        grad_mem.get("peak_memory_in_bytes", 0),
        grad_mem.get("temp_size_in_bytes", 0)
        + grad_mem.get("argument_size_in_bytes", 0)
        + grad_mem.get("output_size_in_bytes", 0),
    )
    on_gpu = jax.default_backend() == "gpu"
    if on_gpu and not budget_explicit:
        limit = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
        if limit:
            mem_budget = int(0.8 * limit)  # device memory, not host RAM, bounds a GPU run

    def first_run(fn):
        """Time the first execution and measure its peak memory."""
        ok = _reset_peak_rss()
        before = _proc_status()
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        elapsed = time.perf_counter() - t
        after = _proc_status()
        mem = {}
        if ok and "VmHWM" in after:
            mem["rss_peak_increase_bytes"] = after["VmHWM"] - before.get("VmRSS", 0)
        if on_gpu:
            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                mem["device_peak_bytes_in_use"] = int(stats["peak_bytes_in_use"])
        return out, elapsed, mem

    rec = {
        "grid": spec,
        "description": grid.describe(),
        "dtype": dtype_name,
        "nsteps": nsteps,
        "dt_seconds": dt,
        "courant": courant,
        "checkpoint": checkpoint,
        "met": met_desc,
        "cells": grid.nlev * grid.nlat * grid.nlon,
        "backend": jax.default_backend(),
        "forward": {"compile_seconds": fwd_compile, "memory_analysis": fwd_mem},
        "gradient": {
            "compile_seconds": grad_compile,
            "memory_analysis": grad_mem,
            "predicted_peak_bytes": int(predicted),
        },
        "memory_budget_bytes": int(mem_budget),
    }
    val, t_first, mem = first_run(fwd_c)
    times_f = [t_first]
    for _ in range(reps):
        if sum(times_f[1:]) > REPEAT_BUDGET_S:
            break
        t = time.perf_counter()
        jax.block_until_ready(fwd_c(*args))
        times_f.append(time.perf_counter() - t)
    rec["forward"].update(seconds=min(times_f), all_seconds=times_f, measured=mem, cost=float(val))

    if predicted > mem_budget:
        rec["gradient"]["skipped"] = (
            f"predicted peak {predicted / 2**30:.2f} GiB exceeds the budget "
            f"{mem_budget / 2**30:.2f} GiB; not executed"
        )
        return rec
    (gval, (g_flux, g_init)), t_first, mem = first_run(grad_c)
    times_g = [t_first]
    for _ in range(reps):
        if sum(times_g[1:]) > REPEAT_BUDGET_S:
            break
        t = time.perf_counter()
        jax.block_until_ready(grad_c(*args))
        times_g.append(time.perf_counter() - t)
    g_flux = np.asarray(g_flux, np.float64)
    g_init = np.asarray(g_init, np.float64)
    if not (np.all(np.isfinite(g_flux)) and np.all(np.isfinite(g_init))):
        raise RuntimeError(f"gradient_bench {spec} {dtype_name} {checkpoint}: non-finite gradient")
    rec["gradient"].update(
        seconds=min(times_g),
        all_seconds=times_g,
        measured=mem,
        cost=float(gval),
        grad_flux_norm=float(np.linalg.norm(g_flux)),
        grad_init_norm=float(np.linalg.norm(g_init)),
        grad_flux_sample=g_flux.ravel()[:: max(1, g_flux.size // 64)].tolist(),
    )
    rec["grad_over_forward"] = rec["gradient"]["seconds"] / rec["forward"]["seconds"]
    return rec


def _run_worker(case, checkpoint, reps, budget, timeout, budget_explicit=False) -> dict:
    spec, dtype_name, nsteps = case
    arg = json.dumps(
        dict(
            spec=spec,
            dtype_name=dtype_name,
            nsteps=nsteps,
            checkpoint=checkpoint,
            reps=reps,
            mem_budget=budget,
            budget_explicit=budget_explicit,
        )
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    t = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.gradient_bench", "--worker", arg],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {
            "grid": spec,
            "dtype": dtype_name,
            "nsteps": nsteps,
            "checkpoint": checkpoint,
            "error": f"worker timed out after {timeout} s",
        }
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            rec = json.loads(line[len(_MARK) :])
            rec["worker_wall_seconds"] = time.perf_counter() - t
            return rec
    tail = (proc.stderr or "")[-1500:]
    return {
        "grid": spec,
        "dtype": dtype_name,
        "nsteps": nsteps,
        "checkpoint": checkpoint,
        "error": f"worker exit {proc.returncode}: {tail}",
    }


def _consistency(records: list[dict]) -> dict:
    """Relative differences of the gradient between checkpoint modes of the same case (should be
    round-off: checkpointing recomputes, it does not change the result)."""
    import numpy as np

    out = {}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if "gradient" in r and "grad_flux_sample" in r["gradient"]:
            groups.setdefault((r["grid"], r["dtype"], r["nsteps"]), []).append(r)
    for key, rs in groups.items():
        ref = np.asarray(rs[0]["gradient"]["grad_flux_sample"])
        diffs = {}
        for r in rs[1:]:
            g = np.asarray(r["gradient"]["grad_flux_sample"])
            diffs[f"{r['checkpoint']} vs {rs[0]['checkpoint']}"] = float(
                np.max(np.abs(g - ref)) / max(np.max(np.abs(ref)), 1e-300)
            )
        out[" ".join(map(str, key))] = diffs
    return out


def main(
    outdir: Path = DEFAULT_RESULTS,
    quick: bool = False,
    preset: str | None = None,
    mem_budget: int | None = None,
    window: bool = False,
) -> dict:
    """Run the preset's cases x checkpoint modes (one process each) and write ``gradient.json``.

    ``window``: the window-length sweep of :data:`WINDOW_CASES` instead, into
    ``gradient_window.json``.
    """
    preset = preset or ("quick" if quick else "full")
    settings = dict(PRESETS[preset])
    name = "gradient"
    if window:
        settings["cases"] = WINDOW_CASES[preset]
        name = "gradient_window"
    budget = int(mem_budget or 0.5 * _available_ram())
    payload = {
        "preset": preset,
        "method": (
            "J = misfit of the final mixing ratio (lowest 3 levels); gradient = value_and_grad wrt "
            "surface flux and initial tracer; time ratio = best gradient call / best forward "
            f"call (first call + up to {settings['reps']} more within {REPEAT_BUDGET_S:.0f} s, after "
            "compilation); memory = XLA memory_analysis (compile-time) and measured peak RSS "
            "increase (VmHWM reset via /proc/self/clear_refs) or GPU peak_bytes_in_use; one process "
            "per variant"
        ),
        "memory_budget_bytes": budget,
        "records": [],
    }
    t0 = time.perf_counter()
    for case in settings["cases"]:
        for ck in CHECKPOINTS:
            log(f"gradient {case[0]} {case[1]} {case[2]} steps, checkpoint={ck}")
            rec = _run_worker(case, ck, settings["reps"], budget, settings["timeout"], mem_budget is not None)
            if "error" in rec:
                log(f"  FAILED: {rec['error'][-300:]}")
            elif "skipped" in rec["gradient"]:
                log(f"  forward {rec['forward']['seconds']:.2f} s; gradient {rec['gradient']['skipped']}")
            else:
                log(
                    f"  forward {rec['forward']['seconds']:.2f} s, gradient "
                    f"{rec['gradient']['seconds']:.2f} s, ratio {rec['grad_over_forward']:.2f}, "
                    f"XLA temp "
                    f"{rec['gradient']['memory_analysis'].get('temp_size_in_bytes', 0) / 2**20:.0f}"
                    " MiB"
                )
            payload["records"].append(rec)
            payload["checkpoint_consistency"] = _consistency(payload["records"])
            payload["wall_seconds"] = time.perf_counter() - t0
            write_result(name, payload, outdir)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--mem-budget-gib", type=float, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kw = json.loads(args.worker)
        result = worker(**kw)
        print(_MARK + json.dumps(result, default=float), flush=True)
    else:
        budget = int(args.mem_budget_gib * 2**30) if args.mem_budget_gib else None
        main(args.out, args.quick, args.preset, budget)
