"""Shared helpers of the benchmarks: machine description, JSON output, benchmark met and states.

The benchmark met is *realistic in structure and cost*: divergent winds with jets, trades, a
time-varying cross-polar flow (zonal Courant numbers > 1 next to the poles), a divergent overturning
and travelling waves, a diurnal boundary-layer Kz profile and a temperature field. It is sampled at
met times every ``MET_INTERVAL`` seconds and fed to the transport through
:class:`diffflux.met.InterpolatedMet`, i.e. every step reads and interpolates two met snapshots,
exactly as a run driven by met files does. When ``diffflux.met.climatology.Climatology`` is
available the snapshots are taken from the built-in climatology instead (see :func:`benchmark_met`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from diffflux.grid import LatLonGrid  # noqa: E402
from diffflux.met import InterpolatedMet, MetFields, mass_fluxes_from_winds  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_RESULTS = BENCH_DIR / "results"

MET_INTERVAL = 3 * 3600.0
"""Spacing of the benchmark met snapshots [s] (3-hourly, like reanalysis mass fluxes)."""

DEFAULT_DT = {"4x5": 1800.0, "2x2.5": 900.0, "1x1": 600.0, "0.5x0.5": 300.0}
"""Transport time step per resolution [s] (GEOS-Chem-like); halved if a Courant check fails."""


# ------------------------------------------------------------------------------------------------
# machine description and output
# ------------------------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict:
    """CPU model, cores, RAM, cache, library versions, JAX backend and devices, date (UTC), load."""
    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    meminfo = _read("/proc/meminfo")
    mem_kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal")), 0)
    caches = {}
    for idx in range(8):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{idx}"
        level, kind, size = (
            _read(base + "/level").strip(),
            _read(base + "/type").strip(),
            _read(base + "/size").strip(),
        )
        if level:
            caches[f"L{level}{'' if kind == 'Unified' else kind[0].lower()}"] = size
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        affinity = os.cpu_count()
    import subprocess

    import jaxlib

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    devices = jax.devices()
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "cpus_available": affinity,
        "ram_gib": round(mem_kb / 2**20, 1),
        "caches": caches,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in devices],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_commit": commit or "unknown",
        "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, payload: dict, outdir: Path) -> Path:
    """Write ``payload`` plus machine info to ``outdir/name.json`` atomically; return the path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "machine": machine_info(), **payload}
    path = outdir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def log(msg: str) -> None:
    """Progress line on stderr (the JSON files hold the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(fn, *args, reps: int = 3, warmup: int = 1):
    """Run ``fn(*args)`` (blocking on its outputs) ``warmup`` then ``reps`` times.

    Returns ``(best_seconds, all_seconds, last_output)``.
    """
    out = None
    for _ in range(warmup):
        out = jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return min(times), times, out


def compile_timed(fn, *args):
    """``jax.jit(fn).lower(*args).compile()`` and its wall time [s]: ``(compiled, seconds)``."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def memory_stats(compiled) -> dict:
    """XLA's compile-time buffer assignment of a compiled function [bytes]."""
    ma = compiled.memory_analysis()
    if ma is None:
        return {}
    keys = (
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "alias_size_in_bytes",
        "temp_size_in_bytes",
        "generated_code_size_in_bytes",
        "peak_memory_in_bytes",
    )
    return {k: int(getattr(ma, k)) for k in keys if hasattr(ma, k)}


# ------------------------------------------------------------------------------------------------
# grids, met and states
# ------------------------------------------------------------------------------------------------


def parse_grid(spec: str) -> tuple[str, LatLonGrid]:
    """``"4x5L10"`` -> (``"4x5"``, grid of 4 deg lat x 5 deg lon with the L10 levels)."""
    res, levels = spec.upper().split("L")
    dlat, dlon = (float(v) for v in res.lower().split("x"))
    return res.lower(), LatLonGrid.from_resolution(dlat, dlon, f"L{levels}")


def _column_neutral_profile(grid: LatLonGrid, shape_fn) -> np.ndarray:
    """Vertical profile ``(nlev,)`` from ``shape_fn(sigma_mid)`` made orthogonal to ``da`` and
    ``db``.

    Then ``sum_k f_k dp_k = 0`` for every surface pressure, so a wind ``v f_k`` carries no net
    column mass: the overturning and the waves are divergent level by level but leave ``ps``
    unchanged.
    """
    lev = grid.levels
    sig = lev.reference_pressures() / 1.0e5
    g = shape_fn(sig)
    A = np.stack([lev.a[:-1] - lev.a[1:], lev.b[:-1] - lev.b[1:]], axis=1)
    coef, *_ = np.linalg.lstsq(A, g, rcond=None)
    return g - A @ coef


def analytic_met_snapshot(grid: LatLonGrid, t: float) -> dict[str, np.ndarray]:
    """Analytic met at time ``t`` [s]: ``ps, mfx, mfy, kz, temperature`` as float64 NumPy arrays.

    Winds [m s-1] at cell centres (lat ``phi``, lon ``lam``, reference sigma ``s`` of the level):

    * jets ``35 h(s) [exp(-((phi - 40)/12)^2) + exp(-((phi + 45)/12)^2)]`` (degrees), ``h`` peaking
      at 250 hPa, and trades ``-7 exp(-(phi/15)^2)`` near the surface;
    * a solid-body rotation of 8 m s-1 about an axis tilted 50 degrees from the pole whose azimuth
      turns once in 5 days (cross-polar, time-varying: zonal Courant numbers above 1 next to the
      poles);
    * a divergent overturning ``v = 3 sin(2 (phi - phi_itcz)) cos(phi) f(s)`` and a travelling
      wavenumber-3 wave (6 and 3 m s-1) with column-neutral profiles ``f`` (no surface-pressure
      drift).

    Face mass fluxes from :func:`diffflux.met.mass_fluxes_from_winds` at a uniform ``ps = 1000 hPa``
    (divergent at the discrete level, as winds averaged to faces are). Kz [m2 s-1] at interfaces:
    ``300 (z/h)(1 - z/h)^2`` inside a boundary layer of height ``h = 300 + 1200 max(0, -cos(local
    solar time))`` m plus 1 m2 s-1 above; ``z = 7.5 km ln(1000 hPa / p)``. Temperature
    ``max(300 - 45 sin^2(phi) - 6.5 K/km z, 210)`` K.
    """
    lev = grid.levels
    phi = np.deg2rad(grid.lat)[None, :, None]
    lam = np.deg2rad(grid.lon)[None, None, :]
    sig = (lev.reference_pressures() / 1.0e5)[:, None, None]
    deg = math.pi / 180.0
    h_jet = 0.3 + 0.7 * np.exp(-(((sig - 0.25) / 0.2) ** 2))
    u = (
        35.0
        * h_jet
        * (np.exp(-(((phi - 40 * deg) / (12 * deg)) ** 2)) + np.exp(-(((phi + 45 * deg) / (12 * deg)) ** 2)))
    )
    u = u - 7.0 * np.exp(-((phi / (15 * deg)) ** 2)) * np.exp(-(((sig - 1.0) / 0.25) ** 2))
    # tilted solid-body rotation (non-divergent on the sphere), axis azimuth turning in 5 days
    alpha, u0 = 50 * deg, 8.0
    az = 2 * math.pi * t / (5 * 86400.0)
    u = u + u0 * (np.cos(phi) * math.cos(alpha) + np.sin(phi) * np.cos(lam - az) * math.sin(alpha))
    v = -u0 * np.sin(lam - az) * math.sin(alpha) + 0.0 * sig
    # divergent, column-neutral overturning and wave
    f1 = _column_neutral_profile(grid, lambda s: np.cos(math.pi * (1.0 - s)))[:, None, None]
    f2 = _column_neutral_profile(grid, lambda s: np.sin(math.pi * (1.0 - s)))[:, None, None]
    phi_itcz = 8 * deg * math.sin(2 * math.pi * t / (365.25 * 86400.0))
    v = v + 3.0 * np.sin(2 * (phi - phi_itcz)) * np.cos(phi) * f1
    wave = 3 * lam - 2 * math.pi * t / (2 * 86400.0)
    u = u + 6.0 * np.cos(phi) * np.sin(wave) * f2
    v = v + 3.0 * np.cos(phi) * np.cos(wave) * f2
    shape = grid.shape
    u = np.broadcast_to(u, shape)
    v = np.broadcast_to(v, shape)
    ps = np.full((grid.nlat, grid.nlon), 1.0e5)
    mfx, mfy = mass_fluxes_from_winds(grid, jnp.asarray(u), jnp.asarray(v), jnp.asarray(ps))

    p_int = lev.interfaces(ps)  # (nlev + 1, nlat, nlon)
    z = 7500.0 * np.log(1.0e5 / np.maximum(p_int, 1.0))
    lst = 2 * math.pi * t / 86400.0 + lam  # local solar time angle, noon at pi
    h_bl = 300.0 + 1200.0 * np.maximum(0.0, -np.cos(lst))
    x = z / h_bl
    kz = np.where(x < 1.0, 300.0 * x * (1.0 - x) ** 2, 0.0) + 1.0
    zm = 0.5 * (z[:-1] + z[1:])
    temperature = np.maximum(300.0 - 45.0 * np.sin(phi) ** 2 - 6.5e-3 * zm, 210.0)
    return {
        "ps": ps,
        "mfx": np.asarray(mfx, dtype=np.float64),
        "mfy": np.asarray(mfy, dtype=np.float64),
        "kz": np.broadcast_to(kz, (grid.nlev + 1, grid.nlat, grid.nlon)).copy(),
        "temperature": np.broadcast_to(temperature, shape).copy(),
    }


def _climatology_snapshots(grid: LatLonGrid, times) -> tuple[list | None, str]:
    """Snapshots from ``diffflux.met.climatology.Climatology`` if it exists and can be built."""
    try:
        from diffflux.met.climatology import Climatology  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001 - any failure means: not available yet
        return (
            None,
            f"diffflux.met.climatology.Climatology not available ({type(exc).__name__}: {exc})",
        )
    errors = []
    for build in (lambda: Climatology(grid), lambda: Climatology(grid=grid)):
        try:
            source = build()
            snaps = []
            for t in times:
                f = source.fields(jnp.asarray(t, dtype=jnp.float64))
                snap = {
                    "ps": np.asarray(f.ps, dtype=np.float64),
                    "mfx": np.asarray(f.mfx, dtype=np.float64),
                    "mfy": np.asarray(f.mfy, dtype=np.float64),
                }
                if f.kz is not None:
                    snap["kz"] = np.asarray(f.kz, dtype=np.float64)
                if f.temperature is not None:
                    snap["temperature"] = np.asarray(f.temperature, dtype=np.float64)
                expected = {"mfx": grid.shape, "mfy": (grid.nlev, grid.nlat + 1, grid.nlon)}
                for k, shp in expected.items():
                    if snap[k].shape != shp:
                        raise ValueError(f"{k} shape {snap[k].shape}, expected {shp}")
                snaps.append(snap)
            used = ", ".join(k for k in MET_KEYS if k in snaps[0])
            return snaps, f"diffflux.met.climatology.Climatology (snapshots of {used})"
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
    return None, "Climatology present but unusable here (" + "; ".join(errors)[:300] + ")"


def benchmark_met(grid: LatLonGrid, duration: float, source: str = "auto"):
    """Met snapshots every :data:`MET_INTERVAL` covering ``[0, duration]`` [s].

    Args:
        source: ``"auto"`` (climatology if available, else analytic), ``"analytic"`` or
            ``"climatology"`` (error if unavailable).

    Returns:
        ``(times (nt,), snapshots list of dicts, description)``; float64 NumPy arrays.
    """
    nt = max(2, int(math.ceil(duration / MET_INTERVAL)) + 1)
    times = np.arange(nt) * MET_INTERVAL
    if source in ("auto", "climatology"):
        snaps, desc = _climatology_snapshots(grid, times)
        if snaps is not None:
            return times, snaps, desc
        if source == "climatology":
            raise RuntimeError(desc)
        fallback = f"analytic jets + cross-polar flow + divergent overturning/waves; {desc}"
    else:
        fallback = "analytic jets + cross-polar flow + divergent overturning/waves"
    return times, [analytic_met_snapshot(grid, float(t)) for t in times], fallback


MET_KEYS = ("ps", "mfx", "mfy", "kz", "temperature")


def jax_met(times, snaps, dtype) -> InterpolatedMet:
    """:class:`InterpolatedMet` of the snapshots in ``dtype`` (absent fields: None)."""
    stack = {k: jnp.asarray(np.stack([s[k] for s in snaps]), dtype=dtype) for k in MET_KEYS if k in snaps[0]}
    return InterpolatedMet(times=jnp.asarray(times, dtype=dtype), stack=MetFields(**stack))


def numpy_met(times, snaps, dtype):
    """The same met for :mod:`benchmarks.numpy_reference`."""
    from benchmarks.numpy_reference import NumpyInterpolatedMet

    stack = {
        k: np.stack([s[k] for s in snaps]).astype(dtype)
        for k in ("mfx", "mfy", "kz", "temperature")
        if k in snaps[0]
    }
    return NumpyInterpolatedMet(times=np.asarray(times, dtype=dtype), fields_stack=stack)


def initial_mixing_ratio(grid: LatLonGrid, ntracer: int = 1) -> np.ndarray:
    """A CO2-like field ``(ntracer, nlev, nlat, nlon)`` [mol mol-1] with gradients and sharp
    features.

    ``400 ppm (1 + 0.02 tanh(lat / 20 deg))`` plus a Gaussian plume and a slotted block of +10 ppm
    in the lowest third of the levels (tracer ``i`` shifted by ``60 i`` degrees), so that the
    limiters act.
    """
    lat = grid.lat[None, :, None]
    lon = grid.lon[None, None, :]
    lev = np.arange(grid.nlev)[:, None, None]
    out = []
    for i in range(ntracer):
        base = 400e-6 * (1.0 + 0.02 * np.tanh(lat / 20.0))
        lon_c = ((lon - 60.0 * i + 180.0) % 360.0) - 180.0
        plume = 20e-6 * np.exp(-((lon_c - 10.0) ** 2 + (lat - 45.0) ** 2) / 15.0**2) * np.exp(-lev / 3.0)
        block = np.where(
            (np.abs(lon_c + 90.0) < 20.0) & (np.abs(lat + 10.0) < 15.0) & (lev < max(1, grid.nlev // 3)),
            10e-6,
            0.0,
        )
        out.append(np.broadcast_to(base + plume + block, grid.shape))
    return np.stack(out)


def surface_flux(grid: LatLonGrid, ntracer: int = 1) -> np.ndarray:
    """A land-like surface flux pattern ``(ntracer, nlat, nlon)`` [mol m-2 s-1], order 1e-7."""
    lat = np.deg2rad(grid.lat)[:, None]
    lon = np.deg2rad(grid.lon)[None, :]
    f = 2e-7 * (1.0 + np.cos(lat) * np.sin(2 * lon)) * np.exp(-(((np.rad2deg(lat) - 35) / 25) ** 2))
    return np.broadcast_to(f, (ntracer, grid.nlat, grid.nlon)).copy()


def choose_dt(model, met, state, dt: float, times, limit: float = 0.9) -> tuple[float, dict]:
    """Largest ``dt / 2^k`` whose meridional/vertical Courant numbers are <= ``limit``."""
    from diffflux.transport import courant_numbers

    for _ in range(8):
        c = courant_numbers(model, met, state, dt=dt, times=times)
        if c["meridional"] <= limit and c["vertical"] <= limit:
            return dt, c
        dt *= 0.5
    raise RuntimeError(f"choose_dt: no stable time step found (last Courant numbers {c})")
