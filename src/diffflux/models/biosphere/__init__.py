"""A differentiable VISIT-like terrestrial biosphere: carbon pools, water, phenology, CH4, N2O and fire.

Quick start (global, built-in climatology, no files)::

    from diffflux.grid import LatLonGrid
    from diffflux.models.biosphere import Biosphere, BiosphereParams, climatology_maps, spinup

    maps, drivers = climatology_maps(LatLonGrid.from_resolution(4, 5))
    bio = Biosphere.from_maps(maps)
    params = BiosphereParams.ones()
    state, report = spinup(bio, params, drivers)
    state, daily, annual = bio.simulate(params, state, drivers, 365)

or ``python -m diffflux.models.biosphere`` for a year with global totals against the literature.
See ``BIOSPHERE.md`` (design) and the module docstrings for formulations and sources.
"""

from diffflux.models.biosphere.climate import ClimatologyDrivers, climatology_maps, sample_cells
from diffflux.models.biosphere.drivers import ArrayDrivers, DailyWeather, DriverSource, SurfaceMaps
from diffflux.models.biosphere.fluxes import FLUX_KEYS, BiosphereFluxes, global_totals, pool_totals
from diffflux.models.biosphere.model import OUTPUT_UNITS, OUTPUTS, Biosphere, BiosphereState, Tiles
from diffflux.models.biosphere.params import GLOBAL_DEFAULTS, PFT_MULTIPLIED, BiosphereParams
from diffflux.models.biosphere.pft import PFT_CODES, PFTS, default_table, pft_index
from diffflux.models.biosphere.reader import read_surface_maps, read_weather
from diffflux.models.biosphere.spinup import SpinupReport, implicit_steady_state, spinup

__all__ = [
    "ArrayDrivers",
    "Biosphere",
    "BiosphereFluxes",
    "BiosphereParams",
    "BiosphereState",
    "ClimatologyDrivers",
    "DailyWeather",
    "DriverSource",
    "FLUX_KEYS",
    "GLOBAL_DEFAULTS",
    "OUTPUTS",
    "OUTPUT_UNITS",
    "PFTS",
    "PFT_CODES",
    "PFT_MULTIPLIED",
    "SpinupReport",
    "SurfaceMaps",
    "Tiles",
    "climatology_maps",
    "default_table",
    "global_totals",
    "implicit_steady_state",
    "pft_index",
    "pool_totals",
    "read_surface_maps",
    "read_weather",
    "sample_cells",
    "spinup",
]
