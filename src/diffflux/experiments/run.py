"""Running a sensitivity configuration: build, batch of scenarios, adjoint, linear check, outputs.

:func:`run_sensitivity` does, in order (``progress`` reports each stage with its time):

1. the problem (:func:`~diffflux.inversion.standard_twin` with ``[setup]``) and the
   :class:`~diffflux.experiments.model.ExperimentModel` (stations, columns, extra species, scenarios);
2. all scenarios in one compiled call (``jax.vmap``), then the baseline and (``one_by_one``) every
   scenario alone with one compiled single-scenario function, timed; the batch and the single runs must
   agree;
3. with metrics: their gradients (footprints per step, parameter gradients; one reverse pass), the
   gradients' prediction of every scenario and forward runs at a small amplitude (linear check);
4. tables (budgets, burdens, stations with detectability, columns, linear check, parameter ranking), CF
   netCDF, PNG maps, ``report.md`` and ``summary.json`` in the output directory.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from diffflux.experiments import report as R
from diffflux.experiments.config import SensitivityConfig
from diffflux.experiments.model import (
    ExperimentModel,
    ScenarioArrays,
    setting_from_problem,
    simulate_batch,
    simulate_one,
    unstack,
)
from diffflux.experiments.scenarios import ParameterChange, RegionSpec, Setting


@dataclasses.dataclass
class SensitivityResult:
    """Everything a run produced (arrays as NumPy; ``tables``: name -> rows; ``files`` written)."""

    config: SensitivityConfig
    setting: Setting
    model: ExperimentModel
    arrays: ScenarioArrays
    table: object
    baseline: dict
    batch: dict
    timing: dict
    notes: list
    sensitivities: object | None = None
    linear: np.ndarray | None = None
    small: dict | None = None
    tables: dict = dataclasses.field(default_factory=dict)
    files: list = dataclasses.field(default_factory=list)


def _np(tree) -> dict:
    return {k: np.asarray(v) for k, v in tree.items()}


def build_experiment(cfg: SensitivityConfig, progress=None):
    """``(twin, model, arrays, notes, table, setting)`` for a validated configuration."""
    from diffflux.inversion import standard_twin

    say = progress or (lambda s: None)
    t = time.perf_counter()
    twin = standard_twin(**cfg.setup)
    problem = twin.problem
    say(
        f"problem built ({twin.info['grid']}, {twin.info['nsteps']} steps, {problem.operator.nobs} twin "
        f"observations) in {time.perf_counter() - t:.1f} s"
    )
    ex = cfg.experiment
    built = setting_from_problem(
        problem,
        cfg.setup["reference_time"],
        stations=ex.stations,
        extra_species=tuple(ex.extra_species),
        columns=cfg.setting.columns,
    )
    s = cfg.setting
    if (built.tracers, built.components, built.start, built.nsteps, built.dt) != (
        s.tracers,
        s.components,
        s.start,
        s.nsteps,
        s.dt,
    ):
        raise RuntimeError(
            f"the configuration was checked against tracers {s.tracers}, components "
            f"{sorted(s.components)}, window {s.start} + {s.nsteps} x {s.dt} s; the problem has "
            f"{built.tracers}, {sorted(built.components)}, {built.start} + {built.nsteps} x "
            f"{built.dt} s (config.twin_components is out of date)"
        )
    x = twin.x_true if ex.state == "truth" else None
    model, table = ExperimentModel.build(
        problem,
        built,
        x=x,
        extra_species=ex.extra_species,
        added_fluxes=ex.add_biosphere_fluxes,
        metrics=cfg.metrics,
        satellite_step_seconds=cfg.setup["satellite_step_seconds"],
    )
    model, arrays, notes = model.with_scenarios(cfg.scenarios, built)
    return twin, model, arrays, notes, table, built


def _timed(fn, *args):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t


def with_baseline(arrays: ScenarioArrays) -> ScenarioArrays:
    """``arrays`` with the baseline (amplitude 0) prepended: the baseline then runs in the same compiled
    call as the scenarios, so tracers a scenario does not touch differ from it by exactly zero."""
    zero = unstack(arrays, 0).scaled(0.0)
    return jax.tree_util.tree_map(lambda z, a: jax.numpy.concatenate([z[None], a]), zero, arrays)


def run_batch_and_single(model, arrays, nscn: int, one_by_one: bool = True, progress=None):
    """``(batch, baseline, timing)``: the baseline and all scenarios in one vmapped call (timed
    with and without the compilation) and, with ``one_by_one``, each scenario alone (one compiled
    function, then timed calls)."""
    say = progress or (lambda s: None)
    both = with_baseline(arrays)
    out, t_first = _timed(simulate_batch, model, both)
    out, t_batch = _timed(simulate_batch, model, both)
    base = jax.tree_util.tree_map(lambda v: v[0], out)
    batch = jax.tree_util.tree_map(lambda v: v[1:], out)
    say(
        f"{nscn} scenarios and the baseline in one vmapped call: {t_batch:.3f} s ({t_first:.1f} s with "
        f"compilation)"
    )
    timing = {
        "n_scenarios": nscn,
        "batch_includes_baseline": True,
        "batch_first_call_s": t_first,
        "batch_s": t_batch,
    }
    singles = None
    if one_by_one:
        _, timing["single_first_call_s"] = _timed(simulate_one, model, unstack(both, 0))
        t = time.perf_counter()
        singles = [jax.block_until_ready(simulate_one(model, unstack(both, k))) for k in range(nscn + 1)]
        timing["one_by_one_s"] = time.perf_counter() - t
        timing["speedup_batch_vs_one_by_one"] = timing["one_by_one_s"] / t_batch
        say(
            f"the same one by one: {timing['one_by_one_s']:.3f} s (batch speed-up "
            f"{timing['speedup_batch_vs_one_by_one']:.2f}x; first single call "
            f"{timing['single_first_call_s']:.1f} s)"
        )
        singles = singles[1:] + [singles[0]]  # scenarios, then the baseline
        batch_all = jax.tree_util.tree_map(lambda a, b: jax.numpy.concatenate([a, b[None]]), batch, base)
        timing["max_rel_diff_batch_vs_one_by_one"] = batch_agreement(batch_all, singles)
    return batch, base, timing


def batch_agreement(batch, singles) -> float:
    """Largest relative difference between the batch and the single runs (metrics, y, burdens)."""
    worst = 0.0
    for k, one in enumerate(singles):
        for key in ("y", "burden", "metrics", "flux_mean"):
            a, b = np.asarray(batch[key][k]), np.asarray(one[key])
            if a.size:
                worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)))
    return worst


def _param_route(cfg, arrays, sens) -> dict:
    """Scenarios that are one global parameter change over the whole window: the parameter gradients'
    prediction (per unit amplitude)."""
    from diffflux.experiments.sensitivity import parameter_prediction

    out = {}
    if sens.params is None:
        return out
    for s, scn in enumerate(cfg.scenarios):
        if len(scn.changes) == 1 and isinstance(scn.changes[0], ParameterChange):
            c = scn.changes[0]
            if c.region == RegionSpec() and c.period.start is None and c.period.end is None:
                out[s] = parameter_prediction(sens, unstack(arrays, s).log_mult)
    return out


def run_sensitivity(cfg: SensitivityConfig, out_dir=None, *, progress=None) -> SensitivityResult:
    """Run a validated configuration and write its outputs into ``out_dir`` (default
    ``cfg.outputs.directory``); see the module docstring."""
    from diffflux.experiments import sensitivity as S

    say = progress or (lambda s: None)
    t_all = time.perf_counter()
    out = Path(out_dir or cfg.outputs.directory)
    out.mkdir(parents=True, exist_ok=True)
    twin, model, arrays, notes, table, setting = build_experiment(cfg, say)
    nscn = len(cfg.scenarios)
    batch, base, timing = run_batch_and_single(model, arrays, nscn, cfg.experiment.one_by_one, say)
    batch, base = _np(batch), _np(base)
    res = SensitivityResult(
        config=cfg,
        setting=setting,
        model=model,
        arrays=arrays,
        table=table,
        baseline=base,
        batch=batch,
        timing=timing,
        notes=notes,
    )
    if cfg.metrics:
        t = time.perf_counter()
        sens = S.gradients(model, checkpoint=model.problem.checkpoint)
        timing["gradient_s"] = time.perf_counter() - t
        say(
            f"adjoint of {len(cfg.metrics)} metrics (footprints and parameters): {timing['gradient_s']:.1f} s"
        )
        t = time.perf_counter()
        lin = S.linear_predictions(model, arrays, sens)
        alpha = cfg.experiment.linear_amplitude
        small = _np(
            jax.tree_util.tree_map(
                lambda v: v[1:], simulate_batch(model, with_baseline(arrays).scaled(alpha))
            )
        )
        timing["linear_check_s"] = time.perf_counter() - t
        say(f"linear check (amplitude {alpha:g}): {timing['linear_check_s']:.1f} s")
        res.sensitivities, res.linear, res.small = sens, lin, small
    timing["total_s"] = time.perf_counter() - t_all
    write_outputs(res, out, say)
    return res


def write_outputs(res: SensitivityResult, out: Path, say=None) -> None:
    """Tables (CSV + Markdown report), netCDF and PNG files of a run into ``out``."""
    say = say or (lambda s: None)
    cfg, setting = res.config, res.setting
    ex = cfg.experiment
    scenarios, metrics = cfg.scenarios, cfg.metrics
    regions = list(
        dict.fromkeys(
            list(ex.budget_regions) + [c.region.name for s in scenarios for c in s.changes if c.region.name]
        )
    )
    air_mol = float(np.sum(np.asarray(res.model.problem.air0))) / 28.9647e-3
    T = {
        "budgets": R.budget_rows(setting, scenarios, res.baseline, res.batch, regions, ex.budget_share),
        "burdens": R.burden_rows(setting, scenarios, res.baseline, res.batch, air_mol),
        "stations": R.station_rows(setting, scenarios, res.table, res.baseline, res.batch, cfg.posterior),
        "columns": R.column_rows(setting, scenarios, res.table, res.baseline, res.batch, cfg.posterior),
    }
    sens = res.sensitivities
    if sens is not None:
        T["linear_check"] = R.linear_rows(
            scenarios,
            metrics,
            res.baseline["metrics"],
            res.small["metrics"],
            res.batch["metrics"],
            res.linear,
            ex.linear_amplitude,
            _param_route(cfg, res.arrays, sens),
        )
        T["parameter_sensitivities"] = R.parameter_rows(sens, metrics)
    res.tables = T
    files = []
    for name, rows in T.items():
        if rows:
            R.write_csv(rows, out / f"{name}.csv")
            files.append(f"{name}.csv")
    if sens is not None and T["parameter_sensitivities"]:
        (out / "parameter_sensitivities.md").write_text(
            R.markdown_table(R.parameter_rows(sens, metrics, top=15)), encoding="utf-8"
        )
        files.append("parameter_sensitivities.md")
    if cfg.outputs.netcdf:
        R.scenarios_dataset(setting, scenarios, res.table, res.baseline, res.batch).to_netcdf(
            out / "scenarios.nc"
        )
        files.append("scenarios.nc")
        if sens is not None:
            R.footprints_dataset(setting, metrics, sens, ex.footprint_block_hours).to_netcdf(
                out / "footprints.nc"
            )
            files.append("footprints.nc")
    if cfg.outputs.png:
        files += _pngs(res, out)
    R.write_json(res.timing, out / "timing.json")
    files.append("timing.json")
    summary = {
        "config": cfg.source,
        "setting": {
            "grid": setting.grid.describe(),
            "window": [str(setting.start), str(setting.end)],
            "dt_s": setting.dt,
            "tracers": setting.tracers,
            "stations": setting.stations,
        },
        "scenarios": [
            {"name": s.name, "description": s.description, **n} for s, n in zip(scenarios, res.notes)
        ],
        "timing": res.timing,
        "tables": T,
    }
    if sens is not None:
        summary["metrics"] = [
            {
                "name": m.name,
                "description": m.describe(),
                "value": float(sens.values[k] * m.reporting()[0]),
                "unit": m.reporting()[1],
            }
            for k, m in enumerate(metrics)
        ]
    R.write_json(summary, out / "summary.json")
    files.append("summary.json")
    res.files = files + ["report.md"]
    (out / "report.md").write_text(render_report(res), encoding="utf-8")
    say(f"wrote {len(res.files)} files into {out}")


def _pngs(res: SensitivityResult, out: Path) -> list[str]:
    from diffflux.observations import get_station
    from diffflux.species import get_species

    setting, cfg = res.setting, res.config
    grid = setting.grid
    pts = [(s, get_station(s).latitude, get_station(s).longitude) for s in setting.stations]
    files = []
    sens = res.sensitivities
    if sens is not None:
        for k, m in enumerate(cfg.metrics):
            tr = setting.tracers.index(get_species(m.species).name)
            f = f"footprint_{R.safe_name(m.name)}.png"
            mark = [p for p in pts if p[0] == m.station] if m.kind == "station" else []
            R.map_png(
                out / f,
                grid,
                sens.window_footprint(k, tr),
                f"footprint of {m.describe()}\n(flux held over the window)",
                m.footprint_unit,
                log=True,
                points=mark,
            )
            files.append(f)
    for s, scn in enumerate(cfg.scenarios):
        for tr, sp in enumerate(setting.tracers):
            d = res.batch["surface"][s, tr] - res.baseline["surface"][tr]
            if not R.touched(d, res.baseline["surface"][tr]):
                continue
            spc = get_species(sp)
            f = f"scenario_{R.safe_name(scn.name)}_{R.safe_name(sp)}.png"
            R.map_png(
                out / f,
                grid,
                spc.to_reporting_mixing_ratio(d),
                f"{scn.name}: change of surface {sp} at the end of the window",
                spc.mixing_ratio_unit,
                points=pts,
            )
            files.append(f)
    return files


def render_report(res: SensitivityResult) -> str:
    """``report.md``: the run in tables."""
    cfg, setting, T = res.config, res.setting, res.tables
    tm = res.timing
    lines = [
        f"# Sensitivity experiments ({Path(cfg.source).name})",
        "",
        f"Grid {setting.grid.describe()}; window {setting.start} .. {setting.end} ({setting.nsteps} steps of "
        f"{setting.dt:g} s); tracers {', '.join(setting.tracers)}; stations {', '.join(setting.stations)}.",
        "",
        "## Scenarios",
        "",
    ]
    for scn, note in zip(cfg.scenarios, res.notes):
        extra = (
            f" (area change: {note['applied_km2']:.0f} of {note['requested_km2']:.0f} km2 applied)"
            if note
            else ""
        )
        lines.append(f"* `{scn.name}`: {scn.description or '-'}{extra}")
    lines += [
        "",
        "## Timing",
        "",
        f"{tm['n_scenarios']} scenarios and the baseline in one vmapped call: {tm['batch_s']:.3f} s "
        f"({tm['batch_first_call_s']:.1f} s with compilation).",
    ]
    if "one_by_one_s" in tm:
        lines.append(
            f"One by one (one compiled function, {tm['single_first_call_s']:.1f} s for its first call): "
            f"{tm['one_by_one_s']:.3f} s; batch speed-up {tm['speedup_batch_vs_one_by_one']:.2f}x; largest "
            f"relative difference batch vs one by one {tm['max_rel_diff_batch_vs_one_by_one']:.1e}."
        )
    sections = [
        (
            "Budgets (change of the window-mean flux; `change` weights it with the region's mask on the "
            "model grid, `total_change` is everything the scenario changed)",
            "budgets",
        ),
        ("Global burden at the end", "burdens"),
        ("Stations", "stations"),
        ("Satellite-like columns", "columns"),
        ("Linear check (forward runs vs the adjoint's prediction)", "linear_check"),
    ]
    for title, key in sections:
        if T.get(key):
            lines += ["", f"## {title}", "", R.markdown_table(T[key])]
    if T.get("parameter_sensitivities"):
        lines += ["", "## Parameter sensitivities (top 10 per metric)", ""]
        top = [r for r in T["parameter_sensitivities"] if r["rank"] <= 10]
        lines.append(R.markdown_table(top))
    lines += ["", "## Files", "", ", ".join(f"`{f}`" for f in res.files), ""]
    return "\n".join(lines)
