"""Cost of sampling observations inside the transport scan: 1e3 vs 1e5 records in a one-month run.

Setup (full preset): ``Transport(grid)`` (monotone PPM + implicit vertical diffusion) on the 4 x 5 degree
grid with 10 levels, the built-in :class:`diffflux.met.Climatology` evaluated in the scan, one tracer,
float32, 1-hour steps, 720 steps (30 days). Observations: point records at random times (uniform over
the month), positions (uniform on the sphere in latitude/longitude) and altitudes (0-5 km), sampled by
:class:`diffflux.observations.ObservationOperator` through ``run(..., observe=operator)``.

Measured (each jitted once, compile timed separately, best of ``reps`` interleaved calls after a
warm-up; process CPU time on the CPU backend, see :func:`run`):

* ``baseline``: the run without observations;
* ``per_step`` (the design): records sorted by step into padded per-step tables; each step gathers its
  own ``K`` records (``K`` = the largest number in any step);
* ``dense`` (for contrast, smaller N only): the naive design that evaluates every record at every step
  and masks the ones outside the step, i.e. cost ~ observations x steps.

``factor_1e5_vs_1e3`` is the ratio of the two per-step run times; ``sampling_overhead`` subtracts the
baseline. Because the transport dominates the run time and the machine may be shared, the operator is
also timed alone (``sampling_only``): the same scan over the steps with the met evaluated and the
operator applied to a fixed state, without the transport step.

Usage: ``python -m benchmarks.obs_bench [--quick]`` writes ``benchmarks/results/obs.json``
(``results/quick/obs.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import DEFAULT_RESULTS, log, write_result
from diffflux.grid import LatLonGrid
from diffflux.met import Climatology
from diffflux.observations import build_operator, make_table, to_arrays
from diffflux.observations.operators import PointPlan
from diffflux.transport import Transport
from diffflux.transport import run as transport_run

PRESETS = {
    "quick": dict(
        grid="4x5L10",
        dtype="float32",
        dt=3600.0,
        nsteps=48,
        counts=[1000, 100000],
        dense_counts=[1000],
        reps=1,
    ),
    "full": dict(
        grid="4x5L10",
        dtype="float32",
        dt=3600.0,
        nsteps=720,
        counts=[1000, 10000, 100000],
        dense_counts=[1000],
        reps=3,
    ),
}
REFERENCE = np.datetime64("2021-01-01T00:00:00", "ns")


def _grid(spec: str) -> LatLonGrid:
    res, lev = spec.upper().split("L")
    dlat, dlon = (float(x) for x in res.lower().split("x"))
    return LatLonGrid.from_resolution(dlat, dlon, f"L{lev}")


def random_table(n: int, duration: float, seed: int = 0):
    """``n`` point records uniform in time over ``[0, duration]`` s, on the sphere and in 0-5 km."""
    rng = np.random.default_rng(seed)
    secs = np.round(rng.uniform(0.0, duration, n))
    lat = np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return make_table(
        REFERENCE + (secs * 1e9).astype("timedelta64[ns]"),
        lat,
        rng.uniform(-180, 180, n),
        np.full(n, 400e-6),
        1e-6,
        "CO2",
        altitude=rng.uniform(0.0, 5000.0, n),
    )


def dense_operator(op):
    """The naive operator: every record in every step's table, masked outside its own step."""
    plan = op.point
    nsteps = plan.tracer.shape[0]
    pos = np.asarray(op.point_pos)
    K = plan.tracer.shape[1]
    step, slot = pos // K, pos % K
    take = lambda a: jnp.broadcast_to(a[step, slot], (nsteps,) + a[step, slot].shape)  # noqa: E731
    own = np.arange(nsteps)[:, None] == step[None, :]
    hw = take(plan.hweight) * jnp.asarray(own, plan.hweight.dtype)[..., None]
    dense = PointPlan(
        hindex=take(plan.hindex),
        hweight=hw,
        tracer=take(plan.tracer),
        wtime=take(plan.wtime),
        target=take(plan.target),
        use_pressure=take(plan.use_pressure),
    )
    n = pos.size
    # record i of the (nsteps, n) outputs sits in row step_i, column i
    return op.__class__(
        grid=op.grid,
        point=dense,
        column=None,
        point_pos=jnp.asarray(step * n + np.arange(n)),
        column_pos=op.column_pos,
        surface_height=op.surface_height,
        t0=op.t0,
        dt=op.dt,
        nsteps=op.nsteps,
    )


def _compile(fn, args):
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - t
    jax.block_until_ready(compiled(*args))  # warm-up
    return compiled, seconds


def run(quick: bool = False, preset: str | None = None) -> dict:
    """Run the benchmark and return the result dict (see module docstring).

    All variants are compiled first and then timed in ``reps`` interleaved rounds (so slow drifts of a
    shared machine hit them alike); each variant keeps its best wall time and its best process CPU time
    (``time.process_time``, all threads: on a CPU shared with other jobs it moves far less than the wall
    time). The headline factor uses the CPU time on the CPU backend and the wall time on accelerators.
    """
    preset = preset or ("quick" if quick else "full")
    s = PRESETS[preset]
    grid = _grid(s["grid"])
    dtype = jnp.dtype(s["dtype"])
    dt, nsteps = s["dt"], s["nsteps"]
    met = Climatology(grid, dtype=s["dtype"])
    model = Transport(grid)
    state = model.initial_state(jnp.full((1,) + grid.shape, 400e-6, dtype), met.surface_pressure())

    def plain(state):
        return transport_run(model, met, state, dt=dt, nsteps=nsteps)[0].tracer

    def sampled(op, state):
        final, _, obs = transport_run(model, met, state, dt=dt, nsteps=nsteps, observe=op)
        return final.tracer, op.collect(obs)

    def sampling_only(op, state):
        def body(_, n):
            return None, op(n, state, state, met.fields((n + 0.5) * dt))

        return op.collect(jax.lax.scan(body, None, jnp.arange(nsteps))[1])

    def operator(n):
        arrays = to_arrays(random_table(n, nsteps * dt), ["CO2"], REFERENCE, dtype=dtype)
        return build_operator(arrays, grid, t0=0.0, dt=dt, nsteps=nsteps)

    variants = {"baseline": (plain, (state,))}
    padding = {}
    for n in s["counts"]:
        op = operator(n)
        padding[str(n)] = op.padding_efficiency()["point"]
        variants[f"per_step_{n}"] = (sampled, (op, state))
        variants[f"sampling_only_per_step_{n}"] = (sampling_only, (op, state))
    for n in s["dense_counts"]:
        op = dense_operator(operator(n))
        variants[f"dense_{n}"] = (sampled, (op, state))
        variants[f"sampling_only_dense_{n}"] = (sampling_only, (op, state))
    runs = {}
    for name, (fn, args) in variants.items():
        compiled, c = _compile(fn, args)
        runs[name] = {"compile_s": c, "wall": [], "cpu": [], "_fn": compiled, "_args": args}
        log(f"obs_bench: compiled {name} in {c:.1f} s")
    for _ in range(s["reps"]):
        for r in runs.values():
            w, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(r["_fn"](*r["_args"]))
            r["wall"].append(time.perf_counter() - w)
            r["cpu"].append(time.process_time() - c)
    for name, r in runs.items():
        del r["_fn"], r["_args"]
        r["wall_s"], r["cpu_s"] = min(r["wall"]), min(r["cpu"])
        log(f"obs_bench: {name}: wall {r['wall_s']:.3f} s, process CPU {r['cpu_s']:.3f} s")
    clock = "cpu_s" if jax.default_backend() == "cpu" else "wall_s"
    lo, hi = min(s["counts"]), max(s["counts"])
    base = runs["baseline"][clock]
    out = {
        "preset": preset,
        "settings": s,
        "grid": grid.describe(),
        "steps": nsteps,
        "window_days": nsteps * dt / 86400.0,
        "met": "diffflux.met.Climatology (in the scan)",
        "model": "Transport(grid): PPM + implicit vertical diffusion",
        "clock": clock,
        "runs": runs,
        "padding": padding,
        "factor_1e5_vs_1e3": runs[f"per_step_{hi}"][clock] / runs[f"per_step_{lo}"][clock],
        "factor_1e5_vs_1e3_wall": runs[f"per_step_{hi}"]["wall_s"] / runs[f"per_step_{lo}"]["wall_s"],
        "overhead_vs_baseline": {n: runs[f"per_step_{n}"][clock] / base - 1.0 for n in s["counts"]},
        "sampling_only_factor_1e5_vs_1e3": runs[f"sampling_only_per_step_{hi}"][clock]
        / runs[f"sampling_only_per_step_{lo}"][clock],
        "sampling_only_us_per_obs": {
            n: 1e6 * runs[f"sampling_only_per_step_{n}"][clock] / n for n in s["counts"]
        },
    }
    for n in s["dense_counts"]:
        out[f"dense_vs_per_step_sampling_only_at_{n}"] = (
            runs[f"sampling_only_dense_{n}"][clock] / runs[f"sampling_only_per_step_{n}"][clock]
        )
    return out


def main(outdir: Path = DEFAULT_RESULTS, preset: str = "full") -> dict:
    """Run a preset and write ``obs.json`` into ``outdir``."""
    res = run(preset=preset)
    path = write_result("obs", res, outdir)
    log(f"obs_bench: factor(1e5 / 1e3 obs) = {res['factor_1e5_vs_1e3']:.3f} -> {path}")
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.obs_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="48 steps instead of 720")
    parser.add_argument("--out", type=Path, help="output directory")
    args = parser.parse_args()
    preset = "quick" if args.quick else "full"
    out = args.out or (DEFAULT_RESULTS / "quick" if args.quick else DEFAULT_RESULTS)
    main(out, preset)
