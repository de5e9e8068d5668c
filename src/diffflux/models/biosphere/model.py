"""The VISIT-like biosphere: state, one daily step, and multi-day simulation with ``lax.scan``.

Structure (BIOSPHERE.md): every land cell holds one *tile* per PFT present (area fraction of the cell's
land); each tile carries five carbon pools (foliage, stem, root, litter, soil) [g C m-2 of tile], a
two-layer bucket of plant-available water (above the wilting point; top 0.3 m and the rest of the root
zone) plus snow [kg m-2], and phenology memory
(growing degree days above 5 C, 10-day mean air temperature, 10-day mean relative root-zone water).
Tiles never interact, so the model is vectorised over a flat tile axis; cell values are area-weighted
sums (``segment_sum``) and CH4/N2O are computed per cell from cell-mean soil conditions.

One day (``dt = 1 d``) of a tile, in order:

1. snow (rain/snow split by a logistic of air temperature, degree-day melt bounded by the pack with
   VISIT's smooth minimum) and the bucket (fill layer 1 to field capacity, overflow to layer 2, overflow
   to runoff), then evaporation and transpiration by exact exponential depletion ``W (1 - exp(-D/Wmax))``
   from Priestley-Taylor demand (so water never goes negative);
2. phenology memories (growing degree days leak with a one-year time scale and reset over two weeks of
   sub-zero 10-day temperature, so they stay bounded and periodic) and the leaf-on status ``g`` in
   [0, 1] (logistic functions of GDD, 10-day temperature and 10-day soil water; evergreen ``g = 1``);
3. GPP by the Monsi-Saeki/Kuroiwa canopy integral with ``Psat = Pmax fT fCO2 fW fVPD``;
4. every pool loses carbon by one exact exponential with the sum of its rates (maintenance respiration
   with Q10, down-regulated in stem and root when dormant or drought-stressed, turnover, leaf shedding
   when dormant, fire combustion and fire mortality), split in proportion to the rates, so pools never
   go negative;
5. growth respiration ``fg GPP``; the rest of GPP is allocated to foliage (while LAI < LAI_opt and
   leaves are on, a logistic blend) and to stem/root; at leaf-out deciduous types translocate stored
   carbon from living stem/root to foliage (bounded to half of it by the smooth minimum);
6. litter decomposition (Lloyd-Taylor temperature, moisture factor) with humification into the soil pool,
   soil decomposition; fire from fuel moisture (Thonicke et al. 2001) on litter and foliage.

Carbon mass balance holds exactly by construction: the change of total tile carbon equals
``GPP - AR - HR - fire`` (tested to 1e-10 relative in float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.models.biosphere import processes as pr
from diffflux.models.biosphere.climate import priestley_taylor_pet
from diffflux.models.biosphere.drivers import DailyWeather, DriverSource, SurfaceMaps
from diffflux.models.biosphere.params import BiosphereParams
from diffflux.models.biosphere.pft import (
    CARBON_FRACTION_DM,
    COLD_DECIDUOUS,
    DROUGHT_DECIDUOUS,
    EVERGREEN,
    GRASS,
)
from diffflux.models.biosphere.smooth import exact_loss, logistic, smin, smooth_clamp, softplus

TOP_DEPTH = 0.3  # m, depth of the top soil layer
SNOW_CAP = 2000.0  # kg m-2; snow beyond this leaves as glacier runoff (keeps the cycle stationary)
POOLS = ("leaf", "stem", "root", "litter", "soil")
STATE_FIELDS = POOLS + ("w1", "w2", "snow", "gdd", "t10", "w10")
# Fire emission molar masses [g mol-1] of CO2, CO, CH4, BC (as C), NOx (as NO)
_EF_MOLAR_MASS = np.array([44.009, 28.010, 16.043, 12.011, 30.006])


class BiosphereState(eqx.Module):
    """State per tile, each field ``(ntile,)``: pools [g C m-2], water [kg m-2], memories."""

    leaf: jax.Array
    stem: jax.Array
    root: jax.Array
    litter: jax.Array
    soil: jax.Array
    w1: jax.Array
    w2: jax.Array
    snow: jax.Array
    gdd: jax.Array
    t10: jax.Array
    w10: jax.Array

    def as_array(self) -> jax.Array:
        """``(11, ntile)`` stack in :data:`STATE_FIELDS` order."""
        return jnp.stack([getattr(self, k) for k in STATE_FIELDS])

    @classmethod
    def from_array(cls, a) -> BiosphereState:
        return cls(**{k: a[i] for i, k in enumerate(STATE_FIELDS)})

    def total_carbon(self) -> jax.Array:
        return self.leaf + self.stem + self.root + self.litter + self.soil


@dataclass(frozen=True, eq=False)
class Tiles:
    """Static tiling of the land cells (NumPy): tile ``t`` is PFT ``pft[t]`` on land cell ``cell[t]``
    covering ``frac[t]`` of that cell's land."""

    cell: np.ndarray
    pft: np.ndarray
    frac: np.ndarray

    @classmethod
    def from_maps(cls, maps: SurfaceMaps, min_fraction: float = 1e-4) -> Tiles:
        cell, pft = np.nonzero(maps.pft_fraction > min_fraction)
        return cls(cell=cell, pft=pft, frac=maps.pft_fraction[cell, pft])

    @property
    def ntile(self) -> int:
        return int(self.cell.size)


# Daily cell-level outputs, all per m2 of *land* of the cell:
CARBON_OUTPUTS = ("gpp", "ar", "hr", "fire_c", "nee", "npp")  # g C m-2 d-1
OUTPUT_UNITS = {
    "gpp": "g C m-2 d-1",
    "ar": "g C m-2 d-1",
    "hr": "g C m-2 d-1",
    "fire_c": "g C m-2 d-1",
    "nee": "g C m-2 d-1",
    "npp": "g C m-2 d-1",
    "fire_co2": "mol m-2 d-1",
    "fire_co": "mol m-2 d-1",
    "fire_ch4": "mol m-2 d-1",
    "fire_bc": "mol C m-2 d-1",
    "fire_nox": "mol NO m-2 d-1",
    "ch4_wetland": "mol CH4 m-2 d-1",
    "ch4_paddy": "mol CH4 m-2 d-1",
    "ch4_soil": "mol CH4 m-2 d-1",
    "n2o_natural": "mol N2O m-2 d-1",
    "n2o_crop": "mol N2O m-2 d-1",
    "lai": "m2 m-2",
    "et": "kg m-2 d-1",
    "runoff": "kg m-2 d-1",
    "burned": "d-1",
}
OUTPUTS = tuple(OUTPUT_UNITS)


class Biosphere(eqx.Module):
    """The biosphere on a set of land cells: static maps and tiling, and the daily step.

    Build it with :meth:`from_maps`. ``step`` and ``simulate`` are pure JAX; parameters are passed
    explicitly (a :class:`BiosphereParams` of multipliers) so they can be differentiated.
    """

    maps: SurfaceMaps = eqx.field(static=True)
    tiles: Tiles = eqx.field(static=True)

    @classmethod
    def from_maps(cls, maps: SurfaceMaps, min_fraction: float = 1e-4) -> Biosphere:
        return cls(maps=maps, tiles=Tiles.from_maps(maps, min_fraction))

    # ------------------------------------------------------------------ helpers
    def _cell_sum(self, tile_values):
        """Area-weighted sum over the tiles of each cell: per m2 of the cell's land, ``(..., ncell)``."""
        frac = jnp.asarray(self.tiles.frac, dtype=tile_values.dtype)
        return jax.ops.segment_sum(
            (tile_values * frac).T, jnp.asarray(self.tiles.cell), num_segments=self.maps.ncell
        ).T

    def initial_state(self, params: BiosphereParams, dtype=jnp.float64) -> BiosphereState:
        """A rough starting state (half the optimal LAI, moderate wood and soil), for spin-up."""
        pft, _ = params.effective()
        p = self.tiles.pft
        woody = np.asarray(pft["alloc_stem"])[p] > 0
        leaf = 0.5 * np.asarray(pft["lai_opt"])[p] / np.asarray(pft["sla"])[p]
        fc = self.maps.field_capacity[self.tiles.cell] - self.maps.wilting_point[self.tiles.cell]
        depth = np.asarray(pft["root_depth"])[p]
        arrays = {
            "leaf": leaf,
            "stem": np.where(woody, 3000.0, 50.0),
            "root": np.where(woody, 800.0, 200.0),
            "litter": np.full(p.size, 300.0),
            "soil": np.full(p.size, 5000.0),
            "w1": 0.8 * 1000.0 * fc * TOP_DEPTH,
            "w2": 0.8 * 1000.0 * fc * np.maximum(depth - TOP_DEPTH, 0.2),
            "snow": np.zeros(p.size),
            "gdd": np.zeros(p.size),
            "t10": np.full(p.size, 10.0),
            "w10": np.full(p.size, 0.8),
        }
        return BiosphereState(**{k: jnp.asarray(v, dtype) for k, v in arrays.items()})

    # ------------------------------------------------------------------ one day
    def step(self, params: BiosphereParams, state: BiosphereState, weather: DailyWeather):
        """Advance one day. Returns ``(new_state, tile_fluxes, cell_outputs)``.

        ``tile_fluxes``: dict of ``(ntile,)`` carbon fluxes [g C m-2 d-1] (gpp, ar, hr, fire_c).
        ``cell_outputs``: dict of ``(ncell,)`` outputs per m2 of land (see :data:`OUTPUT_UNITS`).
        """
        pft_vals, g = params.effective()
        dtype = state.leaf.dtype
        tiles, maps = self.tiles, self.maps
        tp = jnp.asarray(tiles.pft)
        tc_idx = jnp.asarray(tiles.cell)
        P = {k: v[tp] for k, v in pft_vals.items()}
        w = jax.tree_util.tree_map(lambda a: a[tc_idx], weather)
        fc = jnp.asarray(maps.field_capacity, dtype)[tc_idx]
        wp = jnp.asarray(maps.wilting_point, dtype)[tc_idx]

        ta = w.tair - 273.15
        ts = w.tsoil - 273.15
        precip = w.precip * 86400.0  # kg m-2 d-1

        # 1. snow and water ------------------------------------------------------------------
        snow_frac = logistic(-ta, -0.5, 1.0)  # share of precipitation falling as snow (T < 0.5 C)
        snowfall = precip * snow_frac
        rain = precip - snowfall
        pack = state.snow + snowfall
        melt = smin(pack, g["melt_factor"] * softplus(ta, 1.0))
        pack = pack - melt
        glacier = pack - smin(pack, jnp.asarray(SNOW_CAP, dtype))
        snow = pack - glacier
        w1max = 1000.0 * (fc - wp) * TOP_DEPTH
        w2max = 1000.0 * (fc - wp) * jnp.maximum(P["root_depth"] - TOP_DEPTH, 0.2)
        w1a = state.w1 + rain + melt
        w1b = smin(w1a, w1max)
        w2a = state.w2 + (w1a - w1b)
        w2b = smin(w2a, w2max)
        runoff = (w2a - w2b) + glacier
        lai = state.leaf * P["sla"]
        cover = -jnp.expm1(-P["k_ext"] * lai)
        snow_cover = snow / (snow + 10.0)
        pet = priestley_taylor_pet(w.swdown, w.tair, g["priestley_taylor"]) * (1.0 - snow_cover)
        soil_evap = w1b * -jnp.expm1(-(1.0 - cover) * pet / w1max)
        transp_demand = cover * pet
        tr1 = (w1b - soil_evap) * -jnp.expm1(-0.3 * transp_demand / w1max)
        tr2 = w2b * -jnp.expm1(-0.7 * transp_demand / w2max)
        w1 = w1b - soil_evap - tr1
        w2 = w2b - tr2
        et = soil_evap + tr1 + tr2
        rel_water = (w1b + w2b) / (w1max + w2max)
        rel_top = w1b / w1max

        # 2. phenology --------------------------------------------------------------------------
        a10 = float(1.0 - np.exp(-0.1))
        t10 = state.t10 + (ta - state.t10) * a10
        w10 = state.w10 + (rel_water - state.w10) * a10
        gdd = state.gdd * jnp.exp(-1.0 / 365.0 - 0.1 * logistic(-t10, 0.0, 1.0)) + softplus(ta - 5.0, 1.0)
        g_cold = logistic(gdd, P["gdd_onset"], 0.1 * P["gdd_onset"] + 10.0) * logistic(t10, P["t_off"], 1.5)
        g_dry = logistic(w10, P["w_off"], 0.08)
        types = jnp.asarray(_phenology_onehot(tiles.pft), dtype)
        leaf_on = (
            types[:, EVERGREEN]
            + types[:, COLD_DECIDUOUS] * g_cold
            + types[:, DROUGHT_DECIDUOUS] * g_dry
            + types[:, GRASS] * g_cold * g_dry
        )
        deciduous = 1.0 - types[:, EVERGREEN]

        # 3. photosynthesis -------------------------------------------------------------------
        tday = ta + w.trange / 4.0
        f_t = pr.temperature_response_simcycle(tday, P["t_min"], P["t_opt"], P["t_max"])
        f_co2 = pr.co2_response(w.co2 * 1e6, tday + 273.15, P["c4"])
        f_w = smooth_clamp(rel_water / 0.75, 0.0, 1.0, 0.02)
        f_vpd = 1.0 / (1.0 + w.vpd / 3500.0)
        psat = P["pmax"] * f_t * f_co2 * f_w * f_vpd + 1e-3
        par_day = w.swdown * 0.5 * 4.57 * 86400.0 / (w.daylength + 600.0)  # umol m-2 s-1 in daylight
        gpp = pr.canopy_gpp(psat, 2.0 * par_day, lai, P["k_ext"], P["qe"], w.daylength)

        # 4. losses of the vegetation pools, one exponential per pool --------------------------
        f_air = pr.q10_factor(ta, P["q10_resp"])
        f_soil = pr.q10_factor(ts, P["q10_resp"])
        fuel_moist = rel_top
        burn_s = (
            pr.fire_probability(fuel_moist, P["moist_extinction"])
            * logistic(state.litter + state.leaf, 200.0, 50.0)
            * logistic(ta, 2.0, 1.0)
            * (1.0 - snow_cover)
        )
        burned = g["fire_scale"] * pr.globfirm_burned_fraction(burn_s) / 365.0  # fraction burnt per day
        r_leaf = {
            "resp": P["m_leaf"] * f_air,
            "turn": P["turn_leaf_yr"] / 365.0 + P["shed_rate"] * (1.0 - leaf_on) * deciduous,
            "fire": burned * P["combust_leaf"],
        }
        # Dormant or drought-stressed plants down-regulate their maintenance respiration (Ryan 1991;
        # the activity factor keeps 30 % of the rate when leaves are off or soil water is at wilting).
        activity = 0.3 + 0.7 * leaf_on * smooth_clamp(rel_water / 0.5, 0.0, 1.0, 0.02)
        r_stem = {
            "resp": P["m_stem"] * P["live_stem"] * f_air * activity,
            "turn": P["turn_stem_yr"] / 365.0 + burned * (1.0 - P["combust_stem"]) * P["fire_mortality"],
            "fire": burned * P["combust_stem"],
        }
        r_root = {
            "resp": P["m_root"] * P["live_root"] * f_soil * activity,
            "turn": P["turn_root_yr"] / 365.0,
            "fire": jnp.zeros_like(burned),
        }

        def split(pool, rates):
            total = rates["resp"] + rates["turn"] + rates["fire"]
            lost = exact_loss(pool, total, 1.0)
            share = lost / (total + 1e-30)
            return pool - lost, {k: share * r for k, r in rates.items()}

        leaf1, l_leaf = split(state.leaf, r_leaf)
        stem1, l_stem = split(state.stem, r_stem)
        root1, l_root = split(state.root, r_root)
        rm = l_leaf["resp"] + l_stem["resp"] + l_root["resp"]

        # 5. growth respiration, allocation, translocation at leaf-out -------------------------
        rg = P["growth_resp"] * gpp
        alloc = gpp - rg
        a_leaf = P["alloc_leaf"] * leaf_on * logistic(P["lai_opt"] - lai, 0.0, 0.1 * P["lai_opt"])
        a_stem = (1.0 - a_leaf) * P["alloc_stem"]
        a_root = 1.0 - a_leaf - a_stem
        target = 0.3 * P["lai_opt"] / P["sla"]
        store = stem1 * P["live_stem"] + root1 * P["live_root"]
        want = deciduous * leaf_on * 0.1 * softplus(target - leaf1, 1.0)
        moved = smin(want, 0.5 * store)
        from_stem = moved * stem1 * P["live_stem"] / (store + 1e-12)
        from_root = moved - from_stem
        leaf2 = leaf1 + a_leaf * alloc + moved
        stem2 = stem1 + a_stem * alloc - from_stem
        root2 = root1 + a_root * alloc - from_root

        # 6. litter and soil ------------------------------------------------------------------------
        f_lt = pr.lloyd_taylor(ts)
        theta_rel = smooth_clamp(rel_top, 0.0, 1.0, 0.01)
        f_m = g["moist_floor"] + (1.0 - g["moist_floor"]) * theta_rel * (2.0 - theta_rel)
        k_lit = g["k_litter"] / 365.0 * f_lt * f_m
        fire_lit = burned * P["combust_litter"]
        lit_total = k_lit + fire_lit
        lit_lost = exact_loss(state.litter, lit_total, 1.0)
        decomposed = lit_lost * k_lit / (lit_total + 1e-30)
        lit_burnt = lit_lost - decomposed
        hr_lit = (1.0 - g["humification"]) * decomposed
        hr_soil = exact_loss(state.soil, g["k_soil"] / 365.0 * f_lt * f_m, 1.0)
        litterfall = l_leaf["turn"] + l_stem["turn"] + l_root["turn"]
        litter = state.litter - lit_lost + litterfall
        soil = state.soil - hr_soil + g["humification"] * decomposed
        hr = hr_lit + hr_soil
        fire_c = l_leaf["fire"] + l_stem["fire"] + lit_burnt
        ar = rm + rg

        new = BiosphereState(
            leaf=leaf2,
            stem=stem2,
            root=root2,
            litter=litter,
            soil=soil,
            w1=w1,
            w2=w2,
            snow=snow,
            gdd=gdd,
            t10=t10,
            w10=w10,
        )
        tile_flux = {"gpp": gpp, "ar": ar, "hr": hr, "fire_c": fire_c}

        # cell level: carbon, fire species, CH4, N2O ------------------------------------------------
        cs = self._cell_sum
        c_gpp, c_ar, c_hr, c_fire = cs(gpp), cs(ar), cs(hr), cs(fire_c)
        dm_kg = fire_c / CARBON_FRACTION_DM / 1000.0  # kg dry matter m-2 d-1
        ef = P["emission_factors"]  # (ntile, 5) g per kg DM
        species = cs((ef * dm_kg[:, None]).T).T / jnp.asarray(_EF_MOLAR_MASS, dtype)  # (ncell, 5) mol
        vegetated = jnp.asarray(maps.pft_fraction.sum(axis=1), dtype)
        cell_theta_rel = cs(theta_rel) / jnp.maximum(vegetated, 1e-12)
        c_wet = cs(rel_water) / jnp.maximum(vegetated, 1e-12)
        # Cell-mean HR per m2 of vegetated land drives wetland and paddy CH4 (Cao et al. 1996).
        hr_veg = c_hr / jnp.maximum(vegetated, 1e-12)
        ts_c = weather.tsoil - 273.15
        ta_c = weather.tair - 273.15
        f_ch4 = jnp.exp(
            jnp.log(g["ch4_q10"]) * (smooth_clamp(ts_c, -30.0, 40.0, 1.0) - 10.0) / 10.0
        ) * logistic(ts_c, 0.0, 1.0)
        water_table = logistic(c_wet, 0.5, 0.1)
        wet = jnp.asarray(maps.wetland_fraction, dtype)
        paddy = jnp.asarray(maps.paddy_fraction, dtype)
        ch4_wet = wet * g["ch4_ratio"] * hr_veg * f_ch4 * water_table * (1.0 - g["ch4_oxidised"]) / 12.011
        ch4_paddy = (
            paddy
            * g["paddy_ratio"]
            * hr_veg
            * f_ch4
            * logistic(ta_c, 15.0, 2.0)
            * (1.0 - g["ch4_oxidised"])
            / 12.011
        )
        porosity = jnp.asarray(maps.porosity, dtype)
        wp_c = jnp.asarray(maps.wilting_point, dtype)
        theta_vol = wp_c + cell_theta_rel * (jnp.asarray(maps.field_capacity, dtype) - wp_c)
        crop = jnp.asarray(maps.pft_fraction[:, _crop_index()], dtype)
        upland = jnp.clip(1.0 - wet - paddy, 0.0, 1.0)
        ch4_soil = (
            -upland
            * pr.curry_uptake(weather.ch4, ts_c, weather.tsoil, theta_vol, porosity, crop, g["curry_k0"])
            * 86400.0
        )
        n_min = c_hr / g["soil_cn"]  # g N m-2 d-1 mineralised
        wfps = theta_vol / porosity
        f_tn = jnp.exp(0.08 * (smooth_clamp(ts_c, -30.0, 40.0, 1.0) - 20.0)) * logistic(ts_c, 0.0, 1.0)
        f_nit = jnp.exp(-0.5 * ((wfps - 0.55) / 0.2) ** 2)
        f_den = logistic(wfps, 0.62, 0.05)
        ph = jnp.asarray(maps.ph, dtype)
        n2o_nat = (
            n_min
            * f_tn
            * (g["n2o_nitrification"] * f_nit * pr.ngas_ph(ph) + g["n2o_denitrification"] * f_den)
            / 28.014
        )
        n_in = jnp.asarray(maps.n_input, dtype) / 365.0
        n2o_crop = g["n2o_ef_crop"] * n_in / 28.014
        out = {
            "gpp": c_gpp,
            "ar": c_ar,
            "hr": c_hr,
            "fire_c": c_fire,
            "nee": c_ar + c_hr + c_fire - c_gpp,
            "npp": c_gpp - c_ar,
            "fire_co2": species[:, 0],
            "fire_co": species[:, 1],
            "fire_ch4": species[:, 2],
            "fire_bc": species[:, 3],
            "fire_nox": species[:, 4],
            "ch4_wetland": ch4_wet,
            "ch4_paddy": ch4_paddy,
            "ch4_soil": ch4_soil,
            "n2o_natural": n2o_nat,
            "n2o_crop": n2o_crop,
            "lai": cs(lai),
            "et": cs(et),
            "runoff": cs(runoff),
            "burned": cs(burned),
        }
        return new, tile_flux, out

    # ------------------------------------------------------------------ many days
    def simulate(
        self,
        params: BiosphereParams,
        state: BiosphereState,
        drivers: DriverSource,
        ndays: int,
        day0=0,
        outputs: tuple[str, ...] | None = OUTPUTS,
        checkpoint: bool = False,
    ):
        """Run ``ndays`` daily steps with ``lax.scan`` from day index ``day0``.

        Args:
            outputs: names of daily cell outputs to return stacked ``(ndays, ncell)``; ``None`` returns none.
            checkpoint: rematerialise each day in the backward pass (memory ~ one state per day).

        Returns:
            ``(final_state, daily, annual)``: ``daily`` a dict of ``(ndays, ncell)`` arrays; ``annual`` the
            sums over the run of every output, ``(ncell,)`` (per m2 land).
        """
        keep = tuple(outputs or ())

        def body(carry, day):
            st, acc = carry
            new, _, out = self.step(params, st, drivers.weather(day))
            acc = {k: acc[k] + out[k] for k in acc}
            return (new, acc), {k: out[k] for k in keep}

        if checkpoint:
            body = jax.checkpoint(body)
        dtype = state.leaf.dtype
        acc0 = {k: jnp.zeros(self.maps.ncell, dtype) for k in OUTPUTS}
        days = jnp.asarray(day0) + jnp.arange(ndays)
        (final, acc), daily = lax.scan(body, (state, acc0), days)
        return final, daily, acc


def _phenology_onehot(pft_of_tile: np.ndarray) -> np.ndarray:
    from diffflux.models.biosphere.pft import PFTS

    types = np.array([p.phenology for p in PFTS])[pft_of_tile]
    out = np.zeros((pft_of_tile.size, 4))
    out[np.arange(pft_of_tile.size), types] = 1.0
    return out


def _crop_index() -> int:
    from diffflux.models.biosphere.pft import pft_index

    return pft_index("CRP")
