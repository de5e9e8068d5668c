"""Sensitivity experiments: scenarios run as one batch, adjoint footprints and parameter sensitivities.

* :mod:`~diffflux.experiments.scenarios`: scenario definitions (flux, parameter and land-cover changes
  over a region, a period and a magnitude) and their validation;
* :mod:`~diffflux.experiments.metrics`: metrics for the adjoint (station mean, global burden, regional flux);
* :mod:`~diffflux.experiments.model`: :class:`ExperimentModel` (the problem's chain with scenario changes,
  stations and columns), ``simulate_batch`` (``jax.vmap``) and ``simulate_one``;
* :mod:`~diffflux.experiments.sensitivity`: footprints, parameter gradients, finite-difference check,
  the gradients' prediction of scenarios;
* :mod:`~diffflux.experiments.config`: the TOML configuration (:func:`load_sensitivity_config`);
* :mod:`~diffflux.experiments.run`: :func:`run_sensitivity` (everything, with outputs);
* :mod:`~diffflux.experiments.cli`: the ``diffflux sensitivity`` subcommand.
"""

from diffflux.experiments.config import ConfigError, SensitivityConfig, load_sensitivity_config, parse_config
from diffflux.experiments.metrics import Metric
from diffflux.experiments.model import (
    ExperimentModel,
    ScenarioArrays,
    setting_from_problem,
    simulate_batch,
    simulate_one,
)
from diffflux.experiments.run import SensitivityResult, run_sensitivity
from diffflux.experiments.scenarios import (
    AreaChange,
    FluxChange,
    ParameterChange,
    Period,
    RegionSpec,
    Scenario,
    Setting,
)
from diffflux.experiments.sensitivity import (
    Sensitivities,
    finite_difference_footprint,
    gradients,
    linear_predictions,
)

__all__ = [
    "AreaChange",
    "ConfigError",
    "ExperimentModel",
    "FluxChange",
    "Metric",
    "ParameterChange",
    "Period",
    "RegionSpec",
    "Scenario",
    "ScenarioArrays",
    "SensitivityConfig",
    "SensitivityResult",
    "Sensitivities",
    "Setting",
    "finite_difference_footprint",
    "gradients",
    "linear_predictions",
    "load_sensitivity_config",
    "parse_config",
    "run_sensitivity",
    "setting_from_problem",
    "simulate_batch",
    "simulate_one",
]
