"""The built-in analytic climatology: the default met of diffflux (no files needed).

:class:`Climatology` is a :class:`~diffflux.met.fields.MetSource` whose ``fields(t)`` is a pure JAX
function of the time ``t`` [s since 1 January 00 UTC of a 365.25-day climatological year],
evaluated inside the transport scan. Its parameters (:class:`ClimatologyParams`) are a pytree, so
they can be traced and differentiated (convert the float defaults to arrays first,
:meth:`ClimatologyParams.as_arrays`).

What it represents (zonal-mean circulation plus parameterised eddies):

* **Surface pressure** uniform at ``P_REF`` = 1000 hPa (no topography, no seasonal mass shifts), so
  the air mass of every cell is fixed; the advecting mass fluxes have zero column-integrated
  divergence in every column, hence the transport's continuity-derived vertical fluxes keep the air
  mass constant to round-off.
* **Zonal wind** ``u(lat, p, t)``: subtropical/mid-latitude jets peaking near 200 hPa (annual mean
  35 m s-1, stronger and more equatorward in winter; Peixoto & Oort 1992, ch. 7), easterly trades
  and surface westerlies in the lowest 500 hPa. The zonal flux is uniform along each latitude
  circle, so it is exactly non-divergent.
* **Mean meridional circulation**: Hadley and Ferrel cells from a zonal-total mass streamfunction
  ``Psi(lat, p) = Psi(lat) P(p)`` [kg s-1] (Peixoto & Oort 1992, fig. 7.19; Dima & Wallace 2003)
  with ``P`` zero at the surface and above ``overturning_top_pressure``. The northward air-mass
  flux of level ``k`` through a latitude circle is ``Psi(lat) (P(p_{k+1}) - P(p_k))`` (the
  difference between the top and bottom interfaces of the level), shared equally by the ``nlon``
  faces of the circle; its column sum telescopes to zero, and the vertical branch of the
  cells (rising at the ITCZ, sinking in the subtropics) follows from continuity inside the transport
  (:func:`~diffflux.transport.advection.vertical_mass_flux`). The ITCZ (the boundary between the two
  Hadley cells) migrates seasonally, ``lat_ITCZ = itcz_lat_mean + itcz_lat_amplitude cos(2 pi (t -
  t_peak) / yr)``, and the winter Hadley cell is stronger and reaches across the equator.
* **Eddies**: stationary and transient eddies are represented by a horizontal eddy diffusivity
  ``kh`` [m2 s-1] (mid-latitude tropospheric values of order 1e6 m2 s-1, smaller in the deep
  tropics; Newell et al. 1969, Plumb & Mahlman 1987), used by
  :class:`~diffflux.transport.HorizontalDiffusion`.
* **Boundary layer**: ``Kz`` profile ``kappa w_s z (1 - z / h)^2`` (Holtslag & Boville 1993) with
  the mixed-layer depth ``h`` and velocity scale ``w_s`` following the local cosine of the solar
  zenith angle (diurnal cycle in local solar time and seasonal cycle from the solar declination);
  constant background diffusivities in the free troposphere and the stratosphere.
* **Convection**: a tropical updraft mass flux ``conv_mflux`` [kg s-1 per cell] centred on the ITCZ
  (entraining below ``conv_peak_pressure``, detraining between it and ``conv_top_pressure``), for
  :class:`~diffflux.transport.convection.ConvectiveMassFlux`.
* **Temperature**: constant-lapse-rate troposphere ``T = T_s (p / ps)^(R Gamma / g)`` (6.5 K km-1,
  US Standard Atmosphere 1976) above a surface temperature that falls with latitude and has a
  seasonal cycle, capped below by an isothermal tropopause/stratosphere temperature.

Not represented: land-sea contrast and topography, longitudinal structure (monsoons, Walker
circulation, explicit stationary waves), extratropical convection and fronts (their vertical mixing
is carried by the free-tropospheric ``Kz``), the Brewer-Dobson circulation.

The default parameters are calibrated so that an SF6-like tracer emitted at 30-60N has an
interhemispheric exchange time between 1.0 and 1.5 years (:mod:`diffflux.met.exchange`): with all
other values at their literature-based defaults, the horizontal eddy diffusivities were the
calibration knobs (``kh_extratropics = 1.2e6``, ``kh_tropics = 7e5`` m2 s-1), giving 1.29 yr at
4 x 5 degrees with 10 levels. The exchange time is most sensitive to the tropical diffusivity
(raising it from 5e5 to 1e6 m2 s-1 shortened it by 25 %), less to the Hadley strength (+50 %
strength: -10 %), and it lengthens slightly with more vertical mixing (free-tropospheric ``Kz``
5 -> 20 m2 s-1: +6 %; convective mass flux doubled: +3 %), which lifts the tracer to levels where
the exchange is slower.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY, P_REF, R_DRY, SECONDS_PER_DAY, SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid
from diffflux.met.fields import MetFields, MetSource

VON_KARMAN = 0.4
"""von Karman constant [1] (Holtslag & Boville 1993 use 0.4)."""

OBLIQUITY_DEG = 23.44
"""Obliquity of the ecliptic [degrees]; sets the amplitude of the solar declination."""

MARCH_EQUINOX_DAY = 79.0
"""Day of year (0 = 1 January 00 UTC) of the March equinox (about 20 March) [days]."""


class ClimatologyParams(eqx.Module):
    """Parameters of :class:`Climatology` (a pytree; every leaf is a float with a documented unit).

    Times of year are days since 1 January 00 UTC; ``s(t) = cos(2 pi (t - season_peak_day) / yr)``
    is the seasonal phase (+1 at the height of boreal summer, -1 in austral summer).
    """

    # --- seasonal phase, ITCZ -------------------------------------------------------------------
    season_peak_day: float = 222.0
    """Day of the boreal-summer extreme of the circulation [day]: the zonal-mean ITCZ is furthest
    north and the austral (winter) Hadley cell strongest in August (Dima & Wallace 2003), lagging
    the June solstice by about 6 weeks."""
    itcz_lat_mean: float = 5.0
    """Annual-mean latitude of the zonal-mean ITCZ [degrees N] (about 5-6N; Schneider et al. 2014,
    Nature 513, 45-53)."""
    itcz_lat_amplitude: float = 7.0
    """Amplitude of the seasonal ITCZ migration [degrees]: from about 2S in boreal late winter to
    about 12N in boreal late summer for the zonal mean (Waliser & Gautier 1993)."""

    # --- mean meridional circulation --------------------------------------------------------------
    hadley_strength: float = 1.0e11
    """Annual-mean peak of each Hadley cell's zonal-total mass streamfunction [kg s-1] (observed
    about 0.8-1.2e11 kg s-1; Oort & Yienger 1996, Dima & Wallace 2003)."""
    hadley_seasonality: float = 0.7
    """Fractional seasonal modulation of the Hadley cells [1]: the winter cell peaks at
    (1 + 0.7) x 1e11 = 1.7e11 and the summer cell at 0.3e11 kg s-1 (solstitial values of about
    2e11 and 0.3e11 kg s-1; Dima & Wallace 2003)."""
    hadley_edge_lat: float = 30.0
    """Poleward edge of the Hadley cells (annual mean) [degrees] (about 30 degrees; Peixoto & Oort
    1992)."""
    edge_shift: float = 0.5
    """Fraction of the ITCZ displacement by which the cell edges (Hadley, Ferrel) follow it [1]."""
    ferrel_edge_lat: float = 60.0
    """Poleward edge of the Ferrel cells [degrees] (about 60 degrees)."""
    ferrel_strength: float = 3.0e10
    """Peak of the Ferrel cells' mass streamfunction [kg s-1] (about 0.3e11 kg s-1 in the annual
    mean; Peixoto & Oort 1992, fig. 7.19)."""
    ferrel_seasonality: float = 0.3
    """Fractional seasonal modulation of the Ferrel cells (stronger in winter) [1]."""
    overturning_top_pressure: float = 1.5e4
    """Pressure [Pa] above which the overturning streamfunction vanishes (tropical tropopause region
    ~150 hPa; the cells are closed below it)."""
    overturning_peak_pressure: float = 6.0e4
    """Pressure [Pa] of the streamfunction maximum (the level separating the lower, equatorward
    branch from the upper, poleward branch of the Hadley cell; observed 500-700 hPa)."""

    # --- zonal wind -------------------------------------------------------------------------------
    jet_speed: float = 35.0
    """Annual-mean peak zonal-mean wind of the subtropical jets [m s-1] (30-40 m s-1, 200 hPa)."""
    jet_seasonality: float = 0.3
    """Fractional seasonal modulation of the jets [1] (winter jet ~45, summer jet ~25 m s-1)."""
    jet_lat: float = 35.0
    """Annual-mean jet latitude [degrees] (about 30 in winter, 40-45 in summer)."""
    jet_lat_shift: float = 6.0
    """Poleward displacement of the jet in the summer hemisphere [degrees]."""
    jet_width_lat: float = 12.0
    """Gaussian half-width of the jets in latitude [degrees]."""
    jet_pressure: float = 2.0e4
    """Pressure of the jet cores [Pa] (about 200 hPa)."""
    jet_depth: float = 0.8
    """Gaussian half-width of the jets in ln(p) [1] (the jet wind falls to 1/e at about 90 and
    450 hPa)."""
    trade_speed: float = 6.0
    """Peak speed of the easterly trade winds near the surface [m s-1] (zonal mean 5-7 m s-1)."""
    trade_lat: float = 15.0
    """Latitude of the trade-wind maximum [degrees] (about 15 degrees in both hemispheres)."""
    surface_westerly_speed: float = 8.0
    """Peak speed of the surface westerlies [m s-1] (zonal mean 6-10 m s-1)."""
    surface_westerly_lat: float = 50.0
    """Latitude of the surface-westerly maximum [degrees] (about 50 degrees)."""
    surface_wind_width_lat: float = 12.0
    """Gaussian half-width in latitude of the trade and surface-westerly belts [degrees]."""
    surface_wind_top_pressure: float = 5.0e4
    """Pressure [Pa] at which the surface-wind pattern has decayed linearly to zero."""

    # --- horizontal eddy diffusivity --------------------------------------------------------------
    kh_extratropics: float = 1.2e6
    """Horizontal eddy diffusivity poleward of the tropics [m2 s-1] (1e6 order in mid-latitudes:
    Newell et al. 1969; Plumb & Mahlman 1987)."""
    kh_tropics: float = 7.0e5
    """Horizontal eddy diffusivity near the ITCZ [m2 s-1] (weaker eddy mixing across the deep
    tropics)."""
    kh_tropical_halfwidth: float = 15.0
    """Distance from the ITCZ [degrees] at which ``kh`` is half-way between its tropical and
    extratropical values."""
    kh_transition_width: float = 5.0
    """Width of the tanh transition of ``kh`` [degrees]."""

    # --- boundary layer and vertical diffusion ---------------------------------------------------
    pbl_height_min: float = 300.0
    """Mixed-layer depth at night and at high latitudes in winter [m] (nocturnal/stable layers
    100-500 m)."""
    pbl_height_max: float = 1500.0
    """Mixed-layer depth with the sun overhead [m] (daytime convective layers 1-2 km)."""
    pbl_velocity_min: float = 0.3
    """Turbulent velocity scale at night [m s-1] (friction velocity ~0.3 m s-1)."""
    pbl_velocity_max: float = 2.0
    """Turbulent velocity scale with the sun overhead [m s-1] (convective velocity 1-2 m s-1)."""
    kz_free_troposphere: float = 5.0
    """Background Kz in the free troposphere [m2 s-1] (stands for the unresolved vertical mixing by
    fronts, warm conveyor belts and extratropical convection; 1-10 m2 s-1)."""
    kz_stratosphere: float = 0.3
    """Background Kz above the tropopause [m2 s-1] (0.1-1 m2 s-1)."""
    tropopause_pressure_equator: float = 1.0e4
    """Tropopause pressure at the equator [Pa] (about 100 hPa)."""
    tropopause_pressure_pole: float = 3.0e4
    """Tropopause pressure at the poles [Pa] (about 300 hPa); ``sin^2(lat)`` in between."""

    # --- convection ------------------------------------------------------------------------------
    conv_mflux_peak: float = 0.01
    """Zonal-mean deep-convective updraft mass flux at the ITCZ centre and the level of its maximum
    [kg m-2 s-1] (reanalysis values 0.005-0.03 kg m-2 s-1)."""
    conv_width_lat: float = 8.0
    """Gaussian half-width of the convective band around the ITCZ [degrees]."""
    conv_peak_pressure: float = 6.5e4
    """Pressure of the maximum updraft mass flux [Pa]: entrainment below, detrainment above."""
    conv_top_pressure: float = 1.5e4
    """Cloud-top pressure where the updraft has detrained completely [Pa] (about 150 hPa)."""

    # --- temperature -----------------------------------------------------------------------------
    surface_temperature_equator: float = 300.0
    """Zonal-mean surface air temperature at the equator [K]."""
    surface_temperature_drop: float = 50.0
    """Equator-to-pole drop of the surface temperature [K] (``sin^2(lat)`` shape)."""
    surface_temperature_seasonal: float = 12.0
    """Seasonal amplitude of the surface temperature at the poles [K] (``sin(lat)`` shape)."""
    lapse_rate: float = 6.5e-3
    """Tropospheric lapse rate [K m-1] (US Standard Atmosphere 1976)."""
    tropopause_temperature: float = 210.0
    """Temperature floor of the tropopause and stratosphere [K]."""

    def as_arrays(self, dtype=None) -> ClimatologyParams:
        """Copy with every leaf a 0-d JAX array (for ``jax.grad``/optimisers)."""
        return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype=dtype), self)


def _itcz_latitude(p: ClimatologyParams, season):
    return p.itcz_lat_mean + p.itcz_lat_amplitude * season


def _sine_lobe(x, lo, hi):
    """``sin(pi (x - lo) / (hi - lo))`` on ``[lo, hi]``, zero outside (a smooth one-signed cell)."""
    inside = (x > lo) & (x < hi)
    width = jnp.where(hi > lo, hi - lo, jnp.ones_like(hi - lo))
    return jnp.where(inside, jnp.sin(jnp.pi * (x - lo) / width), 0.0)


def overturning_streamfunction(lat_deg, season, p: ClimatologyParams):
    """Zonal-total meridional mass streamfunction ``Psi(lat)`` [kg s-1] (its vertical peak value).

    Sign convention: positive where the lower branch flows northward (southern Hadley cell and
    northern Ferrel cell), negative for the northern Hadley and southern Ferrel cells.

    Args:
        lat_deg: latitudes [degrees N] (any shape).
        season: seasonal phase ``s`` in ``[-1, 1]`` (+1 boreal summer).
        p: parameters.
    """
    itcz = _itcz_latitude(p, season)
    shift = p.edge_shift * (itcz - p.itcz_lat_mean)
    e_nh = p.hadley_edge_lat + shift
    e_sh = -p.hadley_edge_lat + shift
    e_nf = p.ferrel_edge_lat + shift
    e_sf = -p.ferrel_edge_lat + shift
    a_n = p.hadley_strength * (1.0 - p.hadley_seasonality * season)
    a_s = p.hadley_strength * (1.0 + p.hadley_seasonality * season)
    f_n = p.ferrel_strength * (1.0 - p.ferrel_seasonality * season)
    f_s = p.ferrel_strength * (1.0 + p.ferrel_seasonality * season)
    return (
        a_s * _sine_lobe(lat_deg, e_sh, itcz)
        - a_n * _sine_lobe(lat_deg, itcz, e_nh)
        + f_n * _sine_lobe(lat_deg, e_nh, e_nf)
        - f_s * _sine_lobe(lat_deg, e_sf, e_sh)
    )


def _peaked_profile(pressure, ps, p_peak, p_top):
    """Vertical shape ``sin(pi x^a)`` with ``x = (ps - p) / (ps - p_top)`` in ``[0, 1]``.

    Zero at the surface and for ``p <= p_top``, maximum 1 at ``p = p_peak`` (``x_peak^a = 1/2``).
    """
    x = (ps - pressure) / (ps - p_top)
    x_peak = (ps - p_peak) / (ps - p_top)
    a = math.log(0.5) / jnp.log(x_peak)
    inside = (x > 0) & (x < 1)
    xs = jnp.where(inside, x, 0.5)
    return jnp.where(inside, jnp.sin(jnp.pi * xs**a), 0.0)


class Climatology(MetSource):
    """Analytic climatological met on a :class:`~diffflux.grid.LatLonGrid` (see module docstring).

    Args:
        grid: model grid (static).
        params: :class:`ClimatologyParams` (a pytree; defaults are the calibrated values).
        dtype: floating dtype of the fields (default: JAX's default float, float64 under x64).

    ``fields(t)`` with ``t`` [s] since 1 January 00 UTC returns :class:`MetFields` with ``ps``,
    ``mfx``, ``mfy``, ``temperature``, ``kz``, ``conv_mflux`` and ``kh`` (shapes as documented
    there).
    """

    grid: LatLonGrid = eqx.field(static=True)
    params: ClimatologyParams = ClimatologyParams()
    dtype: str | None = eqx.field(static=True, default=None)

    def _dtype(self):
        return jnp.dtype(self.dtype) if self.dtype is not None else jnp.result_type(float)

    # ---- seasonal and astronomical phases ------------------------------------------------------
    def season(self, t):
        """Seasonal phase ``s(t) = cos(2 pi (t - t_peak) / yr)`` in ``[-1, 1]``."""
        t_peak = self.params.season_peak_day * SECONDS_PER_DAY
        return jnp.cos(2.0 * jnp.pi * (t - t_peak) / SECONDS_PER_YEAR)

    def itcz_latitude(self, t):
        """Latitude of the ITCZ [degrees N] at time ``t`` [s]."""
        return _itcz_latitude(self.params, self.season(t))

    def cos_solar_zenith(self, t):
        """Cosine of the solar zenith angle ``(nlat, nlon)`` at cell centres (negative at night).

        Declination ``delta = 23.44 deg sin(2 pi (day - 79) / 365.25)`` (Cooper 1969 form), hour
        angle from local solar time ``t_utc + lon / 15 h`` (equation of time neglected).
        """
        dtype = self._dtype()
        day = t / SECONDS_PER_DAY
        decl = jnp.deg2rad(OBLIQUITY_DEG) * jnp.sin(
            2.0 * jnp.pi * (day - MARCH_EQUINOX_DAY) / (SECONDS_PER_YEAR / SECONDS_PER_DAY)
        )
        frac = jnp.mod(t, SECONDS_PER_DAY) / SECONDS_PER_DAY
        lon = jnp.asarray(self.grid.lon, dtype=dtype)[None, :]
        hour_angle = 2.0 * jnp.pi * (frac + lon / 360.0) - jnp.pi
        phi = jnp.deg2rad(jnp.asarray(self.grid.lat, dtype=dtype))[:, None]
        return jnp.sin(phi) * jnp.sin(decl) + jnp.cos(phi) * jnp.cos(decl) * jnp.cos(hour_angle)

    # ---- components ------------------------------------------------------------------------------
    def surface_pressure(self):
        """``(nlat, nlon)`` uniform ``P_REF`` [Pa]."""
        return jnp.full((self.grid.nlat, self.grid.nlon), P_REF, dtype=self._dtype())

    def zonal_wind(self, t):
        """Zonal wind ``(nlev, nlat)`` at layer mid-pressures and cell-centre latitudes [m s-1]."""
        p = self.params
        dtype = self._dtype()
        s = self.season(t)
        lat = jnp.asarray(self.grid.lat, dtype=dtype)[None, :]
        pmid = jnp.asarray(self.grid.levels.reference_pressures(P_REF), dtype=dtype)[:, None]
        u_n = p.jet_speed * (1.0 - p.jet_seasonality * s)
        u_s = p.jet_speed * (1.0 + p.jet_seasonality * s)
        lat_n = p.jet_lat + p.jet_lat_shift * s
        lat_s = -(p.jet_lat - p.jet_lat_shift * s)
        jets = u_n * jnp.exp(-(((lat - lat_n) / p.jet_width_lat) ** 2)) + u_s * jnp.exp(
            -(((lat - lat_s) / p.jet_width_lat) ** 2)
        )
        vert = jnp.exp(-((jnp.log(pmid / p.jet_pressure) / p.jet_depth) ** 2))
        alat = jnp.abs(lat)
        width = p.surface_wind_width_lat
        surf = -p.trade_speed * jnp.exp(-(((alat - p.trade_lat) / width) ** 2)) + (
            p.surface_westerly_speed * jnp.exp(-(((alat - p.surface_westerly_lat) / width) ** 2))
        )
        decay = jnp.clip(
            (pmid - p.surface_wind_top_pressure) / (P_REF - p.surface_wind_top_pressure), 0.0, 1.0
        )
        return jets * vert + surf * decay

    def mass_fluxes(self, t):
        """``(mfx (nlev, nlat, nlon), mfy (nlev, nlat + 1, nlon))`` [kg s-1].

        ``mfx = u dp dy / g`` uniform along each latitude circle; ``mfy`` of level ``k`` through the
        south face of row ``j`` is ``Psi(lat_j) (P(p_{k+1}) - P(p_k)) / nlon`` with ``P`` the
        vertical shape of the streamfunction at the level interfaces (zero at the surface and above
        ``overturning_top_pressure``), so the column sum vanishes for every face.
        """
        grid = self.grid
        p = self.params
        dtype = self._dtype()
        nlon = grid.nlon
        dp = jnp.asarray(grid.levels.thickness(np.float64(P_REF)), dtype=dtype)  # (nlev,)
        u = self.zonal_wind(t)
        mfx_lat = u * dp[:, None] * (grid.dy / GRAVITY)
        mfx = jnp.broadcast_to(mfx_lat[:, :, None], grid.shape)
        lat_e = jnp.asarray(grid.lat_edges, dtype=dtype)
        psi = overturning_streamfunction(lat_e, self.season(t), p)  # (nlat + 1,)
        p_int = jnp.asarray(grid.levels.interfaces(np.float64(P_REF)), dtype=dtype)
        shape = _peaked_profile(
            p_int, P_REF, p.overturning_peak_pressure, p.overturning_top_pressure
        )
        shape = shape.at[0].set(0.0).at[-1].set(0.0)
        dshape = shape[1:] - shape[:-1]  # (nlev,)
        mfy_lat = dshape[:, None] * psi[None, :] / nlon
        mfy_lat = mfy_lat.at[:, 0].set(0.0).at[:, -1].set(0.0)
        mfy = jnp.broadcast_to(mfy_lat[:, :, None], (grid.nlev, grid.nlat + 1, nlon))
        return mfx, mfy

    def temperature(self, t):
        """Temperature ``(nlev, nlat, nlon)`` at layer mid-pressures [K]."""
        p = self.params
        dtype = self._dtype()
        ts = self.surface_temperature(t)[None, :]
        pmid = jnp.asarray(self.grid.levels.reference_pressures(P_REF), dtype=dtype)[:, None]
        expo = R_DRY * p.lapse_rate / GRAVITY
        temp = jnp.maximum(ts * (pmid / P_REF) ** expo, p.tropopause_temperature)
        return jnp.broadcast_to(temp[:, :, None], self.grid.shape)

    def surface_temperature(self, t):
        """Zonal-mean surface air temperature ``(nlat,)`` [K]."""
        p = self.params
        dtype = self._dtype()
        phi = jnp.deg2rad(jnp.asarray(self.grid.lat, dtype=dtype))
        return (
            p.surface_temperature_equator
            - p.surface_temperature_drop * jnp.sin(phi) ** 2
            + p.surface_temperature_seasonal * self.season(t) * jnp.sin(phi)
        )

    def tropopause_pressure(self):
        """Tropopause pressure ``(nlat,)`` [Pa]."""
        p = self.params
        phi = jnp.deg2rad(jnp.asarray(self.grid.lat, dtype=self._dtype()))
        return p.tropopause_pressure_equator + (
            p.tropopause_pressure_pole - p.tropopause_pressure_equator
        ) * jnp.sin(phi) ** 2

    def boundary_layer(self, t):
        """Mixed-layer depth ``h`` [m] and velocity scale ``w_s`` [m s-1], each ``(nlat, nlon)``."""
        p = self.params
        sun = jnp.maximum(self.cos_solar_zenith(t), 0.0)
        h = p.pbl_height_min + (p.pbl_height_max - p.pbl_height_min) * sun
        w = p.pbl_velocity_min + (p.pbl_velocity_max - p.pbl_velocity_min) * sun
        return h, w

    def kz(self, t):
        """Vertical eddy diffusivity ``(nlev + 1, nlat, nlon)`` at interfaces [m2 s-1].

        Interface heights ``z = H ln(ps / p)`` with the surface scale height ``H = R T_s / g``.
        Boundary layer ``kappa w_s z (1 - z / h)^2`` for ``z < h`` (Holtslag & Boville 1993), at
        least the free-tropospheric background below the tropopause and the stratospheric
        background above it.
        """
        p = self.params
        dtype = self._dtype()
        p_int = jnp.asarray(self.grid.levels.interfaces(np.float64(P_REF)), dtype=dtype)
        ts = self.surface_temperature(t)
        height = (R_DRY * ts / GRAVITY)[None, :] * jnp.log(P_REF / p_int)[:, None]  # (nlev+1, nlat)
        h, w = self.boundary_layer(t)
        z = height[:, :, None]
        ratio = jnp.clip(z / h[None], 0.0, 1.0)
        k_pbl = VON_KARMAN * w[None] * z * (1.0 - ratio) ** 2
        p_trop = self.tropopause_pressure()[None, :, None]
        background = jnp.where(
            p_int[:, None, None] >= p_trop, p.kz_free_troposphere, p.kz_stratosphere
        )
        kz = jnp.maximum(k_pbl, background)
        return kz.at[0].set(0.0).at[-1].set(0.0)

    def kh(self, t):
        """Horizontal eddy diffusivity ``(nlev, nlat, nlon)`` [m2 s-1] (a function of the distance
        from the ITCZ: ``kh_tropics`` at the ITCZ, ``kh_extratropics`` away from it)."""
        p = self.params
        dtype = self._dtype()
        lat = jnp.asarray(self.grid.lat, dtype=dtype)
        dist = jnp.abs(lat - self.itcz_latitude(t))
        blend = 0.5 * (1.0 + jnp.tanh((dist - p.kh_tropical_halfwidth) / p.kh_transition_width))
        k = p.kh_tropics + (p.kh_extratropics - p.kh_tropics) * blend
        return jnp.broadcast_to(k[None, :, None], self.grid.shape)

    def conv_mflux(self, t):
        """Convective updraft mass flux ``(nlev + 1, nlat, nlon)`` at interfaces [kg s-1 / cell]."""
        p = self.params
        dtype = self._dtype()
        lat = jnp.asarray(self.grid.lat, dtype=dtype)
        band = jnp.exp(-(((lat - self.itcz_latitude(t)) / p.conv_width_lat) ** 2))
        p_int = jnp.asarray(self.grid.levels.interfaces(np.float64(P_REF)), dtype=dtype)
        prof = _peaked_profile(p_int, P_REF, p.conv_peak_pressure, p.conv_top_pressure)
        prof = prof.at[0].set(0.0).at[-1].set(0.0)
        area = jnp.asarray(self.grid.area_lat, dtype=dtype)
        mu = p.conv_mflux_peak * prof[:, None] * (band * area)[None, :]
        grid = self.grid
        return jnp.broadcast_to(mu[:, :, None], (grid.nlev + 1, grid.nlat, grid.nlon))

    def fields(self, t) -> MetFields:
        t = jnp.asarray(t, dtype=self._dtype())
        mfx, mfy = self.mass_fluxes(t)
        return MetFields(
            ps=self.surface_pressure(),
            mfx=mfx,
            mfy=mfy,
            temperature=self.temperature(t),
            kz=self.kz(t),
            conv_mflux=self.conv_mflux(t),
            kh=self.kh(t),
        )
