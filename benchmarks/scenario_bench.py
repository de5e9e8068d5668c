"""Sensitivity scenarios: a batch in one ``jax.vmap``-compiled call against the same scenarios one by one.

Setup: the scenarios of ``examples/sensitivity.toml`` (flux, parameter and land-cover changes, an extra
HFC-134a tracer, soil CH4 in the baseline) on its CO2 + CH4 twin (``full``: 10 x 12 degrees, 4 levels,
14 days of 3-hour steps; ``quick``: 15 x 20 degrees, 2 levels, 8 days of 6-hour steps, no spin-up;
``gpu``: the ``full`` twin with the scenarios repeated at four amplitudes, i.e. a batch four times as
large). The baseline (amplitude 0) is the first member of the batch.

Measured: the compile time of the batched function and of the single-scenario function (first call minus
a steady call), the best of ``reps`` steady calls of the batch and of the loop over all members with the
single-scenario function, their ratio, and the largest relative difference between the two (metrics,
model equivalents, burdens, mean fluxes).

Usage: ``python -m benchmarks.scenario_bench [--preset quick|full|gpu]`` writes ``scenarios.json`` into
``benchmarks/results/`` (``results/<preset>/`` for the other presets).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import REPO_ROOT, log, write_result

EXAMPLE = REPO_ROOT / "examples" / "sensitivity.toml"
PRESETS = {
    "quick": {
        "setup": {"resolution": (15.0, 20.0), "nlev": 2, "days": 8, "steps_per_day": 4, "spinup": 0},
        "repeat": 1,
        "reps": 2,
    },
    "full": {"setup": {}, "repeat": 1, "reps": 3},
    "gpu": {"setup": {}, "repeat": 4, "reps": 3},
}


def _config(preset: str):
    from diffflux.experiments.config import load_sensitivity_config, make_setting

    cfg = load_sensitivity_config(EXAMPLE)
    over = PRESETS[preset]["setup"]
    if over:
        setup = {**cfg.setup, **over}
        cfg = dataclasses.replace(cfg, setup=setup, setting=make_setting(setup, cfg.experiment))
    return cfg


def _steady(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def main(outdir: Path, preset: str = "full") -> Path:
    from diffflux.experiments.model import simulate_batch, simulate_one, stack, unstack
    from diffflux.experiments.run import batch_agreement, build_experiment, with_baseline

    jax.config.update("jax_enable_x64", True)
    p = PRESETS[preset]
    cfg = _config(preset)
    t0 = time.perf_counter()
    twin, model, arrays, _, _, setting = build_experiment(cfg, log)
    build_s = time.perf_counter() - t0
    nscn = len(cfg.scenarios)
    members = [unstack(arrays, k).scaled(a) for a in np.linspace(1.0, 0.25, p["repeat"]) for k in range(nscn)]
    both = with_baseline(stack(members))
    n = nscn * p["repeat"] + 1
    log(
        f"scenarios: {n} members ({nscn} scenarios x {p['repeat']} amplitudes + baseline) on "
        f"{setting.grid.describe()}"
    )

    t = time.perf_counter()
    out = jax.block_until_ready(simulate_batch(model, both))
    first_batch = time.perf_counter() - t
    batch_s = _steady(lambda: simulate_batch(model, both), p["reps"])
    singles_in = [unstack(both, k) for k in range(n)]
    t = time.perf_counter()
    jax.block_until_ready(simulate_one(model, singles_in[0]))
    first_single = time.perf_counter() - t
    loop_s = _steady(lambda: [simulate_one(model, a) for a in singles_in], p["reps"])
    singles = [simulate_one(model, a) for a in singles_in]
    worst = batch_agreement(out, singles)
    log(
        f"  batch {batch_s:.3f} s, one by one {loop_s:.3f} s: speed-up {loop_s / batch_s:.2f}x; "
        f"compile batch {first_batch - batch_s:.1f} s, single {first_single - loop_s / n:.1f} s; "
        f"max rel diff {worst:.1e}"
    )
    payload = {
        "method": __doc__.strip().split("\n\n")[0],
        "preset": preset,
        "config": str(EXAMPLE.relative_to(REPO_ROOT)),
        "grid": setting.grid.describe(),
        "window": [str(setting.start), str(setting.end)],
        "nsteps": setting.nsteps,
        "dt_s": setting.dt,
        "tracers": list(setting.tracers),
        "scenarios": [s.name for s in cfg.scenarios],
        "amplitudes": list(np.linspace(1.0, 0.25, p["repeat"])),
        "batch_members": n,
        "build_s": build_s,
        "batch_compile_s": first_batch - batch_s,
        "single_compile_s": first_single - loop_s / n,
        "batch_s": batch_s,
        "one_by_one_s": loop_s,
        "per_member_batch_s": batch_s / n,
        "per_member_one_by_one_s": loop_s / n,
        "speedup_batch_vs_one_by_one": loop_s / batch_s,
        "max_rel_diff_batch_vs_one_by_one": worst,
        "reps": p["reps"],
        "dtype": str(np.asarray(out["metrics"]).dtype),
    }
    return write_result("scenarios", payload, outdir)


if __name__ == "__main__":
    import argparse

    from benchmarks.common import DEFAULT_RESULTS

    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="full", choices=sorted(PRESETS))
    a = ap.parse_args()
    print(main(DEFAULT_RESULTS if a.preset == "full" else DEFAULT_RESULTS / a.preset, a.preset))
