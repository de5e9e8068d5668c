"""Ocean CO2 flux from the bulk formula with a built-in climatology (or a user pCO2 file).

Flux (positive = from the ocean to the atmosphere, mol m-2 s-1 per m2 of open water):

    ``F = k K0 (pCO2_sea - pCO2_air)``

* ``k = 0.251 <U^2> (Sc / 660)^-0.5`` [cm h-1] (Wanninkhof 2014, Limnol. Oceanogr.: Methods 12, 351-362,
  eq. 4), ``<U^2>`` the second moment of the 10-m wind speed [m2 s-2].
* ``Sc(t) = 2116.8 - 136.25 t + 4.7353 t^2 - 0.092307 t^3 + 0.0007555 t^4`` for CO2 in seawater (S = 35),
  ``t`` the SST in degC (Wanninkhof 2014, Table 1).
* ``K0`` [mol L-1 atm-1]: Weiss (1974, Mar. Chem. 2, 203-215), ``ln K0 = A1 + A2 (100/T) + A3 ln(T/100)
  + S (B1 + B2 T/100 + B3 (T/100)^2)`` with A1 = -58.0931, A2 = 90.5069, A3 = 22.2940, B1 = 0.027766,
  B2 = -0.025888, B3 = 0.0050578 (T in K, S in PSU); x 1000 for mol m-3 atm-1.
* ``pCO2_air = xCO2 (P - pH2O)`` [atm] with the water vapour pressure at the sea surface of Weiss & Price
  (1980, Mar. Chem. 8, 347-359): ``ln pH2O = 24.4543 - 67.4509 (100/T) - 4.8489 ln(T/100) - 0.000544 S``.

The cell-mean flux is ``F`` times the cell's open-water fraction ``(1 - land) (1 - ice)`` (no flux through
sea ice; ocean fraction from :func:`diffflux.geography.land_fraction`).

Built-in climatology (:class:`OceanClimatology`, all analytic in latitude, longitude and time of year, pure
JAX): SST, 10-m wind, sea-ice edge and the air-sea pCO2 difference ``dpCO2 = pCO2_sea - pCO2_air`` whose
pattern follows the Takahashi et al. (2009, Deep-Sea Res. II 56, 554-577) climatology qualitatively:
outgassing in the equatorial Pacific (strongest in the east) and weakly in the other tropics;
near-equilibrium subtropical gyres with a thermal seasonal cycle (higher pCO2 in summer); strong
uptake in the subpolar North Atlantic and the North Pacific transition zone; uptake in the Southern
Ocean at 40-60 S (strongest in austral summer); near-equilibrium south of 60 S with winter outgassing.
``pCO2_sea = pCO2_air + dpCO2`` tracks the atmosphere (a present-day, steady disequilibrium), so the
sink does not depend on the xCO2 used. One global offset ``dpco2_offset`` was tuned so that the global
flux of the default configuration is -2.5 PgC/yr (GCB 2024: ocean sink 2.6 +/- 0.4 PgC/yr in 2014-2023
(Friedlingstein et al. 2025); the brief's target "near -2.5"): see :data:`DEFAULT_SINK`.
Alternatively ``pCO2_sea`` comes from a user netCDF file (:func:`read_pco2_sea`).
"""

from __future__ import annotations

import dataclasses
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux import geography
from diffflux.constants import SECONDS_PER_DAY, SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid

DEFAULT_SINK = -2.5
"""Global ocean CO2 flux of the default configuration [PgC/yr] that ``dpco2_offset`` was tuned to."""

# -------------------------------------------------------------------------------------------------
# gas-exchange physics (pure JAX, elementwise, differentiable)
# -------------------------------------------------------------------------------------------------


def schmidt_number_co2(sst_c):
    """Schmidt number of CO2 in seawater (S = 35) [1] for SST in degC (Wanninkhof 2014, Table 1)."""
    t = sst_c
    return 2116.8 + t * (-136.25 + t * (4.7353 + t * (-0.092307 + t * 0.0007555)))


def solubility_co2(sst_k, salinity=35.0):
    """CO2 solubility ``K0`` [mol m-3 atm-1] (Weiss 1974, volumetric form x 1000 L m-3)."""
    tt = sst_k / 100.0
    ln_k0 = (-58.0931 + 90.5069 / tt + 22.2940 * jnp.log(tt)
             + salinity * (0.027766 - 0.025888 * tt + 0.0050578 * tt * tt))
    return 1000.0 * jnp.exp(ln_k0)


def water_vapour_pressure(sst_k, salinity=35.0):
    """Water vapour pressure over seawater [atm] (Weiss & Price 1980)."""
    tt = sst_k / 100.0
    return jnp.exp(24.4543 - 67.4509 / tt - 4.8489 * jnp.log(tt) - 0.000544 * salinity)


def transfer_velocity(u2_mean, sst_c):
    """Gas transfer velocity [m s-1]: ``0.251 <U^2> (Sc/660)^-0.5`` cm/h (Wanninkhof 2014)."""
    k_cm_h = 0.251 * u2_mean * jnp.sqrt(660.0 / schmidt_number_co2(sst_c))
    return k_cm_h / (100.0 * 3600.0)


def air_sea_co2_flux(sst_k, u2_mean, pco2_sea_uatm, xco2_air, *, salinity=35.0, pressure_atm=1.0):
    """Air-sea CO2 flux per m2 of open water [mol m-2 s-1], positive to the atmosphere.

    Args:
        sst_k: sea-surface temperature [K].
        u2_mean: second moment of the 10-m wind speed ``<U^2>`` [m2 s-2].
        pco2_sea_uatm: seawater pCO2 [uatm].
        xco2_air: dry-air CO2 mole fraction [mol mol-1].
        salinity: sea-surface salinity [PSU].
        pressure_atm: sea-level pressure [atm].
    All broadcast; pure JAX (differentiable in every argument).
    """
    pco2_air_uatm = 1e6 * xco2_air * (pressure_atm - water_vapour_pressure(sst_k, salinity))
    k = transfer_velocity(u2_mean, sst_k - 273.15)
    k0 = solubility_co2(sst_k, salinity)
    return k * k0 * (pco2_sea_uatm - pco2_air_uatm) * 1e-6


# -------------------------------------------------------------------------------------------------
# built-in climatology
# -------------------------------------------------------------------------------------------------


class OceanClimatology(eqx.Module):
    """Parameters of the analytic ocean climatology (a pytree of floats with documented units).

    Seasonal phase ``s(t) = cos(2 pi (t - season_peak_day) / yr)``: +1 at the height of boreal summer
    (late August for the ocean surface), -1 in austral summer. ``t`` in s since 1 January 00 UTC.
    Latitude ``phi`` [degrees N], longitude ``lam`` [degrees E] (``lam360 = lam mod 360``).
    """

    season_peak_day: float = 235.0
    """Day of the NH maximum of SST (late August; SST lags insolation by about two months) [day]."""
    # SST = sst_min + (sst_equator - sst_min) cos(phi)^sst_power + A(phi) sign(phi) s(t),
    # A = sst_seasonal exp(-((|phi| - 40) / 18)^2): about 27.8 C at the equator, 21 C at 30, 7 C at 60
    # in the annual zonal mean and a 4 K seasonal amplitude at 40 degrees, like the zonal means of the
    # World Ocean Atlas (Locarnini et al. 2018).
    sst_min: float = -1.8
    """Freezing point of seawater [degC] (the floor of the SST)."""
    sst_equator: float = 29.6
    """Parameter of the SST profile [degC] (equatorial annual mean is sst_equator - 1.8)."""
    sst_power: float = 1.7
    """Exponent of cos(phi) in the SST profile [1]."""
    sst_seasonal: float = 4.0
    """Seasonal SST amplitude at 40 degrees [K]."""
    # Wind: U = u_base + u_trade exp(-((|phi| - 15)/7)^2) - u_doldrums exp(-(phi/5)^2)
    #           + u_west(hemisphere) (1 - wind_seasonal sign(phi) s(t)) exp(-((|phi| - 52)/12)^2)
    # zonal means of satellite (CCMP-like) 10-m winds: ~5.5 m/s at the equator, 7.5 in the trades, ~6.5
    # under the subtropical highs, 9-11 m/s in the westerlies (stronger in the SH and in winter).
    u_base: float = 6.0
    """Background 10-m wind speed [m s-1]."""
    u_trade: float = 1.6
    """Trade-wind enhancement at 15 degrees [m s-1]."""
    u_doldrums: float = 0.8
    """Equatorial reduction [m s-1]."""
    u_west_nh: float = 3.0
    """Westerly-belt enhancement at 52 N [m s-1]."""
    u_west_sh: float = 4.5
    """Westerly-belt enhancement at 52 S [m s-1]."""
    wind_seasonal: float = 0.2
    """Fractional seasonal modulation of the westerlies (stronger in winter) [1]."""
    u2_factor: float = 4.0 / np.pi
    """<U^2> / <U>^2 [1]: 4/pi for Rayleigh-distributed (Weibull shape 2) wind speeds."""
    # sea ice: fraction 1 / (1 + exp(-(|phi| - edge) / ice_width)),
    # NH edge = ice_edge_nh + ice_edge_nh_amp s(t)  (about 66 N in March, 78 N in September),
    # SH edge = ice_edge_sh - ice_edge_sh_amp s(t)  (about 60 S in September, 68 S in February).
    ice_edge_nh: float = 72.0
    ice_edge_nh_amp: float = 6.0
    ice_edge_sh: float = 64.0
    ice_edge_sh_amp: float = 4.0
    ice_width: float = 1.5
    """Width of the ice-edge transition [degrees]."""
    # dpCO2 = pCO2_sea - pCO2_air [uatm], sum of:
    eq_pacific: float = 60.0
    """Equatorial Pacific outgassing: eq_pacific exp(-(phi/8)^2) exp(-((lam360 - 245)/45)^2) [uatm]."""
    tropics: float = 12.0
    """Weak tropical outgassing elsewhere: tropics exp(-(phi/15)^2) [uatm]."""
    subtropical_seasonal: float = 20.0
    """Thermal seasonal cycle of the gyres: this exp(-((|phi| - 35)/12)^2) sign(phi) s(t) [uatm]."""
    midlatitude_uptake: float = 28.0
    """Uptake along the subtropical convergence zones (winter cooling, Takahashi et al. 2009):
    -this exp(-((|phi| - 38)/10)^2) (1 - 0.5 sign(phi) s(t)) (strongest in local winter) [uatm]."""
    north_atlantic: float = 45.0
    """N. Atlantic uptake: -this exp(-((phi - 57)/10)^2) W(lam; -80..20 E) (1 + 0.3 s(t)) [uatm]."""
    north_pacific: float = 25.0
    """N. Pacific uptake: -this exp(-((phi - 42)/8)^2) W(lam360; 140..235 E) (1 - 0.5 s(t)) [uatm]."""
    southern_ocean: float = 28.0
    """Southern Ocean uptake: -this exp(-((phi + 48)/7)^2) (1 - 0.3 s(t)) [uatm]."""
    antarctic_seasonal: float = 15.0
    """South of 60 S: this exp(-((phi + 65)/5)^2) s(t) (winter outgassing, summer uptake) [uatm]."""
    dpco2_offset: float = -0.695
    """Global offset [uatm], tuned (with ``midlatitude_uptake`` and ``southern_ocean`` set to 28 uatm) so
    that the default annual global flux is :data:`DEFAULT_SINK`: -2.4999 PgC/yr at 1 degree, -2.4994 at
    2 x 2.5, -2.4984 at 4 x 5 and -2.49998 at 0.5 degree (12 monthly evaluations, xCO2 = 420 ppm).
    Zonal split at 1 degree: S of 50 S -0.49, 50-14 S -1.64, 14 S-14 N +0.62, 14-50 N -0.72, N of 50 N
    -0.27 PgC/yr (Takahashi et al. 2009 for 2000: -0.06, -1.05, +0.70, -0.70, -0.31 with a -1.4 total)."""

    def season(self, t):
        return jnp.cos(2.0 * jnp.pi * (t - self.season_peak_day * SECONDS_PER_DAY) / SECONDS_PER_YEAR)

    def sst(self, lat, t):
        """SST [K] at latitudes ``lat`` [degrees] and time ``t`` [s]."""
        phi = jnp.deg2rad(lat)
        amp = self.sst_seasonal * jnp.exp(-(((jnp.abs(lat) - 40.0) / 18.0) ** 2))
        c = self.sst_min + (self.sst_equator - self.sst_min) * jnp.cos(phi) ** self.sst_power \
            + amp * jnp.sign(lat) * self.season(t)
        return jnp.maximum(c, self.sst_min) + 273.15

    def wind_speed(self, lat, t):
        """Mean 10-m wind speed [m s-1]."""
        a = jnp.abs(lat)
        west = jnp.where(lat >= 0, self.u_west_nh, self.u_west_sh)
        return (self.u_base + self.u_trade * jnp.exp(-(((a - 15.0) / 7.0) ** 2))
                - self.u_doldrums * jnp.exp(-((lat / 5.0) ** 2))
                + west * (1.0 - self.wind_seasonal * jnp.sign(lat) * self.season(t))
                * jnp.exp(-(((a - 52.0) / 12.0) ** 2)))

    def sea_ice(self, lat, t):
        """Sea-ice fraction [1]."""
        s = self.season(t)
        edge = jnp.where(lat >= 0, self.ice_edge_nh + self.ice_edge_nh_amp * s,
                         self.ice_edge_sh - self.ice_edge_sh_amp * s)
        return jax.nn.sigmoid((jnp.abs(lat) - edge) / self.ice_width)

    def delta_pco2(self, lat, lon, t):
        """``pCO2_sea - pCO2_air`` [uatm] at ``lat, lon`` [degrees] (broadcast) and time ``t`` [s]."""
        s = self.season(t)
        lam360 = jnp.mod(lon, 360.0)

        def window(x, lo, hi, w=6.0):
            return 0.5 * (jnp.tanh((x - lo) / w) - jnp.tanh((x - hi) / w))

        d = self.eq_pacific * jnp.exp(-((lat / 8.0) ** 2)) * jnp.exp(-(((lam360 - 245.0) / 45.0) ** 2))
        d = d + self.tropics * jnp.exp(-((lat / 15.0) ** 2))
        d = d + self.subtropical_seasonal * jnp.exp(-(((jnp.abs(lat) - 35.0) / 12.0) ** 2)) \
            * jnp.sign(lat) * s
        d = d - self.midlatitude_uptake * jnp.exp(-(((jnp.abs(lat) - 38.0) / 10.0) ** 2)) \
            * (1.0 - 0.5 * jnp.sign(lat) * s)
        d = d - self.north_atlantic * jnp.exp(-(((lat - 57.0) / 10.0) ** 2)) \
            * window(lon, -80.0, 20.0) * (1.0 + 0.3 * s)
        d = d - self.north_pacific * jnp.exp(-(((lat - 42.0) / 8.0) ** 2)) \
            * window(lam360, 140.0, 235.0) * (1.0 - 0.5 * s)
        d = d - self.southern_ocean * jnp.exp(-(((lat + 48.0) / 7.0) ** 2)) * (1.0 - 0.3 * s)
        d = d + self.antarctic_seasonal * jnp.exp(-(((lat + 65.0) / 5.0) ** 2)) * s
        return d + self.dpco2_offset


# -------------------------------------------------------------------------------------------------
# the model on a grid
# -------------------------------------------------------------------------------------------------


class OceanCO2(eqx.Module):
    """Ocean CO2 flux on a model grid (pure JAX in time, parameters and xCO2).

    Build with :meth:`build`. ``flux(t)`` returns the cell-mean flux ``(nlat, nlon)`` [mol m-2 s-1]
    (positive = outgassing) at time ``t`` [s since 1 January 00 UTC of the climatological year, or of
    the user file's reference time]. Cell-centred on the grid; land parts of cells carry no flux.

    Attributes:
        lat, lon: ``(nlat, 1)`` and ``(1, nlon)`` cell centres [degrees].
        ocean_fraction: ``(nlat, nlon)`` 1 - land fraction [1].
        area: ``(nlat, nlon)`` cell areas [m2].
        clim: :class:`OceanClimatology` parameters.
        xco2: atmospheric CO2 dry mole fraction [mol mol-1] (default 420e-6: global mean around 2023).
        pco2_sea: None (built-in dpCO2 pattern) or ``(nrec, nlat, nlon)`` seawater pCO2 [uatm].
        pco2_edges: ``(nrec + 1,)`` record edges [s] of ``pco2_sea``.
        pco2_period: cycle length [s] of ``pco2_sea`` (e.g. a year for a monthly climatology) or 0.
    """

    lat: jax.Array
    lon: jax.Array
    ocean_fraction: jax.Array
    area: jax.Array
    clim: OceanClimatology
    xco2: jax.Array
    pco2_sea: jax.Array | None = None
    pco2_edges: tuple[float, ...] | None = eqx.field(static=True, default=None)
    pco2_period: float = eqx.field(static=True, default=0.0)

    @classmethod
    def build(cls, grid: LatLonGrid, *, clim: OceanClimatology | None = None, xco2: float = 420e-6,
              pco2_sea=None, pco2_edges=None, pco2_period: float = 0.0, dtype=jnp.float64) -> OceanCO2:
        """Ocean model on ``grid`` (see the class docstring for the arguments)."""
        ocean = 1.0 - np.asarray(geography.land_fraction(grid))
        if pco2_sea is not None:
            pco2_sea = jnp.asarray(pco2_sea, dtype=dtype)
            if pco2_sea.ndim != 3 or pco2_sea.shape[1:] != (grid.nlat, grid.nlon):
                raise ValueError(
                    f"OceanCO2: pco2_sea must be (nrec, {grid.nlat}, {grid.nlon}) [uatm], found "
                    f"{pco2_sea.shape}"
                )
            if pco2_edges is None or len(pco2_edges) != pco2_sea.shape[0] + 1:
                raise ValueError("OceanCO2: pco2_edges must give nrec + 1 record edges [s]")
            pco2_edges = tuple(float(e) for e in np.asarray(pco2_edges, dtype=np.float64))
        return cls(lat=jnp.asarray(grid.lat[:, None], dtype=dtype),
                   lon=jnp.asarray(grid.lon[None, :], dtype=dtype),
                   ocean_fraction=jnp.asarray(ocean, dtype=dtype),
                   area=jnp.asarray(grid.area, dtype=dtype),
                   clim=clim or OceanClimatology(), xco2=jnp.asarray(xco2, dtype=dtype),
                   pco2_sea=pco2_sea, pco2_edges=pco2_edges, pco2_period=float(pco2_period))

    def _pco2_sea_at(self, t, pco2_air_uatm):
        if self.pco2_sea is None:
            return pco2_air_uatm + self.clim.delta_pco2(self.lat, self.lon, t)
        e = jnp.asarray(self.pco2_edges, dtype=self.area.dtype)
        tt = t
        if self.pco2_period > 0:
            tt = e[0] + jnp.mod(t - e[0], self.pco2_period)
        k = jnp.clip(jnp.searchsorted(e, tt, side="right") - 1, 0, self.pco2_sea.shape[0] - 1)
        return self.pco2_sea[k]

    def open_water_fraction(self, t):
        """``(nlat, nlon)`` ice-free ocean fraction of each cell [1]."""
        return self.ocean_fraction * (1.0 - self.clim.sea_ice(self.lat, t))

    def flux(self, t, xco2=None):
        """Cell-mean flux ``(nlat, nlon)`` [mol m-2 s-1] at time ``t`` [s]; ``xco2`` [mol mol-1] (scalar or
        ``(nlat, nlon)``, e.g. the model's surface layer) overrides the default. Jit-compiled (also when
        called eagerly); differentiable in the module's arrays and parameters, ``t`` and ``xco2``."""
        t = jnp.asarray(t, dtype=self.area.dtype)
        xco2 = None if xco2 is None else jnp.asarray(xco2, dtype=self.area.dtype)
        return _flux_jit(self, t, xco2)

    def _flux(self, t, xco2=None):
        x = self.xco2 if xco2 is None else xco2
        sst = self.clim.sst(self.lat, t)
        u = self.clim.wind_speed(self.lat, t)
        u2 = self.clim.u2_factor * u * u
        pco2_air = 1e6 * x * (1.0 - water_vapour_pressure(sst))
        f = air_sea_co2_flux(sst, u2, self._pco2_sea_at(t, pco2_air), x)
        return f * self.open_water_fraction(t)

    def monthly_fluxes(self, xco2=None):
        """``(12, nlat, nlon)`` fluxes [mol m-2 s-1] at the middle of 12 equal parts of the year."""
        xco2 = None if xco2 is None else jnp.asarray(xco2, dtype=self.area.dtype)
        return _monthly_jit(self, xco2)

    def monthly_component(self, name: str = "ocean", correction=None, xco2=None):
        """The 12 mean-month fluxes as a cyclic :class:`~diffflux.models.composer.FluxComponent` (records
        of 365.25/12 days from t = 0, period one year) for the flux composer."""
        from diffflux.models.composer import FluxComponent

        edges = np.arange(13) * SECONDS_PER_YEAR / 12.0
        return FluxComponent.create(name, "CO2", self.monthly_fluxes(xco2), record_edges=edges,
                                    period=SECONDS_PER_YEAR, correction=correction, dtype=self.area.dtype)

    def annual_mean_flux(self, xco2=None):
        """``(nlat, nlon)`` annual mean (12-point rule) [mol m-2 s-1]."""
        return self.monthly_fluxes(xco2).mean(axis=0)


@eqx.filter_jit
def _flux_jit(model: OceanCO2, t, xco2):
    return model._flux(t, xco2)


@eqx.filter_jit
def _monthly_jit(model: OceanCO2, xco2):
    times = (jnp.arange(12) + 0.5) * SECONDS_PER_YEAR / 12.0
    return jax.vmap(lambda t: model._flux(t, xco2))(times)


@jax.jit
def _delta_pco2_jit(clim: OceanClimatology, lat, lon, t):
    return clim.delta_pco2(lat, lon, t)


# -------------------------------------------------------------------------------------------------
# user pCO2 files
# -------------------------------------------------------------------------------------------------

_PCO2_UNITS = {"uatm": 1.0, "µatm": 1.0, "microatm": 1.0, "atm": 1e6, "pa": 1e6 / 101325.0,
               "hpa": 1e8 / 101325.0, "ppm": 1.0}


@dataclasses.dataclass(frozen=True, eq=False)
class PCO2Field:
    """Seawater pCO2 on the model grid from a file.

    Attributes:
        values: ``(nrec, nlat, nlon)`` [uatm] (cells without data filled, see ``n_filled``).
        edges: ``(nrec + 1,)`` record edges [s since ``reference_time``].
        n_filled: model ocean cells x records without any valid source data, filled from the
            built-in climatology (``pCO2_air + dpCO2`` at the record's middle time).
    """

    values: np.ndarray
    edges: np.ndarray
    n_filled: int


def read_pco2_sea(path, grid: LatLonGrid, *, variable: str | None = None, reference_time="2000-01-01",
                  xco2: float = 420e-6, clim: OceanClimatology | None = None) -> PCO2Field:
    """Read seawater pCO2 (e.g. a monthly climatology) and average it conservatively onto ``grid``.

    Land/ice cells may be NaN: each model cell averages the valid source cells it overlaps (area-weighted);
    model cells with no valid data at all are filled from the built-in climatology and counted.
    Units: uatm (also ``µatm``, ``microatm``), atm, Pa, hPa. Without a time axis the field is constant.

    Args:
        path: netCDF file.
        grid: model grid.
        variable: variable name (default: the only data variable on the lat/lon grid, or one of
            ``spco2, pco2, pCO2, pco2_sea, pco2w``).
        reference_time: time origin of the returned record edges.
        xco2, clim: used for the fill values.
    """
    import xarray as xr

    from diffflux.met.regrid import ConservativeRegridder, rectilinear_grid
    from diffflux.models.inventories import _bounds_of, _find_coord, _time_bounds

    where = os.fspath(path)
    if not os.path.exists(where):
        raise FileNotFoundError(f"read_pco2_sea: file {where} does not exist")
    with xr.open_dataset(where) as ds:
        lat, lon = _find_coord(ds, "lat"), _find_coord(ds, "lon")
        if lat is None or lon is None:
            raise ValueError(f"{where}: no latitude/longitude coordinates found; dimensions {dict(ds.sizes)}")
        if variable is None:
            cands = [v for v in ds.data_vars if lat in ds[v].dims and lon in ds[v].dims]
            named = [v for v in ("spco2", "pco2", "pCO2", "pco2_sea", "pco2w") if v in ds.data_vars]
            if named:
                variable = named[0]
            elif len(cands) == 1:
                variable = str(cands[0])
            else:
                raise ValueError(f"{where}: cannot tell which variable is pCO2 among {cands}; pass variable=")
        if variable not in ds.variables:
            raise ValueError(f"{where}: variable '{variable}' not found; have {list(ds.data_vars)}")
        da = ds[variable]
        unit = str(da.attrs.get("units", "")).strip().lower()
        if unit not in _PCO2_UNITS:
            raise ValueError(
                f"{where}: variable '{variable}' has units '{da.attrs.get('units')}'; expected uatm, atm, Pa "
                f"or hPa"
            )
        tdim = _find_coord(ds, "time")
        dims = ((tdim,) if tdim else ()) + (lat, lon)
        extra = [d for d in da.dims if d not in dims]
        if extra:
            raise ValueError(f"{where}: variable '{variable}' has extra dimensions {extra}; expected {dims}")
        values = np.asarray(da.transpose(*dims).values, dtype=np.float64) * _PCO2_UNITS[unit]
        if tdim is None:
            values = values[None]
            tb = None
        else:
            tb = _time_bounds(ds, tdim, where)
        src = rectilinear_grid(ds[lat].values, ds[lon].values, lat_bounds=_bounds_of(ds, lat),
                               lon_bounds=_bounds_of(ds, lon), lat_name=lat, lon_name=lon, where=where)
    valid = np.isfinite(values)
    rg = ConservativeRegridder.build(src, grid)
    num = rg.density(np.where(valid, values, 0.0))
    den = rg.density(valid.astype(np.float64))
    if tb is None:
        edges = np.array([0.0, SECONDS_PER_YEAR])
    else:
        ref = np.datetime64(reference_time, "s")
        sec = (tb - ref) / np.timedelta64(1, "s")
        edges = np.concatenate([sec[:, 0], sec[-1:, 1]])
    clim = clim or OceanClimatology()
    out = np.empty_like(num)
    ocean = 1.0 - np.asarray(geography.land_fraction(grid)) > 0
    n_filled = 0
    for k in range(num.shape[0]):
        tmid = 0.5 * (edges[k] + edges[k + 1])
        have = den[k] > 1e-12
        fill = np.asarray(1e6 * xco2 + _delta_pco2_jit(clim, grid.lat[:, None], grid.lon[None, :], tmid))
        out[k] = np.where(have, num[k] / np.where(have, den[k], 1.0), fill)
        n_filled += int(np.sum(~have & ocean))
    if np.any(out[np.isfinite(out)] < 0):
        raise ValueError(f"{where}: variable '{variable}' has negative pCO2 values")
    return PCO2Field(values=out, edges=edges, n_filled=n_filled)
