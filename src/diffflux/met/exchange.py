"""Interhemispheric exchange time of the built-in climatology (the calibration diagnostic).

An inert SF6-like tracer is emitted at a constant rate, uniformly over a northern mid-latitude band
(30-60N by default, where most SF6 is released; Maiss & Levin 1994), and transported for several
years with the full model (PPM advection, implicit vertical diffusion, horizontal eddy diffusion,
convective mass flux) on :class:`~diffflux.met.climatology.Climatology`. The exchange time follows
from the two-box model of the hemispheres (Czeplak & Junge 1974; used for SF6 by Maiss et al. 1996,
Geller et al. 1997 and the TransCom 2 comparison, Denning et al. 1999, Tellus 51B, 266-297):

    d chi_S / dt = (chi_N - chi_S) / tau_ex.

Estimator (exact for a linear trend plus any annual cycle). Let ``<x>_y`` be the average over
every model step of year ``y`` (steps of the year ``[y yr, (y + 1) yr)``, ``yr = 365.25 d``) of the
mass-weighted hemispheric mean ``x`` (total tracer moles over total air moles of the hemisphere),
for the whole model atmosphere (primary), the troposphere below ``tropopause_pressure`` and the
lowest model layer. With the last year ``L``:

    tau_ex = <chi_N - chi_S>_L / ((<chi_S>_L - <chi_S>_{L-1}) / 1 yr)    [years].

The first years are spin-up: the two-box transient decays like ``exp(-2 t / tau_ex)``;
:attr:`ExchangeTimeResult.tau_by_year` gives the estimate for every pair of consecutive years so the
convergence can be judged.

Presets (:data:`PRESETS`): ``"default"`` is 4 x 5 degrees with 10 levels, 6-hour steps, 5 years;
``"quick"`` keeps the latitudes, levels and step but uses 8 longitudes (45 degrees), which is
legitimate because the climatology is zonally symmetric except for the diurnal phase of the
boundary layer (so the tracer stays zonally uniform to a good approximation), and 4 years.

Time step: the advective Courant numbers of the climatology at 4 x 5 degrees and 6 hours are about
0.04 (meridional, vertical; checked with :func:`~diffflux.transport.check_time_step`), far below 1.
The binding limits are elsewhere: the explicit horizontal diffusion (``K dt / dy^2 <= 0.2`` needs
``dt <= 9 h`` at 4 degrees for ``K = 1.2e6 m2 s-1``; zonally the diffusivity is capped poleward of
about 50 degrees, which does not matter for a zonally uniform tracer) and a coarse sampling of the
diurnal boundary-layer cycle. The convective sub-step count is computed from the largest updraft
mass flux of the year.

Calibrated values (float32, defaults of :class:`~diffflux.met.climatology.ClimatologyParams`):
``"default"`` 1.285 yr (year pairs 1.563, 1.323, 1.290, 1.285); ``"quick"`` 1.290 yr; the quick
setting gives 1.291 yr with 3-hour steps and 1.291 yr in float64. The troposphere-only
(p >= 200 hPa) estimate is 1.43 yr and the lowest-layer estimate 1.75 yr (the source sits in the
lowest layer, so the surface north-south difference is larger than the column one).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.constants import M_AIR, P_REF, SECONDS_PER_DAY, SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid, standard_levels
from diffflux.met.climatology import Climatology, ClimatologyParams
from diffflux.transport.convection import (
    ConvectiveMassFlux,
    convective_courant,
    convective_substeps,
)
from diffflux.transport.diffusion import HorizontalDiffusion, ImplicitVerticalDiffusion
from diffflux.transport.model import Transport
from diffflux.transport.reconstruction import PPM
from diffflux.transport.run import check_time_step

SF6_MOLAR_MASS = 146.06e-3
"""Molar mass of SF6 [kg mol-1]."""

SF6_EMISSION = 8.0e6 / SF6_MOLAR_MASS / SECONDS_PER_YEAR
"""Global SF6 emission used for the tracer [mol s-1]: about 8 Gg yr-1 (Rigby et al. 2010 for the
2000s). The exchange time does not depend on it (the tracer is inert and the transport linear in
it up to the limiter); it only sets realistic magnitudes (~0.3 ppt yr-1 growth)."""

PRESETS: dict[str, dict] = {
    "default": dict(nlon=72, nlat=45, levels="L10", steps_per_year=1461, years=5),
    "quick": dict(nlon=8, nlat=45, levels="L10", steps_per_year=1461, years=4),
}
"""Named settings of :func:`interhemispheric_exchange_time` (1461 steps per year: 6-hour steps)."""


@dataclasses.dataclass(frozen=True)
class ExchangeTimeResult:
    """Result of :func:`interhemispheric_exchange_time`.

    Attributes:
        tau_years: exchange time from whole-atmosphere hemispheric means over the last year [yr].
        tau_troposphere_years: same from the troposphere (levels with reference mid pressure above
            ``tropopause_pressure``) [yr].
        tau_surface_years: same from the lowest model layer [yr].
        tau_by_year: ``(years - 1,)`` whole-atmosphere estimate from years ``(y - 1, y)``,
            ``y = 1 .. years - 1`` [yr] (spin-up convergence).
        north, south: ``(years, 3)`` annual means of the hemispheric mean mixing ratios [mol mol-1]
            for (whole atmosphere, troposphere, surface layer).
        grid: description of the grid.
        dt: time step [s]; years: simulated years.
        courant: Courant numbers of the run (zonal, meridional, vertical, convective).
        convective_substeps: convective sub-steps per step.
        wall_time_s: wall-clock time of the compiled run [s] (excluding compilation).
        compile_time_s: compilation time [s].
    """

    tau_years: float
    tau_troposphere_years: float
    tau_surface_years: float
    tau_by_year: np.ndarray
    north: np.ndarray
    south: np.ndarray
    grid: str
    dt: float
    years: int
    courant: dict
    convective_substeps: int
    wall_time_s: float
    compile_time_s: float

    def summary(self) -> str:
        """One-paragraph human-readable report."""
        by_year = ", ".join(f"{v:.3f}" for v in self.tau_by_year)
        return (
            f"interhemispheric exchange time {self.tau_years:.3f} yr (whole atmosphere; "
            f"troposphere {self.tau_troposphere_years:.3f} yr, surface layer "
            f"{self.tau_surface_years:.3f} yr) on {self.grid}, dt={self.dt:.0f} s, "
            f"{self.years} years; by year pair: [{by_year}]; Courant "
            + ", ".join(f"{k}={v:.3f}" for k, v in self.courant.items())
            + f"; run {self.wall_time_s:.1f} s + compile {self.compile_time_s:.1f} s"
        )


def source_pattern(grid: LatLonGrid, lat_band=(30.0, 60.0), total: float = SF6_EMISSION):
    """Uniform surface flux ``(nlat, nlon)`` [mol m-2 s-1] over the cells whose centres lie in
    ``lat_band`` [degrees N], scaled to ``total`` [mol s-1]."""
    lat = grid.lat
    mask = ((lat >= lat_band[0]) & (lat <= lat_band[1]))[:, None] * np.ones((1, grid.nlon))
    if not mask.any():
        raise ValueError(
            f"source_pattern: no cell centre of the grid ({grid.describe()}) lies in the latitude "
            f"band {lat_band} degrees"
        )
    area = grid.area
    return mask * (total / float(np.sum(mask * area)))


def hemisphere_weights(grid: LatLonGrid, tropopause_pressure: float):
    """Masks ``(3, 2, nlev, nlat, 1)`` selecting (domain, hemisphere) cells.

    Domains: whole atmosphere, troposphere (reference mid pressure >= ``tropopause_pressure``),
    lowest layer. Hemispheres: north, south (a row centred on the equator counts half to each).
    """
    lat = grid.lat
    north = np.where(lat > 0, 1.0, np.where(lat == 0, 0.5, 0.0))
    south = 1.0 - north
    pmid = grid.levels.reference_pressures(P_REF)
    whole = np.ones(grid.nlev)
    trop = (pmid >= tropopause_pressure).astype(float)
    surf = np.zeros(grid.nlev)
    surf[0] = 1.0
    domains = np.stack([whole, trop, surf])  # (3, nlev)
    hemis = np.stack([north, south])  # (2, nlat)
    return domains[:, None, :, None, None] * hemis[None, :, None, :, None]


def two_box_exchange_time(north, south):
    """Two-box exchange time [yr] from annual means ``(..., years)`` of hemispheric mixing ratios.

    ``tau = <chi_N - chi_S>_L / (<chi_S>_L - <chi_S>_{L-1})`` with ``L`` the last year on the last
    axis (consecutive annual means one year apart); see the module docstring.
    """
    north = np.asarray(north, dtype=np.float64)
    south = np.asarray(south, dtype=np.float64)
    slope = south[..., -1] - south[..., -2]  # per year
    return (north[..., -1] - south[..., -1]) / slope


class ExchangeSimulator:
    """The SF6-like tracer run as a jitted function of the climatology parameters.

    Built once per grid and run length (the transport model, emissions, hemispheric masks and the
    checked time step are fixed here); :meth:`__call__`/:meth:`compile` map a
    :class:`ClimatologyParams` pytree of arrays to the ``(years, 3, 2)`` annual means of the
    hemispheric mean mixing ratios [mol mol-1] (domains whole atmosphere / troposphere / lowest
    layer; hemispheres north / south). Used by :func:`interhemispheric_exchange_time` and for
    calibrating the parameters without recompiling.

    The convective sub-step count and the Courant check use ``params`` given here (eagerly); running
    with parameters that raise the updraft mass flux beyond the checked limit triggers the
    convective scheme's run-time error rather than a silent instability.
    """

    def __init__(self, grid: LatLonGrid, *, years: int, steps_per_year: int, dtype: str = "float32",
                 lat_band: tuple[float, float] = (30.0, 60.0), tropopause_pressure: float = 2.0e4,
                 params: ClimatologyParams | None = None) -> None:
        self.grid = grid
        self.years = int(years)
        self.steps_per_year = int(steps_per_year)
        self.dt = SECONDS_PER_YEAR / self.steps_per_year
        self.dtype = jnp.dtype(dtype)
        params = ClimatologyParams() if params is None else params
        met = Climatology(grid, params, dtype=dtype)
        jdtype = self.dtype
        dt = self.dt
        ps = jnp.full((grid.nlat, grid.nlon), P_REF, dtype=jdtype)
        air = grid.air_mass(ps)
        # convective sub-steps from the largest updraft mass flux over the year (eager)
        sample_times = np.arange(0.0, 365.0, 15.0) * SECONDS_PER_DAY
        mu_max = jnp.max(
            jnp.stack([met.conv_mflux(jnp.asarray(t, jdtype)) for t in sample_times]), axis=0
        )
        nsub = convective_substeps(mu_max, air, dt)
        self.convective_substeps = nsub
        self.model = Transport(
            grid,
            advection=PPM(),
            vertical_diffusion=ImplicitVerticalDiffusion(),
            horizontal_diffusion=HorizontalDiffusion(),
            convection=ConvectiveMassFlux(substeps=nsub),
        )
        self.state = self.model.initial_state(jnp.zeros((1,) + grid.shape, dtype=jdtype), ps)
        courant = check_time_step(self.model, met, self.state, dt=dt, times=sample_times)
        courant["convective"] = float(convective_courant(mu_max, air, dt / nsub))
        self.courant = courant
        self.flux = jnp.asarray(source_pattern(grid, lat_band)[None], dtype=jdtype)
        self.weights = jnp.asarray(hemisphere_weights(grid, tropopause_pressure), dtype=jdtype)
        self._jitted = jax.jit(self._simulate)

    def _simulate(self, params: ClimatologyParams):
        grid, model, flux, weights = self.grid, self.model, self.flux, self.weights
        jdtype, dt, spy = self.dtype, self.dt, self.steps_per_year
        met = Climatology(grid, params, dtype=str(jdtype))
        state = self.state
        air_w = jnp.sum(weights * state.air[None, None], axis=(2, 3, 4))  # (3, 2) kg

        def hemispheric_means(s):
            tracer = jnp.sum(weights * s.tracer[0][None, None], axis=(2, 3, 4))  # (3, 2) mol
            return tracer * M_AIR / air_w

        def year_body(s, y):
            def step_body(carry, n):
                s, acc = carry
                t = y.astype(jdtype) * SECONDS_PER_YEAR + (n.astype(jdtype) + 0.5) * dt
                s = model.step(s, met.fields(t), dt, flux)
                return (s, acc + hemispheric_means(s)), None

            acc0 = jnp.zeros((3, 2), dtype=jdtype)
            (s, acc), _ = lax.scan(step_body, (s, acc0), jnp.arange(spy))
            return s, acc / spy

        _, means = lax.scan(year_body, state, jnp.arange(self.years))
        return means

    def compile(self):
        """Ahead-of-time compiled ``params -> (years, 3, 2)`` function."""
        example = ClimatologyParams().as_arrays(self.dtype)
        return self._jitted.lower(example).compile()

    def __call__(self, params: ClimatologyParams):
        return self._jitted(params.as_arrays(self.dtype))



def interhemispheric_exchange_time(
    preset: str = "default",
    *,
    params: ClimatologyParams | None = None,
    grid: LatLonGrid | None = None,
    years: int | None = None,
    steps_per_year: int | None = None,
    dtype: str = "float32",
    lat_band: tuple[float, float] = (30.0, 60.0),
    tropopause_pressure: float = 2.0e4,
) -> ExchangeTimeResult:
    """Run the SF6-like tracer on the climatology and return the two-box exchange time.

    Args:
        preset: ``"default"`` or ``"quick"`` (see :data:`PRESETS`); explicit arguments override it.
        params: climatology parameters (default: the calibrated :class:`ClimatologyParams`).
        grid: model grid (default from the preset).
        years: simulated years (>= 2; the last two enter the estimate).
        steps_per_year: steps per 365.25-day year (the step is ``yr / steps_per_year``).
        dtype: floating dtype of the run (float32 is adequate for this diagnostic).
        lat_band: latitude band of the emissions [degrees N].
        tropopause_pressure: pressure bounding the "troposphere" domain [Pa].

    Returns:
        :class:`ExchangeTimeResult`.

    The whole run is one jitted ``lax.scan`` over years around a ``lax.scan`` over steps;
    hemispheric means are accumulated in the carry, so memory does not grow with the run length.
    ``dt`` is checked against the advective (:func:`~diffflux.transport.check_time_step`) and
    convective Courant limits before the run.
    """
    if preset not in PRESETS:
        raise ValueError(f"interhemispheric_exchange_time: unknown preset {preset!r}; "
                         f"expected one of {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    if grid is None:
        grid = LatLonGrid(cfg["nlon"], cfg["nlat"], standard_levels(cfg["levels"]))
    years = int(cfg["years"] if years is None else years)
    spy = int(cfg["steps_per_year"] if steps_per_year is None else steps_per_year)
    if years < 2:
        raise ValueError(f"interhemispheric_exchange_time: years must be >= 2, found {years}")
    if spy < 1:
        raise ValueError(
            f"interhemispheric_exchange_time: steps_per_year must be >= 1, found {spy}"
        )
    dt = SECONDS_PER_YEAR / spy
    params = ClimatologyParams() if params is None else params
    jdtype = jnp.dtype(dtype)

    sim = ExchangeSimulator(grid, years=years, steps_per_year=spy, dtype=dtype, lat_band=lat_band,
                            tropopause_pressure=tropopause_pressure, params=params)
    t_start = time.perf_counter()
    compiled = sim.compile()
    t_compiled = time.perf_counter()
    means = compiled(params.as_arrays(jdtype))
    means = np.asarray(jax.block_until_ready(means), dtype=np.float64)  # (years, 3, 2)
    t_end = time.perf_counter()
    if not np.all(np.isfinite(means)):
        raise FloatingPointError(
            "interhemispheric_exchange_time: the run produced non-finite values"
        )
    north = means[:, :, 0].T  # (3, years)
    south = means[:, :, 1].T
    tau = two_box_exchange_time(north, south)
    tau_by_year = np.array(
        [two_box_exchange_time(north[0, : y + 1], south[0, : y + 1]) for y in range(1, years)]
    )
    return ExchangeTimeResult(
        tau_years=float(tau[0]),
        tau_troposphere_years=float(tau[1]),
        tau_surface_years=float(tau[2]),
        tau_by_year=tau_by_year,
        north=north.T,
        south=south.T,
        grid=grid.describe(),
        dt=dt,
        years=years,
        courant=sim.courant,
        convective_substeps=sim.convective_substeps,
        wall_time_s=t_end - t_compiled,
        compile_time_s=t_compiled - t_start,
    )
