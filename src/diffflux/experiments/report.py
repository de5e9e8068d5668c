"""Reporting of sensitivity experiments (NumPy/xarray/matplotlib; after the differentiable chain).

Tables are lists of dicts in reporting units (:mod:`diffflux.species`: ppm/ppb/ppt, PgC/yr, TgCH4/yr,
Gg/yr, PgC, Tg, Gg), written as CSV and Markdown; fields as CF netCDF; maps as PNG (Agg backend).

**Detectability** of a scenario at a station (when ``[posterior]`` gives uncertainties): the signal is
the mean change over the station's afternoon records (12-16 local solar time, what inversions assimilate);
the record uncertainty ``sigma`` is the given observation-space posterior 1-sigma (optionally with the
site-class model-data mismatch of :class:`~diffflux.inversion.ObservationError` added in quadrature);
record errors are taken as fully correlated within ``independent_hours`` (blocks of local solar time) and
independent between such blocks, so the mean over ``n`` blocks has ``sigma / sqrt(n)``. The signal is
*detectable* when ``|mean| >= threshold x sigma / sqrt(n)``; ``blocks_above`` counts blocks whose own mean
change exceeds ``threshold x sigma``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from diffflux.constants import SECONDS_PER_YEAR
from diffflux.species import get_species


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v == 0 or not math.isfinite(v):
            return f"{v:g}"
        return f"{v:.4g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (``columns`` default: the keys of the first row)."""
    if not rows:
        return "(none)\n"
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


ROUND_OFF = 1e-12
"""Changes below this fraction of the baseline's magnitude are round-off (the batched and the baseline
runs may round differently in the last bit), not a response."""


def touched(delta, base) -> bool:
    """Whether ``delta`` exceeds round-off relative to ``base`` (arrays)."""
    return bool(np.max(np.abs(delta)) > ROUND_OFF * max(float(np.max(np.abs(base))), 1e-300))


def safe_name(name: str) -> str:
    """A name usable for netCDF variables and file names (``HFC-134a`` -> ``HFC_134a``)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


# -------------------------------------------------------------------------------------------------
# tables
# -------------------------------------------------------------------------------------------------


def budget_rows(setting, scenarios, base, batch, regions, share: str) -> list[dict]:
    """Change of the window-mean flux per scenario, species and region (``regions``: names; masks with
    ``share``), in the species' unit per year, and the amount over the window.

    ``change`` weights the change with the region's mask on the model grid: the national budget a
    mask-based inventory or inversion would report. ``total_change`` is the change over the globe, i.e.
    everything the scenario did: for a scenario confined to a region, the change it made there. On a
    coarse grid the two differ because a country's cells also hold other countries' land (the change of
    a coastal cell is spread over the whole cell, and the mask counts the country's share of it)."""
    from diffflux.regions import budget

    duration = setting.nsteps * setting.dt
    out = []
    dF = np.asarray(batch["flux_mean"]) - np.asarray(base["flux_mean"])[None]
    for s, scn in enumerate(scenarios):
        for tr, sp in enumerate(setting.tracers):
            if not touched(dF[s, tr], np.asarray(base["flux_mean"])[tr]):
                continue
            kw = {} if share == "area" else {"share": share}
            b0 = budget(np.asarray(base["flux_mean"])[tr], setting.grid, sp, list(regions), **kw)
            b = budget(dF[s, tr], setting.grid, sp, list(regions), **kw)
            total = float(budget(dF[s, tr], setting.grid, sp, "globe").total[0, 0])
            unit = get_species(sp)
            for i, r in enumerate(b.regions):
                out.append(
                    {
                        "scenario": scn.name,
                        "species": sp,
                        "region": r,
                        "baseline": float(b0.total[i, 0]),
                        "change": float(b.total[i, 0]),
                        "total_change": total,
                        "unit": b.unit,
                        "change_over_window": float(b.total[i, 0]) * duration / SECONDS_PER_YEAR,
                        "amount_unit": unit.amount_unit,
                    }
                )
    return out


def burden_rows(setting, scenarios, base, batch, air_mol: float) -> list[dict]:
    """Change of the global burden at the end of the window (and as a global-mean mole fraction)."""
    out = []
    d = np.asarray(batch["burden"]) - np.asarray(base["burden"])[None]
    for s, scn in enumerate(scenarios):
        for tr, sp in enumerate(setting.tracers):
            spc = get_species(sp)
            if not touched(d[s, tr], np.asarray(base["burden"])[tr]):  # a tracer the scenario does not touch
                continue
            out.append(
                {
                    "scenario": scn.name,
                    "species": sp,
                    "change": float(spc.amount_to_reporting(d[s, tr])),
                    "unit": spc.amount_unit,
                    "global_mean_change": float(spc.to_reporting_mixing_ratio(d[s, tr] / air_mol)),
                    "mixing_ratio_unit": spc.mixing_ratio_unit,
                }
            )
    return out


def _record_sigma(table, posterior, kind: str) -> np.ndarray:
    """Per-record 1-sigma [mol mol-1] from ``[posterior]`` (NaN where none is given)."""
    site = table["site"].values.astype(str)
    species = table["species"].values.astype(str)
    sig = np.full(site.size, np.nan)
    for i, (s, sp) in enumerate(zip(site, species)):
        if kind == "column":
            sig[i] = posterior.column_sigma.get(sp, np.nan)
        else:
            sig[i] = posterior.station_sigma.get(s, {}).get(sp, posterior.sigma.get(sp, np.nan))
    if posterior.include_mismatch:
        from diffflux.inversion import ObservationError

        mdm = np.asarray(ObservationError.from_table(table, measurement=False).sigma)
        sig = np.sqrt(sig**2 + mdm**2)
    return sig


def station_rows(setting, scenarios, table, base, batch, posterior=None) -> list[dict]:
    """Signals at the stations per scenario and species (see the module docstring for detectability)."""
    from diffflux.experiments.metrics import AFTERNOON
    from diffflux.observations import local_solar_hour

    point = table["kind"].values.astype(str) == "point"
    site = table["site"].values.astype(str)
    species = table["species"].values.astype(str)
    time = table["time"].values.astype("datetime64[s]")
    lon = table["longitude"].values
    lst = local_solar_hour(time, lon)
    aft = (lst >= AFTERNOON[0]) & (lst < AFTERNOON[1])
    dy = np.asarray(batch["y"]) - np.asarray(base["y"])[None]
    sigma = _record_sigma(table, posterior, "point") if posterior is not None else None
    block_s = (posterior.independent_hours if posterior is not None else 24.0) * 3600.0
    out = []
    for s, scn in enumerate(scenarios):
        for st in setting.stations:
            for sp in setting.tracers:
                sel = point & (site == st) & (species == sp)
                if not sel.any():
                    continue
                spc = get_species(sp)
                if not touched(dy[s, sel], np.asarray(base["y"])[sel]):
                    continue
                d = spc.to_reporting_mixing_ratio(dy[s, sel])
                a = sel & aft
                da = spc.to_reporting_mixing_ratio(dy[s, a])
                k = int(np.argmax(np.abs(d)))
                row = {
                    "scenario": scn.name,
                    "station": st,
                    "species": sp,
                    "unit": spc.mixing_ratio_unit,
                    "mean_change": float(d.mean()),
                    "afternoon_mean_change": float(da.mean()) if da.size else float("nan"),
                    "max_abs_change": float(abs(d[k])),
                    "time_of_max": str(time[sel][k]),
                }
                if sigma is not None and da.size and np.isfinite(sigma[a]).all():
                    sig = float(spc.to_reporting_mixing_ratio(sigma[a].mean()))
                    # blocks of local solar time, so that one afternoon never straddles two blocks
                    t_local = (time[a] - setting.start) / np.timedelta64(1, "s") + lon[a] / 15.0 * 3600.0
                    blocks = (t_local // block_s).astype(int)
                    ub, inv = np.unique(blocks, return_inverse=True)
                    bmeans = np.bincount(inv, da) / np.bincount(inv)
                    sig_mean = sig / math.sqrt(ub.size)
                    z = abs(row["afternoon_mean_change"]) / sig_mean
                    row.update(
                        {
                            "sigma": sig,
                            "n_blocks": int(ub.size),
                            "sigma_of_mean": sig_mean,
                            "z": z,
                            "detectable": bool(z >= posterior.threshold),
                            "blocks_above": int(np.sum(np.abs(bmeans) >= posterior.threshold * sig)),
                        }
                    )
                out.append(row)
    return out


def column_rows(setting, scenarios, table, base, batch, posterior=None) -> list[dict]:
    """Changes of the satellite-like columns per scenario and species."""
    col = table["kind"].values.astype(str) == "column"
    if not col.any():
        return []
    species = table["species"].values.astype(str)
    dy = np.asarray(batch["y"]) - np.asarray(base["y"])[None]
    sigma = _record_sigma(table, posterior, "column") if posterior is not None else None
    out = []
    for s, scn in enumerate(scenarios):
        for sp in setting.tracers:
            sel = col & (species == sp)
            if not sel.any():
                continue
            if not touched(dy[s, sel], np.asarray(base["y"])[sel]):
                continue
            spc = get_species(sp)
            d = spc.to_reporting_mixing_ratio(dy[s, sel])
            row = {
                "scenario": scn.name,
                "species": sp,
                "unit": spc.mixing_ratio_unit,
                "soundings": int(sel.sum()),
                "mean_change": float(d.mean()),
                "max_abs_change": float(np.abs(d).max()),
            }
            if sigma is not None and np.isfinite(sigma[sel]).all():
                sig = spc.to_reporting_mixing_ratio(sigma[sel])
                row.update(
                    {
                        "sigma": float(sig.mean()),
                        "soundings_above": int(np.sum(np.abs(d) >= posterior.threshold * sig)),
                    }
                )
            out.append(row)
    return out


def linear_rows(scenarios, metrics, base_metrics, small, full, lin, alpha, param_route=None) -> list[dict]:
    """Forward changes at amplitude ``alpha`` and 1 next to the gradients' prediction (reporting units).

    ``param_route`` optional ``{scenario index: (nm,) prediction per unit amplitude}`` from the parameter
    gradients (global parameter changes over the whole window)."""
    out = []
    base_metrics = np.asarray(base_metrics)
    for s, scn in enumerate(scenarios):
        for k, m in enumerate(metrics):
            scale, unit = m.reporting()
            fs = (small[s, k] - base_metrics[k]) * scale
            ff = (full[s, k] - base_metrics[k]) * scale
            ps, pf = alpha * lin[s, k] * scale, lin[s, k] * scale
            floor = ROUND_OFF * abs(base_metrics[k] * scale)
            row = {
                "scenario": scn.name,
                "metric": m.name,
                "unit": unit,
                "amplitude": alpha,
                "forward_small": fs,
                "adjoint_small": ps,
                "rel_diff_small": _rel(fs, ps, floor),
                "forward_full": ff,
                "adjoint_full": pf,
                "rel_diff_full": _rel(ff, pf, floor),
            }
            if param_route is not None and s in param_route:
                row["adjoint_full_via_parameters"] = float(param_route[s][k] * scale)
            out.append(row)
    return out


def _rel(a: float, b: float, floor: float = 0.0) -> float:
    """``|a - b| / max(|a|, |b|)``; 0 when both are within ``floor`` (round-off) of zero."""
    a, b = float(a), float(b)
    if a == b or max(abs(a), abs(b)) <= floor:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def parameter_rows(sens, metrics, top: int | None = None) -> list[dict]:
    """Ranked parameter sensitivities of every metric: ``dm / d ln p`` and the change for +10 %."""
    out = []
    for k, m in enumerate(metrics):
        scale, unit = m.reporting()
        rows = sens.parameter_rows(k)
        for r in rows[:top] if top else rows:
            out.append(
                {
                    "metric": m.name,
                    "rank": r["rank"],
                    "parameter": r["parameter"],
                    "pft": r["pft"],
                    "dm_dlnp": r["gradient"] * scale,
                    "change_for_+10%": r["gradient"] * math.log(1.1) * scale,
                    "unit": unit,
                }
            )
    return out


# -------------------------------------------------------------------------------------------------
# files
# -------------------------------------------------------------------------------------------------


def scenarios_dataset(setting, scenarios, table, base, batch):
    """CF dataset of the scenario changes: window-mean flux and end-of-window surface mixing-ratio maps,
    station records and column soundings."""
    import xarray as xr

    from diffflux.io import grid_coords

    grid = setting.grid
    coords = {k: v for k, v in grid_coords(grid).items() if k in ("lat", "lon")}
    coords["scenario"] = ("scenario", [s.name for s in scenarios])
    data = {}
    for tr, sp in enumerate(setting.tracers):
        n = safe_name(sp)
        data[f"d_flux_{n}"] = (
            ("scenario", "lat", "lon"),
            np.asarray(batch["flux_mean"])[:, tr] - np.asarray(base["flux_mean"])[tr][None],
            {
                "units": "mol m-2 s-1",
                "long_name": f"change of the window-mean {sp} surface flux (positive = to the atmosphere)",
            },
        )
        data[f"d_surface_{n}"] = (
            ("scenario", "lat", "lon"),
            np.asarray(batch["surface"])[:, tr] - np.asarray(base["surface"])[tr][None],
            {
                "units": "mol mol-1",
                "long_name": f"change of the {sp} dry-air mole fraction of the surface layer at the end",
            },
        )
    data["d_y"] = (
        ("scenario", "obs"),
        np.asarray(batch["y"]) - np.asarray(base["y"])[None],
        {
            "units": "mol mol-1",
            "long_name": "change of the model equivalents (stations: point "
            "mole fraction; satellite: column average)",
        },
    )
    obs = {
        "time": ("obs", table["time"].values),
        "site": ("obs", table["site"].values.astype(str)),
        "species": ("obs", table["species"].values.astype(str)),
        "kind": ("obs", table["kind"].values.astype(str)),
        "obs_lat": ("obs", table["latitude"].values),
        "obs_lon": ("obs", table["longitude"].values),
    }
    ds = xr.Dataset(data, coords={**coords, **obs})
    ds["cell_area"] = (("lat", "lon"), grid.area, {"units": "m2", "standard_name": "cell_area"})
    ds.attrs.update(
        {
            "Conventions": "CF-1.8",
            "source": "diffflux sensitivity experiments",
            "grid": grid.describe(),
            "window": f"{setting.start} .. {setting.end}",
            "description": "scenario minus baseline",
        }
    )
    return ds


def footprints_dataset(setting, metrics, sens, block_hours: float):
    """CF dataset of the footprints of every metric (its species' tracer): per time block and over the
    window."""
    import xarray as xr

    from diffflux.io import grid_coords

    grid = setting.grid
    spb = max(1, int(round(block_hours * 3600.0 / setting.dt)))
    starts = setting.step_edges[:-1][::spb]
    coords = {k: v for k, v in grid_coords(grid).items() if k in ("lat", "lon")}
    coords["block_start"] = ("block", starts.astype("datetime64[ns]"))
    data = {}
    for k, m in enumerate(metrics):
        tr = setting.tracers.index(get_species(m.species).name)
        n = safe_name(m.name)
        attrs = {
            "units": m.footprint_unit,
            "metric": m.describe(),
            "metric_units": m.si_unit,
            "metric_value": float(sens.values[k]),
        }
        data[f"footprint_{n}"] = (
            ("block", "lat", "lon"),
            sens.footprint(k, tr, spb),
            {
                **attrs,
                "long_name": f"d({m.name}) / d(surface flux of {m.species}) held over each block of "
                f"{spb * setting.dt / 3600:g} h",
            },
        )
        data[f"footprint_{n}_window"] = (
            ("lat", "lon"),
            sens.window_footprint(k, tr),
            {**attrs, "long_name": f"d({m.name}) / d(surface flux of {m.species}) held over the window"},
        )
    ds = xr.Dataset(data, coords=coords)
    ds["cell_area"] = (("lat", "lon"), grid.area, {"units": "m2", "standard_name": "cell_area"})
    ds.attrs.update(
        {
            "Conventions": "CF-1.8",
            "source": "diffflux adjoint sensitivities",
            "grid": grid.describe(),
            "window": f"{setting.start} .. {setting.end}",
        }
    )
    return ds


def _coastlines(ax) -> None:
    from diffflux.geography import land_raster

    land = land_raster()
    step = max(1, land.shape[0] // 360)  # aggregate to 0.5 degree for a light contour
    coarse = (
        land[: land.shape[0] // step * step, : land.shape[1] // step * step]
        .reshape(land.shape[0] // step, step, land.shape[1] // step, step)
        .mean(axis=(1, 3))
    )
    lat = -90 + (np.arange(coarse.shape[0]) + 0.5) * 180.0 / coarse.shape[0]
    lon = -180 + (np.arange(coarse.shape[1]) + 0.5) * 360.0 / coarse.shape[1]
    ax.contour(lon, lat, coarse, levels=[0.5], colors="k", linewidths=0.4)


def map_png(
    path: Path,
    grid,
    field,
    title: str,
    unit: str,
    *,
    symmetric: bool = True,
    log: bool = False,
    points=(),
    extent=None,
) -> None:
    """A lat-lon map of ``field`` ``(nlat, nlon)`` with coastlines (Agg backend): a diverging scale
    symmetric about 0, or (``log``) a log scale over four decades below the maximum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    f = np.asarray(field)
    vmax = float(np.abs(f).max()) or 1.0
    if log:
        from matplotlib.colors import LogNorm

        top = float(np.max(f))
        f = np.where(f >= 1e-4 * top, f, np.nan)  # blank below four decades under the maximum
        kw = {"cmap": "viridis", "norm": LogNorm(vmin=1e-4 * top, vmax=top)}
    elif symmetric:
        kw = {"cmap": "RdBu_r", "vmin": -vmax, "vmax": vmax}
    else:
        kw = {"cmap": "viridis"}
    mesh = ax.pcolormesh(grid.lon_edges, grid.lat_edges, f, shading="flat", **kw)
    _coastlines(ax)
    for name, lat, lon in points:
        ax.plot(lon, lat, "k*", ms=8)
        ax.annotate(name, (lon, lat), xytext=(3, 3), textcoords="offset points", fontsize=8)
    if extent:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("longitude [deg E]")
    ax.set_ylabel("latitude [deg N]")
    ax.set_title(title, fontsize=10)
    fig.colorbar(mesh, ax=ax, label=unit, shrink=0.85)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(obj, path: Path) -> None:
    def default(x):
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
        return str(x)

    path.write_text(json.dumps(obj, indent=2, default=default) + "\n", encoding="utf-8")
