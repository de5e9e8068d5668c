"""Met fields: snapshot container, time interpolation, mass fluxes, readers and the built-in climatology."""

from diffflux.met.arrays import MetOnGrid, met_from_arrays, met_from_functions
from diffflux.met.balance import BalancedMet
from diffflux.met.climatology import Climatology, ClimatologyParams
from diffflux.met.exchange import interhemispheric_exchange_time
from diffflux.met.fields import ConstantMet, FunctionMet, InterpolatedMet, MetFields, MetSource
from diffflux.met.massflux import mass_fluxes_from_streamfunction, mass_fluxes_from_winds
from diffflux.met.reader import load_met, read_met

__all__ = [
    "BalancedMet",
    "Climatology",
    "ClimatologyParams",
    "ConstantMet",
    "FunctionMet",
    "InterpolatedMet",
    "MetFields",
    "MetOnGrid",
    "MetSource",
    "interhemispheric_exchange_time",
    "load_met",
    "mass_fluxes_from_streamfunction",
    "mass_fluxes_from_winds",
    "met_from_arrays",
    "met_from_functions",
    "read_met",
]
