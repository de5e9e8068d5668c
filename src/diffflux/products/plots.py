"""Figures of a run, drawn from the product files (so ``diffflux report`` can redraw them at any time).

Each figure function draws one PNG (matplotlib, Agg backend, :data:`DPI` dots per inch), writes it
atomically and returns its path. Maps use plain longitude-latitude axes with coastlines drawn as the 0.5
contour of the packaged land fraction (:func:`diffflux.geography.land_fraction` on a 1-degree grid), so no
map library is needed. Fluxes are shown in the SI prefix of mol m-2 s-1 that suits their magnitude, mole
fractions and residuals in the species' reporting unit (ppm, ppb ...), budgets in their reporting unit.

:func:`make_plots` draws every figure the files in an output folder support; :func:`caption` gives the
one-line caption of a figure from its file name.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from diffflux.products.atomic import ProductError, atomic_write

DPI = 110
PLOTS_DIR = "plots"
N_STATIONS = 6

_PREFIXES = ((1.0, "mol"), (1e-3, "mmol"), (1e-6, "µmol"), (1e-9, "nmol"), (1e-12, "pmol"), (1e-15, "fmol"))
_COLOURS = {"prior": "#7f7f7f", "posterior": "#1f77b4", "truth": "#d62728", "obs": "#000000"}


def plots_available() -> bool:
    """Whether matplotlib (the ``plot`` extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure and its axes (array ``(nrows, ncols)``), made without pyplot: no global figure registry and no
    change of the user's backend; PNGs are rendered by Agg."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ProductError(
            "plots need matplotlib: pip install 'diffflux[plot]' (or pass plots=False)"
        ) from exc
    fig = Figure(figsize=kwargs.pop("figsize"), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})
    return path


def flux_scale(values) -> tuple[float, str]:
    """``(factor, unit)`` that shows fluxes [mol m-2 s-1] as numbers of order 1-1000
    (e.g. ``1e-6, "µmol m-2 s-1"``)."""
    v = np.asarray(values, dtype=np.float64)
    vmax = float(np.nanmax(np.abs(v))) if v.size and np.isfinite(v).any() else 0.0
    for f, p in _PREFIXES:
        if vmax >= f:
            return f, f"{p} m-2 s-1"
    return _PREFIXES[-1][0], f"{_PREFIXES[-1][1]} m-2 s-1"


@functools.cache
def coastline_segments() -> tuple[np.ndarray, ...]:
    """Polylines ``(n, 2)`` [lon, lat degrees] of the 0.5 contour of the packaged land fraction on a 1-degree
    grid (computed once per process)."""
    import contourpy

    from diffflux.geography import land_fraction
    from diffflux.grid import LatLonGrid

    grid = LatLonGrid.from_resolution(1.0, 1.0)
    gen = contourpy.contour_generator(
        grid.lon, grid.lat, np.asarray(land_fraction(grid)), line_type=contourpy.LineType.Separate
    )
    return tuple(gen.lines(0.5))


def _coastlines(ax) -> None:
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(coastline_segments(), colors="k", linewidths=0.6))


def _window_mean(ds: xr.Dataset, name: str) -> np.ndarray:
    from diffflux.products.netcdf import block_weights

    w = block_weights(ds)
    return np.tensordot(w, np.asarray(ds[name].values, dtype=np.float64), axes=(0, 0))


def _edges(ds: xr.Dataset, dim: str) -> np.ndarray:
    b = ds[f"{dim}_bnds"].values
    return np.concatenate([b[:, 0], b[-1:, 1]])


def _period_text(ds: xr.Dataset) -> str:
    b = ds["time_bnds"].values
    return f"{str(b[0, 0])[:10]} to {str(b[-1, 1])[:10]}"


def _map_panels(
    ds: xr.Dataset, panels: Sequence[tuple[str, np.ndarray]], title: str, path: Path, *, diverging: bool
) -> Path:
    """Maps side by side on one colour scale: diverging and symmetric about 0 (``diverging`` or values of
    both signs), else sequential from 0 (a prior fossil or wetland flux)."""
    allv = np.stack([p for _, p in panels])
    f, unit = flux_scale(allv)
    vmax = float(np.nanmax(np.abs(allv))) / f or 1.0
    if not diverging and np.nanmin(allv) >= 0:
        cmap, vmin, extend = "YlOrRd", 0.0, "max"
    elif not diverging and np.nanmax(allv) <= 0:
        cmap, vmin, vmax, extend = "YlGnBu_r", -vmax, 0.0, "min"
    else:
        cmap, vmin, extend = "RdBu_r", -vmax, "both"
    lon_e, lat_e = _edges(ds, "lon"), _edges(ds, "lat")
    fig, axes = _subplots(1, len(panels), figsize=(6.0 * len(panels), 4.3))
    for ax, (label, field) in zip(axes[0], panels):
        mesh = ax.pcolormesh(lon_e, lat_e, field / f, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
        _coastlines(ax)
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90, 90)
        ax.set_aspect("equal")
        ax.set_xticks(range(-180, 181, 60))
        ax.set_yticks(range(-90, 91, 30))
        ax.set_xlabel("longitude [°E]")
        ax.set_ylabel("latitude [°N]")
        ax.set_title(label)
    cb = fig.colorbar(mesh, ax=axes[0].tolist(), location="bottom", shrink=0.6, aspect=40, extend=extend)
    cb.set_label(f"flux [{unit}], + = to the atmosphere")
    fig.suptitle(title)
    return _save(fig, path)


def flux_increment_map(fluxes: xr.Dataset, species: str, component: str, path) -> Path:
    """Window-mean posterior-minus-prior flux of one component; truth-minus-prior beside it in twins."""
    from diffflux.products.netcdf import flux_variables

    roles = flux_variables(fluxes)[(species, component)]
    prior = _window_mean(fluxes, roles["prior"])
    panels = [("posterior − prior", _window_mean(fluxes, roles["posterior"]) - prior)]
    if "truth" in roles:
        panels.append(("truth − prior", _window_mean(fluxes, roles["truth"]) - prior))
    title = f"{species} {component}: flux increment, mean {_period_text(fluxes)}"
    return _map_panels(fluxes, panels, title, path, diverging=True)


def flux_map(fluxes: xr.Dataset, species: str, component: str, path) -> Path:
    """Window-mean prior flux of one component (forward runs, or components the run did not optimise)."""
    from diffflux.products.netcdf import flux_variables

    roles = flux_variables(fluxes)[(species, component)]
    panels = [("prior", _window_mean(fluxes, roles["prior"]))]
    title = f"{species} {component}: flux, mean {_period_text(fluxes)}"
    return _map_panels(fluxes, panels, title, path, diverging=False)


def mixing_ratio_display(species: str) -> tuple[float, str]:
    """``(mol mol-1 per unit, unit)`` of the species' reporting unit (``1e-6, "ppm"`` for CO2)."""
    from diffflux.species import get_species

    try:
        sp = get_species(species)
    except (KeyError, ValueError):
        return 1.0, "mol mol-1"
    return sp.mixing_ratio_scale, sp.mixing_ratio_unit


def busiest_sites(obs: xr.Dataset, species: str, n: int = N_STATIONS) -> list[str]:
    """The ``n`` point-sampling sites with the most records of ``species`` (ties by site name)."""
    sel = (obs["kind"].values.astype(str) == "point") & (obs["species"].values.astype(str) == species)
    sites, counts = np.unique(obs["site"].values.astype(str)[sel], return_counts=True)
    order = sorted(range(sites.size), key=lambda k: (-counts[k], sites[k]))
    return [str(sites[k]) for k in order[:n]]


def station_timeseries(obs: xr.Dataset, species: str, path, n_stations: int = N_STATIONS) -> Path:
    """Observations (dots) and prior/posterior/truth model equivalents (lines) at the busiest sites."""
    sites = busiest_sites(obs, species, n_stations)
    if not sites:
        raise ValueError(f"station_timeseries: no point observations of {species}")
    scale, unit = mixing_ratio_display(species)
    fig, axes = _subplots(len(sites), 1, figsize=(9.0, 1.9 * len(sites) + 0.8), sharex=True)
    sp = obs["species"].values.astype(str)
    st = obs["site"].values.astype(str)
    kind = obs["kind"].values.astype(str)
    for ax, site in zip(axes[:, 0], sites):
        idx = np.flatnonzero((st == site) & (sp == species) & (kind == "point"))
        idx = idx[np.argsort(obs["time"].values[idx], kind="stable")]
        t = obs["time"].values[idx]
        ax.plot(t, obs["y"].values[idx] / scale, "o", ms=3, color=_COLOURS["obs"], label="observed", zorder=3)
        for role in ("prior", "posterior", "truth"):
            if f"model_{role}" in obs:
                ax.plot(
                    t, obs[f"model_{role}"].values[idx] / scale, "-", lw=1.2, color=_COLOURS[role], label=role
                )
        lat, lon = float(obs["latitude"].values[idx[0]]), float(obs["longitude"].values[idx[0]])
        where = f"{abs(lat):.1f}°{'N' if lat >= 0 else 'S'}, {abs(lon):.1f}°{'E' if lon >= 0 else 'W'}"
        ax.set_title(f"{site} ({where}), {idx.size} records", fontsize=9, loc="left")
        ax.set_ylabel(f"{species} [{unit}]")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncol=4)
    axes[-1, 0].set_xlabel("time (UTC)")
    fig.suptitle(f"{species} at the {len(sites)} sites with the most observations")
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator()
    axes[-1, 0].xaxis.set_major_locator(loc)
    axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    return _save(fig, path)


def satellite_residuals(obs: xr.Dataset, path) -> Path:
    """Histograms of observed-minus-model column residuals at the prior and the posterior, per species."""
    col = obs["kind"].values.astype(str) == "column"
    species = sorted(set(obs["species"].values.astype(str)[col]))
    if not species:
        raise ValueError("satellite_residuals: no column observations")
    fig, axes = _subplots(1, len(species), figsize=(6.0 * len(species), 3.8))
    for ax, sp in zip(axes[0], species):
        scale, unit = mixing_ratio_display(sp)
        sel = col & (obs["species"].values.astype(str) == sp)
        res = {
            r: obs[f"residual_{r}"].values[sel] / scale
            for r in ("prior", "posterior")
            if f"residual_{r}" in obs
        }
        allv = np.concatenate(list(res.values()))
        lim = float(np.nanpercentile(np.abs(allv), 99.5)) or 1.0
        bins = np.linspace(-lim, lim, 41)
        for role, r in res.items():
            ax.hist(
                np.clip(r, -lim, lim),
                bins=bins,
                histtype="step",
                lw=1.6,
                color=_COLOURS[role],
                label=f"{role}: mean {np.mean(r):+.2f}, sd {np.std(r):.2f} {unit}",
            )
        ax.axvline(0.0, color="k", lw=0.6)
        ax.set_xlabel(f"observed − model X{sp} [{unit}]")
        ax.set_ylabel("soundings")
        ax.set_title(f"{sp} columns ({int(sel.sum())} soundings)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def convergence(history: dict, path) -> Path:
    """Cost and gradient norm against iteration (log scale)."""
    it = np.asarray(history["iteration"])
    fig, axes = _subplots(1, 2, figsize=(10.0, 3.6))
    axes = axes[0]
    for ax, key, label in ((axes[0], "cost", "cost J [1]"), (axes[1], "grad_norm", "gradient norm |∇J| [1]")):
        if key not in history:
            ax.set_visible(False)
            continue
        v = np.asarray(history[key], dtype=np.float64)
        ax.plot(it, v, "o-", ms=3, lw=1.2)
        if np.all(v[np.isfinite(v)] > 0):
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("cost function")
    axes[1].set_title("gradient norm (whitened control)")
    fig.suptitle("convergence of the minimisation")
    return _save(fig, path)


def budget_bars(rows: Sequence[dict], species: str, path, regions: Sequence[str] | None = None) -> Path:
    """Bars of prior, posterior and truth budgets (+- 1 sigma) per region, one panel per component."""
    from diffflux.products.budgets import main_regions, sort_rows, window_rows

    rows = window_rows([r for r in sort_rows(rows) if str(r["species"]) == species])
    if not rows:
        raise ValueError(f"budget_bars: no budgets of {species}")
    regions = list(regions) if regions is not None else main_regions(rows)
    comps = list(dict.fromkeys(str(r["component"]) for r in rows))
    fig, axes = _subplots(len(comps), 1, figsize=(max(6.0, 1.1 * len(regions) + 2.0), 2.6 * len(comps) + 0.6))
    width = 0.26
    for ax, comp in zip(axes[:, 0], comps):
        by_region = {str(r["region"]): r for r in rows if str(r["component"]) == comp}
        x = np.arange(len(regions))
        for k, role in enumerate(("prior", "posterior", "truth")):
            vals = np.array(
                [np.nan if by_region.get(g, {}).get(role) is None else by_region[g][role] for g in regions],
                dtype=np.float64,
            )
            if np.all(np.isnan(vals)):
                continue
            err = None
            if role != "truth":
                err = np.array(
                    [
                        np.nan
                        if by_region.get(g, {}).get(f"{role}_sigma") is None
                        else by_region[g][f"{role}_sigma"]
                        for g in regions
                    ],
                    dtype=np.float64,
                )
            ax.bar(
                x + (k - 1) * width,
                np.nan_to_num(vals),
                width,
                yerr=err,
                capsize=3,
                color=_COLOURS[role],
                label=role,
                error_kw={"elinewidth": 1.0},
            )
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xticks(x)
        ax.set_xticklabels(regions, rotation=20, ha="right", fontsize=8)
        unit = next((str(r["unit"]) for r in by_region.values()), "")
        ax.set_ylabel(f"[{unit}]")
        ax.set_title(f"{species} {comp}", fontsize=10, loc="left")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, ncol=3)
    r0 = rows[0]
    fig.suptitle(
        f"{species} budgets, {str(r0['period_start'])[:10]} to {str(r0['period_end'])[:10]} "
        f"(error bars: 1 sigma)"
    )
    return _save(fig, path)


def parameter_recovery(rows: Sequence[dict], path) -> Path:
    """Prior and posterior parameters (+- 1 sigma) and the truth, one line per parameter, each in units of
    its prior 1-sigma (so log-multipliers, initial offsets [mol mol-1] and biases share one axis)."""
    names = [str(r["name"]) for r in rows]
    y = np.arange(len(names))[::-1]
    fig, axes = _subplots(figsize=(7.5, 0.32 * len(names) + 1.4))
    ax = axes[0, 0]
    p0 = np.array([np.nan if r.get("prior") is None else r["prior"] for r in rows], dtype=np.float64)
    s0 = np.array(
        [np.nan if r.get("prior_sigma") is None else r["prior_sigma"] for r in rows], dtype=np.float64
    )
    scale = np.where(np.isfinite(s0) & (s0 > 0), s0, 1.0)
    for off, role in ((0.15, "prior"), (-0.15, "posterior")):
        v = np.array([np.nan if r.get(role) is None else r[role] for r in rows], dtype=np.float64)
        s = np.array([np.nan if r.get(f"{role}_sigma") is None else r[f"{role}_sigma"] for r in rows])
        if np.all(np.isnan(v)):
            continue
        ax.errorbar(
            (v - p0) / scale,
            y + off,
            xerr=s / scale,
            fmt="o",
            ms=4,
            capsize=2,
            color=_COLOURS[role],
            label=f"{role} ± 1σ",
        )
    t = np.array([np.nan if r.get("truth") is None else r["truth"] for r in rows], dtype=np.float64)
    if not np.all(np.isnan(t)):
        ax.plot((t - p0) / scale, y, "x", ms=7, mew=2, color=_COLOURS["truth"], label="truth")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("(value − prior) / prior σ  [1]")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("parameter recovery")
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# all figures of an output folder, and their captions
# ------------------------------------------------------------------------------------------------

_CAPTIONS = (
    (
        r"flux_increment_(?P<sp>[^_]+)_(?P<c>.+)\.png",
        "{sp} {c}: window-mean posterior − prior flux (and truth − prior in twins)",
    ),
    (r"flux_(?P<sp>[^_]+)_(?P<c>.+)\.png", "{sp} {c}: window-mean flux (not optimised)"),
    (r"stations_(?P<sp>.+)\.png", "{sp} observations and model equivalents at the sites with the most data"),
    (r"satellite_residuals\.png", "observed − model column residuals at the prior and the posterior"),
    (r"convergence\.png", "cost and gradient norm against iteration"),
    (r"budgets_(?P<sp>.+)\.png", "{sp} regional budgets: prior, posterior (± 1 sigma) and truth"),
    (
        r"parameters\.png",
        "parameter recovery in units of the prior sigma: prior and posterior ± 1 sigma, truth",
    ),
)


def figure_order(path) -> tuple[int, str]:
    """Sort key of figures in the report: maps, stations, satellites, convergence, budgets, parameters."""
    name = Path(path).name
    rank = next(
        (k for k, (pattern, _) in enumerate(_CAPTIONS) if re.fullmatch(pattern, name)), len(_CAPTIONS)
    )
    return rank, name


def caption(path) -> str:
    """One-line caption of a figure from its file name."""
    name = Path(path).name
    for pattern, text in _CAPTIONS:
        m = re.fullmatch(pattern, name)
        if m:
            return text.format(**m.groupdict())
    return name


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def make_plots(outdir: str | os.PathLike) -> list[Path]:
    """Draw every figure the product files in ``outdir`` support into ``outdir/plots``; returns the paths.

    Figures of the previous drawing that this one does not make again are removed, so the folder holds
    exactly the figures of the files on disk.
    """
    from diffflux.products.budgets import read_budgets_csv
    from diffflux.products.netcdf import flux_variables, read_dataset
    from diffflux.products.tables import read_history_csv, read_parameters_csv

    outdir = Path(outdir)
    pdir = outdir / PLOTS_DIR
    pdir.mkdir(exist_ok=True)
    made: list[Path] = []
    if (outdir / "fluxes.nc").exists():
        fluxes = read_dataset(outdir / "fluxes.nc")
        for (sp, comp), roles in flux_variables(fluxes).items():
            if "posterior" in roles:
                made.append(
                    flux_increment_map(
                        fluxes, sp, comp, pdir / f"flux_increment_{_file_part(sp)}_{_file_part(comp)}.png"
                    )
                )
            else:
                made.append(
                    flux_map(fluxes, sp, comp, pdir / f"flux_{_file_part(sp)}_{_file_part(comp)}.png")
                )
    if (outdir / "observations.nc").exists():
        obs = read_dataset(outdir / "observations.nc")
        kind = obs["kind"].values.astype(str)
        for sp in sorted(set(obs["species"].values.astype(str)[kind == "point"])):
            made.append(station_timeseries(obs, sp, pdir / f"stations_{_file_part(sp)}.png"))
        if (kind == "column").any():
            made.append(satellite_residuals(obs, pdir / "satellite_residuals.png"))
    if (outdir / "history.csv").exists():
        hist = read_history_csv(outdir / "history.csv")
        if hist.get("iteration") is not None and hist["iteration"].size:
            made.append(convergence(hist, pdir / "convergence.png"))
    if (outdir / "budgets.csv").exists():
        rows = read_budgets_csv(outdir / "budgets.csv")
        for sp in dict.fromkeys(str(r["species"]) for r in rows):
            made.append(budget_bars(rows, sp, pdir / f"budgets_{_file_part(sp)}.png"))
    if (outdir / "parameters.csv").exists():
        prow = read_parameters_csv(outdir / "parameters.csv")
        if prow:
            made.append(parameter_recovery(prow, pdir / "parameters.png"))
    keep = {p.name for p in made}
    for old in pdir.glob("*.png"):
        if old.name not in keep:
            old.unlink()
    return made
