"""Inversion: control vector, prior covariance operators, cost function and problem assembly.

Part A (this file's current exports): matrix-free prior covariance operators with a square root
(:mod:`diffflux.inversion.covariance`). The solvers live in :mod:`diffflux.solvers`.
"""

from diffflux.inversion.covariance import (
    AbstractCovariance,
    BlockDiagonal,
    DenseCovariance,
    Diagonal,
    Kronecker,
    LandOceanCorrelation,
    Scaled,
    SpatialCorrelation,
    TemporalCorrelation,
)

__all__ = [
    "AbstractCovariance",
    "BlockDiagonal",
    "DenseCovariance",
    "Diagonal",
    "Kronecker",
    "LandOceanCorrelation",
    "Scaled",
    "SpatialCorrelation",
    "TemporalCorrelation",
]
