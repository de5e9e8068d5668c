"""Sharded runs agree with single-device runs (4 host devices in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from diffflux.grid import LatLonGrid
    from diffflux.met.climatology import Climatology
    from diffflux.parallel import make_mesh, shard_batch, shard_field, shard_state, replicate
    from diffflux.transport import Transport, run

    assert len(jax.devices()) == 4
    import sys
    layouts = sys.argv[1].split(",")
    cheap = len(sys.argv) > 2 and sys.argv[2] == "cheap"
    grid = LatLonGrid.from_resolution(9.0, 10.0, "L10")          # 20 x 36 cells
    met = Climatology(grid)
    from diffflux.transport.reconstruction import PiecewiseLinear
    # cheap: the linear (unlimited) scheme and no checkpointing compile several times faster
    model = Transport(grid, advection=PiecewiseLinear(None)) if cheap else Transport(grid)
    ckpt = None if cheap else "nested"
    ps = met.fields(0.0).ps
    coslat = jnp.cos(jnp.deg2rad(jnp.asarray(grid.lat)))[None, None, :, None]
    chi = 400e-6 + 1e-6 * coslat * jnp.ones((1,) + grid.shape)
    state = model.initial_state(chi, ps)
    flux = 1e-7 * jnp.ones((1, grid.nlat, grid.nlon)).at[0, 15, 20].set(1e-5)
    nsteps, dt = 6, 1800.0

    def forward(s, f):
        final, _ = run(model, met, s, dt=dt, nsteps=nsteps, flux=f, checkpoint=ckpt)
        return final.mixing_ratio()

    def metric(f, s):
        return jnp.sum(forward(s, f)[:, 0] ** 2) * 1e6

    fwd = jax.jit(forward)
    grad = jax.jit(jax.grad(metric))
    ref_f = fwd(state, flux)
    ref_g = grad(flux, state)
    out = {}
    layouts_all = {"lat": ("lat", None), "lon": ("lon", None), "2d": (("lat", "lon"), (2, 2))}
    for name in [n for n in layouts if n in layouts_all]:
        axes, shape = layouts_all[name]
        mesh = make_mesh(axes, shape)
        s = shard_state(state, mesh)
        f = shard_field(flux, mesh)
        y = fwd(s, f)
        g = grad(f, s)
        out[name] = {
            "forward": float(jnp.max(jnp.abs(y - ref_f)) / jnp.max(jnp.abs(ref_f))),
            "gradient": float(jnp.max(jnp.abs(g - ref_g)) / jnp.max(jnp.abs(ref_g))),
            "devices": len(y.sharding.device_set),
        }
    # one inversion iteration (L-BFGS with its line search) on a flux-correction problem: the control
    # and the fields sharded in latitude bands against the same iteration on one device
    if "invert" in layouts:
        from diffflux.solvers import LBFGS, minimise

        target = forward(state, 1.3 * flux)[:, 0]

        def cost(z, s):
            r = (forward(s, flux + 1e-7 * z[None])[:, 0] - target) / 1e-8
            return 0.5 * jnp.sum(z * z) + 0.5 * jnp.sum(r * r)

        z0 = jnp.zeros((grid.nlat, grid.nlon))
        one = minimise(lambda z: cost(z, state), z0, LBFGS(max_iter=1))
        mesh = make_mesh("lat")
        ss = shard_state(state, mesh)
        sh = minimise(lambda z: cost(z, ss), shard_field(z0, mesh), LBFGS(max_iter=1))
        out["invert"] = {"z": float(jnp.max(jnp.abs(sh.z - one.z)) / jnp.max(jnp.abs(one.z))),
                         "cost": abs(sh.value - one.value) / abs(one.value), "iterations": sh.iterations,
                         "devices": len(ss.tracer.sharding.device_set)}
    # ensemble of 4 scenarios, one per device, against one-by-one runs
    if "ensemble" not in layouts:
        print("RESULT" + json.dumps(out))
        raise SystemExit(0)
    mesh = make_mesh("member")
    fluxes = jnp.stack([flux * (1.0 + 0.5 * k) for k in range(4)])
    batched = jax.jit(jax.vmap(forward, in_axes=(None, 0)))
    yb = batched(replicate(state, mesh), shard_batch(fluxes, mesh))
    single = jnp.stack([fwd(state, fluxes[k]) for k in range(4)])
    out["ensemble"] = {"forward": float(jnp.max(jnp.abs(yb - single)) / jnp.max(jnp.abs(single))),
                       "devices": len(yb.sharding.device_set)}
    print("RESULT" + json.dumps(out))
    """
)


def _run(layouts: str, cheap: bool = False) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, layouts, "cheap" if cheap else "full"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


# Sharded and single-device runs perform the same operations; only the order of a few floating-point
# reductions (the partitioned cumulative sums and tridiagonal solves) differs: agreement to 1e-12 of
# the field's maximum in the forward, 1e-10 in the gradient.
FWD_TOL, GRAD_TOL = 1e-12, 1e-10


@pytest.mark.slow
def test_latitude_bands_and_ensemble_match_single_device():
    """Default suite: linear scheme without checkpointing (the slow test runs PPM with nested checkpoints)."""
    res = _run("lat,ensemble,invert", cheap=True)
    assert res["lat"]["devices"] == 4
    assert res["invert"]["iterations"] == 1 and res["invert"]["devices"] == 4
    assert res["invert"]["z"] <= 1e-10 and res["invert"]["cost"] <= 1e-12, res["invert"]
    assert res["lat"]["forward"] <= FWD_TOL and res["lat"]["gradient"] <= GRAD_TOL
    assert res["ensemble"]["devices"] == 4 and res["ensemble"]["forward"] <= FWD_TOL


@pytest.mark.slow
def test_all_layouts_with_ppm_and_nested_checkpoints_match_single_device():
    res = _run("lat,lon,2d,ensemble")
    assert res["ensemble"]["forward"] <= FWD_TOL
    for layout in ("lat", "lon", "2d"):
        assert res[layout]["devices"] == 4
        assert res[layout]["forward"] <= FWD_TOL and res[layout]["gradient"] <= GRAD_TOL


def test_mesh_errors():
    import jax

    from diffflux.parallel import make_mesh, shard_field

    with pytest.raises(ValueError, match="needs 3 devices"):
        make_mesh("lat", (3,), devices=jax.devices() * 1)
    mesh = make_mesh("lat", (1,), devices=jax.devices()[:1])
    assert shard_field(jax.numpy.ones((5, 7)), mesh).shape == (5, 7)
