"""One small additive twin shared by the experiment tests (15 x 20 degrees, 2 levels, 2 days of 6-hour
steps, CO2 + CH4, plus HFC-134a as an extra tracer), its experiment model with eight flux scenarios, their
batched run and the metrics' gradients: each function compiles once per session."""

import pytest
from exp_helpers import METRICS, STATIONS, TWIN, scenarios

from diffflux.experiments.model import ExperimentModel, setting_from_problem
from diffflux.experiments.scenarios import validate_scenarios


@pytest.fixture(scope="session")
def additive():
    """``(twin, setting, model, arrays, table, scenarios)`` of the small additive twin."""
    from diffflux.inversion import standard_twin

    tw = standard_twin(**TWIN)
    setting = setting_from_problem(
        tw.problem, "2021-01-01", stations=STATIONS, extra_species=("HFC-134a",), columns=True
    )
    scn = scenarios()
    validate_scenarios(scn, setting)
    for k, m in enumerate(METRICS):
        m.validate(setting, f"metric[{k}]")
    model, table = ExperimentModel.build(
        tw.problem,
        setting,
        extra_species={"HFC-134a": 120e-12},
        metrics=METRICS,
        satellite_step_seconds=1800.0,
    )
    model, arrays, notes = model.with_scenarios(scn, setting)
    return tw, setting, model, arrays, table, scn


@pytest.fixture(scope="session")
def batch(additive):
    """``(batch, baseline, timing)``: eight scenarios and the baseline in one vmapped call, and one by one."""
    from diffflux.experiments.run import _np, run_batch_and_single

    _, _, model, arrays, _, scn = additive
    b, base, timing = run_batch_and_single(model, arrays, len(scn), one_by_one=True)
    return _np(b), _np(base), timing


@pytest.fixture(scope="session")
def sens(additive):
    from diffflux.experiments import gradients

    return gradients(additive[2])
