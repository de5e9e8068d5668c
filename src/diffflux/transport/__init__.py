"""Finite-volume, mass-conserving, differentiable global transport."""

from diffflux.transport.chemistry import FirstOrderLoss
from diffflux.transport.convection import ConvectiveMassFlux, convective_courant, convective_substeps
from diffflux.transport.diffusion import HorizontalDiffusion, ImplicitVerticalDiffusion
from diffflux.transport.model import Transport, TransportState
from diffflux.transport.reconstruction import PPM, PiecewiseLinear, Reconstruction
from diffflux.transport.run import (
    check_time_step,
    courant_numbers,
    default_memory_budget,
    make_runner,
    plan_checkpoint,
    run,
)

__all__ = [
    "PPM",
    "ConvectiveMassFlux",
    "FirstOrderLoss",
    "HorizontalDiffusion",
    "ImplicitVerticalDiffusion",
    "PiecewiseLinear",
    "Reconstruction",
    "Transport",
    "TransportState",
    "check_time_step",
    "convective_courant",
    "convective_substeps",
    "courant_numbers",
    "make_runner",
    "run",
    "plan_checkpoint",
    "default_memory_budget",
]
