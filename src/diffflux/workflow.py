"""``diffflux run`` / ``diffflux demo``: from a validated :class:`~diffflux.config.Config` to outputs.

Steps: check the output folder (writable, before any computation) -> build the problem
(:func:`~diffflux.inversion.standard_twin` with the config's grid, window, species, biosphere, flux
priors, control blocks and network; in ``invert`` mode with the observation file instead of pseudo-data)
-> prior run (``forward``) or inversion with the configured solver (optimiser checkpoint in the output
folder: a killed run re-started with the same command resumes) -> posterior uncertainty (Lanczos
low-rank or exact) -> fields per flux component and time block, regional budgets with prior and
posterior uncertainty -> :func:`diffflux.products.write_products` (netCDF, CSV, PNG, report).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path

import equinox as eqx
import numpy as np

from diffflux.config import Config

LOG = logging.getLogger("diffflux")


class RunError(RuntimeError):
    """A run that cannot go on (bad input found during the run); the message is for the user."""


# ------------------------------------------------------------------------------------------------------
# logging
# ------------------------------------------------------------------------------------------------------


def setup_logging(outdir: Path | None, quiet: bool = False) -> logging.Logger:
    """Live lines on stderr (unless ``quiet``) and a log file ``<outdir>/diffflux.log`` (always)."""
    import sys

    log = LOG
    log.setLevel(logging.INFO)
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    if not quiet:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(fmt)
        log.addHandler(h)
    if outdir is not None:
        fh = logging.FileHandler(Path(outdir) / "diffflux.log", mode="w", encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        log.addHandler(fh)
    log.propagate = False
    return log


# ------------------------------------------------------------------------------------------------------
# config -> problem and solver
# ------------------------------------------------------------------------------------------------------


def twin_kwargs(cfg: Config) -> dict:
    """Keyword arguments of :func:`~diffflux.inversion.standard_twin` for ``cfg``."""
    import jax.numpy as jnp

    dlat, dlon = (float(v) for v in cfg["grid.resolution"].split("x"))
    spin = cfg["biosphere.spinup"]
    fl = cfg.section("fluxes")
    obs = cfg.section("observations")
    corr = fl["correlation_km"]
    return dict(
        resolution=(dlat, dlon),
        nlev=cfg["grid.levels"],
        days=cfg["period.days"],
        steps_per_day=cfg["period.steps_per_day"],
        species=tuple(cfg["species.names"]),
        start=cfg["period.start"],
        reference_time=cfg["period.reference_time"],
        flask_sites=tuple(obs["flask_sites"]),
        continuous_sites=tuple(obs["continuous_sites"]),
        satellite_step_seconds=obs["satellite_step_seconds"] if obs["satellite"] else None,
        parameters=tuple(cfg["biosphere.parameters"]),
        parameter_sigma=cfg["biosphere.parameter_sigma"],
        block_days=fl["block_days"],
        spinup=spin,
        flux_forms=fl["forms"],
        seed=cfg["run.seed"],
        checkpoint=None if cfg["device.checkpoint"] == "none" else cfg["device.checkpoint"],
        biases=cfg["control.biases"],
        initial=cfg["control.initial"],
        horizontal_diffusion=cfg["grid.horizontal_diffusion"],
        correlation_km=None if corr is None else (corr[0], corr[1]),
        sigmas={k[len("sigma_") :]: fl[k] for k in fl if k.startswith("sigma_")},
        dtype=jnp.float64 if cfg["device.precision"] == "float64" else jnp.float32,
    )


def read_observation_file(path: str):
    """Observation table from an ObsPack netCDF (``.nc``) or a diffflux CSV (``.csv``) file."""
    from diffflux.observations import read_csv, read_obspack

    ext = Path(path).suffix.lower()
    try:
        if ext == ".csv":
            table, report = read_csv(path)
        elif ext in (".nc", ".nc4", ".netcdf"):
            table, report = read_obspack(path)
        else:
            raise RunError(
                f"{path}: observation files must be ObsPack netCDF (.nc) or diffflux CSV (.csv), "
                f"found extension {ext!r}"
            )
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"{path}: cannot read observations: {exc}") from exc
    LOG.info("read %d observations from %s (%s)", table.sizes.get("obs", 0), path, report)
    return table


def build(cfg: Config):
    """The :class:`~diffflux.inversion.problem.Twin` of ``cfg`` (``z_true`` None in ``invert`` mode)."""
    import jax

    from diffflux.inversion import standard_twin

    if cfg["device.precision"] == "float64":
        jax.config.update("jax_enable_x64", True)
    kw = twin_kwargs(cfg)
    if cfg["run.mode"] == "invert":
        kw["observations"] = read_observation_file(cfg["observations.file"])
    try:
        return standard_twin(**kw)
    except ValueError as exc:
        raise RunError(str(exc)) from exc


def make_solver(cfg: Config):
    """The solver object of ``cfg.solver``."""
    from diffflux.solvers import LBFGS, Adam, Exact, GaussNewtonCG

    s = cfg.section("solver")
    if s["name"] == "lbfgs":
        return LBFGS(max_iter=s["max_iter"], gtol=s["gtol"])
    if s["name"] == "adam":
        return Adam(learning_rate=s["learning_rate"], max_iter=s["max_iter"], gtol=s["gtol"])
    if s["name"] == "gauss-newton":
        return GaussNewtonCG(max_iter=s["max_iter"], gtol=s["gtol"], n_eigs=s["lanczos_rank"])
    return Exact(max_iter=s["max_iter"])


# ------------------------------------------------------------------------------------------------------
# fields of flux components per time block
# ------------------------------------------------------------------------------------------------------


def _block_layout(problem, block_days: float):
    """``(block_of_step (nsteps,), time_bounds (nblock, 2) datetime64[s])``."""
    nsteps = problem.composer.nsteps
    dt = float(problem.operator.dt)
    edges = np.asarray(problem.composer.step_edges)
    t0 = float(edges[0])
    blen = block_days * 86400.0
    nblock = int(math.ceil(nsteps * dt / blen - 1e-9))
    mids = t0 + (np.arange(nsteps) + 0.5) * dt
    idx = np.minimum(((mids - t0) // blen).astype(int), nblock - 1)
    lo = t0 + np.arange(nblock) * blen
    hi = np.minimum(lo + blen, float(edges[-1]))
    return idx, lo, hi


@eqx.filter_jit
def _component_blocks(problem, xs, weights):
    """Block-mean fluxes of every component ``(nbatch, ncomp, nblock, nlat, nlon)`` [mol m-2 s-1] for a
    batch of physical controls ``xs`` (dict of arrays with a leading batch axis); ``weights``
    ``(nblock, nsteps)`` averages the steps of each block."""
    import jax
    import jax.numpy as jnp

    from diffflux.inversion.problem import control_flux_corrections

    comp = problem.composer
    dt = problem.operator.dt
    spd = problem.steps_per_day

    def one_x(x):
        corr = control_flux_corrections(problem.control, x, comp)
        bf = problem.daily_fluxes(x)

        def one(n):
            priors = None
            if bf is not None and problem.bio_links:
                at = bf.at((n + 0.5) * dt, spd)
                priors = {c: at[k][None] for c, k in problem.bio_links}
            return jnp.stack([comp.component_flux(i, corr, n, priors) for i in range(len(comp.components))])

        steps = jax.lax.map(one, jnp.arange(comp.nsteps))  # (nsteps, ncomp, nlat, nlon)
        return jnp.einsum("bs,sc...->cb...", weights, steps)

    return jax.lax.map(one_x, xs)


def component_fields_batch(problem, zs, block_index: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Mean flux of every composer component over each time block, ``[{name: (nblock, nlat, nlon)}]``
    [mol m-2 s-1], for each whitened control in ``zs`` ``(nbatch, n)`` (biosphere-linked components
    included; one compiled call for the whole batch)."""
    import jax
    import jax.numpy as jnp

    zs = jnp.atleast_2d(jnp.asarray(zs, problem.y.dtype))
    xs = jax.vmap(problem.control.unwhiten)(zs)
    nblock = int(block_index.max()) + 1
    onehot = (block_index[None, :] == np.arange(nblock)[:, None]).astype(float)
    onehot /= onehot.sum(axis=1, keepdims=True)
    means = np.asarray(_component_blocks(problem, xs, jnp.asarray(onehot, zs.dtype)))
    names = [c.name for c in problem.composer.components]
    return [{k: means[j, i] for i, k in enumerate(names)} for j in range(means.shape[0])]


# ------------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunSummary:
    outdir: Path
    status: str
    converged: bool
    files: dict
    summary: dict


def run(
    cfg: Config,
    outdir: str | os.PathLike | None = None,
    *,
    quiet: bool = False,
    command: str = "",
    plots: bool | None = None,
) -> RunSummary:
    """Run ``cfg`` end to end and write its products into ``outdir`` (default ``outputs.directory``)."""
    import jax

    from diffflux import __version__
    from diffflux.products import check_output_dir

    outdir = Path(outdir if outdir is not None else cfg["outputs.directory"])
    check_output_dir(outdir)
    log = setup_logging(outdir, quiet)
    t_all = time.perf_counter()
    log.info("diffflux %s: %s (mode %s) -> %s", __version__, cfg["run.title"], cfg["run.mode"], outdir)
    log.info("JAX %s on %s, %s", jax.__version__, jax.default_backend(), cfg["device.precision"])
    timings = {}

    t = time.perf_counter()
    twin = build(cfg)
    problem = twin.problem
    timings["build_s"] = time.perf_counter() - t
    info = twin.info
    log.info(
        "problem: grid %s, %d steps of %.0f s, species %s, %d observations, %d controls (%.1f s)",
        info["grid"],
        info["nsteps"],
        info["dt"],
        ",".join(info["species"]),
        info["nobs"],
        info["ncontrol"],
        timings["build_s"],
    )

    mode = cfg["run.mode"]
    ctrl = problem.control
    n = ctrl.size
    result = None
    posterior = None
    history = None
    if mode == "forward":
        log.info("forward run with the prior")
    else:
        from diffflux.inversion import invert

        solver = make_solver(cfg)

        def progress(it, value, gnorm):
            log.info("iteration %3d  cost %.6g  |grad| %.4g", it, value, gnorm)

        log.info("inverting with %s (max %d iterations)", cfg["solver.name"], cfg["solver.max_iter"])
        t = time.perf_counter()
        ckpt = outdir / "optimiser_checkpoint.npz"
        _match_checkpoint(ckpt, cfg, log)
        result = invert(
            problem,
            solver,
            callback=progress,
            checkpoint_path=ckpt,
            checkpoint_every=cfg["solver.checkpoint_every"],
        )
        timings["invert_s"] = time.perf_counter() - t
        r = result.solver_result
        log.info("%s", result.summary())
        history = {
            "iteration": np.arange(len(r.history_value)),
            "cost": np.asarray(r.history_value),
            "grad_norm": np.asarray(r.history_grad_norm),
        }
        posterior = r.posterior
        unc = cfg["solver.uncertainty"]
        if unc != "none" and posterior is None:
            t = time.perf_counter()
            if unc == "lanczos":
                from diffflux.solvers import lanczos_posterior

                k = min(cfg["solver.lanczos_rank"], n)
                log.info("posterior uncertainty: %d Lanczos eigenpairs of the Hessian at the posterior", k)
                posterior = lanczos_posterior(
                    problem.least_squares(), result.z, k, jax.random.PRNGKey(cfg["run.seed"])
                )
            else:
                from diffflux.solvers import Exact, minimise

                log.info("posterior uncertainty: exact (dense Jacobian of %d controls)", n)
                posterior = minimise(problem.least_squares(), result.z, Exact(max_iter=1)).posterior
            timings["uncertainty_s"] = time.perf_counter() - t
            log.info(
                "uncertainty done in %.1f s (DOFS %.2f)", timings["uncertainty_s"], float(posterior.dofs)
            )

    z_post = None if result is None else result.z
    record = assemble_record(cfg, twin, z_post, posterior, history, log)
    record.summary.update(_summary(cfg, twin, result, posterior, timings, record))
    from diffflux.products import write_products

    record.summary["wall_time_s"] = round(time.perf_counter() - t_all, 1)  # up to the products
    t = time.perf_counter()
    do_plots = cfg["outputs.plots"] if plots is None else plots
    files = write_products(record, outdir, plots=do_plots, command=command)
    timings["write_s"] = time.perf_counter() - t
    log.info(
        "wrote %d files into %s in %.1f s; total %.1f s",
        len(files),
        outdir,
        timings["write_s"],
        time.perf_counter() - t_all,
    )
    status = record.summary.get("status", "FORWARD")
    return RunSummary(
        outdir=outdir,
        status=status,
        converged=bool(result is None or result.converged),
        files=files,
        summary=record.summary,
    )


def _problem_key(cfg: Config) -> str:
    """The config text that defines the optimisation (everything except outputs and iteration limits)."""
    keep = {k: v for k, v in cfg.values.items() if k not in ("outputs",)}
    keep["solver"] = {k: v for k, v in keep["solver"].items() if k not in ("max_iter", "checkpoint_every")}
    return repr(sorted((s, sorted(d.items())) for s, d in keep.items()))


def _match_checkpoint(ckpt: Path, cfg: Config, log) -> None:
    """Keep an optimiser checkpoint only if it belongs to the same problem (a killed run re-started with
    the same config resumes; a changed config starts afresh instead of resuming someone else's state)."""
    tag = ckpt.with_suffix(".key")
    key = _problem_key(cfg)
    if ckpt.exists():
        if tag.exists() and tag.read_text(encoding="utf-8") == key:
            log.info("resuming from the optimiser checkpoint %s", ckpt)
            return
        log.info("optimiser checkpoint %s belongs to another config; starting afresh", ckpt)
        ckpt.unlink()
    from diffflux.products.atomic import write_text

    write_text(tag, key)


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def _summary(cfg, twin, result, posterior, timings, record) -> dict:
    out = {
        "title": cfg["run.title"],
        "mode": cfg["run.mode"],
        "grid": twin.info["grid"],
        "nsteps": twin.info["nsteps"],
        "species": list(twin.info["species"]),
        "n_obs": int(twin.info["nobs"]),
        "n_controls": int(twin.info["ncontrol"]),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    if result is not None:
        r = result.solver_result
        out.update(
            {
                "status": r.status.name,
                "message": r.message,
                "iterations": int(r.iterations),
                "cost_prior": result.cost_prior,
                "cost_posterior": result.cost_posterior,
                "gradient_reduction": float(r.history_grad_norm[-1] / r.history_grad_norm[0]),
                "reduced_chi_square": result.reduced_chi_square,
                "rms_misfit_prior": _rms(result.y_prior - result.y),
                "rms_misfit_posterior": _rms(result.y_posterior - result.y),
                "n_traces": int(r.n_traces),
            }
        )
        if posterior is not None:
            out["dofs"] = float(posterior.dofs)
    else:
        out["status"] = "FORWARD"
    unc = {
        f"{r_['component']} {r_['region']}": 1.0 - r_["posterior_sigma"] / r_["prior_sigma"]
        for r_ in record.budgets
        if r_.get("posterior_sigma") is not None
        and r_.get("prior_sigma")
        and r_["region"] in ("globe", "NH", "SH", "land", "ocean")
        and r_["component"] in ("CO2", "CH4")
    }
    if unc:
        out["error_reduction"] = unc
    if twin.z_true is not None and result is not None:
        zt = np.asarray(twin.z_true)
        zp = np.asarray(result.z)
        out["control_error_rms_prior"] = _rms(zt)
        out["control_error_rms_posterior"] = _rms(zp - zt)
        out["error_reduction_vs_truth"] = {"whitened control (RMS)": 1.0 - _rms(zp - zt) / _rms(zt)}
        red = [
            row for row in record.budgets if row.get("truth") is not None and row.get("posterior") is not None
        ]
        if red:
            ep = np.array([abs(r_["prior"] - r_["truth"]) for r_ in red])
            eq = np.array([abs(r_["posterior"] - r_["truth"]) for r_ in red])
            out["error_reduction_vs_truth"]["regional budgets (sum of |error|)"] = float(
                1.0 - eq.sum() / max(ep.sum(), 1e-300)
            )
            for r_ in red:
                if r_["region"] in ("globe", "land", "ocean") and r_["component"] in ("CO2", "CH4"):
                    key = f"{r_['component']} {r_['region']}"
                    e0 = max(abs(r_["prior"] - r_["truth"]), 1e-300)
                    out["error_reduction_vs_truth"][key] = float(
                        1.0 - abs(r_["posterior"] - r_["truth"]) / e0
                    )
            inside = [
                abs(r_["posterior"] - r_["truth"]) <= 2 * r_["posterior_sigma"]
                for r_ in red
                if r_.get("posterior_sigma")
            ]
            if inside:
                out["budgets_within_2sigma"] = float(np.mean(inside))
    return out


def assemble_record(cfg, twin, z_post, posterior, history, log):
    """The :class:`~diffflux.products.RunRecord` of a run (numpy only)."""
    import jax.numpy as jnp

    from diffflux.inversion.cost import observe
    from diffflux.products import FluxField, ObservationRecord, ParameterRecord, RunRecord

    problem = twin.problem
    ctrl = problem.control
    dtype = problem.y.dtype
    zero = jnp.zeros(ctrl.size, dtype)
    bidx, lo, hi = _block_layout(problem, cfg["fluxes.block_days"])
    ref = np.datetime64(cfg["period.reference_time"], "s")
    time_bounds = np.stack(
        [ref + (lo * 1e0).astype("timedelta64[s]"), ref + hi.astype("timedelta64[s]")], axis=1
    )

    t = time.perf_counter()
    x0 = ctrl.unwhiten(zero)
    batch = [np.zeros(ctrl.size)]
    if z_post is not None:
        batch.append(np.asarray(z_post))
    if twin.z_true is not None:
        batch.append(np.asarray(twin.z_true))
    nsamp = 24
    dz = None
    if z_post is not None and posterior is not None:
        import jax

        key = jax.random.PRNGKey(cfg["run.seed"] + 1)
        if hasattr(posterior, "sample"):
            dz = np.asarray(posterior.sample(key, nsamp))
        else:
            a = np.asarray(posterior.cov_z, dtype=np.float64)
            ell = np.linalg.cholesky(a + 1e-12 * np.eye(a.shape[0]))
            dz = np.asarray(jax.random.normal(key, (nsamp, a.shape[0]), np.float64)) @ ell.T
        zp = np.asarray(jax.random.normal(jax.random.PRNGKey(cfg["run.seed"] + 2), (nsamp, ctrl.size)))
        batch += list(np.asarray(z_post)[None] + dz) + list(zp)
    fields = component_fields_batch(problem, np.stack(batch), bidx)
    prior = fields[0]
    k = 1
    post = truth = post_sigma = prior_sigma = None
    if z_post is not None:
        post, k = fields[k], k + 1
    if twin.z_true is not None:
        truth, k = fields[k], k + 1
    if dz is not None:
        ps, qs = fields[k : k + nsamp], fields[k + nsamp : k + 2 * nsamp]
        post_sigma = {n: np.std(np.stack([f[n] for f in ps]), axis=0, ddof=1) for n in prior}
        prior_sigma = {n: np.std(np.stack([f[n] for f in qs]), axis=0, ddof=1) for n in prior}
    log.info("flux fields per component and block (%.1f s)", time.perf_counter() - t)

    fluxes = []
    for c in problem.composer.components:
        k = c.name
        fluxes.append(
            FluxField(
                component=k,
                species=c.species,
                prior=prior[k],
                posterior=None if post is None else post[k],
                truth=None if truth is None else truth[k],
                posterior_sigma=None if post_sigma is None else post_sigma[k],
                prior_sigma=None if prior_sigma is None else prior_sigma[k],
            )
        )

    # observations
    y_prior = np.asarray(observe(problem, zero))
    y_post = None if z_post is None else np.asarray(observe(problem, jnp.asarray(z_post)))
    y_true = None if twin.y_true is None else np.asarray(twin.y_true)
    y = np.asarray(problem.y) if cfg["run.mode"] != "forward" else y_prior
    obs = ObservationRecord(
        table=twin.table,
        y=y,
        prior=y_prior,
        posterior=y_post,
        truth=y_true,
        sigma=np.asarray(problem.obs_error.sigma),
    )

    # scalar controls (biosphere parameters, initial offsets, biases)
    names, p0, pp, pt, s0, sp = [], [], [], [], [], []
    labels = ctrl.labels()
    x_post = None if z_post is None else ctrl.unwhiten(jnp.asarray(z_post))
    x_true = twin.x_true
    offsets = ctrl.offsets()
    for b in ctrl.blocks:
        if b.role == "flux":
            continue
        a, e = offsets[b.name]
        sig0 = _scalar_sigma(ctrl, None, [b])
        for j in range(b.size):
            names.append(labels[a + j] if len(labels) == ctrl.size else f"{b.name}[{j}]")
            p0.append(float(np.asarray(x0[b.name]).ravel()[j]))
            pp.append(np.nan if x_post is None else float(np.asarray(x_post[b.name]).ravel()[j]))
            pt.append(np.nan if x_true is None else float(np.asarray(x_true[b.name]).ravel()[j]))
            s0.append(float(sig0[j]))
    if names and posterior is not None:
        sp = list(_scalar_sigma(ctrl, posterior, [b for b in ctrl.blocks if b.role != "flux"]))
    params = None
    if names:
        params = ParameterRecord(
            names=names,
            prior=np.array(p0),
            posterior=None if z_post is None else np.array(pp),
            truth=None if x_true is None else np.array(pt),
            prior_sigma=np.array(s0),
            posterior_sigma=np.array(sp) if sp else None,
        )

    # budgets
    budgets = compute_budgets(cfg, problem, z_post, posterior, twin.z_true, log)
    return RunRecord(
        grid=problem.transport.grid,
        time_bounds=time_bounds,
        fluxes=fluxes,
        observations=obs,
        parameters=params,
        history=history,
        budgets=budgets,
        summary={},
        config_toml=cfg.to_toml(),
        title=cfg["run.title"],
        mode="twin" if cfg["run.mode"] == "twin" else cfg["run.mode"],
    )


def _scalar_sigma(ctrl, posterior, blocks) -> np.ndarray:
    """1-sigma of every element of the (small) non-flux ``blocks``: prior (``posterior`` None) or posterior.

    ``x = x_b + S z``: the whitened weights of element ``j`` are row ``j`` of ``S``; its prior variance is
    ``|S_j|^2`` and its posterior variance ``S_j A_z S_j^T`` (:meth:`functional_variance`)."""
    import jax
    import jax.numpy as jnp

    n = ctrl.size
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    x0 = ctrl.unwhiten(jnp.zeros(n, dtype))

    rows = []
    for b in blocks:

        def elem(z, b=b):
            return jnp.ravel(ctrl.unwhiten(z)[b.name] - x0[b.name])

        jac = np.asarray(jax.jacfwd(elem)(jnp.zeros(n, dtype)))  # (size, n) = rows of S for this block
        rows.append(jac)
    w = np.concatenate(rows, axis=0)
    if posterior is None:
        return np.sqrt(np.sum(w * w, axis=1))
    var = np.asarray(posterior.functional_variance(jnp.asarray(w)))
    return np.sqrt(np.maximum(var, 0.0))


def compute_budgets(cfg, problem, z_post, posterior, z_true, log) -> list[dict]:
    """Rows of ``budgets.csv`` for the configured regions and countries over the whole window: prior,
    posterior and (twins) truth of every component and species total, with prior and posterior 1-sigma
    (:func:`~diffflux.inversion.budgets.budget_table`); a forward run gives the prior totals alone."""
    from diffflux.inversion.budgets import budget_table, regional_totals, standard_region_masks
    from diffflux.species import get_species

    t = time.perf_counter()
    names = list(cfg["outputs.regions"]) + list(cfg["outputs.countries"])
    masks = standard_region_masks(problem.transport.grid, names)
    if z_post is None:
        tot = regional_totals(problem, None, masks)
        from diffflux.inversion.budgets import _window

        t0, t1 = _window(problem)
        ref = np.datetime64(cfg["period.reference_time"], "s")
        rows = []
        for (region, comp), v in tot.items():
            sp = next((c.species for c in problem.composer.components if c.name == comp), comp)
            rows.append(
                {
                    "region": region,
                    "period_start": str(ref + np.timedelta64(int(t0), "s")),
                    "period_end": str(ref + np.timedelta64(int(t1), "s")),
                    "component": comp,
                    "species": sp,
                    "unit": get_species(sp).flux_unit,
                    "prior": float(v),
                    "posterior": None,
                    "prior_sigma": None,
                    "posterior_sigma": None,
                    "truth": None,
                }
            )
    else:
        rows = budget_table(
            problem, z_post, posterior, masks=masks, z_true=z_true, n_lanczos=cfg["solver.lanczos_rank"]
        )
        ref = np.datetime64(cfg["period.reference_time"], "s")
        for r in rows:  # run-clock seconds -> ISO dates
            for k in ("period_start", "period_end"):
                r[k] = str(ref + np.timedelta64(int(round(float(r[k]))), "s"))
    log.info("budgets: %d rows for %d regions (%.1f s)", len(rows), len(masks), time.perf_counter() - t)
    return rows
