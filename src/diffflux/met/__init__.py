"""Met fields: snapshot container, time interpolation, mass fluxes, readers and the built-in climatology."""

from diffflux.met.fields import ConstantMet, FunctionMet, InterpolatedMet, MetFields, MetSource
from diffflux.met.massflux import mass_fluxes_from_streamfunction, mass_fluxes_from_winds

__all__ = [
    "ConstantMet",
    "FunctionMet",
    "InterpolatedMet",
    "MetFields",
    "MetSource",
    "mass_fluxes_from_streamfunction",
    "mass_fluxes_from_winds",
]
