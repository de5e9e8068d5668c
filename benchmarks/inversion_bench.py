"""Inversion benchmarks: time to solution of the standard twin, and the gradient-to-forward cost ratio and
peak memory of the whole chain for a one-year window against a shorter one.

1. **Time to solution** (``solve`` case): :func:`~diffflux.inversion.problem.standard_twin` (joint CO2 +
   CH4 problem: biosphere parameters, log-normal and additive flux corrections, initial offsets, satellite
   biases) inverted by :func:`~diffflux.inversion.invert` with the default L-BFGS. Reported: iterations,
   status, wall time of the first call and the part of it spent tracing and compiling (JAX's compile
   events), cost and gradient-norm reduction, and (presets ``quick``, ``gpu``) the wall time of a second
   inversion of the same problem with new pseudo-observations (the compiled step is reused: solve time
   without compilation).
2. **Window scaling** (``window`` cases): the chain ``z -> biosphere -> composer -> transport (checkpointed)
   -> observation operators -> J`` of a twin with a one-year window and of a shorter window, same grid and
   network. For each: compile times, best wall time of ``J`` (forward) and of ``value_and_grad J``
   (gradient) after compilation, their ratio, and peak memory, two ways as in
   :mod:`benchmarks.gradient_bench`: XLA's compile-time buffer assignment (``memory_analysis``) and the
   measured peak-RSS increase of the first execution (``/proc/self/clear_refs``; GPU: the allocator's
   ``peak_bytes_in_use``).

Every case runs in its own process (``--worker``) so memory figures do not mix. Writes ``inversion.json``.
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
from benchmarks.gradient_bench import _proc_status, _reset_peak_rss  # peak-RSS measurement

_MARK = "INVERSION_BENCH_RESULT:"

_YEAR = dict(resolution=(10.0, 12.0), nlev=4, steps_per_day=4, spinup=1, satellite_step_seconds=3600.0,
             checkpoint="nested", block_days=7.0, start="2021-01-01", horizontal_diffusion=True)
PRESETS = {
    "quick": dict(
        solve=dict(twin=dict(resolution=(30.0, 36.0), nlev=2, days=2, steps_per_day=4, spinup=0,
                             satellite_step_seconds=None, checkpoint=None), max_iter=100, rerun=True),
        windows=[dict(_YEAR, resolution=(30.0, 36.0), nlev=2, days=d, spinup=0) for d in (7, 30)],
        reps=1, timeout=1800,
    ),
    "full": dict(
        solve=dict(twin=dict(spinup=1), max_iter=200, rerun=False),  # the standard twin's defaults otherwise
        windows=[dict(_YEAR, days=d) for d in (30, 365)],
        reps=1, timeout=3600,
    ),
    "gpu": dict(
        solve=dict(twin=dict(spinup=1), max_iter=200, rerun=True),
        windows=[dict(_YEAR, days=d, steps_per_day=8) for d in (30, 365)],
        reps=3, timeout=900,
    ),
}


# ------------------------------------------------------------------------------------------------
# measurement helpers
# ------------------------------------------------------------------------------------------------


class _CompileClock:
    """Seconds spent tracing, lowering and compiling while registered (JAX monitoring events)."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        self.seconds = 0.0
        self.compiles = 0

    def __call__(self, event, duration, **kw):
        if event in self.EVENTS:
            self.seconds += duration
            self.compiles += event.endswith("backend_compile_duration")


def _twin(settings: dict, seed: int = 0):
    from diffflux.inversion.problem import standard_twin

    t = time.perf_counter()
    tw = standard_twin(**settings, seed=seed)
    return tw, time.perf_counter() - t


# ------------------------------------------------------------------------------------------------
# workers
# ------------------------------------------------------------------------------------------------


def solve_worker(twin: dict, max_iter: int, rerun: bool = True) -> dict:
    """Time to solution of the standard twin with the default L-BFGS (``rerun``: then again with new
    pseudo-observations, reusing the compiled step)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from diffflux.inversion import invert
    from diffflux.solvers import LBFGS

    tw, build_s = _twin(twin)
    p = tw.problem
    solver = LBFGS(max_iter=max_iter)
    clock = _CompileClock()
    jax.monitoring.register_event_duration_secs_listener(clock)
    t = time.perf_counter()
    res = invert(p, solver)
    wall = time.perf_counter() - t
    jax.monitoring.unregister_event_duration_listener(clock)
    r = res.solver_result
    second = None
    if rerun:
        rng = np.random.default_rng(1)
        p2 = p.with_observations(tw.y_true + p.obs_error.sigma * jnp.asarray(rng.standard_normal(p.y.shape)))
        clock2 = _CompileClock()
        jax.monitoring.register_event_duration_secs_listener(clock2)
        t = time.perf_counter()
        r2 = invert(p2, solver).solver_result
        wall2 = time.perf_counter() - t
        jax.monitoring.unregister_event_duration_listener(clock2)
        second = {"status": r2.status.name, "iterations": r2.iterations, "wall_seconds": wall2,
                  "compile_seconds": clock2.seconds, "compilations": clock2.compiles, "n_traces": r2.n_traces,
                  "seconds_per_iteration": wall2 / max(r2.iterations, 1)}
    zt = np.asarray(tw.z_true)
    return {
        "case": "solve",
        "twin": {k: (list(v) if isinstance(v, tuple) else v) for k, v in twin.items()},
        "problem": {"grid": tw.info["grid"], "nsteps": tw.info["nsteps"], "dt_seconds": tw.info["dt"],
                    "species": list(tw.info["species"]), "n_controls": p.control.size,
                    "n_obs": p.obs_error.nobs, "checkpoint": p.checkpoint},
        "build_seconds": build_s,
        "backend": jax.default_backend(),
        "first": {
            "status": r.status.name, "iterations": r.iterations, "wall_seconds": wall,
            "compile_seconds": clock.seconds, "compilations": clock.compiles,
            "solve_seconds_excluding_compile": wall - clock.seconds,
            "seconds_per_iteration": (wall - clock.seconds) / max(r.iterations, 1),
            "cost_prior": res.cost_prior, "cost_posterior": res.cost_posterior,
            "cost_reduction": 1.0 - res.cost_posterior / res.cost_prior,
            "grad_norm_prior": float(r.history_grad_norm[0]), "grad_norm_posterior": r.grad_norm,
            "grad_norm_reduction": r.grad_norm / float(r.history_grad_norm[0]),
            "reduced_chi_square": res.reduced_chi_square, "n_traces": r.n_traces,
            "control_rms_error_prior": float(np.sqrt(np.mean(zt**2))),
            "control_rms_error_posterior": float(np.sqrt(np.mean((np.asarray(res.z) - zt) ** 2))),
        },
        "second_new_observations": second,
    }


def window_worker(twin: dict, reps: int) -> dict:
    """Forward and gradient of the chain's cost for one window length."""
    import equinox as eqx
    import jax
    import numpy as np

    from benchmarks import common
    from diffflux.inversion.cost import cost

    tw, build_s = _twin(twin)
    p = tw.problem
    dyn, static = eqx.partition(p, eqx.is_array)
    z = 0.5 * tw.z_true  # away from the prior: the log-normal and biosphere terms are nonlinear there

    def fwd(d, zz):
        return cost(eqx.combine(d, static), zz)

    grad = jax.value_and_grad(fwd, argnums=1)
    fwd_c, fwd_compile = common.compile_timed(fwd, dyn, z)
    grad_c, grad_compile = common.compile_timed(grad, dyn, z)
    on_gpu = jax.default_backend() == "gpu"

    def measure(fn):
        ok = _reset_peak_rss()
        before = _proc_status()
        if on_gpu:
            try:
                jax.devices()[0].reset_memory_stats()  # not on every backend
            except Exception:  # noqa: BLE001
                pass
        t = time.perf_counter()
        out = jax.block_until_ready(fn(dyn, z))
        first = time.perf_counter() - t
        after = _proc_status()
        mem = {}
        if ok and "VmHWM" in after:
            mem["rss_peak_increase_bytes"] = after["VmHWM"] - before.get("VmRSS", 0)
        if on_gpu:
            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                mem["device_peak_bytes_in_use"] = int(stats["peak_bytes_in_use"])
        times = [first]
        for _ in range(reps):
            t = time.perf_counter()
            jax.block_until_ready(fn(dyn, z))
            times.append(time.perf_counter() - t)
        return out, times, mem

    j, tf, mem_f = measure(fwd_c)
    (jg, g), tg, mem_g = measure(grad_c)
    g = np.asarray(g)
    if not np.all(np.isfinite(g)):
        raise RuntimeError("inversion_bench: non-finite gradient")
    fm, gm = common.memory_stats(fwd_c), common.memory_stats(grad_c)

    def predicted(m):
        return max(m.get("peak_memory_in_bytes", 0), m.get("temp_size_in_bytes", 0)
                   + m.get("argument_size_in_bytes", 0) + m.get("output_size_in_bytes", 0))

    return {
        "case": "window",
        "days": twin["days"],
        "twin": {k: (list(v) if isinstance(v, tuple) else v) for k, v in twin.items()},
        "problem": {"grid": tw.info["grid"], "nsteps": tw.info["nsteps"], "dt_seconds": tw.info["dt"],
                    "species": list(tw.info["species"]), "n_controls": p.control.size,
                    "n_obs": p.obs_error.nobs, "checkpoint": p.checkpoint},
        "backend": jax.default_backend(),
        "build_seconds": build_s,
        "forward": {"compile_seconds": fwd_compile, "seconds": min(tf), "all_seconds": tf, "measured": mem_f,
                    "memory_analysis": fm, "predicted_peak_bytes": predicted(fm), "cost": float(j)},
        "gradient": {"compile_seconds": grad_compile, "seconds": min(tg), "all_seconds": tg,
                     "measured": mem_g, "memory_analysis": gm, "predicted_peak_bytes": predicted(gm),
                     "cost": float(jg), "grad_norm": float(np.linalg.norm(g))},
        "grad_over_forward": min(tg) / min(tf),
        "seconds_per_step": {"forward": min(tf) / tw.info["nsteps"], "gradient": min(tg) / tw.info["nsteps"]},
    }


def _run_worker(kind: str, kwargs: dict, timeout: float) -> dict:
    arg = json.dumps({"kind": kind, "kwargs": kwargs})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src"),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.inversion_bench", "--worker", arg],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": kind, "settings": kwargs, "error": f"worker timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            rec = json.loads(line[len(_MARK):])
            rec["worker_wall_seconds"] = time.perf_counter() - t
            return rec
    return {"case": kind, "settings": kwargs,
            "error": f"worker exit {proc.returncode}: {(proc.stderr or '')[-1500:]}"}


def main(outdir: Path = DEFAULT_RESULTS, preset: str = "full",
         only: tuple[str, ...] = ("solve", "window")) -> dict:
    """Run the preset's cases (one process each) and write ``inversion.json``."""
    settings = PRESETS[preset]
    payload = {
        "preset": preset,
        "method": (
            "solve: invert(standard_twin, LBFGS) wall time, compile time from JAX compile events (and, "
            "where the preset says so, a second inversion with new pseudo-observations reusing the "
            "compiled step); window: J and "
            "value_and_grad J of the whole chain (biosphere -> composer -> transport with nested "
            "checkpointing -> in-scan sampling) at 0.5 z_true, compiled with jax.jit(...).lower().compile(), "
            f"best of the first call + {settings['reps']} more; memory = XLA memory_analysis and measured "
            "peak RSS increase (VmHWM reset via /proc/self/clear_refs) or GPU peak_bytes_in_use; one "
            "process per case"
        ),
        "records": [],
    }
    t0 = time.perf_counter()
    cases = []
    if "solve" in only:
        cases.append(("solve", settings["solve"]))
    if "window" in only:
        cases += [("window", {"twin": w, "reps": settings["reps"]}) for w in settings["windows"]]
    for kind, kw in cases:
        label = kind if kind == "solve" else f"window {kw['twin']['days']} days"
        log(f"inversion: {label}")
        rec = _run_worker(kind, kw, settings["timeout"])
        if "error" in rec:
            log(f"  FAILED: {rec['error'][-400:]}")
        elif kind == "solve":
            f, s = rec["first"], rec["second_new_observations"]
            log(f"  {f['status']} after {f['iterations']} iterations: {f['wall_seconds']:.1f} s "
                f"(compile {f['compile_seconds']:.1f} s)"
                + (f"; again with new observations {s['wall_seconds']:.1f} s" if s else ""))
        else:
            log(f"  {rec['problem']['nsteps']} steps: forward {rec['forward']['seconds']:.2f} s, gradient "
                f"{rec['gradient']['seconds']:.2f} s, ratio {rec['grad_over_forward']:.2f}; peak RSS "
                f"increase {rec['gradient']['measured'].get('rss_peak_increase_bytes', 0) / 2**20:.0f} MiB")
        payload["records"].append(rec)
        payload["wall_seconds"] = time.perf_counter() - t0
        write_result("inversion", payload, outdir)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--only", choices=("solve", "window"), action="append")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        kw = spec["kwargs"]
        if spec["kind"] == "solve":
            twin = {k: tuple(v) if isinstance(v, list) else v for k, v in kw["twin"].items()}
            result = solve_worker(twin, kw["max_iter"], kw.get("rerun", True))
        else:
            twin = {k: tuple(v) if isinstance(v, list) else v for k, v in kw["twin"].items()}
            result = window_worker(twin, kw["reps"])
        print(_MARK + json.dumps(result, default=float), flush=True)
    else:
        main(args.out, args.preset, tuple(args.only or ("solve", "window")))
