"""Biosphere throughput: one simulated year on a global grid (daily step), float32 and float64.

For each dtype: build the built-in maps and climatology on the grid, then time ``Biosphere.simulate``
over 365 days (one compiled ``lax.scan``; annual sums only, no daily outputs) from a plausible state, and
the gradient of the annual global NEE plus wetland CH4 with respect to every parameter multiplier
(``jax.value_and_grad``, per-day checkpointing of the scan). Reported: land cells and PFT tiles,
compile and run times, cell-days and tile-days per second, and the gradient-to-forward time ratio.
The spin-up is not part of the timing (it is timed separately, at 4 x 5 degrees, in float64).
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp

from benchmarks.common import log, timed, write_result

PRESETS = {"quick": ["4x5"], "full": ["4x5", "1x1"], "gpu": ["4x5", "1x1", "0.5x0.5"]}


def _case(spec: str, dtype) -> dict:
    from diffflux.grid import LatLonGrid
    from diffflux.models.biosphere import Biosphere, BiosphereParams, climatology_maps

    dlat, dlon = (float(v) for v in spec.split("x"))
    grid = LatLonGrid.from_resolution(dlat, dlon)
    t0 = time.perf_counter()
    maps, drivers = climatology_maps(grid)
    drivers = type(drivers)(lat=drivers.lat.astype(dtype), cont=drivers.cont.astype(dtype))
    build = time.perf_counter() - t0
    bio = Biosphere.from_maps(maps)
    params = BiosphereParams.ones(dtype)
    state = bio.initial_state(params, dtype)
    area = jnp.asarray(maps.cell_area, dtype) / 1e12

    def forward(p, s):
        _, _, annual = bio.simulate(p, s, drivers, 365, outputs=None)
        return jnp.sum(annual["nee"] * area) + jnp.sum(annual["ch4_wetland"] * area)

    def gradient(p, s):
        def f(q):
            _, _, annual = bio.simulate(q, s, drivers, 365, outputs=None, checkpoint=True)
            return jnp.sum(annual["nee"] * area) + jnp.sum(annual["ch4_wetland"] * area)

        return jax.value_and_grad(f)(p)

    fwd = jax.jit(forward)
    grd = jax.jit(gradient)
    t0 = time.perf_counter()
    jax.block_until_ready(fwd(params, state))
    compile_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(grd(params, state))
    compile_grad = time.perf_counter() - t0
    fwd_s, _, _ = timed(fwd, params, state, reps=3, warmup=0)
    grad_s, _, _ = timed(grd, params, state, reps=2, warmup=0)
    return {
        "grid": spec, "dtype": str(jnp.dtype(dtype)), "land_cells": maps.ncell, "tiles": bio.tiles.ntile,
        "build_maps_s": build, "compile_forward_s": compile_fwd, "compile_gradient_s": compile_grad,
        "forward_year_s": fwd_s, "gradient_year_s": grad_s, "grad_over_forward": grad_s / fwd_s,
        "cell_days_per_s": maps.ncell * 365 / fwd_s, "tile_days_per_s": bio.tiles.ntile * 365 / fwd_s,
        "cells_per_s_one_year": maps.ncell / fwd_s,
    }


def _spinup_case() -> dict:
    from diffflux.grid import LatLonGrid
    from diffflux.models.biosphere import Biosphere, BiosphereParams, climatology_maps, spinup

    maps, drivers = climatology_maps(LatLonGrid.from_resolution(4.0, 5.0))
    bio = Biosphere.from_maps(maps)
    t0 = time.perf_counter()
    _, report = spinup(bio, BiosphereParams.ones(), drivers)
    return {"grid": "4x5", "dtype": "float64", "wall_s": time.perf_counter() - t0,
            "newton_iterations": report.iterations, "max_nep": report.max_nep,
            "bare_tiles": report.bare_tiles,
            "tiles": bio.tiles.ntile}


def main(outdir: Path, preset: str = "full") -> Path:
    cases = []
    for spec in PRESETS[preset]:
        for dtype in (jnp.float32, jnp.float64):
            log(f"biosphere {spec} {jnp.dtype(dtype)}")
            cases.append(_case(spec, dtype))
            c = cases[-1]
            log(f"  {c['cell_days_per_s']:.3g} cell-days/s, grad/fwd {c['grad_over_forward']:.2f}")
    payload = {"method": __doc__.strip().split("\n\n")[0], "cases": cases}
    if preset != "quick":
        log("biosphere spin-up 4x5 float64")
        payload["spinup"] = _spinup_case()
    return write_result("biosphere", payload, outdir)


if __name__ == "__main__":
    import argparse

    from benchmarks.common import DEFAULT_RESULTS

    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="full", choices=sorted(PRESETS))
    a = ap.parse_args()
    print(main(DEFAULT_RESULTS if a.preset == "full" else DEFAULT_RESULTS / a.preset, a.preset))
