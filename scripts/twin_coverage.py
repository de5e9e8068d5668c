"""Coverage of the joint (nonlinear) twin: is the posterior error within 2 posterior sigma?

    python scripts/twin_coverage.py [--preset full|quick] [--members N] [--out PATH]

One joint :func:`~diffflux.inversion.problem.standard_twin` (biosphere multipliers ``pmax``, ``q10_resp``
with log-normal priors, log-normal fossil / anthropogenic CH4 / wetland corrections, additive ocean and NEE
corrections, initial offsets, satellite biases; CO2 + CH4) is built once. Each ensemble member draws its own
truth ``z_true ~ N(0, I)`` and observation noise ``N(0, R)`` (the prior and ``R`` of the inversion: a
consistent Bayesian twin), then

1. inverts with L-BFGS (:func:`~diffflux.inversion.invert`; the compiled step is reused by every member);
2. takes the Gauss-Newton (Laplace) posterior at the optimum from a Lanczos run of ``m + 8`` pairs
   (``m`` observations: beyond the rank of ``G^T G``, so it is the full Gauss-Newton posterior);
3. checks, for the biosphere parameters (log multipliers) and the regional budgets of every flux component
   and species over the window (:func:`~diffflux.inversion.budget_table`), whether
   ``|posterior - truth| <= 2 posterior sigma``.

Reported (JSON, default ``benchmarks/results/twin_coverage.json``): the fraction of (member, quantity)
checks within 2 sigma (overall and per kind; 95.4 % expected for a Gaussian posterior, target >= 90 %),
the parameter recovery (RMS prior and posterior errors and sigmas of each multiplier), the
prior-to-posterior error reduction of every regional budget (``1 - RMS posterior error / RMS prior error``
over the members, and the median of the per-member reductions), iterations and timings.

Presets (chosen to run within ~10 minutes on 2 CPU cores; state what you change): ``full`` = 15 x 20
degrees, 4 levels, 7 days of 6-hour steps, 12 members, flasks + afternoon continuous records + a satellite
track every hour, biosphere spun up by one plain simulated year (``spinup=1``: the Newton spin-up is not
needed for a twin whose truth and prior share the initial state); ``quick`` = the reduced version used by
the slow test (30 x 36 degrees, 2 levels, 3 days, 3 members, no satellite).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "twin_coverage.json"
REGIONS = ("globe", "NH", "SH", "land", "ocean", "lat:30S-30N", "ar6:ENA", "ar6:WCE", "ar6:EAS", "ar6:SAM")

PRESETS = {
    "full": dict(twin=dict(resolution=(15.0, 20.0), nlev=4, days=7, steps_per_day=4, spinup=1,
                           satellite_step_seconds=3600.0, checkpoint=None, horizontal_diffusion=True),
                 members=12, max_iter=400),
    "quick": dict(twin=dict(resolution=(30.0, 36.0), nlev=2, days=3, steps_per_day=4, spinup=0,
                            satellite_step_seconds=None, checkpoint=None, horizontal_diffusion=False),
                  members=3, max_iter=300),
}


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def run(twin: dict, members: int, max_iter: int = 400, seed: int = 0, regions=REGIONS, log=print) -> dict:
    """Run the ensemble; returns the JSON-ready summary (see the module docstring)."""
    from diffflux.inversion import budget_table, invert, standard_region_masks
    from diffflux.inversion import cost as C
    from diffflux.inversion.problem import standard_twin
    from diffflux.solvers import LBFGS, lanczos_posterior

    t0 = time.perf_counter()
    tw = standard_twin(**twin, seed=seed)
    p0 = tw.problem
    build_s = time.perf_counter() - t0
    cv = p0.control
    n, m = cv.size, p0.obs_error.nobs
    sigma = np.asarray(p0.obs_error.sigma)
    masks = standard_region_masks(p0.transport.grid, regions)
    k_lanczos = min(n, m + 8)
    # rows of S = dx/dz for the biosphere block (physical log multipliers)
    s_bio = np.asarray(jax.jacfwd(lambda z: cv.unwhiten(z)["biosphere"])(jnp.zeros(n)))
    names = list(cv.block("biosphere").target)
    log(f"twin built in {build_s:.0f} s: {tw.info['grid']}, {tw.info['nsteps']} steps, n = {n} controls, "
        f"m = {m} observations, Lanczos pairs {k_lanczos}")
    solver = LBFGS(max_iter=max_iter)
    rng = np.random.default_rng(1000 + seed)
    out_members = []
    checks = {"parameters": [], "budgets": []}
    par = {"truth": [], "posterior": [], "sigma": []}
    bud = []
    for i in range(members):
        t1 = time.perf_counter()
        z_true = jnp.asarray(rng.standard_normal(n))
        y = np.asarray(C.observe(p0, z_true)) + sigma * rng.standard_normal(m)
        p = p0.with_observations(jnp.asarray(y))
        res = invert(p, solver)
        r = res.solver_result
        t_inv = time.perf_counter() - t1
        post = lanczos_posterior(p.least_squares(), res.z, k_lanczos, jax.random.key(i))
        x_post = np.asarray(cv.unwhiten(res.z)["biosphere"])
        x_true = np.asarray(cv.unwhiten(z_true)["biosphere"])
        s_post = np.sqrt(np.asarray(post.functional_variance(jnp.asarray(s_bio))))
        rows = budget_table(p, res.z, post, masks=masks, z_true=z_true)
        t_all = time.perf_counter() - t1
        inside_p = (np.abs(x_post - x_true) <= 2 * s_post).tolist()
        inside_b = [abs(row["posterior"] - row["truth"]) <= 2 * row["posterior_sigma"] for row in rows]
        checks["parameters"] += inside_p
        checks["budgets"] += inside_b
        par["truth"].append(x_true)
        par["posterior"].append(x_post)
        par["sigma"].append(s_post)
        bud.append(rows)
        out_members.append({
            "member": i, "status": r.status.name, "iterations": r.iterations, "n_traces": r.n_traces,
            "cost_prior": res.cost_prior, "cost_posterior": res.cost_posterior,
            "gradient_reduction": float(r.grad_norm / r.history_grad_norm[0]),
            "reduced_chi_square": res.reduced_chi_square, "invert_seconds": t_inv, "total_seconds": t_all,
            "parameters_within_2sigma": float(np.mean(inside_p)),
            "budgets_within_2sigma": float(np.mean(inside_b)),
        })
        log(f"member {i}: {r.status.name} after {r.iterations} iterations ({t_inv:.1f} s, total "
            f"{t_all:.1f} s), chi2/m {res.reduced_chi_square:.2f}, within 2 sigma: parameters "
            f"{np.mean(inside_p):.2f}, budgets {np.mean(inside_b):.2f}")

    all_checks = checks["parameters"] + checks["budgets"]
    pt, pp, ps = (np.stack(par[k]) for k in ("truth", "posterior", "sigma"))
    prior_sigma = np.sqrt(np.sum(s_bio**2, axis=1))
    parameters = []
    for j, name in enumerate(names):
        parameters.append({
            "name": name, "prior_sigma_log": float(prior_sigma[j]),
            "rms_prior_error_log": _rms(pt[:, j]), "rms_posterior_error_log": _rms(pp[:, j] - pt[:, j]),
            "mean_posterior_sigma_log": float(np.mean(ps[:, j])),
            "error_reduction": 1.0 - _rms(pp[:, j] - pt[:, j]) / _rms(pt[:, j]),
            "within_2sigma": float(np.mean(np.abs(pp[:, j] - pt[:, j]) <= 2 * ps[:, j])),
            "truth_multipliers": np.exp(pt[:, j]).tolist(),
            "posterior_multipliers": np.exp(pp[:, j]).tolist(),
        })
    budgets = []
    for q in range(len(bud[0])):
        rs = [b[q] for b in bud]
        e0 = np.array([r["prior"] - r["truth"] for r in rs])
        e1 = np.array([r["posterior"] - r["truth"] for r in rs])
        per = np.array([1 - abs(b) / abs(a) for a, b in zip(e0, e1) if abs(a) > 0])
        budgets.append({
            "region": rs[0]["region"], "component": rs[0]["component"], "unit": rs[0]["unit"],
            "mean_prior_sigma": float(np.mean([r["prior_sigma"] for r in rs])),
            "mean_posterior_sigma": float(np.mean([r["posterior_sigma"] for r in rs])),
            "rms_prior_error": _rms(e0), "rms_posterior_error": _rms(e1),
            "error_reduction": 1.0 - _rms(e1) / _rms(e0) if _rms(e0) > 0 else None,
            "median_member_error_reduction": float(np.median(per)) if per.size else None,
            "within_2sigma": float(np.mean(np.abs(e1) <= 2 * np.array([r["posterior_sigma"] for r in rs]))),
        })
    summary = {
        "members": members, "checks": len(all_checks),
        "fraction_within_2sigma": float(np.mean(all_checks)),
        "fraction_within_2sigma_parameters": float(np.mean(checks["parameters"])),
        "fraction_within_2sigma_budgets": float(np.mean(checks["budgets"])),
        "target": 0.9,
        "parameters_rms_error_prior": _rms(pt), "parameters_rms_error_posterior": _rms(pp - pt),
        "median_budget_error_reduction": float(np.median([b["error_reduction"] for b in budgets
                                                           if b["error_reduction"] is not None])),
        "converged_members": sum(mm["status"].startswith("CONVERGED") for mm in out_members),
        "iterations_median": float(np.median([mm["iterations"] for mm in out_members])),
    }
    return {
        "settings": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in twin.items()},
                     "members": members, "seed": seed, "max_iter": max_iter, "regions": list(masks),
                     "lanczos_pairs": k_lanczos,
                     "solver": "LBFGS (optax, zoom line search), default tolerances"},
        "problem": {"grid": tw.info["grid"], "nsteps": tw.info["nsteps"], "n_controls": n, "n_obs": m,
                    "blocks": {k: list(v) for k, v in tw.info["blocks"].items()}},
        "summary": summary, "parameters": parameters, "budgets": budgets, "members": out_members,
        "timing": {"build_seconds": build_s, "total_seconds": time.perf_counter() - t0},
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--members", type=int, help="ensemble size (default: the preset's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    cfg = PRESETS[args.preset]
    doc = run(cfg["twin"], args.members or cfg["members"], cfg["max_iter"], args.seed)
    doc["preset"] = args.preset
    s = doc["summary"]
    print(f"coverage: {s['fraction_within_2sigma']:.3f} of {s['checks']} checks within 2 sigma "
          f"(parameters {s['fraction_within_2sigma_parameters']:.3f}, budgets "
          f"{s['fraction_within_2sigma_budgets']:.3f}; target >= 0.9)")
    for q in doc["parameters"]:
        print(f"  {q['name']}: RMS log error prior {q['rms_prior_error_log']:.3f} -> posterior "
              f"{q['rms_posterior_error_log']:.3f} (posterior sigma {q['mean_posterior_sigma_log']:.3f})")
    print(f"  median error reduction of the regional budgets {s['median_budget_error_reduction']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.out} ({doc['timing']['total_seconds']:.0f} s)")
    return doc


if __name__ == "__main__":
    main()
