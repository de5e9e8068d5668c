"""The small additive twin of the experiment tests: settings, eight flux scenarios and four metrics."""

import numpy as np

from diffflux.experiments import FluxChange, Metric, Period, RegionSpec, Scenario

TWIN = dict(
    resolution=(15.0, 20.0),
    nlev=2,
    days=2,
    steps_per_day=4,
    flux_forms="additive",
    horizontal_diffusion=False,
    satellite_step_seconds=1800.0,
    noise=False,
)
STATIONS = ("RYO", "HAT", "MNM", "MLO")


def scenarios():
    day2 = Period(start=np.datetime64("2021-07-02T00:00:00", "s"))
    jpn = RegionSpec("JPN")
    return [
        Scenario(
            "ocean_np", (FluxChange(component="ocean", factor=1.5, region=RegionSpec("basin:North Pacific")),)
        ),
        Scenario("nee_jpn", (FluxChange(component="nee", factor=1.2, region=jpn),)),
        Scenario("ch4_jpn", (FluxChange(component="ch4_anthropogenic", factor=0.8, region=jpn),)),
        Scenario("sink_jpn", (FluxChange(species="CO2", add=-0.01, units="PgC/yr", region=jpn),)),
        Scenario(
            "kigali", (FluxChange(component="hfc134a_anthropogenic", schedule=((2019, 0.9), (2024, 0.6))),)
        ),
        Scenario("hfc_jpn_off", (FluxChange(component="hfc134a_anthropogenic", factor=0.0, region=jpn),)),
        Scenario(
            "box_day2",
            (
                FluxChange(
                    species="CH4", add=1e-9, region=RegionSpec(box=(30.0, 45.0, 130.0, 150.0)), period=day2
                ),
            ),
        ),
        Scenario(
            "mix",
            (
                FluxChange(component="nee", factor=1.2, region=jpn),
                FluxChange(component="nee", factor=0.5, region=RegionSpec("ar6:WNA"), period=day2),
            ),
        ),
    ]


METRICS = [
    Metric("ryo_co2", "station", "CO2", station="RYO"),
    Metric("mnm_hfc", "station", "HFC-134a", station="MNM", hours="all"),
    Metric("co2_burden", "burden", "CO2"),
    Metric("jpn_co2", "flux", "CO2", region=RegionSpec("JPN")),
]
