"""The embedded default run (``diffflux demo``): forward transport on the built-in climatology.

Tracers (no input files; everything is generated):

* **SF6**: emitted at a constant 8.6 Gg/yr (mid-2010s global emission, Simmonds et al. 2020) spread
  uniformly over the 30-60N latitude band, from a uniform 10 ppt start: shows the interhemispheric
  gradient that calibrates the climatology.
* **CH4**: uniform 1900 ppb start with the calibrated first-order loss (OH and stratosphere, lifetime
  9.1 yr); no emissions, so its global chemical sink over the run is reported and must be close to
  ``burden / lifetime`` (about 550-600 Tg/yr). SF6 also has its (3200-yr) sink, so its implied
  lifetime is reported too (meaningful in float64; float32 round-off dominates so slow a loss).
* **CO2**: a 1 PgC pulse released during the first day uniformly over the same NH band, on a
  400 ppm background: it must be conserved exactly and spreads through the atmosphere.

Writes ``<out>/mixing_ratios.nc`` (daily zonal-mean and surface fields, CF-1.8) and
``<out>/summary.json``, and prints a summary.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable

import numpy as np

from diffflux.constants import M_AIR, SECONDS_PER_DAY, SECONDS_PER_YEAR


def _parse_resolution(res: str) -> tuple[float, float]:
    try:
        a, b = res.lower().split("x")
        return float(a), float(b)
    except ValueError:
        raise ValueError(f"--resolution must look like '4x5' (dlat x dlon in degrees), found {res!r}") \
            from None


def run_demo(out: str = "diffflux_out", days: float = 30.0, resolution: str = "4x5",
             levels: str = "L10", float64: bool = False,
             progress: Callable[[str], None] = print) -> dict:
    """Run the demo and write its outputs; returns the summary dict (see module docstring)."""
    import jax

    if float64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from diffflux.grid import LatLonGrid
    from diffflux.io.netcdf import mixing_ratio_dataset
    from diffflux.met.climatology import Climatology
    from diffflux.species import get_species
    from diffflux.transport import HorizontalDiffusion, Transport, check_time_step, run
    from diffflux.transport.chemistry import FirstOrderLoss
    from diffflux.transport.convection import ConvectiveMassFlux

    if days <= 0:
        raise ValueError(f"--days must be positive, found {days}")
    dtype = jnp.float64 if float64 else jnp.float32
    dlat, dlon = _parse_resolution(resolution)
    grid = LatLonGrid.from_resolution(dlat, dlon, levels)
    met = Climatology(grid, dtype=np.dtype(dtype).name)
    names = ["SF6", "CH4", "CO2"]
    species = [get_species(n) for n in names]
    # calibrate the loss rates on the climatology's own annual-mean temperature (k_OH depends on T)
    t_months = np.arange(12) * SECONDS_PER_YEAR / 12
    t_ref = np.mean([np.asarray(met.fields(jnp.asarray(t, dtype)).temperature, dtype=np.float64)
                     for t in t_months], axis=0)
    chem = FirstOrderLoss.for_species(names, grid, temperature_ref=t_ref)
    model = Transport(grid, horizontal_diffusion=HorizontalDiffusion(),
                      convection=ConvectiveMassFlux(), chemistry=chem)
    # time step: 1 h at 4x5 (TM5-like), scaled with the meridional spacing; checked against the
    # Courant limits below (the zonal sweep is semi-Lagrangian and has none)
    dt = 3600.0 * min(1.0, dlat / 4.0)
    steps_per_day = int(round(SECONDS_PER_DAY / dt))
    dt = SECONDS_PER_DAY / steps_per_day
    ndays = int(math.ceil(days))
    nsteps = ndays * steps_per_day

    ps = np.asarray(met.fields(jnp.asarray(0.0, dtype)).ps, dtype=np.float64)
    chi0 = np.zeros((3,) + grid.shape)
    chi0[0] = 10e-12
    chi0[1] = 1900e-9
    chi0[2] = 400e-6
    state = model.initial_state(jnp.asarray(chi0, dtype), jnp.asarray(ps, dtype))
    courant = check_time_step(model, met, state, dt=dt,
                              times=np.linspace(0.0, days * SECONDS_PER_DAY, 5))

    lat = grid.lat
    band = ((lat >= 30.0) & (lat <= 60.0)).astype(np.float64)[:, None] * np.ones(grid.nlon)
    band_area = float((grid.area * band).sum())
    sf6 = get_species("SF6")
    sf6_mol_s = float(sf6.flux_from_reporting(8.6))  # Gg/yr -> mol/s
    co2 = get_species("CO2")
    pulse_mol = float(co2.amount_from_reporting(1.0))  # 1 PgC -> mol CO2
    flux_sf6 = sf6_mol_s * band / band_area
    flux_co2 = (pulse_mol / SECONDS_PER_DAY) * band / band_area
    flux_const = jnp.asarray(np.stack([flux_sf6, 0 * band, 0 * band]), dtype)
    flux_pulse = jnp.asarray(np.stack([0 * band, 0 * band, flux_co2]), dtype)

    def flux_fn(t):
        return flux_const + jnp.where(t < SECONDS_PER_DAY, 1.0, 0.0).astype(dtype) * flux_pulse

    progress(f"diffflux demo: {grid.describe()}, dt={dt:.0f} s, {nsteps} steps ({ndays} days), "
             f"{np.dtype(dtype).name}; max Courant zonal {courant['zonal']:.2f}, meridional "
             f"{courant['meridional']:.2f}, vertical {courant['vertical']:.2f}")

    @jax.jit
    def day_block(s, t0):
        return run(model, met, s, dt=dt, nsteps=steps_per_day, t0=t0, flux=flux_fn)[0]

    m_total0 = np.asarray(state.tracer, dtype=np.float64).sum(axis=(1, 2, 3))
    surface, zonal, times = [], [], []
    t_start = time.perf_counter()
    for d in range(ndays):
        state = day_block(state, jnp.asarray(d * SECONDS_PER_DAY, dtype))
        chi = np.asarray(state.mixing_ratio(), dtype=np.float64)
        surface.append(chi[:, 0])
        w = np.asarray(state.air, dtype=np.float64)
        zonal.append((chi * w[None]).sum(-1) / w.sum(-1)[None])
        times.append((d + 1) * SECONDS_PER_DAY)
        if d == 0 or (d + 1) % max(1, ndays // 10) == 0 or d + 1 == ndays:
            el = time.perf_counter() - t_start
            progress(f"  day {d + 1:4d}/{ndays}  SF6 surface NH-SH "
                     f"{_hemi_diff(grid, chi[0, 0]) * 1e12:6.3f} ppt  [{el:6.1f} s]")
    wall = time.perf_counter() - t_start

    tracer = np.asarray(state.tracer, dtype=np.float64)
    air = np.asarray(state.air, dtype=np.float64)
    totals = tracer.sum(axis=(1, 2, 3))
    T = ndays * SECONDS_PER_DAY
    sf6_added = sf6_mol_s * T
    co2_added = pulse_mol
    sf6_loss = (m_total0[0] + sf6_added - totals[0]) / T  # mol/s destroyed by the (slow) sink
    co2_err = (totals[2] - m_total0[2] - co2_added) / (m_total0[2] + co2_added)
    ch4 = get_species("CH4")
    ch4_loss_rate = (m_total0[1] - totals[1]) / T  # mol/s
    ch4_burden = 0.5 * (m_total0[1] + totals[1])
    summary = {
        "grid": grid.describe(), "dtype": np.dtype(dtype).name, "dt_s": dt, "steps": nsteps,
        "days": ndays, "courant": courant, "wall_seconds": wall,
        "steps_per_second": nsteps / wall,
        "sf6_surface_nh_minus_sh_ppt": _hemi_diff(grid, surface[-1][0]) * 1e12,
        "sf6_implied_lifetime_yr": float(0.5 * (m_total0[0] + totals[0]) / sf6_loss
                                         / SECONDS_PER_YEAR) if sf6_loss > 0 else float("inf"),
        "co2_pulse_budget_relative_error": co2_err,
        "ch4_chemical_sink_Tg_per_yr": float(ch4.flux_to_reporting(ch4_loss_rate)),
        "ch4_implied_lifetime_yr": float(ch4_burden / ch4_loss_rate / SECONDS_PER_YEAR),
        "air_mass_relative_change": float(air.sum() / np.asarray(grid.air_mass(ps)).sum() - 1.0),
    }
    os.makedirs(out, exist_ok=True)
    surf = np.stack(surface)[:, :, None]  # (time, tracer, 1, lat, lon)
    ds = mixing_ratio_dataset(
        grid, surf, names, times=times, level_index=[0],
        scale=[s.mixing_ratio_scale for s in species],
        units=[s.mixing_ratio_unit for s in species],
        attrs={"title": "diffflux demo: surface mixing ratios (daily, end of day)",
               "history": f"diffflux demo --days {days} --resolution {resolution} --levels {levels}"},
    )
    zm = np.stack(zonal)  # (time, tracer, level, lat)
    for k, s in enumerate(species):
        ds[f"{s.name}_zonal_mean"] = (("time", "level_all", "lat"), zm[:, k] * s.mixing_ratio_scale,
                                      {"units": s.mixing_ratio_unit,
                                       "long_name": f"{s.name} mass-weighted zonal-mean mole fraction"})
    ds["level_all"] = ("level_all", np.arange(grid.nlev), {"long_name": "model level, 0 at surface"})
    path = os.path.join(out, "mixing_ratios.nc")
    ds.to_netcdf(path)
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    progress(f"wrote {path} and {os.path.join(out, 'summary.json')}")
    for key in ("sf6_surface_nh_minus_sh_ppt", "sf6_implied_lifetime_yr",
                "co2_pulse_budget_relative_error", "ch4_chemical_sink_Tg_per_yr",
                "ch4_implied_lifetime_yr", "wall_seconds", "steps_per_second"):
        progress(f"  {key:34s} {summary[key]:.4g}")
    return summary


def _hemi_diff(grid, field2d) -> float:
    """Area-weighted mean over the northern minus the southern hemisphere of a ``(nlat, nlon)`` field."""
    a = grid.area
    n = grid.lat > 0
    return float((field2d[n] * a[n]).sum() / a[n].sum() - (field2d[~n] * a[~n]).sum() / a[~n].sum())


__all__ = ["run_demo", "M_AIR"]
