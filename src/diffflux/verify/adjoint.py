"""Adjoint checks: dot-product tests of the linear operators and a Taylor test of the full chain.

Dot-product test (e.g. Navon, Zou, Derber and Sela 1992, Mon. Wea. Rev. 120, 1433-1446): for a
linear operator ``L`` and random ``x``, ``y``, the adjoint ``L^T`` must satisfy
``<y, L x> = <L^T y, x>`` to round-off. ``L^T`` is obtained both by ``jax.linear_transpose`` (the
transposed program) and by ``jax.vjp`` (reverse mode, what the inversions use). Operators tested
(float64, divergent time-varying met):

* the advection sweeps ``sweep_x`` (flux-form semi-Lagrangian, zonal Courant numbers up to 2.5),
  ``sweep_y`` and ``sweep_z`` with the two linear reconstructions (unlimited piecewise-linear and
  unlimited PPM);
* the implicit vertical diffusion (tridiagonal solve);
* one full linear step (advection X/2 Y/2 Z Y/2 X/2, implicit Kz, horizontal diffusion, chemistry);
* a multi-step run under nested checkpointing.

Taylor test of the non-linear chain (monotone PPM, full physics): with
``J(p) = sum(A chi_final^2)`` over parameters ``p = (initial mixing ratio, surface flux, wind
scale)`` and a random direction ``h``, the remainder ``r(eps) = |J(p + eps h) - J(p) - eps <grad J,
h>|`` must fall as ``eps^2``; the measured orders between successive ``eps`` (factor 10) are
reported, and a central finite difference is compared with the reverse-mode directional derivative.
(The monotone limiters make ``J`` only piecewise smooth, so single orders may deviate where ``eps
h`` crosses a switching surface; the median order is the robust summary.)
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid, standard_levels
from diffflux.met import FunctionMet, MetFields
from diffflux.transport import (
    PPM,
    HorizontalDiffusion,
    ImplicitVerticalDiffusion,
    PiecewiseLinear,
    Transport,
    TransportState,
    run,
)
from diffflux.transport.advection import sweep_x, sweep_y, sweep_z, vertical_mass_flux
from diffflux.verify.analytic import FirstOrderLoss
from diffflux.verify.conservation import divergent_met

DAY = 86400.0


def _rel(a: float, b: float) -> float:
    den = max(abs(a), abs(b))
    return abs(a - b) / den if den > 0 else 0.0


def dot_product_test(fn, x, rng: np.random.Generator, transpose: bool = True) -> dict[str, float]:
    """``<y, L x>`` against ``<L^T y, x>`` for a linear ``fn`` with a random ``y``.

    Args:
        fn: linear map of one array.
        x: the point (any array of the input shape; the map is linear, so also the test vector).
        rng: random generator for ``y``.
        transpose: also test ``jax.linear_transpose`` (besides ``jax.vjp``).

    Returns:
        ``{"vjp": rel}`` (and ``"transpose"``) with ``rel = |lhs - rhs| / max(|lhs|, |rhs|)``.
    """

    @jax.jit
    def adjoints(x, y):
        fx, vjp = jax.vjp(fn, x)
        out = [fx, vjp(y)[0]]
        if transpose:
            out.append(jax.linear_transpose(fn, x)(y)[0])
        return out

    shape = jax.eval_shape(fn, x)
    y = jnp.asarray(rng.standard_normal(shape.shape), dtype=shape.dtype)
    res = adjoints(x, y)
    lhs = float(jnp.vdot(y, res[0]))
    out = {"vjp": _rel(lhs, float(jnp.vdot(res[1], x)))}
    if transpose:
        out["transpose"] = _rel(lhs, float(jnp.vdot(res[2], x)))
    return out


def _setup(dtype, nlon: int = 24, nlat: int = 12, levels: str = "L10"):
    grid = LatLonGrid(nlon, nlat, standard_levels(levels))
    met, ps = divergent_met(grid, dtype=dtype)
    return grid, met, ps


GROUPS = ("sweeps", "diffusion", "step", "run")
"""Operator groups of :func:`dot_product_tests`."""


def dot_product_tests(
    dtype=jnp.float64, seed: int = 0, groups: tuple[str, ...] = GROUPS
) -> dict[str, float]:
    """Dot-product tests; returns ``{"<operator>[_<recon>]_<method>": relative mismatch}``.

    Args:
        dtype: float dtype (float64 for the 1e-12 criterion).
        seed: random seed of the test vectors.
        groups: any of ``"sweeps"`` (sweep_x/y/z with both linear reconstructions),
            ``"diffusion"`` (implicit Kz solve), ``"step"`` (one full linear step) and ``"run"``
            (six steps under nested checkpointing, reverse mode only).

    The fluxes are those of one 2-hour step; for ``sweep_x`` they are scaled so that the largest
    zonal Courant number is 2.5 (exercising the integer-cell part of the semi-Lagrangian zonal flux;
    reported as ``courant_x_max``, which is not a mismatch).
    """
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"dot_product_tests: unknown group(s) {unknown}; expected from {GROUPS}")
    rng = np.random.default_rng(seed)
    grid, met, ps = _setup(dtype)
    dt = 7200.0
    f = met.fields(jnp.asarray(0.3 * DAY, dtype=dtype))
    m = grid.air_mass(jnp.asarray(ps, dtype=dtype))
    fx = f.mfx * dt
    fy = f.mfy * dt
    fz = vertical_mass_flux(fx, fy, grid.levels.b)
    x = jnp.asarray(rng.uniform(0.5, 1.5, (2,) + grid.shape), dtype=dtype) * m[None]
    out: dict[str, float] = {}
    if "sweeps" in groups:
        cx = jnp.maximum(jnp.maximum(fx, 0) / jnp.roll(m, 1, -1), jnp.maximum(-fx, 0) / m)
        fx_big = fx * (2.5 / jnp.max(cx))
        out["courant_x_max"] = 2.5
        recons = {"linear": PiecewiseLinear(None), "ppm_unlimited": PPM(monotone=False)}
        for rname, r in recons.items():
            ops = {
                "sweep_x": lambda q, r=r: sweep_x(q, m, fx_big, r)[0],
                "sweep_y": lambda q, r=r: sweep_y(q, m, 0.5 * fy, r)[0],
                "sweep_z": lambda q, r=r: sweep_z(q, m, fz, r)[0],
            }
            for oname, op in ops.items():
                for meth, v in dot_product_test(op, x, rng).items():
                    out[f"{oname}_{rname}_{meth}"] = v

    if "diffusion" in groups:
        vd = ImplicitVerticalDiffusion()
        area = jnp.asarray(grid.area, dtype=dtype)
        p_int = grid.pressure_interfaces(jnp.asarray(ps, dtype=dtype))
        E = vd.exchange(m, f.kz * 20.0, jnp.full(grid.shape, 250.0, dtype=dtype), p_int, area)
        for meth, v in dot_product_test(lambda q: vd(q, m, E, dt), x, rng).items():
            out[f"vertical_diffusion_{meth}"] = v

    model = Transport(
        grid,
        advection=PiecewiseLinear(None),
        vertical_diffusion=ImplicitVerticalDiffusion(),
        horizontal_diffusion=HorizontalDiffusion(),
        chemistry=FirstOrderLoss((3.0 * DAY, 300.0 * DAY)),
    )
    if "step" in groups:
        kh = jnp.asarray(1.0e5, dtype=dtype)
        met_full = MetFields(ps=f.ps, mfx=f.mfx, mfy=f.mfy, kz=f.kz * 20.0, kh=kh)

        def full_step(q):
            return model.step(TransportState(tracer=q, air=m), met_full, dt).tracer

        for meth, v in dot_product_test(full_step, x, rng).items():
            out[f"full_step_linear_{meth}"] = v

    if "run" in groups:

        def multi(q):
            st = run(model, met, TransportState(tracer=q, air=m), dt=dt, nsteps=6,
                     checkpoint="nested")
            return st[0].tracer

        for meth, v in dot_product_test(multi, x, rng, transpose=False).items():
            out[f"run6_nested_linear_{meth}"] = v
    return out


def taylor_test(
    dtype=jnp.float64,
    nsteps: int = 6,
    dt: float = 3600.0,
    eps: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
    seed: int = 1,
    levels: str = "L10",
) -> dict:
    """Taylor test of ``J = sum(A chi^2)`` after ``nsteps`` full non-linear steps (monotone PPM).

    Parameters perturbed together: initial mixing ratio (all levels), surface flux
    [mol m-2 s-1] and a scale factor on the met mass fluxes (through ``FunctionMet.params``).
    ``levels="2D"`` runs the single-layer chain (no vertical sweep or Kz; quicker to compile).

    Returns:
        dict with ``remainders`` (list), ``orders`` (list, between successive eps),
        ``order_median``, ``order_min``, ``fd_rel`` (central finite difference at eps = 1e-4 against
        ``<grad J, h>``), ``seconds``.
    """
    rng = np.random.default_rng(seed)
    grid, base, ps = _setup(dtype, nlon=24, nlat=12, levels=levels)

    def fn(t, scale):
        f = base.fields(t)
        return MetFields(ps=f.ps, mfx=f.mfx * scale, mfy=f.mfy * scale, kz=f.kz)

    model = Transport(grid, advection=PPM(), vertical_diffusion=ImplicitVerticalDiffusion())
    m0 = grid.air_mass(jnp.asarray(ps, dtype=dtype))
    area = jnp.asarray(grid.area, dtype=dtype)
    chi0 = jnp.asarray(rng.uniform(1.0, 2.0, (1,) + grid.shape), dtype=dtype)
    flux0 = jnp.asarray(rng.uniform(0.0, 1e-6, (1, grid.nlat, grid.nlon)), dtype=dtype)
    p0 = (chi0, flux0, jnp.asarray(1.0, dtype=dtype))
    h = (
        jnp.asarray(rng.standard_normal(chi0.shape), dtype=dtype) * 0.1,
        jnp.asarray(rng.standard_normal(flux0.shape), dtype=dtype) * 1e-7,
        jnp.asarray(rng.standard_normal(), dtype=dtype) * 0.1,
    )

    def final_chi(p):
        chi, flux, scale = p
        met = FunctionMet(fn, scale)
        st = TransportState.from_mixing_ratio(chi, m0)
        st, _ = run(model, met, st, dt=dt, nsteps=nsteps, flux=flux, checkpoint="step")
        return st.mixing_ratio()

    def J(p):
        chi = final_chi(p)
        return jnp.sum(area[None, None] * chi * chi) / jnp.sum(area)

    tic = time.perf_counter()
    Jj = jax.jit(J)
    j0, g = jax.jit(jax.value_and_grad(J))(p0)
    gh = float(sum(jnp.vdot(a, b) for a, b in zip(g, h)))

    def shifted(e):
        return jax.tree_util.tree_map(lambda a, b: a + e * b, p0, h)

    rem = []
    for e in eps:
        rem.append(abs(float(Jj(shifted(e))) - float(j0) - e * gh))
    orders = [float(np.log10(rem[i] / rem[i + 1]) / np.log10(eps[i] / eps[i + 1]))
              for i in range(len(eps) - 1) if rem[i + 1] > 0]
    e_fd = 1e-4
    fd = (float(Jj(shifted(e_fd))) - float(Jj(shifted(-e_fd)))) / (2 * e_fd)

    sec = time.perf_counter() - tic
    return {
        "remainders": rem,
        "orders": orders,
        "order_median": float(np.median(orders)),
        "order_min": float(np.min(orders)),
        "fd_rel": _rel(fd, gh),
        "seconds": sec,
    }
