"""Render the benchmark JSON files (bandwidth, transport, gradient, biosphere, obs, inversion, scenarios)
as Markdown.

Every figure in the output comes from the JSON files; hand-written analysis can be kept in
``notes.md`` next to them and is appended verbatim under its own heading.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

MIB = 2**20


def _load(outdir: Path, name: str) -> dict | None:
    p = Path(outdir) / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _f(x, fmt: str = "{:.3g}", missing: str = "-") -> str:
    """Format ``x`` or return ``missing`` for None."""
    if x is None:
        return missing
    try:
        return fmt.format(x)
    except (TypeError, ValueError):
        return str(x)


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _header(*names) -> list[str]:
    return [_row(*names), "|" + "---|" * len(names)]


def _machine(docs: list[dict]) -> list[str]:
    m = next((d["machine"] for d in docs if d), None)
    if m is None:
        return ["(no results yet)"]
    caches = ", ".join(f"{k} {v}" for k, v in m.get("caches", {}).items()) or "-"
    cpus = f"{m['cpus_available']} usable of {m['logical_cpus']} logical CPUs"
    software = f"Python {m['python']}, NumPy {m['numpy']}, JAX {m['jax']} (jaxlib {m['jaxlib']})"
    lines = _header("", "") + [
        _row("CPU", f"{m['cpu_model']} ({cpus})"),
        _row("caches", caches),
        _row("RAM", f"{m['ram_gib']} GiB"),
        _row("backend / devices", f"{m['backend']} / {', '.join(m['devices'])}"),
        _row("software", software),
        _row("XLA_FLAGS", f"`{m['xla_flags'] or '(unset)'}`"),
    ]
    for d in docs:
        if d:
            lines.append(_row(f"code ({d['benchmark']})", f"`{d['machine'].get('git_commit', '?')}`"))
    for d in docs:
        if d:
            mm = d["machine"]
            load = f"load average at the end {mm['loadavg_1_5_15']} (1/5/15 min)"
            lines.append(_row(f"{d['benchmark']} run", f"{mm['date_utc']}, {load}"))
    return lines


def _caveat(docs: list[dict]) -> list[str]:
    m = next((d["machine"] for d in docs if d), None)
    if m is None or m["backend"] != "cpu":
        return []
    load = max(d["machine"]["loadavg_1_5_15"][0] for d in docs if d)
    if load <= 0.5 * m["cpus_available"]:
        return ["Timings on CPU: the load averages below show how busy the machine was.", ""]
    return [
        "**Read the ratios, not the absolute numbers**: these CPU figures were taken on a "
        f"{m['cpus_available']}-CPU machine shared with other jobs (load averages below), which "
        "slows every timing by a varying amount. The meaningful results are the JAX/NumPy ratios, "
        "the fractions of the (equally affected) measured bandwidth, the gradient/forward ratios "
        "and the memory figures.",
        "",
    ]


def _bandwidth(d: dict) -> list[str]:
    out = [
        "## Memory bandwidth (STREAM-like)",
        "",
        d["method"] + ".",
        f"Arrays of {d['n_elements']} float64 ({d['array_mib']:.0f} MiB each).",
        "",
    ] + _header("kernel", "words/element", "NumPy GB/s", "JAX (jit) GB/s")
    words = {"copy": 2, "scale": 2, "add": 3, "triad": 3, "read4_write1": 5}
    for k, w in words.items():
        np_bw = d["numpy"].get(k, {}).get("gb_per_s")
        jx_bw = d["jax"].get(k, {}).get("gb_per_s")
        out.append(_row(k, w, _f(np_bw, "{:.1f}"), _f(jx_bw, "{:.1f}")))
    out += [
        "",
        f"**Bound used below: {d['bound_gb_per_s']:.1f} GB/s** ({d['bound_kernel']}, the best "
        "kernel measured, so the fractions below are conservative).",
        "",
    ]
    comp = d.get("compute")
    if comp:
        out += ["### Compute roof", "", comp["method"] + ".", ""]
        out += _header("dtype", "fma G ops/s", "mixed G ops/s", "roof G ops/s")
        for dt in ("float32", "float64"):
            r = comp.get(dt)
            if r:
                out.append(_row(dt, f"{r['fma']['ops_per_s'] / 1e9:.1f}",
                                f"{r['mixed']['ops_per_s'] / 1e9:.1f}", f"{r['roof_ops_per_s'] / 1e9:.1f}"))
        out.append("")
    return out


def _transport_table(cfgs: list[dict]) -> list[str]:
    out = _header(
        "grid", "dtype", "cells", "steps x dt", "met snaps", "compile s", "JAX ms/step",
        "JAX Mcell/s", "NumPy Mcell/s", "JAX/NumPy", "bound Mcell/s", "% of bound (minimal)",
        "% (split)", "tracer mass rel. change", "JAX vs NumPy max rel. diff", "load (start, end)",
    )  # fmt: skip
    for c in cfgs:
        j, n = c["jax"], c.get("numpy", {})
        np_rate = n.get("cell_updates_per_s")
        out.append(_row(
            c["grid"], c["dtype"], c["cells"], f"{c['nsteps']} x {c['dt_seconds']:g} s",
            c["met_snapshots"], f"{j['compile_seconds']:.1f}", f"{1e3 * j['seconds_per_step']:.2f}",
            f"{j['cell_updates_per_s'] / 1e6:.2f}", _f(np_rate and np_rate / 1e6, "{:.2f}"),
            _f(c.get("jax_over_numpy"), "{:.2f}"), f"{c['bound_cell_updates_per_s'] / 1e6:.0f}",
            f"{100 * j['fraction_of_bound_minimal']:.2f}",
            f"{100 * j['fraction_of_bound_split']:.2f}", f"{j['tracer_mass_rel_change']:.1e}",
            _f(n.get("max_rel_diff_tracer_vs_jax"), "{:.1e}"),
            ", ".join(f"{x:.1f}" for x in c.get("loadavg_1min", [])) or "-",
        ))  # fmt: skip
    return out


def _roofline_table(cfgs: list[dict]) -> list[str]:
    """Roofline of the step: XLA's operation and byte counts against the compute roof and bandwidth."""
    out = [
        "### Roofline: what the compiled step does per cell",
        "",
        "XLA cost analysis of one step (float32 compensated, as `run` does): elementwise operations "
        "and bytes accessed by the compiled kernels per cell (the not-taken fallback branch of the "
        "zonal sweep subtracted; loop bodies over levels counted once). `ops/byte (minimal)` is the "
        "arithmetic intensity against the minimal bytes; above the machine balance (roof / "
        "bandwidth) the step is compute bound for any implementation that does these operations. "
        "`% of roof` = achieved elementwise ops/s / compute roof; `% bw (XLA bytes)` = bytes the "
        "kernels actually access per second / bandwidth bound; `roofline Mcell/s` = min(bandwidth / "
        "minimal bytes, roof / ops).",
        "",
    ]
    out += _header(
        "grid", "dtype", "XLA ops/cell", "XLA bytes/cell", "minimal bytes/cell", "ops/byte (minimal)",
        "machine balance ops/byte", "achieved G ops/s", "% of roof", "% bw (XLA bytes)",
        "roofline Mcell/s", "JAX Mcell/s", "% of roofline",
    )  # fmt: skip
    for c in cfgs:
        x, j, b = c["xla_step"], c["jax"], c["bytes"]
        roof = c.get("compute_roof_ops_per_s")
        bw = c.get("bandwidth_bound_gb_per_s")
        out.append(_row(
            c["grid"], c["dtype"], f"{x['ops_per_cell']:.0f}", f"{x['bytes_accessed_per_cell']:.0f}",
            b["minimal_bytes_per_cell"], f"{x['ops_per_cell'] / b['minimal_bytes_per_cell']:.1f}",
            _f(roof and bw and roof / (bw * 1e9), "{:.2f}"), f"{j['ops_per_s'] / 1e9:.2f}",
            _f(j.get("fraction_of_compute_roof") and 100 * j["fraction_of_compute_roof"], "{:.1f}"),
            _f(bw and 100 * j["achieved_gb_per_s_xla_bytes"] / bw, "{:.0f}"),
            _f(c.get("roofline_bound_cell_updates_per_s") and c["roofline_bound_cell_updates_per_s"] / 1e6,
               "{:.0f}"),
            f"{j['cell_updates_per_s'] / 1e6:.2f}",
            _f(j.get("fraction_of_roofline") and 100 * j["fraction_of_roofline"], "{:.1f}"),
        ))  # fmt: skip
    return out + [""]


def _short(name: str) -> str:
    """Operator key without its per-grid detail in parentheses."""
    return name.split(" (")[0]


def _profile_table(prof: list[dict]) -> list[str]:
    names: list[str] = []
    calls: dict[str, int] = {}
    details: dict[str, list[str]] = {}
    explicit: set[str] = set()
    for c in prof:
        for full, v in c["profile"]["operators"].items():
            key = _short(full)
            if key not in names:
                names.append(key)
            calls[key] = v["calls_per_step"]
            if v.get("detail"):
                explicit.add(key)
            detail = v.get("detail") or (full[len(key) :].strip(" ()") if full != key else "")
            if detail:
                details.setdefault(key, []).append(f"{c['grid']}: {detail}")
    out = [
        "### Where the time goes (each operator alone in its own jitted scan)",
        "",
        "Time per step and share of the measured full step; `xN` = applications per step (x0: "
        "reference only, time per call, not part of the step). `sum/step` > 1 means the operators "
        "cost more alone than inside the fused step, < 1 the opposite (or timing noise on a shared "
        "machine).",
        "",
    ]
    out += _header("grid", "dtype", *[f"{n} (x{calls[n]})" for n in names], "sum/step")
    for c in prof:
        ops = {_short(k): v for k, v in c["profile"]["operators"].items()}
        cells = []
        for n in names:
            v = ops.get(n)
            if v is None:
                cells.append("-")
            elif v["calls_per_step"]:
                cells.append(f"{1e3 * v['seconds_per_step']:.2f} ms ({100 * v['share_of_step']:.0f}%)")
            else:
                cells.append(f"{1e3 * v['seconds_per_call']:.2f} ms per call")
        out.append(_row(c["grid"], c["dtype"], *cells, f"{c['profile']['sum_over_full_step']:.2f}"))
    for key, ds in details.items():
        texts = {d.split(": ", 1)[1] for d in ds}
        if len(texts) > 1 or key in explicit:
            out.append(f"\n`{key}`: " + "; ".join(dict.fromkeys(ds)) + ".")
    return out + [""]


def _rebound(c: dict, bound: float) -> dict:
    """Copy of a transport record with the bandwidth fractions recomputed for ``bound`` [GB/s]."""
    c = copy.deepcopy(c)
    rate, b = c["jax"]["cell_updates_per_s"], c["bytes"]
    c["jax"]["fraction_of_bound_minimal"] = b["minimal_bytes_per_cell"] * rate / 1e9 / bound
    c["jax"]["fraction_of_bound_split"] = b["split_bytes_per_cell"] * rate / 1e9 / bound
    c["bound_cell_updates_per_s"] = bound * 1e9 / b["minimal_bytes_per_cell"]
    return c


def _transport(d: dict, bw: dict | None = None) -> list[str]:
    cfgs = [c for c in d["configs"] if "error" not in c]
    bound, source = d["bandwidth_bound_gb_per_s"], d["bandwidth_source"]
    if bw and abs(bw["bound_gb_per_s"] - bound) > 1e-9:
        # fractions are plain arithmetic on the stored rates: use the current bandwidth measurement
        bound = bw["bound_gb_per_s"]
        source = f"{bw['bound_kernel']}, bandwidth.json of {bw['machine']['date_utc']}"
        cfgs = [_rebound(c, bound) for c in cfgs]
    out = [
        "## Transport step throughput",
        "",
        d["method"] + ".",
        f"Bandwidth bound: {bound:.1f} GB/s ({source}).",
        "",
    ]
    if cfgs:
        b = cfgs[0]["bytes"]
        w = b["minimal_words_per_cell"]
        out += [
            f"Minimal bytes per cell and step ({b['ntracer']} tracer): **{w} words** = "
            f"{b['minimal_breakdown']}; i.e. {4 * w} B in float32, {8 * w} B in float64. "
            "Per-operator streaming estimate (no fusion across operators): "
            f"{b['split_words_per_cell']} words = {b['split_breakdown']}.",
            "",
        ]
        out += _transport_table(cfgs)
        courants = "; ".join(
            f"{c['grid']}: {c['courant']['zonal']:.2f} / {c['courant']['meridional']:.2f} / "
            f"{c['courant']['vertical']:.2f}"
            for c in cfgs
            if c["dtype"] == cfgs[0]["dtype"]
        )
        np_steps = ", ".join(f"{c['grid']} {c['dtype']} {c['numpy'].get('steps', 'skipped')}" for c in cfgs)
        out += [
            "",
            f"Met: {cfgs[0]['met']}.",
            f"Max Courant numbers (zonal, meridional per half step / vertical): {courants}.",
            f"NumPy steps timed: {np_steps}.",
            "",
        ]
    for c in d["configs"]:
        if "error" in c:
            out.append(f"- {c['grid']} {c['dtype']}: FAILED ({c['error'][:200]})")
    roof = [c for c in cfgs if c.get("xla_step")]
    if roof:
        out += _roofline_table(roof)
    prof = [c for c in cfgs if "profile" in c]
    if prof:
        out += _profile_table(prof)
    hl = [c for c in cfgs if c["jax"].get("hlo")]
    if hl:
        kernels = "; ".join(
            f"{c['grid']} {c['dtype']}: {c['jax']['hlo']['executed_kernels']} kernels, "
            f"{c['jax']['hlo']['while_loops']} while loops, "
            f"{c['jax']['hlo'].get('conditionals', 0)} conditionals"
            for c in hl
        )
        out += [
            "Compiled program of the whole scan (XLA ops executed as separate kernels, a fusion "
            "counting once, both branches of a conditional counted; includes the nested loops of the "
            f"tridiagonal solves): {kernels}.",
            "",
        ]
    return out


def _gradient(d: dict, title: str = "## Gradient cost and memory") -> list[str]:
    budget = d["memory_budget_bytes"] / 2**30
    out = [
        title,
        "",
        d["method"] + ".",
        "`grad/fastest fwd` divides by the fastest forward of the three variants of a case (the "
        "forward computation is the same; this removes noise of single forward timings).",
        f"Memory budget for executing a variant: {budget:.1f} GiB.",
        "",
    ]
    out += _header(
        "grid", "dtype", "steps", "checkpoint", "forward s", "gradient s", "grad/fwd", "grad/fastest fwd",
        "XLA temp MiB (grad)", "XLA temp MiB (fwd)", "measured peak MiB (grad)",
        "compile fwd / grad s",
    )  # fmt: skip
    fastest: dict[tuple, float] = {}
    for r in d["records"]:
        if "forward" in r and "seconds" in r["forward"]:
            key = (r["grid"], r["dtype"], r["nsteps"])
            fastest[key] = min(fastest.get(key, float("inf")), r["forward"]["seconds"])
    for r in d["records"]:
        if "error" in r:
            err = f"failed: {r['error'][:120]}"
            out.append(_row(r["grid"], r["dtype"], r["nsteps"], r["checkpoint"], err))
            continue
        g, f = r["gradient"], r["forward"]
        meas = g.get("measured", {})
        peak = meas.get("device_peak_bytes_in_use", meas.get("rss_peak_increase_bytes"))
        out.append(_row(
            r["grid"], r["dtype"], r["nsteps"], r["checkpoint"], f"{f['seconds']:.2f}",
            _f(g.get("seconds"), "{:.2f}", missing="not run"),
            _f(r.get("grad_over_forward"), "{:.2f}"),
            _f(g.get("seconds") and g["seconds"] / fastest[(r["grid"], r["dtype"], r["nsteps"])], "{:.2f}"),
            f"{g['memory_analysis'].get('temp_size_in_bytes', 0) / MIB:.0f}",
            f"{f['memory_analysis'].get('temp_size_in_bytes', 0) / MIB:.0f}",
            _f(peak and peak / MIB, "{:.0f}"),
            f"{f['compile_seconds']:.1f} / {g['compile_seconds']:.1f}",
        ))  # fmt: skip
    for r in d["records"]:
        if "gradient" in r and "skipped" in r["gradient"]:
            out.append(
                f"\n- {r['grid']} {r['dtype']} checkpoint={r['checkpoint']}: "
                f"{r['gradient']['skipped']} (the XLA figure is the memory this variant needs)."
            )
    cons = d.get("checkpoint_consistency", {})
    if cons:
        parts = "; ".join(
            f"{k}: " + ", ".join(f"{kk} {v:.1e}" for kk, v in vv.items()) for k, vv in cons.items()
        )
        out += [
            "",
            "Gradient agreement between checkpoint modes (max relative difference of a sample of "
            f"the flux gradient; recomputation must not change it): {parts}.",
        ]
    return out + [""]


def _gradient_window(d: dict) -> list[str]:
    """The gradient table for the window-length sweep, plus the growth of memory with the steps."""
    out = _gradient(d, "## Gradient cost and memory against the window length")
    growth = []
    for ck in ("None", "step", "nested"):
        rows = sorted((r for r in d["records"] if str(r.get("checkpoint")) == ck and "gradient" in r),
                      key=lambda r: r["nsteps"])
        if len(rows) < 2:
            continue
        a, b = rows[0], rows[-1]
        ta = a["gradient"]["memory_analysis"].get("temp_size_in_bytes", 0)
        tb = b["gradient"]["memory_analysis"].get("temp_size_in_bytes", 0)
        if ta and tb:
            growth.append(f"checkpoint={ck}: {b['nsteps'] / a['nsteps']:.0f}x the steps -> XLA temp "
                          f"{tb / ta:.1f}x ({ta / MIB:.0f} -> {tb / MIB:.0f} MiB)")
    if growth:
        out.insert(-1, "")
        out.insert(-1, "Memory growth from the shortest to the longest window: " + "; ".join(growth) + ".")
    return out


def _biosphere(d: dict) -> list[str]:
    out = [
        "## Biosphere throughput",
        "",
        d["method"],
        "",
        "| grid | dtype | land cells | tiles | compile fwd [s] | one year [s] | cell-days/s | tile-days/s "
        "| compile grad [s] | gradient [s] | grad/fwd |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in d["cases"]:
        out.append(
            f"| {c['grid']} | {c['dtype']} | {c['land_cells']} | {c['tiles']} | {_f(c['compile_forward_s'])} "
            f"| {_f(c['forward_year_s'])} | {_f(c['cell_days_per_s'])} | {_f(c['tile_days_per_s'])} "
            f"| {_f(c['compile_gradient_s'])} | {_f(c['gradient_year_s'])} | {_f(c['grad_over_forward'])} |"
        )
    sp = d.get("spinup")
    if sp:
        out += [
            "",
            f"Spin-up to the cyclo-stationary state ({sp['grid']}, {sp['dtype']}, {sp['tiles']} tiles): "
            f"{_f(sp['wall_s'])} s, {sp['newton_iterations']} Newton iterations, max |annual NEP| "
            f"{_f(sp['max_nep'])} g C m-2 yr-1, {sp['bare_tiles']} tiles unable to establish.",
        ]
    return out + [""]


def _obs(d: dict) -> list[str]:
    runs = d["runs"]
    rows = [k for k in runs if k == "baseline" or k.startswith("per_step_")]
    out = [
        "## Observation-operator cost",
        "",
        f"{d['grid']}, {d['steps']} steps ({d['window_days']:g} days), {d['model']}, met {d['met']}; records "
        "sampled inside the scan from per-step padded tables. Process CPU time (the shared machine's wall "
        "time is noisier).",
        "",
        "| run | CPU time [s] | compile [s] |",
        "|---|---|---|",
    ]
    for k in rows:
        out.append(
            f"| {k.replace('per_step_', '') + ' records' if k != 'baseline' else 'no observations'} "
            f"| {_f(runs[k]['cpu_s'])} | {_f(runs[k]['compile_s'])} |"
        )
    out += [
        "",
        f"Run time with 1e5 records / with 1e3 records: **{d['factor_1e5_vs_1e3']:.3f}** (wall "
        f"{d['factor_1e5_vs_1e3_wall']:.3f}); sampling every record at every step instead would cost "
        f"{d['dense_vs_per_step_sampling_only_at_1000']:.0f}x the per-step operator at 1e3 records.",
        "",
    ]
    return out


def _mib(x) -> str:
    """Bytes as MiB with one decimal, ``-`` for None."""
    return _f(x if x is None else x / MIB, "{:.1f}")


def _window_days(nsteps: int, dt: float) -> str:
    return f"{nsteps * dt / 86400:g} days of {dt / 3600:g} h steps"


def _problem(pr: dict) -> str:
    return (
        f"{pr['grid']}, {pr['nsteps']} steps x {pr['dt_seconds']:g} s "
        f"({_window_days(pr['nsteps'], pr['dt_seconds'])}), {' + '.join(pr['species'])}, "
        f"{pr['n_controls']} controls, {pr['n_obs']} observations, checkpoint `{pr['checkpoint']}`"
    )


def _solve_table(r: dict) -> list[str]:
    f, s = r["first"], r.get("second_new_observations")
    cols = ["first call"] + (["again, new observations (compiled step reused)"] if s else [])
    rows = [
        ("status", "status", "{}"),
        ("iterations", "iterations", "{}"),
        ("wall time [s]", "wall_seconds", "{:.1f}"),
        ("of which tracing + compiling [s]", "compile_seconds", "{:.1f}"),
        ("compilations", "compilations", "{}"),
        ("traces of the step", "n_traces", "{}"),
        ("solve time without compiling [s]", "solve_seconds_excluding_compile", "{:.1f}"),
        ("seconds per iteration", "seconds_per_iteration", "{:.3f}"),
        ("cost J prior", "cost_prior", "{:.6g}"),
        ("cost J posterior", "cost_posterior", "{:.6g}"),
        ("cost reduction", "cost_reduction", "{:.2%}"),
        ("gradient norm prior", "grad_norm_prior", "{:.4g}"),
        ("gradient norm posterior", "grad_norm_posterior", "{:.2e}"),
        ("gradient-norm reduction (posterior / prior)", "grad_norm_reduction", "{:.1e}"),
        ("reduced chi-square", "reduced_chi_square", "{:.3f}"),
        ("control RMS error prior (vs truth)", "control_rms_error_prior", "{:.4f}"),
        ("control RMS error posterior (vs truth)", "control_rms_error_posterior", "{:.4f}"),
    ]
    out = _header("", *cols)
    for label, key, fmt in rows:
        out.append(_row(label, _f(f.get(key), fmt), *([_f(s.get(key), fmt)] if s else [])))
    out += [
        "",
        f"Building the twin (not in the wall time): {_f(r.get('build_seconds'), '{:.1f}')} s; whole "
        f"case in its process: {_f(r.get('worker_wall_seconds'), '{:.1f}')} s."
        + (
            " Seconds per iteration: first call without its compile time; second call wall time / iterations."
            if s
            else ""
        ),
        "",
    ]
    return out


def _window_table(recs: list[dict]) -> list[str]:
    out = _header(
        "window", "steps x dt", "controls", "observations", "compile fwd / grad s", "forward s",
        "gradient s", "grad/fwd", "ms/step fwd / grad", "XLA temp MiB fwd / grad",
        "XLA predicted peak MiB fwd / grad", "measured peak MiB fwd / grad", "J", "norm of dJ/dz",
        "case wall s",
    )  # fmt: skip
    for r in recs:
        if "error" in r:
            days = r.get("settings", {}).get("twin", {}).get("days", "?")
            out.append(_row(f"{days} days", f"failed: {r['error'][:120]}"))
            continue
        pr, f, g = r["problem"], r["forward"], r["gradient"]

        def meas(x):
            m = x.get("measured", {})
            return m.get("device_peak_bytes_in_use", m.get("rss_peak_increase_bytes"))

        temp = [x["memory_analysis"].get("temp_size_in_bytes") for x in (f, g)]
        sps = r.get("seconds_per_step", {})
        out.append(_row(
            f"{r['days']} days", f"{pr['nsteps']} x {pr['dt_seconds']:g} s", pr["n_controls"], pr["n_obs"],
            f"{f['compile_seconds']:.1f} / {g['compile_seconds']:.1f}", f"{f['seconds']:.3f}",
            f"{g['seconds']:.3f}", f"{r['grad_over_forward']:.2f}",
            f"{_f(sps.get('forward') and 1e3 * sps['forward'], '{:.2f}')} / "
            f"{_f(sps.get('gradient') and 1e3 * sps['gradient'], '{:.2f}')}",
            f"{_mib(temp[0])} / {_mib(temp[1])}",
            f"{_mib(f.get('predicted_peak_bytes'))} / {_mib(g.get('predicted_peak_bytes'))}",
            f"{_mib(meas(f))} / {_mib(meas(g))}", f"{f['cost']:.1f}", f"{g['grad_norm']:.5g}",
            _f(r.get("worker_wall_seconds"), "{:.1f}"),
        ))  # fmt: skip
    return out


def _inversion(d: dict) -> list[str]:
    recs = d["records"]
    out = ["## Inversion: time to solution and window scaling", "", d["method"].rstrip(".") + ".", ""]
    for r in recs:
        if r.get("case") != "solve":
            continue
        out += ["### Time to solution of the standard twin (L-BFGS)", ""]
        if "error" in r:
            out += [f"FAILED: {r['error'][:200]}", ""]
            continue
        settings = ", ".join(f"{k}={v}" for k, v in r.get("twin", {}).items()) or "defaults"
        out += [f"Problem: {_problem(r['problem'])}; twin settings: {settings}.", ""]
        out += _solve_table(r)
    wins = [r for r in recs if r.get("case") == "window"]
    if wins:
        ok = [r for r in wins if "error" not in r]
        out += ["### Gradient/forward cost and memory of the whole chain against the window length", ""]
        if ok:
            pr = ok[0]["problem"]
            out += [
                f"{pr['grid']}, {' + '.join(pr['species'])}, checkpoint `{pr['checkpoint']}`, cost J and "
                "its gradient at 0.5 z_true; measured peak = peak RSS increase of the first call (GPU: "
                "allocator peak).",
                "",
            ]
        out += _window_table(wins)
        if len(ok) >= 2:
            a, b = min(ok, key=lambda r: r["days"]), max(ok, key=lambda r: r["days"])

            def ratio(fn):
                try:
                    return f"{fn(b) / fn(a):.1f}x"
                except (KeyError, TypeError, ZeroDivisionError):
                    return "-"

            def gpeak(r):
                m = r["gradient"]["measured"]
                return m.get("device_peak_bytes_in_use", m.get("rss_peak_increase_bytes"))

            out += [
                "",
                f"{b['days']}-day against {a['days']}-day window: "
                f"steps {ratio(lambda r: r['problem']['nsteps'])}, "
                f"controls {ratio(lambda r: r['problem']['n_controls'])}, gradient time "
                f"{ratio(lambda r: r['gradient']['seconds'])}, XLA temp of the gradient "
                f"{ratio(lambda r: r['gradient']['memory_analysis']['temp_size_in_bytes'])}, measured "
                f"gradient peak {ratio(gpeak)}.",
            ]
    if d.get("wall_seconds") is not None:
        out += ["", f"Wall time of the whole inversion benchmark: {d['wall_seconds']:.0f} s."]
    return out + [""]


def _scenarios(d: dict) -> list[str]:
    nscn, amps = len(d["scenarios"]), d.get("amplitudes", [])
    t0, t1 = d["window"]
    out = [
        "## Sensitivity scenarios: one batched call against one by one",
        "",
        d["method"].rstrip(".") + ".",
        "",
        f"`{d['config']}`: {nscn} scenarios at amplitude(s) {', '.join(f'{a:g}' for a in amps)} "
        f"+ the baseline = {d['batch_members']} members; "
        f"{d['grid']}, {t0} to {t1}, {d['nsteps']} steps x {d['dt_s']:g} s "
        f"({_window_days(d['nsteps'], d['dt_s'])}), tracers {', '.join(d['tracers'])}, {d['dtype']}. "
        f"Steady times are the best of {d['reps']} calls; compile = first call minus a steady call. "
        f"Building the experiment: {d['build_s']:.1f} s.",
        "",
    ]
    out += _header(
        "members", "batched s", "one by one s", "batched s/member", "one by one s/member",
        "speed-up (one by one / batched)", "compile batched s", "compile single s",
        "max rel. diff batched vs one by one",
    )  # fmt: skip
    out.append(_row(
        d["batch_members"], f"{d['batch_s']:.3f}", f"{d['one_by_one_s']:.3f}",
        f"{d['per_member_batch_s']:.4f}", f"{d['per_member_one_by_one_s']:.4f}",
        f"{d['speedup_batch_vs_one_by_one']:.2f}x", f"{d['batch_compile_s']:.1f}",
        f"{d['single_compile_s']:.1f}", f"{d['max_rel_diff_batch_vs_one_by_one']:.1e}",
    ))  # fmt: skip
    out += ["", "Scenarios: " + ", ".join(f"`{s}`" for s in d["scenarios"]) + ".", ""]
    return out


def render(outdir: Path, title_note: str = "") -> str:
    """The Markdown report of the JSON files in ``outdir``."""
    outdir = Path(outdir)
    bw, tr, gr, gw, bio, obs, inv, scn = (
        _load(outdir, n)
        for n in ("bandwidth", "transport", "gradient", "gradient_window", "biosphere", "obs", "inversion",
                  "scenarios")
    )
    intro = (
        f"Generated by `python -m benchmarks` from the JSON files in `{outdir.name}/` "
        f"(rerun it to refresh). {title_note}"
    ).rstrip()
    lines = ["# diffflux benchmarks", "", intro, ""] + _caveat([bw, tr, gr])
    lines += ["## Machine", ""] + _machine([bw, tr, gr, gw, inv, scn]) + [""]
    if bw:
        lines += _bandwidth(bw)
    if tr:
        lines += _transport(tr, bw)
    if gr:
        lines += _gradient(gr)
    if gw:
        lines += _gradient_window(gw)
    if bio:
        lines += _biosphere(bio)
    if obs:
        lines += _obs(obs)
    if inv:
        lines += _inversion(inv)
    if scn:
        lines += _scenarios(scn)
    lines += [
        "## How to reproduce",
        "",
        "```",
        "python -m benchmarks                   # everything, full sizes (this file)",
        "python -m benchmarks --quick           # smoke run -> benchmarks/results/quick/",
        "python -m benchmarks --only obs        # bandwidth | transport | gradient | gradient_window |",
        "                                       # biosphere | obs | inversion | scenarios |",
        "                                       # report (re-render only)",
        "bash benchmarks/gpu.sh                 # GPU machine: checks, then the gpu preset",
        "```",
        "",
    ]
    notes = outdir / "notes.md"
    if notes.exists():
        lines += ["## Notes (hand-written analysis)", "", notes.read_text().strip(), ""]
    return "\n".join(lines)
