"""Observations: tables, readers/writers, point and column operators sampled inside the transport scan,
super-observations, the station catalogue and OSSE sampling.

Typical use::

    table, report = read_obspack_dir("obspack/co2")            # values in mol mol-1, report of drops
    table, report2 = select(table, start="2021-01-01", end="2021-01-31", good_only=True)
    arrays = to_arrays(table, tracers=["CO2"], reference_time="2021-01-01")
    op = build_operator(arrays, grid, t0=0.0, dt=3600.0, nsteps=720)
    final, y_model, _ = sample_run(model, met, state, op, flux=flux)   # inside jax.jit / jax.grad
"""

from diffflux.observations.catalogue import Station, get_station, load_station_catalogue, station_ids
from diffflux.observations.operators import (
    ObservationOperator,
    build_operator,
    column_average,
    horizontal_stencil,
    level_heights,
    remap_profile,
    sample_states,
)
from diffflux.observations.osse import (
    aircraft_design,
    continuous_design,
    cos_solar_zenith,
    flask_design,
    is_land,
    local_solar_hour,
    read_osse,
    satellite_design,
    simulate,
    sort_table,
    sun_synchronous_track,
    write_osse,
)
from diffflux.observations.readers import (
    CSV_COLUMNS,
    read_csv,
    read_obspack,
    read_obspack_dir,
    read_satellite,
    write_csv,
    write_obspack,
    write_satellite,
)
from diffflux.observations.sampling import Aggregation, aggregate, sample_run
from diffflux.observations.table import (
    FilterReport,
    ObsArrays,
    check_table,
    concat_tables,
    make_table,
    select,
    to_arrays,
)
from diffflux.observations.units import mole_fraction_scale

__all__ = [
    "CSV_COLUMNS",
    "Aggregation",
    "FilterReport",
    "ObsArrays",
    "ObservationOperator",
    "Station",
    "aggregate",
    "aircraft_design",
    "build_operator",
    "check_table",
    "column_average",
    "concat_tables",
    "continuous_design",
    "cos_solar_zenith",
    "flask_design",
    "get_station",
    "horizontal_stencil",
    "is_land",
    "level_heights",
    "load_station_catalogue",
    "local_solar_hour",
    "make_table",
    "mole_fraction_scale",
    "read_csv",
    "read_obspack",
    "read_obspack_dir",
    "read_osse",
    "read_satellite",
    "remap_profile",
    "sample_run",
    "sample_states",
    "satellite_design",
    "select",
    "simulate",
    "sort_table",
    "station_ids",
    "sun_synchronous_track",
    "to_arrays",
    "write_csv",
    "write_obspack",
    "write_osse",
    "write_satellite",
]
