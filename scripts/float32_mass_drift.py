"""Global tracer-mass drift of a float32 transport run on the built-in climatology.

    python scripts/float32_mass_drift.py [DAYS] [--only old|new] [--time]

4 x 5 degrees, L10, PPM + implicit Kz + horizontal diffusion + convection, 1-hour steps, no sources or
loss: the relative change of the global tracer mass (summed in float64) and of the air mass, for the
plain float32 update (``old``: ``run(..., compensate=False)``) and the compensated one (``new``: the
default of ``run`` for float32, Kahan 1965 / Neumaier 1974 summation with a carried residual, see
:mod:`diffflux.transport.compensated`). About 2-4 minutes per year and variant on 2 cores.

``--time`` instead measures the mean wall time of one step (jitted 24-step scans) of both
variants in the same process (alternating, best of 10) and prints their ratio.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid
from diffflux.met.climatology import Climatology
from diffflux.transport import HorizontalDiffusion, Transport, run
from diffflux.transport.convection import ConvectiveMassFlux


def setup():
    """Model, met and initial float32 state of the benchmark (4 x 5 degrees, L10)."""
    grid = LatLonGrid.from_resolution(4, 5, "L10")
    met = Climatology(grid, dtype=jnp.float32)
    model = Transport(grid, horizontal_diffusion=HorizontalDiffusion(), convection=ConvectiveMassFlux())
    lat = jnp.asarray(grid.lat, jnp.float32)
    chi = 400e-6 + 20e-6 * jnp.sin(jnp.deg2rad(lat))[None, None, :, None] * jnp.ones(
        (1,) + grid.shape, jnp.float32
    )
    state = model.initial_state(chi.astype(jnp.float32), met.fields(0.0).ps)
    return model, met, state


def drift(days: int, compensate: bool) -> tuple[float, float, float]:
    """Relative tracer- and air-mass change over ``days`` [1] and the wall time [s]."""
    model, met, state = setup()
    t0 = time.time()
    final = jax.jit(
        lambda s: run(model, met, s, dt=3600.0, nsteps=24 * days, compensate=compensate)[0]
    )(state)
    tracer = [np.sum(np.asarray(x.tracer, np.float64)) for x in (state, final)]
    air = [np.sum(np.asarray(x.air, np.float64)) for x in (state, final)]
    return tracer[1] / tracer[0] - 1.0, air[1] / air[0] - 1.0, time.time() - t0


def step_times(nsteps: int = 24, repeats: int = 10) -> dict[str, float]:
    """Wall time per step [s] of the plain and the compensated float32 step.

    Both are compiled first, then timed alternately ``repeats`` times (24-step scans); the best of
    each is kept, so that load from other processes affects both alike.
    """
    model, met, state = setup()
    fns = {}
    for name, comp in (("old", False), ("new", True)):
        s0 = state.with_residual() if comp else state
        f = jax.jit(lambda s, comp=comp: run(model, met, s, dt=3600.0, nsteps=nsteps, compensate=comp)[0])
        jax.block_until_ready(f(s0))  # compile
        fns[name] = (f, s0)
    best = {name: np.inf for name in fns}
    for _ in range(repeats):
        for name, (f, s0) in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(s0))
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: t / nsteps for name, t in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("days", nargs="?", type=int, default=365)
    ap.add_argument("--only", choices=("old", "new"), default=None)
    ap.add_argument("--time", action="store_true", help="step-time overhead of the compensation")
    args = ap.parse_args()
    if args.time:
        t = step_times()
        print(f"step time float32 4x5 L10: old {t['old'] * 1e3:.1f} ms, new (compensated) "
              f"{t['new'] * 1e3:.1f} ms, ratio new/old {t['new'] / t['old']:.3f}")
        return
    variants = [("old", False), ("new", True)]
    for name, comp in variants:
        if args.only not in (None, name):
            continue
        d_tracer, d_air, wall = drift(args.days, comp)
        label = "compensated" if comp else "plain float32"
        print(f"{name} ({label}): {args.days} days, float32: tracer mass change {d_tracer:.3e}, "
              f"air mass change {d_air:.3e} ({wall:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
