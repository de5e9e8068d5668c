"""Biosphere fluxes for the atmosphere: species components on the model grid, daily and sub-daily.

Daily cell outputs of :meth:`Biosphere.simulate` are per m2 of *land* per day; here they become fluxes
per m2 of *grid cell* [mol m-2 s-1] (multiplied by the land fraction), by species and component:

=============================  =====================================================================
key                            what
=============================  =====================================================================
``CO2:biosphere``              net ecosystem exchange without fire, ``AR + HR - GPP`` (mol CO2)
``CO2:fire``                   fire CO2 (emission factors of Akagi et al. 2011)
``CH4:wetland``                natural wetland emission (Cao et al. 1996 type)
``CH4:rice``                   rice-paddy emission
``CH4:soil``                   upland soil uptake (negative; Curry 2007)
``CH4:fire``                   fire CH4
``N2O:soil``                   natural-soil N2O (NGAS type)
``N2O:agriculture``            direct cropland N2O from N inputs (IPCC Tier 1 EF1)
``CO:fire``, ``BC:fire``,      fire CO, black carbon (mol C), NOx (mol NO)
``NOx:fire``
=============================  =====================================================================

Sub-daily downscaling (:meth:`BiosphereFluxes.at`), as CarbonTracker downscales CASA (Olsen & Randerson
2004): GPP follows the cosine of the solar zenith angle in local solar time, respiration follows the
diurnal temperature cycle ``T = T_mean + (DTR / 2) cos(2 pi (h - 15) / 24)`` through a Q10 of 2; the other
components are constant through the day. The shapes are normalised by their mean over the transport
steps of the same day, so the sum over a day's steps equals the daily total exactly.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.models.biosphere.climate import declination
from diffflux.models.biosphere.drivers import DriverSource, SurfaceMaps

M_C_G = 12.011  # g C per mol
COMPONENTS: dict[str, str] = {
    # key: daily output name (already in mol per m2 of land per day)
    "CO2:fire": "fire_co2",
    "CH4:wetland": "ch4_wetland",
    "CH4:rice": "ch4_paddy",
    "CH4:soil": "ch4_soil",
    "CH4:fire": "fire_ch4",
    "N2O:soil": "n2o_natural",
    "N2O:agriculture": "n2o_crop",
    "CO:fire": "fire_co",
    "BC:fire": "fire_bc",
    "NOx:fire": "fire_nox",
}
FLUX_KEYS: tuple[str, ...] = ("CO2:biosphere",) + tuple(COMPONENTS)
NEEDED_OUTPUTS: tuple[str, ...] = ("gpp", "ar", "hr") + tuple(COMPONENTS.values())


def _cos_zenith(lat_deg, lon_deg, t_seconds):
    day = jnp.floor(t_seconds / 86400.0)
    hour = jnp.mod(t_seconds, 86400.0) / 3600.0 + lon_deg / 15.0
    phi = jnp.deg2rad(lat_deg)
    dec = declination(jnp.mod(day, 365.0))
    return jnp.sin(phi) * jnp.sin(dec) + jnp.cos(phi) * jnp.cos(dec) * jnp.cos(
        2 * jnp.pi * (hour - 12.0) / 24.0
    )


class BiosphereFluxes(eqx.Module):
    """Daily biosphere fluxes of a simulated period and their sub-daily downscaling.

    Attributes:
        daily: ``{output: (ndays, ncell)}`` from :meth:`Biosphere.simulate` (per m2 land per day).
        maps: the surface maps (static).
        drivers: the driver source of the simulation (for temperature range at sub-daily times).
        day0: day index of ``daily[...][0]`` in the driver cycle.
    """

    daily: dict[str, jax.Array]
    maps: SurfaceMaps = eqx.field(static=True)
    drivers: DriverSource
    day0: int = eqx.field(static=True, default=0)

    @property
    def ndays(self) -> int:
        return int(self.daily["gpp"].shape[0])

    def _per_cell_area(self, values):
        """Per m2 land per day -> per m2 grid cell per second, scattered to ``(..., nlat, nlon)``."""
        land = jnp.asarray(self.maps.land_fraction, values.dtype)
        return self.maps.to_grid(values * land / 86400.0)

    def daily_mean(self, day) -> dict[str, jax.Array]:
        """Daily-mean fluxes [mol m-2 s-1] ``{key: (nlat, nlon)}`` of simulated day ``day`` (0-based)."""
        d = {k: v[day] for k, v in self.daily.items()}
        out = {"CO2:biosphere": self._per_cell_area((d["ar"] + d["hr"] - d["gpp"]) / M_C_G)}
        for key, name in COMPONENTS.items():
            out[key] = self._per_cell_area(d[name])
        return out

    def at(self, t, steps_per_day: int) -> dict[str, jax.Array]:
        """Fluxes [mol m-2 s-1] ``{key: (nlat, nlon)}`` for the transport step starting at ``t`` [s].

        ``t`` counts from the start of the simulated period; the step length is ``86400 / steps_per_day``
        and the shapes are evaluated at mid-step. Pure JAX (use inside the transport scan).
        """
        dt = 86400.0 / steps_per_day
        day = jnp.floor(t / 86400.0).astype(jnp.int32)
        day = jnp.clip(day, 0, self.ndays - 1)
        dtype = self.daily["gpp"].dtype
        grid = self.maps.grid
        lat = jnp.asarray(grid.lat[self.maps.cell_j], dtype)
        lon = jnp.asarray(grid.lon[self.maps.cell_i], dtype)
        t_day0 = (day + self.day0).astype(dtype) * 86400.0
        tmid = t_day0 + (jnp.floor((t - day * 86400.0) / dt) + 0.5) * dt
        steps = t_day0 + (jnp.arange(steps_per_day, dtype=dtype) + 0.5) * dt

        cz_all = jnp.maximum(jax.vmap(lambda s: _cos_zenith(lat, lon, s))(steps), 0.0)
        cz = jnp.maximum(_cos_zenith(lat, lon, tmid), 0.0)
        cz_mean = cz_all.mean(axis=0)
        trange = self.drivers.weather(day + self.day0).trange
        a = jnp.log(2.0) / 10.0 * trange / 2.0

        def resp(s):
            hour = jnp.mod(s, 86400.0) / 3600.0 + lon / 15.0
            return jnp.exp(a * jnp.cos(2.0 * jnp.pi * (hour - 15.0) / 24.0))

        r_all = jax.vmap(resp)(steps)
        resp_shape = resp(tmid) / r_all.mean(axis=0)
        # flat shape where the sun never rises (polar night): GPP is zero there anyway
        gpp_shape = jnp.where(cz_mean > 1e-12, cz / jnp.maximum(cz_mean, 1e-12), 1.0)
        d = {k: v[day] for k, v in self.daily.items()}
        nee = ((d["ar"] + d["hr"]) * resp_shape - d["gpp"] * gpp_shape) / M_C_G
        out = {"CO2:biosphere": self._per_cell_area(nee)}
        for key, name in COMPONENTS.items():
            out[key] = self._per_cell_area(d[name])
        return out


def global_totals(annual: dict[str, jax.Array], maps: SurfaceMaps) -> dict[str, float]:
    """Global totals of annual sums (per m2 land) in reporting units.

    Returns ``{name: value}`` with carbon fluxes in Pg C yr-1, CH4 in Tg CH4 yr-1, N2O in Tg N yr-1,
    fire CO in Tg CO yr-1 and BC in Tg C yr-1.
    """
    area = maps.cell_area
    tot = {k: float(np.sum(np.asarray(v) * area)) for k, v in annual.items()}
    return {
        "GPP [PgC/yr]": tot["gpp"] / 1e15,
        "NPP [PgC/yr]": tot["npp"] / 1e15,
        "autotrophic respiration [PgC/yr]": tot["ar"] / 1e15,
        "heterotrophic respiration [PgC/yr]": tot["hr"] / 1e15,
        "fire carbon [PgC/yr]": tot["fire_c"] / 1e15,
        "NEE incl. fire [PgC/yr]": tot["nee"] / 1e15,
        "wetland CH4 [TgCH4/yr]": tot["ch4_wetland"] * 16.043 / 1e12,
        "rice CH4 [TgCH4/yr]": tot["ch4_paddy"] * 16.043 / 1e12,
        "soil CH4 uptake [TgCH4/yr]": -tot["ch4_soil"] * 16.043 / 1e12,
        "fire CH4 [TgCH4/yr]": tot["fire_ch4"] * 16.043 / 1e12,
        "natural soil N2O [TgN/yr]": tot["n2o_natural"] * 28.014 / 1e12,
        "cropland N2O [TgN/yr]": tot["n2o_crop"] * 28.014 / 1e12,
        "fire CO [TgCO/yr]": tot["fire_co"] * 28.010 / 1e12,
        "fire BC [TgC/yr]": tot["fire_bc"] * 12.011 / 1e12,
    }


def pool_totals(bio, state) -> dict[str, float]:
    """Global carbon in each pool [Pg C] (vegetation = foliage + stem + root)."""
    area = bio.maps.cell_area[bio.tiles.cell] * bio.tiles.frac
    out = {
        k: float(np.sum(np.asarray(getattr(state, k)) * area)) / 1e15
        for k in ("leaf", "stem", "root", "litter", "soil")
    }
    out["vegetation"] = out["leaf"] + out["stem"] + out["root"]
    return out
