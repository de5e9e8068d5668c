"""Finite-volume, mass-conserving, differentiable global transport."""

from diffflux.transport.diffusion import HorizontalDiffusion, ImplicitVerticalDiffusion
from diffflux.transport.model import Transport, TransportState
from diffflux.transport.reconstruction import PPM, PiecewiseLinear, Reconstruction
from diffflux.transport.run import check_time_step, courant_numbers, make_runner, run

__all__ = [
    "PPM",
    "HorizontalDiffusion",
    "ImplicitVerticalDiffusion",
    "PiecewiseLinear",
    "Reconstruction",
    "Transport",
    "TransportState",
    "check_time_step",
    "courant_numbers",
    "make_runner",
    "run",
]
