"""Inversion: control vector, prior covariance operators, observation errors, problem and cost.

* :mod:`diffflux.inversion.covariance`: matrix-free prior covariance operators with a square root;
* :mod:`diffflux.inversion.control`: the control vector of named blocks and its whitening;
* :mod:`diffflux.inversion.obs_error`: measurement plus model-data-mismatch errors (diagonal R);
* :mod:`diffflux.inversion.problem`: the whole chain (biosphere -> composer -> transport -> operators),
  ``Problem`` and ``standard_twin``;
* :mod:`diffflux.inversion.cost`: cost, gradient, Taylor and dot-product tests;
* :func:`invert`: the entry point (a solver on the problem; posterior per block and diagnostics);
* :mod:`diffflux.inversion.budgets`: regional/period totals of the flux components with prior and
  posterior uncertainty (:func:`budget_table`, :func:`standard_region_masks`).

The solvers live in :mod:`diffflux.solvers`.
"""

from diffflux.inversion.budgets import (
    budget_table,
    error_reduction,
    regional_totals,
    standard_region_masks,
)
from diffflux.inversion.control import (
    ControlVector,
    bias_block,
    biosphere_block,
    flux_block,
    initial_block,
)
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
from diffflux.inversion.invert import InversionResult, invert
from diffflux.inversion.obs_error import ObservationError
from diffflux.inversion.problem import Problem, standard_twin

__all__ = [
    "InversionResult",
    "budget_table",
    "error_reduction",
    "regional_totals",
    "standard_region_masks",
    "invert",
    "ControlVector",
    "ObservationError",
    "Problem",
    "bias_block",
    "biosphere_block",
    "flux_block",
    "initial_block",
    "standard_twin",
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
