"""Global tracer-mass drift of a float32 transport run on the built-in climatology.

    python scripts/float32_mass_drift.py [DAYS]     (default 365; about 2 minutes per year on 2 cores)

4 x 5 degrees, L10, PPM + implicit Kz + horizontal diffusion + convection, 1-hour steps, no sources or
loss: the relative change of the global tracer mass (summed in float64) and of the air mass.
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid
from diffflux.met.climatology import Climatology
from diffflux.transport import HorizontalDiffusion, Transport, run
from diffflux.transport.convection import ConvectiveMassFlux


def main(days: int) -> None:
    grid = LatLonGrid.from_resolution(4, 5, "L10")
    met = Climatology(grid, dtype=jnp.float32)
    model = Transport(grid, horizontal_diffusion=HorizontalDiffusion(), convection=ConvectiveMassFlux())
    lat = jnp.asarray(grid.lat, jnp.float32)
    chi = 400e-6 + 20e-6 * jnp.sin(jnp.deg2rad(lat))[None, None, :, None] * jnp.ones(
        (1,) + grid.shape, jnp.float32
    )
    state = model.initial_state(chi.astype(jnp.float32), met.fields(0.0).ps)
    t0 = time.time()
    final = jax.jit(lambda s: run(model, met, s, dt=3600.0, nsteps=24 * days)[0])(state)
    tracer = [np.sum(np.asarray(x.tracer, np.float64)) for x in (state, final)]
    air = [np.sum(np.asarray(x.air, np.float64)) for x in (state, final)]
    print(
        f"{days} days, {final.tracer.dtype}: tracer mass change {tracer[1] / tracer[0] - 1:.3e}, "
        f"air mass change {air[1] / air[0] - 1:.3e} ({time.time() - t0:.0f} s)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 365)
