"""Reproduce the figures of the flux-component / regions issue: country areas at 1 degree, conservative
regridding totals between 0.1 ... 4 x 5 degree grids, default global totals and the ocean sink.

    python scripts/measure_fluxes_regions.py
"""

import itertools
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from diffflux.grid import LatLonGrid  # noqa: E402
from diffflux.met.regrid import ConservativeRegridder, RectilinearGrid, rectilinear_grid  # noqa: E402
from diffflux.models.inventories import GLOBAL_TOTALS, NATIONAL_TOTALS, default_inventory  # noqa: E402
from diffflux.models.ocean import OceanCO2  # noqa: E402
from diffflux.regions import region_area, region_mask  # noqa: E402
from diffflux.species import get_species  # noqa: E402

PUBLISHED = {
    "RUS": 17.098,
    "CAN": 9.985,
    "USA": 9.526,  # land + inland water + US Great Lakes (US Census 2010), as the raster draws it
    "CHN": 9.597,
    "BRA": 8.516,
    "AUS": 7.692,
    "IND": 3.287,
    "ARG": 2.780,
    "KAZ": 2.725,
    "DZA": 2.382,
    "JPN": 0.378,
}
RES = {
    "0.1": (0.1, 0.1),
    "0.25": (0.25, 0.25),
    "0.5": (0.5, 0.5),
    "1": (1, 1),
    "2x2.5": (2, 2.5),
    "4x5": (4, 5),
}


def file_like(dlat, dlon):
    lat = 90.0 - (np.arange(int(round(180 / dlat))) + 0.5) * dlat  # north to south, 0..360
    lon = (np.arange(int(round(360 / dlon))) + 0.5) * dlon
    return rectilinear_grid(lat, lon)


def main() -> None:
    g1 = LatLonGrid.from_resolution(1, 1)
    print("== country areas at 1 degree [M km2] (published: UNSD / CIA World Factbook)")
    for c, p in PUBLISHED.items():
        a = region_area(g1, f"country:{c}") / 1e12
        print(f"{c} {a:7.3f} published {p:7.3f} diff {100 * (a / p - 1):+5.1f} %")
    print("== regridding: |total_out / total_in - 1| for densities and per-cell totals, random fields")
    rng = np.random.default_rng(0)
    worst = 0.0
    for a, b in itertools.permutations(RES, 2):
        src, tgt = file_like(*RES[a]), LatLonGrid.from_resolution(*RES[b])
        f = rng.random(src.shape)
        t0 = time.time()
        rg = ConservativeRegridder.build(src, tgt)
        d, tt = rg.density(f), rg.totals(f)
        e1 = abs(
            (d * RectilinearGrid.from_model(tgt).area(1.0)).sum() / (src.orient(f) * src.area(1.0)).sum() - 1
        )
        e2 = abs(tt.sum() / f.sum() - 1)
        worst = max(worst, e1, e2)
        print(f"{a:>5} -> {b:<5} density {e1:.1e} totals {e2:.1e} ({time.time() - t0:.2f} s)")
    print("worst", worst)
    print("== default global totals")
    for sp in GLOBAL_TOTALS:
        inv = default_inventory(sp, g1)
        print(
            sp,
            f"{inv.global_totals()[0, 0]:.6g} {inv.species.flux_unit}",
            "| documented",
            GLOBAL_TOTALS[sp][0],
        )
    print("== national fossil CO2 recovered with land-share masks at 1 degree")
    co2 = get_species("CO2")
    inv = default_inventory("CO2", g1)
    for c in ("CHN", "USA", "IND", "JPN"):
        mask = region_mask(g1, c, share="land")
        v = co2.flux_to_reporting((inv.flux[0, 0] * mask * g1.area).sum())
        tab = co2.flux_to_reporting(NATIONAL_TOTALS["CO2"][0][c] * 1e9 / co2.molar_mass / (365.25 * 86400))
        print(f"{c}: {v:.4f} PgC/yr, table {tab:.4f} ({100 * (v / tab - 1):+.1f} %)")
    print("== ocean sink")
    co2 = get_species("CO2")
    for res in [(0.5, 0.5), (1, 1), (2, 2.5), (4, 5)]:
        g = LatLonGrid.from_resolution(*res)
        f = np.asarray(OceanCO2.build(g).annual_mean_flux())
        print(res, f"{co2.flux_to_reporting((f * g.area).sum()):.4f} PgC/yr")


if __name__ == "__main__":
    main()
