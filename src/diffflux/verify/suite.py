"""The transport verification suite (TRANSPORT.md, "Verification suite"): runner, table and JSON.

:func:`run_verification` runs the cases in :data:`CASES` (all or ``only`` some) in float64 and
returns one result per case::

    {"name": str, "title": str, "status": "pass" | "fail" | "not available" | "error",
     "passed": bool | None, "metrics": {str: float}, "thresholds": {metric: [op, value]},
     "checks": {metric: bool}, "details": {...}, "notes": str, "seconds": float}

``passed`` is None only for "not available" (a component that is not installed). ``quick=True``
uses coarse resolutions (minutes on two CPU cores) and still checks the key properties;
``quick=False`` runs the full resolutions of the issue (Williamson 128x64..512x256, Lauritzen
3..0.75 degrees), which takes tens of minutes on a CPU.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Callable

import jax
import numpy as np

from diffflux.transport import PPM, PiecewiseLinear

CASES: tuple[str, ...] = (
    "williamson1",
    "lauritzen_nondivergent",
    "lauritzen_divergent",
    "conservation",
    "diffusion_horizontal",
    "diffusion_vertical",
    "chemistry",
    "adjoint",
    "taylor",
    "exchange_time",
)
"""Case names in the order they run."""

TITLES = {
    "williamson1": "Williamson et al. (1992) case 1: cosine bell, solid-body rotation, 12 days",
    "lauritzen_nondivergent": "Lauritzen et al. (2012) case 4: non-divergent deformational flow",
    "lauritzen_divergent": "Lauritzen et al. (2012) case 3: divergent deformational flow",
    "conservation": "Mass, uniformity, positivity: 1000 steps, divergent time-varying 3-D met",
    "diffusion_horizontal": "Horizontal diffusion: Gaussian variance s^2 = s0^2 + 2 K t",
    "diffusion_vertical": "Implicit vertical diffusion: column modes decay by 1/(1 + dt lambda)",
    "chemistry": "First-order loss: burden decays as exp(-t / tau)",
    "adjoint": "Adjoint dot-product tests of the linear operators (float64)",
    "taylor": "Taylor test of the full non-linear chain (monotone PPM)",
    "exchange_time": "Interhemispheric exchange time of the built-in climatology",
}

Threshold = tuple[str, float] | tuple[str, tuple[float, float]]
_OPS: dict[str, Callable] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "in": lambda a, b: b[0] <= a <= b[1],
}


class NotAvailable(Exception):
    """Raised by a case whose component is not installed; the row is reported, not failed."""


def _name(r) -> str:
    return "ppm" if isinstance(r, PPM) else "mc"


# ---- cases ---------------------------------------------------------------------------------------
def _case_williamson1(quick: bool, progress):
    from diffflux.verify.williamson import williamson1_convergence

    res = [(64, 32), (128, 64), (256, 128)] if quick else [(128, 64), (256, 128), (512, 256)]
    schemes = [PPM()] if quick else [PPM(), PiecewiseLinear("mc")]
    metrics: dict[str, float] = {}
    th: dict[str, Threshold] = {}
    details: dict = {}
    for rec in schemes:
        s = _name(rec)
        out = williamson1_convergence(res, advection=rec, progress=progress)
        for (alpha, nlon, nlat), r in out["runs"].items():
            tag = "a0" if alpha == 0 else "apole"
            for k in ("l1", "l2", "linf"):
                metrics[f"{s}_{tag}_{k}_{nlon}x{nlat}"] = r[k]
            details[f"{s}_{tag}_{nlon}x{nlat}"] = r
        for (alpha, norm), p in out["order"].items():
            metrics[f"{s}_order_{norm}_{'a0' if alpha == 0 else 'apole'}"] = p
        metrics[f"{s}_pole_ratio_max"] = max(out["pole_ratio"].values())
        for (nlon, nlat, norm), v in out["pole_ratio"].items():
            details[f"{s}_pole_ratio_{norm}_{nlon}x{nlat}"] = v
        metrics[f"{s}_mass_rel_max"] = max(abs(r["mass_rel"]) for r in out["runs"].values())
        metrics[f"{s}_min_rel"] = min(r["min_rel"] for r in out["runs"].values())
        th[f"{s}_order_l2_a0"] = (">=", 1.5)
        th[f"{s}_order_l2_apole"] = (">=", 1.5)
        th[f"{s}_pole_ratio_max"] = ("<=", 1.5)
        th[f"{s}_mass_rel_max"] = ("<=", 1e-13)
        th[f"{s}_min_rel"] = (">=", -1e-14)
    if len(schemes) > 1:
        nlon, nlat = res[-1]
        metrics["ppm_over_mc_l2_a0"] = (metrics[f"ppm_a0_l2_{nlon}x{nlat}"]
                                        / metrics[f"mc_a0_l2_{nlon}x{nlat}"])
        th["ppm_over_mc_l2_a0"] = ("<", 1.0)
    notes = (f"alpha = 0 and pi/2 - 0.05; meridional Courant u0 dt/dy = 0.8; pole ratio = "
             f"error(alpha_pole)/error(0), max over l1/l2/linf and resolutions {res}")
    return metrics, th, details, notes


def _lauritzen(case: int, quick: bool, progress):
    from diffflux.verify.diagnostics import convergence_order
    from diffflux.verify.lauritzen import FILAMENT_TAUS, TRACERS, initial_tracers, lauritzen_run

    if case == 4:
        plan = {"ppm": [6.0, 3.0, 1.5], "mc": [1.5]} if quick else {
            "ppm": [3.0, 1.5, 0.75], "mc": [3.0, 1.5, 0.75]}
    else:
        plan = {"ppm": [6.0, 3.0], "mc": [3.0]} if quick else {
            "ppm": [3.0, 1.5, 0.75], "mc": [3.0, 1.5, 0.75]}
    recs = {"ppm": PPM(), "mc": PiecewiseLinear("mc")}
    metrics: dict[str, float] = {}
    th: dict[str, Threshold] = {}
    details: dict = {}
    runs: dict = {}
    for s, dlats in plan.items():
        for d in dlats:
            r = lauritzen_run(case, d, advection=recs[s])
            runs[(s, d)] = r
            g = r["norms"]["gaussian_hills"]
            progress(f"  lauritzen case {case} {s} {d} deg: gaussian l2={g['l2']:.4g} "
                     f"linf={g['linf']:.4g} ({r['seconds']:.1f} s)")
            for tr in TRACERS:
                for k in ("l1", "l2", "linf"):
                    metrics[f"{s}_{tr}_{k}_{d:g}deg"] = r["norms"][tr][k]
            details[f"{s}_{d:g}deg"] = r
    fine = min(plan["mc"])
    for s, dlats in plan.items():
        if len(dlats) > 1:
            errs = [runs[(s, d)]["norms"]["gaussian_hills"]["l2"] for d in dlats]
            metrics[f"{s}_order_gaussian_l2"] = convergence_order(dlats, errs)
        r = runs[(s, fine)]
        for k, v in r["mixing"].items():
            metrics[f"{s}_mixing_{k}_{fine:g}deg"] = v
        th[f"{s}_mixing_l_o_{fine:g}deg"] = ("<=", 1e-10)
        if case == 4:
            lf = r["filament_half"]
            for tau in (0.2, 0.5, 0.8):
                metrics[f"{s}_filament_tau{tau:g}_{fine:g}deg"] = lf.get(tau, 0.0)
            # mean distance from the exact 100 % over the thresholds between background and peak
            inner = [t for t in FILAMENT_TAUS if 0.1 < t < 0.95]
            metrics[f"{s}_filament_dev_{fine:g}deg"] = float(
                np.mean([abs(100.0 - lf.get(t, 0.0)) for t in inner]))
            details[f"{s}_filament_taus"] = list(FILAMENT_TAUS)
    # conservation and monotonicity over every run
    grid_q0 = {}
    under = over = mass = air = 0.0
    for (_s, d), r in runs.items():
        if d not in grid_q0:
            from diffflux.grid import LatLonGrid

            nlat = int(round(180.0 / d))
            q0 = initial_tracers(LatLonGrid(2 * nlat, nlat))
            grid_q0[d] = ({t: q0[i].min() for i, t in enumerate(TRACERS)},
                          {t: q0[i].max() for i, t in enumerate(TRACERS)})
        mn, mx = grid_q0[d]
        under = max(under, max(mn[t] - r["min"][t] for t in TRACERS))
        over = max(over, max(r["max"][t] - mx[t] for t in TRACERS))
        mass = max(mass, r["mass_rel"])
        air = max(air, r["air_return"])
    metrics["undershoot_max"] = under
    metrics["overshoot_max"] = over
    metrics["mass_rel_max"] = mass
    th["undershoot_max"] = ("<=", 1e-11)  # round-off accumulated over ~1000 steps
    th["overshoot_max"] = ("<=", 1e-11)
    th["mass_rel_max"] = ("<=", 1e-13)
    if case == 3:
        metrics["air_return_max"] = air
        th["air_return_max"] = ("<=", 0.05)
    for tr in TRACERS:
        key = f"ppm_over_mc_{tr}_l2_{fine:g}deg"
        metrics[key] = (runs[("ppm", fine)]["norms"][tr]["l2"]
                        / runs[("mc", fine)]["norms"][tr]["l2"])
        th[key] = ("<", 1.0)
    if case == 4:
        th["ppm_order_gaussian_l2"] = (">=", 0.8 if quick else 1.4)
        th[f"ppm_filament_dev_{fine:g}deg"] = ("<", metrics[f"mc_filament_dev_{fine:g}deg"])
    else:
        th["ppm_order_gaussian_l2"] = (">=", 1.0 if quick else 1.5)
    nsteps = {f"{d:g}": runs[("ppm", d)]["nsteps"] for d in plan["ppm"]}
    notes = (f"T = 12 days (5 units), 4 tracers per run, steps per period {nsteps} (case-4 "
             f"meridional Courant 0.8); mixing and filaments at T/2 (cosine bells / correlated "
             f"bells); filament_dev = mean |100 - l_f| over tau = 0.15..0.9")
    if case == 3:
        notes += "; mass fluxes of the evolving air mass (midpoint predictor)"
    if quick:
        notes += ("; quick resolutions are pre-asymptotic for the deformational flow, the order "
                  "threshold is a regression guard")
    return metrics, th, details, notes


def _case_lauritzen_nondivergent(quick: bool, progress):
    return _lauritzen(4, quick, progress)


def _case_lauritzen_divergent(quick: bool, progress):
    return _lauritzen(3, quick, progress)


def _case_conservation(quick: bool, progress):
    from diffflux.verify.conservation import conservation_check

    nlon, nlat = (36, 18) if quick else (72, 36)
    r = conservation_check(nlon=nlon, nlat=nlat, nsteps=1000)
    metrics = {k: v for k, v in r.items() if k != "seconds"}
    th = {
        "mass_rel": ("<=", 1e-12),
        "air_total_rel": ("<=", 1e-12),
        "uniform_dev": ("<=", 1e-12),
        "min_rel": (">=", -1e-14),
        "air_change_max": (">=", 1e-3),
    }
    notes = (f"{nlon}x{nlat} L10, dt = 1800 s, PPM + implicit Kz; tilted rotation across the "
             f"poles plus a divergent part reversing with height, period 2 days")
    return metrics, th, {}, notes


def _case_diffusion_horizontal(quick: bool, progress):
    from diffflux.verify.analytic import horizontal_diffusion_check

    nlon, nlat = (360, 180) if quick else (720, 360)
    r = horizontal_diffusion_check(nlon=nlon, nlat=nlat, dt=3600.0 if quick else 900.0)
    metrics = {k: v for k, v in r.items() if k != "seconds"}
    th = {"kx_rel_err": ("<=", 0.02), "ky_rel_err": ("<=", 0.02), "mass_rel": ("<=", 1e-13),
          "min_value": (">=", 0.0)}
    notes = f"{nlon}x{nlat}, K = 2e5 m2/s, s0 = 300 km, 5 days; K_eff from the variance growth"
    return metrics, th, {}, notes


def _case_diffusion_vertical(quick: bool, progress):
    from diffflux.verify.analytic import vertical_diffusion_check

    r = vertical_diffusion_check()
    metrics = {k: v for k, v in r.items() if k != "seconds"}
    th = {"decay_rel_err": ("<=", 1e-10), "mass_rel": ("<=", 1e-13)}
    return metrics, th, {}, "L25 columns, Kz = 200 m2/s e-folding over 12 interfaces, 48 x 1 h"


def _case_chemistry(quick: bool, progress):
    from diffflux.verify.analytic import chemistry_check

    r = chemistry_check()
    metrics = {k: v for k, v in r.items() if k != "seconds"}
    th = {"burden_rel_err": ("<=", 1e-12)}
    return metrics, th, {}, "lifetimes 2 and 30 days, 2 days with advection and Kz (24x12 L10)"


def _case_adjoint(quick: bool, progress):
    from diffflux.verify.adjoint import dot_product_tests

    r = dot_product_tests()
    metrics = dict(r)
    metrics["max_mismatch"] = max(v for k, v in r.items() if not k.startswith("courant"))
    th = {"max_mismatch": ("<=", 1e-12)}
    notes = ("relative |<y,Lx> - <L^T y,x>|; L^T by jax.linear_transpose and jax.vjp; sweeps with "
             "unlimited linear and unlimited PPM reconstructions (zonal Courant up to 2.5), Kz "
             "solve, full linear step, 6-step run with nested checkpointing")
    return metrics, th, {}, notes


def _case_taylor(quick: bool, progress):
    from diffflux.verify.adjoint import taylor_test

    r = taylor_test()
    metrics = {k: r[k] for k in ("order_median", "order_min", "fd_rel")}
    th = {"order_median": (">=", 1.8), "fd_rel": ("<=", 1e-3)}
    details = {"remainders": r["remainders"], "orders": r["orders"]}
    notes = ("J = area-mean chi^2 after 6 steps; p = (initial chi, surface flux, wind scale); "
             "eps = 1e-1 .. 1e-6")
    return metrics, th, details, notes


def _case_exchange_time(quick: bool, progress):
    try:
        from diffflux.met.exchange import interhemispheric_exchange_time
    except ImportError as err:  # the climatology component is optional at this level
        raise NotAvailable(f"diffflux.met.exchange.interhemispheric_exchange_time: {err}") from err
    res = interhemispheric_exchange_time("quick" if quick else "default")
    metrics: dict[str, float] = {}
    if isinstance(res, (int, float)):
        metrics["tau_years"] = float(res)
    else:
        for key in ("tau_years", "tau_troposphere_years", "tau_surface_years"):
            if hasattr(res, key):
                metrics[key] = float(getattr(res, key))
    if "tau_years" not in metrics:
        raise TypeError(f"interhemispheric_exchange_time returned {type(res).__name__} without "
                        f"tau_years")
    details = {}
    if hasattr(res, "tau_by_year"):
        details["tau_by_year"] = [float(v) for v in np.asarray(res.tau_by_year)]
    th = {"tau_years": ("in", (1.0, 1.5))}
    notes = f"SF6-like tracer, two-box estimate, preset {'quick' if quick else 'default'}"
    return metrics, th, details, notes


_RUNNERS = {name: globals()[f"_case_{name}"] for name in CASES}


# ---- driver --------------------------------------------------------------------------------------
def _evaluate(metrics: dict, th: dict) -> dict[str, bool]:
    checks = {}
    for key, (op, val) in th.items():
        v = metrics.get(key)
        checks[key] = bool(v is not None and math.isfinite(v) and _OPS[op](v, val))
    return checks


def run_verification(
    quick: bool = True,
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = print,
) -> list[dict]:
    """Run the verification cases and return one result dict per case (see module docstring).

    Args:
        quick: coarse resolutions (default) or the full issue set.
        only: subset of :data:`CASES` (in any order; run in suite order).
        progress: callable receiving progress lines (None for silence).

    The runs use float64 (``jax_enable_x64`` is switched on for the duration and restored). A case
    that raises is reported with status ``"error"`` (``passed = False``) and the traceback in
    ``notes``; the remaining cases still run.
    """
    names = list(CASES) if only is None else list(only)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(
            f"run_verification: unknown case(s) {unknown}; expected names from {CASES}"
        )
    names = [n for n in CASES if n in names]
    say = progress or (lambda s: None)
    x64 = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    results = []
    try:
        for name in names:
            say(f"[verify] {name} ({'quick' if quick else 'full'}) ...")
            tic = time.perf_counter()
            rec = {"name": name, "title": TITLES[name], "metrics": {}, "thresholds": {},
                   "checks": {}, "details": {}, "notes": ""}
            try:
                metrics, th, details, notes = _RUNNERS[name](quick, say)
                checks = _evaluate(metrics, th)
                passed = all(checks.values())
                rec.update(metrics={k: float(v) for k, v in metrics.items()},
                           thresholds={k: [op, _threshold_value(v)] for k, (op, v) in th.items()},
                           checks=checks, details=details, notes=notes,
                           passed=passed, status="pass" if passed else "fail")
            except NotAvailable as err:
                rec.update(passed=None, status="not available", notes=str(err))
            except Exception as err:  # reported as a failed row; the suite continues
                rec.update(passed=False, status="error",
                           notes=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=6)}")
            rec["seconds"] = time.perf_counter() - tic
            say(f"[verify] {name}: {rec['status']} ({rec['seconds']:.1f} s)")
            results.append(rec)
    finally:
        jax.config.update("jax_enable_x64", x64)
    return results


def _threshold_value(v):
    return [float(x) for x in v] if isinstance(v, (tuple, list)) else float(v)


def _fmt(v) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if v == 0 or (1e-3 <= abs(v) < 1e5):
        return f"{v:.4g}"
    return f"{v:.3e}"


def format_table(results: list[dict]) -> str:
    """A readable text table: one header line per case, then its metrics with thresholds."""
    lines = []
    width = 100
    lines.append("=" * width)
    lines.append(f"{'case':<28}{'status':<16}{'seconds':>10}  title")
    lines.append("=" * width)
    for r in results:
        lines.append(f"{r['name']:<28}{r['status'].upper():<16}{r.get('seconds', 0.0):>10.1f}  "
                     f"{r['title']}")
        th = r.get("thresholds", {})
        checks = r.get("checks", {})
        for key, v in r.get("metrics", {}).items():
            mark = ""
            if key in th:
                op, val = th[key]
                mark = f"[{op} {_fmt(val)}] {'ok' if checks.get(key) else 'FAIL'}"
            lines.append(f"    {key:<44}{_fmt(v):>14}  {mark}")
        if r.get("notes"):
            for i, line in enumerate(str(r["notes"]).rstrip().splitlines()):
                lines.append(("    note: " if i == 0 else "          ") + line)
        lines.append("-" * width)
    npass = sum(r.get("passed") is True for r in results)
    nfail = sum(r.get("passed") is False for r in results)
    nna = sum(r.get("passed") is None for r in results)
    lines.append(f"{npass} passed, {nfail} failed, {nna} not available")
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else str(v)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if x is None or isinstance(x, str):
        return x
    return str(x)


def to_json(results: list[dict], path) -> None:
    """Write the results (including details) as JSON to ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(results), fh, indent=1)
