"""Run the biosphere globally for one year on the built-in climatology and print global totals.

``python -m diffflux.models.biosphere [--resolution 4x5] [--float32] [--json FILE] [--netcdf FILE]``

Spins up to the cyclo-stationary state (Newton periodic-orbit solve), simulates one more year and
prints each global total next to its literature range (BIOSPHERE.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

# Literature ranges (BIOSPHERE.md): name -> (low, high, source)
LITERATURE = {
    "GPP [PgC/yr]": (115.0, 131.0, "Beer et al. 2010 (123 +/- 8)"),
    "NPP [PgC/yr]": (50.0, 60.0, "Zhao & Running 2010; Ito 2011"),
    "vegetation carbon [PgC]": (450.0, 650.0, "IPCC AR6 WG1 Fig. 5.12; Erb et al. 2018"),
    "soil carbon [PgC]": (1100.0, 2500.0, "top metre; Scharlemann et al. 2014"),
    "fire carbon [PgC/yr]": (1.5, 2.5, "GFED4s, van der Werf et al. 2017 (~2.2)"),
    "wetland CH4 [TgCH4/yr]": (150.0, 185.0, "Saunois et al. 2020 bottom-up/top-down"),
    "soil CH4 uptake [TgCH4/yr]": (28.0, 34.0, "Curry 2007; Saunois et al. 2020 (9-47)"),
    "natural soil N2O [TgN/yr]": (5.0, 7.0, "Tian et al. 2020 (natural soils 5.6)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffflux.models.biosphere", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--resolution", default="4x5", help="DLATxDLON in degrees (default 4x5)")
    parser.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    parser.add_argument("--json", help="write the totals to this JSON file")
    parser.add_argument("--netcdf", help="write annual fields (per m2 of grid cell) to this netCDF file")
    args = parser.parse_args(argv)

    import jax

    if not args.float32:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    from diffflux.grid import LatLonGrid
    from diffflux.models.biosphere import Biosphere, BiosphereParams, climatology_maps, spinup
    from diffflux.models.biosphere.fluxes import global_totals, pool_totals

    dlat, dlon = (float(x) for x in args.resolution.lower().split("x"))
    dtype = jnp.float32 if args.float32 else jnp.float64
    grid = LatLonGrid.from_resolution(dlat, dlon)
    t0 = time.perf_counter()
    maps, drivers = climatology_maps(grid)
    if args.float32:
        drivers = type(drivers)(lat=drivers.lat.astype(dtype), cont=drivers.cont.astype(dtype))
    bio = Biosphere.from_maps(maps)
    params = BiosphereParams.ones(dtype)
    print(
        f"{grid.describe()}: {maps.ncell} land cells, {bio.tiles.ntile} PFT tiles "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    t0 = time.perf_counter()
    state, report = spinup(bio, params, drivers, verbose=True)
    print(
        f"spin-up: {report.iterations} Newton iterations, max |NEP| {report.max_nep:.2e} g C m-2 yr-1, "
        f"{report.bare_tiles} tiles bare ({time.perf_counter() - t0:.1f} s)"
    )
    if report.bare_tiles:
        from diffflux.models.biosphere.pft import PFT_CODES

        living = np.asarray(state.leaf + state.stem + state.root)
        area = maps.cell_area[bio.tiles.cell] * bio.tiles.frac / 1e12
        bare = {
            PFT_CODES[k]: float(area[(living == 0) & (bio.tiles.pft == k)].sum())
            for k in range(len(PFT_CODES))
        }
        print(
            "area of tiles that cannot establish [M km2]: "
            + ", ".join(f"{k} {v:.2f}" for k, v in bare.items() if v > 0)
        )
    t0 = time.perf_counter()
    final, _, annual = jax.jit(lambda s: bio.simulate(params, s, drivers, 365, outputs=None))(state)
    jax.block_until_ready(final)
    print(f"one year simulated in {time.perf_counter() - t0:.1f} s (including compilation)")
    totals = global_totals(annual, maps)
    pools = pool_totals(bio, state)
    totals["vegetation carbon [PgC]"] = pools["vegetation"]
    totals["litter carbon [PgC]"] = pools["litter"]
    totals["soil carbon [PgC]"] = pools["soil"]
    cell_nep = np.abs(np.asarray(annual["nee"]))
    totals["max |annual NEE| of a cell [gC/m2/yr]"] = float(cell_nep.max())
    print(f"\n{'quantity':42s} {'diffflux':>10s}  {'literature':>14s}  source")
    for name, value in totals.items():
        lo, hi, src = LITERATURE.get(name, (None, None, ""))
        rng = f"{lo:g}-{hi:g}" if lo is not None else ""
        flag = "" if lo is None or lo <= value <= hi else "  <- outside"
        print(f"{name:42s} {value:10.3f}  {rng:>14s}  {src}{flag}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "grid": grid.describe(),
                    "dtype": str(np.dtype(dtype)),
                    "totals": totals,
                    "spinup": {
                        "iterations": report.iterations,
                        "max_nep": report.max_nep,
                        "bare_tiles": report.bare_tiles,
                    },
                },
                fh,
                indent=2,
            )
    if args.netcdf:
        import xarray as xr

        from diffflux.io.netcdf import grid_coords
        from diffflux.models.biosphere.model import OUTPUT_UNITS

        land = jnp.asarray(maps.land_fraction)
        data = {
            k: (
                ("lat", "lon"),
                np.asarray(maps.to_grid(annual[k] * land)),
                {
                    "units": OUTPUT_UNITS[k].replace("d-1", "yr-1"),
                    "long_name": f"annual {k} per m2 of grid cell",
                },
            )
            for k in annual
            if k not in ("lai", "burned")
        }
        xr.Dataset(data, coords=grid_coords(grid)).to_netcdf(args.netcdf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
