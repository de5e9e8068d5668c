"""The built-in present-day land climatology and surface maps (no files needed).

Weather (:class:`ClimatologyDrivers`) is an analytic function of latitude, continentality and day of
year, evaluated inside the scan; the static fields per land cell come from documented formulas:

* **Insolation**: daily-mean top-of-atmosphere shortwave from the solar declination and latitude
  (Berger 1978 geometry, circular orbit with the eccentricity's first-order term), solar constant
  1361 W m-2 (Kopp & Lean 2011); day length from the sunset hour angle. Surface shortwave = TOA x a
  transmissivity that falls with cloudiness ``0.75 - 0.27 tanh(P / 4 mm d-1)``.
* **Air temperature** ``T = T_ann(lat) + A(lat, c) s(lat) cos(2 pi (d - 200) / 365)`` with
  ``T_ann = 27.5 - 0.0078 lat^2`` degC (zonal land means, cf. Legates & Willmott 1990), seasonal
  amplitude ``A = 0.32 |lat| (0.4 + 0.9 c)`` K growing with latitude and continentality ``c``, and
  ``s = tanh(lat / 10 deg)`` flipping the season across the equator (NH maximum on day 200, 19 July).
  Continentality ``c`` in [0, 1] is the land fraction smoothed with a Gaussian of 800 km standard
  deviation. Diurnal range ``6 + 6 (1 - RH)`` K.
* **Soil temperature**: air temperature damped (x 0.85) and lagged by 12 days (heat-conduction phase lag
  of a ~10 cm layer).
* **Precipitation** [mm d-1]: a seasonally migrating ITCZ band (peak 8 mm d-1, latitude
  ``6 + 10 s_season`` degrees over land, half-width 11 deg), mid-latitude storm tracks (2.6 mm d-1 at
  47 deg, reduced by continentality ``x (1 - 0.6 c)``), a frontal background of
  ``0.1 + 0.9 exp(-((|lat| - 60) / 20)^2 / 2)`` mm d-1 (small in the tropics, so tropical dry seasons are
  dry) reduced by ``0.9 c`` in the subtropics;
  deserts follow from the subtropical minimum and continentality (Sahara, Arabia, central Asia).
* **Humidity**: relative humidity ``0.42 + 0.43 tanh(P / 2.5 mm d-1)``, vapour-pressure deficit from
  the Tetens saturation pressure at the daytime temperature ``T + trange / 4``.
* **CO2 and CH4**: 415 ppm and 1900 ppb (near 2022/23 global means; NOAA GML).

Not represented: topography (the Tibetan plateau and the Andes are too warm), monsoon longitudes, the
west-coast/east-coast contrasts and cold ocean currents; these are limitations of a no-file default.

Surface maps (:func:`climatology_maps`) are derived with documented rules:

* land fraction from the packaged Natural Earth raster (:mod:`diffflux.geography`); Antarctica and
  Greenland are ice (no vegetation),
* PFTs from annual mean, coldest- and warmest-month temperature and the moisture index
  ``MI = P_ann / PET_ann`` (Priestley-Taylor), following the logic of Holdridge life zones and the
  bioclimatic limits of LPJ (Sitch et al. 2003, Table 2): tundra where the warmest month is below 10 C,
  boreal forest where the coldest month is below -8 C, temperate forests/grass/shrub where it is below
  15 C, tropical evergreen/deciduous forest, savanna or C4 grass above; the vegetated fraction falls to
  zero in deserts (``MI < 0.06``),
* cropland, rice and nitrogen inputs per country from ``data/agriculture.csv`` (approximate FAOSTAT
  values, see ``data/README.md``), placed on the climatically suitable cells of each country,
* natural wetlands: 2 % of land where wet (``MI > 0.8``), plus boreal peatlands (up to 12 % at 50-70 N where
  ``MI > 1``) and tropical floodplains (up to 8 % where ``MI > 1.3``), giving ~7.5 M km2 in total (within
  the 4-10 M km2 of wetland-area products, e.g. Zhang et al. 2021 WAD2M, Lehner & Doell 2004 GLWD),
* soils: a uniform loam (porosity 0.45, field capacity 0.30, wilting point 0.12, pH 6.5).
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from diffflux import geography
from diffflux.grid import LatLonGrid
from diffflux.models.biosphere.drivers import DailyWeather, DriverSource, SurfaceMaps
from diffflux.models.biosphere.pft import NPFT, pft_index

SOLAR_CONSTANT = 1361.0  # W m-2 (Kopp & Lean 2011)
CO2_DEFAULT = 415e-6
CH4_DEFAULT = 1900e-9
DAYS = 365


def declination(day):
    """Solar declination [rad] for day of year ``day`` (0 = 1 January), Cooper (1969)."""
    return jnp.deg2rad(23.44) * jnp.sin(2.0 * jnp.pi * (day + 284.0 + 1.0) / 365.0)


def insolation(lat_deg, day):
    """Daily-mean TOA shortwave [W m-2] and day length [s] at latitude ``lat_deg`` on ``day``."""
    phi = jnp.deg2rad(lat_deg)
    dec = declination(day)
    x = jnp.clip(-jnp.tan(phi) * jnp.tan(dec), -1.0, 1.0)
    h0 = jnp.arccos(x)
    ecc = 1.0 + 0.033 * jnp.cos(2.0 * jnp.pi * day / 365.0)
    q = (
        SOLAR_CONSTANT
        / jnp.pi
        * ecc
        * (h0 * jnp.sin(phi) * jnp.sin(dec) + jnp.cos(phi) * jnp.cos(dec) * jnp.sin(h0))
    )
    return jnp.maximum(q, 0.0), 86400.0 * h0 / jnp.pi


def saturation_vapour_pressure(t_kelvin):
    """Tetens (1930) saturation vapour pressure over water [Pa]."""
    tc = t_kelvin - 273.15
    return 610.78 * jnp.exp(17.27 * tc / (tc + 237.3))


def priestley_taylor_pet(swdown, t_kelvin, alpha=1.26):
    """Potential evapotranspiration [kg m-2 d-1] (Priestley & Taylor 1972).

    Net radiation ``0.77 SW - 50 W m-2`` (albedo 0.23, a typical net long-wave loss), never negative.
    """
    tc = t_kelvin - 273.15
    es = saturation_vapour_pressure(t_kelvin)
    delta = 4098.0 * es / (tc + 237.3) ** 2  # Pa K-1
    gamma = 66.0  # psychrometric constant, Pa K-1
    rn = jnp.maximum(0.77 * swdown - 50.0, 0.0)
    return alpha * delta / (delta + gamma) * rn / 2.45e6 * 86400.0


def continentality(grid: LatLonGrid, length_km: float = 1500.0, sigma_lat_km: float = 400.0) -> np.ndarray:
    """Upwind land fraction in [0, 1]: how much land the prevailing wind has crossed.

    The land fraction is averaged along each latitude circle with weights ``exp(-x / length_km)`` over
    the distance ``x`` *upwind* (westward in the westerlies poleward of 30 degrees, eastward in the
    trade winds equatorward of 25 degrees, a blend between), then smoothed in latitude with a Gaussian of
    ``sigma_lat_km`` and divided by 0.65 (the value of the largest interiors), capped at 1. Western
    Europe and the west coast of North America come out maritime, Siberia,
    central North America and the Sahara (under the north-east trades) continental.
    """
    land = geography.land_fraction(grid)
    km_per_deg = 111.2
    lon = np.arange(grid.nlon) * grid.dlon
    out = np.empty_like(land)
    for j, lat in enumerate(grid.lat):
        coslat = max(np.cos(np.deg2rad(lat)), 0.05)
        dist_east = ((lon[None, :] - lon[:, None]) % 360.0) * km_per_deg * coslat  # target -> source eastward
        dist_west = ((lon[:, None] - lon[None, :]) % 360.0) * km_per_deg * coslat
        westerly = np.clip((abs(lat) - 25.0) / 10.0, 0.0, 1.0)
        w = westerly * np.exp(-dist_west / length_km) + (1.0 - westerly) * np.exp(-dist_east / length_km)
        w /= w.sum(axis=1, keepdims=True)
        out[j] = w @ land[j]
    dy = (grid.lat[:, None] - grid.lat[None, :]) * km_per_deg
    wl = np.exp(-0.5 * (dy / sigma_lat_km) ** 2)
    wl /= wl.sum(axis=1, keepdims=True)
    return np.clip(wl @ out / 0.65, 0.0, 1.0)


def _precip_mm_day(lat, day, cont):
    season = jnp.cos(2.0 * jnp.pi * (day - 200.0) / 365.0)  # +1 in NH summer
    itcz_lat = 4.0 + 9.0 * season
    itcz = 9.0 * jnp.exp(-0.5 * ((lat - itcz_lat) / 7.0) ** 2) * (1.0 - 0.3 * cont)
    storm = 2.8 * (jnp.exp(-0.5 * ((lat - 47.0) / 12.0) ** 2) + jnp.exp(-0.5 * ((lat + 47.0) / 12.0) ** 2))
    subtropics = jnp.exp(-0.5 * ((jnp.abs(lat) - 25.0) / 8.0) ** 2)
    background = (0.1 + 0.9 * jnp.exp(-0.5 * ((jnp.abs(lat) - 60.0) / 20.0) ** 2)) * (
        1.0 - 0.9 * subtropics * cont
    )
    return itcz + storm * (1.0 - 0.6 * cont) + background


class ClimatologyDrivers(DriverSource):
    """Analytic present-day daily weather on the land cells (formulas in the module docstring).

    Attributes:
        lat: ``(ncell,)`` latitude of each land cell [deg].
        cont: ``(ncell,)`` continentality [0-1].
        co2, ch4: atmospheric mole fractions [mol mol-1].
    """

    lat: jnp.ndarray
    cont: jnp.ndarray
    co2: float = CO2_DEFAULT
    ch4: float = CH4_DEFAULT

    @property
    def days_per_cycle(self) -> int:
        return DAYS

    def weather(self, day) -> DailyWeather:
        lat, cont = self.lat, self.cont
        dtype = lat.dtype
        day = jnp.asarray(day, dtype)
        tann = 27.5 - 0.0078 * lat**2 - 5.0 * cont * jnp.sin(jnp.deg2rad(lat)) ** 2
        amp = 0.32 * jnp.abs(lat) * (0.3 + 0.95 * cont)
        s = jnp.tanh(lat / 10.0)
        tair = 273.15 + tann + amp * s * jnp.cos(2.0 * jnp.pi * (day - 200.0) / 365.0)
        tsoil = 273.15 + tann + 0.85 * amp * s * jnp.cos(2.0 * jnp.pi * (day - 212.0) / 365.0)
        p = _precip_mm_day(lat, day, cont)
        rh = 0.42 + 0.43 * jnp.tanh(p / 2.5)
        trange = 6.0 + 6.0 * (1.0 - rh)
        toa, daylength = insolation(lat, day)
        sw = toa * (0.72 - 0.3 * jnp.tanh(p / 3.0))
        tday = tair + trange / 4.0
        vpd = saturation_vapour_pressure(tday) * (1.0 - rh)
        ones = jnp.ones_like(lat)
        return DailyWeather(
            tair=tair,
            trange=trange,
            tsoil=tsoil,
            swdown=sw,
            daylength=daylength,
            precip=p / 86400.0,
            vpd=vpd,
            co2=self.co2 * ones,
            ch4=self.ch4 * ones,
        )


def annual_statistics(drivers: DriverSource) -> dict[str, np.ndarray]:
    """Annual mean/coldest/warmest-month temperature [degC], precipitation and PET [mm yr-1] per cell."""
    days = jnp.arange(drivers.days_per_cycle)

    def one(d):
        x = drivers.weather(d)
        return x.tair - 273.15, x.precip * 86400.0, priestley_taylor_pet(x.swdown, x.tair)

    t, p, pet = (np.asarray(a) for a in jax.jit(jax.vmap(one))(days))
    kernel = np.ones(30) / 30.0
    monthly = np.stack(
        [
            np.convolve(np.concatenate([t[-15:, k], t[:, k], t[:15, k]]), kernel, "valid")
            for k in range(t.shape[1])
        ],
        axis=1,
    )
    return {
        "t_ann": t.mean(axis=0),
        "t_cold": monthly.min(axis=0),
        "t_warm": monthly.max(axis=0),
        "p_ann": p.sum(axis=0) * 365.0 / len(days),
        "pet_ann": pet.sum(axis=0) * 365.0 / len(days),
    }


@functools.cache
def agriculture_table() -> dict[str, tuple[float, float, float]]:
    """``{ISO alpha-3: (cropland share of land, rice share of cropland, N input kg N ha-1 yr-1)}``."""
    with resources.files("diffflux.data").joinpath("agriculture.csv").open("r", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    return {
        r["iso_a3"]: (float(r["cropland_share"]), float(r["rice_share"]), float(r["n_input_kg_ha"]))
        for r in rows
    }


def _natural_pfts(st: dict[str, np.ndarray], lat: np.ndarray) -> np.ndarray:
    """Natural PFT fractions of the vegetated land ``(ncell, NPFT)`` by the bioclimatic rules."""
    n = lat.size
    f = np.zeros((n, NPFT))
    mi = st["p_ann"] / np.maximum(st["pet_ann"], 50.0)
    tc, tw = st["t_cold"], st["t_warm"]

    def put(mask, **shares):
        for code, share in shares.items():
            f[mask, pft_index(code)] += share if np.isscalar(share) else share[mask]

    tundra = tw < 10.0
    boreal = ~tundra & (tc < -8.0)
    temperate = ~tundra & ~boreal & (tc < 3.0)
    warm = ~tundra & ~boreal & ~temperate & (tc < 15.0)
    tropical = ~tundra & ~boreal & ~temperate & ~warm
    put(tundra, TUN=1.0)
    wood = np.clip((mi - 0.35) / 0.4, 0.0, 1.0)
    put(boreal, BoF=wood, C3G=0.6 * (1 - wood), SHR=0.4 * (1 - wood))
    wood = np.clip((mi - 0.5) / 0.4, 0.0, 1.0)
    put(temperate, TeBF=0.5 * wood, TeNF=0.5 * wood, C3G=0.7 * (1 - wood), SHR=0.3 * (1 - wood))
    wood = np.clip((mi - 0.55) / 0.45, 0.0, 1.0)
    put(
        warm,
        TeBF=0.6 * wood,
        TeNF=0.4 * wood,
        SHR=0.5 * (1 - wood),
        C4G=0.25 * (1 - wood),
        C3G=0.25 * (1 - wood),
    )
    ever = np.clip((mi - 1.0) / 0.4, 0.0, 1.0)
    forest = np.clip((mi - 0.6) / 0.35, 0.0, 1.0)
    sav = np.clip((mi - 0.35) / 0.3, 0.0, 1.0)
    put(
        tropical,
        TrEF=forest * ever,
        TrDF=forest * (1 - ever),
        SAV=(1 - forest) * sav,
        C4G=0.6 * (1 - forest) * (1 - sav),
        SHR=0.4 * (1 - forest) * (1 - sav),
    )
    cover = np.clip((mi - 0.06) / 0.3, 0.0, 1.0)
    return f * cover[:, None]


def climatology_maps(grid: LatLonGrid, min_land: float = 1e-3) -> tuple[SurfaceMaps, ClimatologyDrivers]:
    """Built-in surface maps and weather for ``grid`` (rules in the module docstring)."""
    land = geography.land_fraction(grid)
    cont_grid = continentality(grid)
    cell_j, cell_i = np.nonzero(land > min_land)
    lat = grid.lat[cell_j]
    cont = cont_grid[cell_j, cell_i]
    drivers = ClimatologyDrivers(lat=jnp.asarray(lat), cont=jnp.asarray(cont))
    st = annual_statistics(drivers)
    pft = _natural_pfts(st, lat)
    ice = np.zeros(lat.size)
    for code in ("ATA", "GRL"):
        ice = np.maximum(ice, geography.country_fraction(grid, code)[cell_j, cell_i])
    ice = np.maximum(ice, (st["t_warm"] < 1.0).astype(float))
    ice_share = np.clip(ice / np.maximum(land[cell_j, cell_i], 1e-12), 0.0, 1.0)
    pft *= (1.0 - ice_share)[:, None]
    # Cropland, rice and N input by country, placed on suitable cells (not ice, tundra, desert).
    table = agriculture_table()
    default = table["DEFAULT"]
    crop = np.zeros(lat.size)
    rice = np.zeros(lat.size)
    n_input = np.zeros(lat.size)
    vegetated = pft.sum(axis=1)
    suit = vegetated * np.clip((st["t_warm"] - 12.0) / 6.0, 0.0, 1.0) * (1.0 - pft[:, pft_index("TUN")])
    covered = np.zeros(lat.size)
    for c in geography.countries():
        cropshare, riceshare, nrate = table.get(c.iso_a3, default)
        frac = geography.country_fraction(grid, c.iso_a3)[cell_j, cell_i]
        if frac.sum() == 0:
            continue
        share_of_land = frac / np.maximum(land[cell_j, cell_i], 1e-12)
        covered += share_of_land
        area = share_of_land * grid.area[cell_j, cell_i] * land[cell_j, cell_i]
        weight = suit * share_of_land
        # crop fraction of land proportional to suitability, scaled to the country's cropland area
        scale = (
            cropshare
            * area.sum()
            / max(float((weight * grid.area[cell_j, cell_i] * land[cell_j, cell_i]).sum()), 1e-30)
        )
        local = np.minimum(weight * scale, 0.9 * vegetated * share_of_land)
        crop += local
        rice += local * riceshare
        n_input += local * nrate * 0.1  # kg N ha-1 -> g N m-2
    crop = np.minimum(crop, 0.9 * vegetated)
    natural = np.maximum(vegetated - crop, 0.0)
    scale = np.where(vegetated > 0, natural / np.maximum(vegetated, 1e-30), 0.0)
    pft = pft * scale[:, None]
    pft[:, pft_index("CRP")] = crop
    mi = st["p_ann"] / np.maximum(st["pet_ann"], 50.0)
    wet = 0.02 * np.clip((mi - 0.6) / 0.3, 0.0, 1.0)
    boreal_band = np.exp(-0.5 * ((lat - 61.0) / 7.0) ** 2)
    wet += 0.14 * boreal_band * np.clip((mi - 0.4) / 0.4, 0.0, 1.0)
    wet += 0.08 * np.clip((mi - 1.1) / 0.4, 0.0, 1.0) * (st["t_cold"] > 15.0)
    wet *= 1.0 - ice_share
    paddy = np.minimum(rice, 1.0 - wet)
    maps = SurfaceMaps.with_loam(
        grid,
        cell_j,
        cell_i,
        land_fraction=land[cell_j, cell_i],
        pft_fraction=pft,
        wetland_fraction=wet,
        paddy_fraction=paddy,
        n_input=n_input,
    )
    return maps, drivers


# (latitude, continentality, {PFT: fraction}, wetland, paddy, N input)
SAMPLE_CELLS = [
    (-2.0, 0.4, {"TrEF": 0.85, "CRP": 0.1}, 0.08, 0.0, 2.0),
    (-9.0, 0.6, {"SAV": 0.6, "C4G": 0.3}, 0.0, 0.0, 0.0),
    (14.0, 0.5, {"CRP": 0.5, "TrDF": 0.3}, 0.0, 0.15, 12.0),
    (46.0, 0.5, {"TeBF": 0.4, "TeNF": 0.3, "C3G": 0.2}, 0.02, 0.0, 3.0),
    (62.0, 0.9, {"BoF": 0.9, "SHR": 0.05}, 0.15, 0.0, 0.0),
    (70.0, 0.7, {"TUN": 0.8}, 0.1, 0.0, 0.0),
]


def sample_cells(dtype=jnp.float64) -> tuple[SurfaceMaps, ClimatologyDrivers]:
    """Six land cells spanning the climates (tropical forest to tundra) with 2-3 PFTs each.

    A fast configuration for examples and tests; the cells sit on the 4 x 5 degree grid.
    """
    grid = LatLonGrid.from_resolution(4.0, 5.0)
    n = len(SAMPLE_CELLS)
    cell_j = np.array([int(np.argmin(abs(grid.lat - c[0]))) for c in SAMPLE_CELLS])
    cell_i = np.arange(n) * 7
    pft = np.zeros((n, NPFT))
    for k, c in enumerate(SAMPLE_CELLS):
        for code, f in c[2].items():
            pft[k, pft_index(code)] = f
    maps = SurfaceMaps.with_loam(
        grid,
        cell_j,
        cell_i,
        land_fraction=np.linspace(0.5, 1.0, n),
        pft_fraction=pft,
        wetland_fraction=np.array([c[3] for c in SAMPLE_CELLS]),
        paddy_fraction=np.array([c[4] for c in SAMPLE_CELLS]),
        n_input=np.array([c[5] for c in SAMPLE_CELLS]),
    )
    drivers = ClimatologyDrivers(
        lat=jnp.asarray(grid.lat[cell_j], dtype), cont=jnp.asarray([c[1] for c in SAMPLE_CELLS], dtype)
    )
    return maps, drivers
