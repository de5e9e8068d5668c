"""Metrics: scalar functionals of a run whose gradients the adjoint gives (footprints, parameter ranking).

* ``station``: the mixing ratio at a station averaged over a period (its hourly records, all hours or the
  well-mixed afternoon 12-16 local solar time) [mol mol-1; reported in ppm/ppb/ppt];
* ``burden``: the global amount of a species at the end of the window [mol; reported in PgC, Tg, Gg];
* ``flux``: the mean total flux of a species over a region and period [mol s-1; reported in PgC/yr ...].

All are linear in the tracer fields, so a metric is ``m = w_y . y + w_b . burden + sum_n w_n <s, F_n>``
with fixed weights (:class:`MetricWeights`).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.experiments.scenarios import Period, RegionSpec, Setting, _fail, validate_all

KINDS = ("station", "burden", "flux")
HOURS = ("afternoon", "all")
AFTERNOON = (12.0, 16.0)
"""Local solar hours of the well-mixed afternoon boundary layer (as ``standard_twin`` assimilates)."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric (see the module docstring); ``station``/``hours`` for station metrics, ``region`` for flux
    metrics, ``period`` for both (default the window)."""

    name: str
    kind: str
    species: str
    station: str | None = None
    hours: str = "afternoon"
    region: RegionSpec = RegionSpec()
    period: Period = Period()

    def validate(self, setting: Setting, path: str) -> None:
        if not self.name or not all(c.isalnum() or c in "_-+." for c in self.name):
            _fail(
                f"{path}.name", f"must be a non-empty name of letters, digits and _-+., found {self.name!r}"
            )
        if self.kind not in KINDS:
            _fail(f"{path}.kind", f"must be one of {list(KINDS)}, found {self.kind!r}")
        setting.tracer(self.species, f"{path}.species")
        if self.kind == "station":
            if self.station is None:
                _fail(f"{path}.station", "a station metric needs a station")
            if self.station not in setting.stations:
                _fail(
                    f"{path}.station",
                    f"{self.station!r} is not sampled; stations: {list(setting.stations)} "
                    f"(list it in [experiment].stations)",
                )
            if self.hours not in HOURS:
                _fail(f"{path}.hours", f"must be one of {list(HOURS)}, found {self.hours!r}")
        elif self.station is not None:
            _fail(f"{path}.station", f"only station metrics have a station (kind is {self.kind!r})")
        if self.kind != "flux" and self.region != RegionSpec():
            _fail(f"{path}.region", f"only flux metrics have a region (kind is {self.kind!r})")
        if self.kind == "burden" and self.period != Period():
            _fail(f"{path}.start/end", "the burden metric is the amount at the end of the window: no period")
        self.region.validate(path)
        self.period.validate(setting, f"{path}.start/end")

    def species_obj(self):
        from diffflux.species import get_species

        return get_species(self.species)

    @property
    def si_unit(self) -> str:
        return {"station": "mol mol-1", "burden": "mol", "flux": "mol s-1"}[self.kind]

    def reporting(self) -> tuple[float, str]:
        """``(scale, unit)``: reporting value = SI value * scale."""
        sp = self.species_obj()
        if self.kind == "station":
            return 1.0 / sp.mixing_ratio_scale, sp.mixing_ratio_unit
        if self.kind == "burden":
            return sp.flux_mass_per_mol / sp.flux_mass_unit, sp.amount_unit
        return sp.flux_scale, sp.flux_unit

    @property
    def footprint_unit(self) -> str:
        """Unit of the gradient with respect to a surface flux [mol m-2 s-1] held over a block."""
        return {
            "station": "mol mol-1 (mol m-2 s-1)-1",
            "burden": "mol (mol m-2 s-1)-1",
            "flux": "mol s-1 (mol m-2 s-1)-1",
        }[self.kind]

    def describe(self) -> str:
        if self.kind == "station":
            return f"{self.species} at {self.station} ({self.hours} hours, {self.period.label})"
        if self.kind == "burden":
            return f"global {self.species} burden at the end of the window"
        return f"{self.species} flux over {self.region.label} ({self.period.label})"


def validate_metrics(metrics, setting: Setting, path: str = "metric") -> None:
    validate_all(metrics, setting, path)


class MetricWeights(eqx.Module):
    """Weights of ``nm`` metrics: ``station (nm, nobs)``, ``burden (nm, ntr)``, ``flux_time (nm, nsteps)``,
    ``flux_space (nm, nlat, nlon)`` [m2] and ``flux_tracer (nm, ntr)``."""

    station: jax.Array
    burden: jax.Array
    flux_time: jax.Array
    flux_space: jax.Array
    flux_tracer: jax.Array

    @property
    def n(self) -> int:
        return int(self.station.shape[0])

    @classmethod
    def build(cls, metrics, setting: Setting, table, dtype) -> MetricWeights:
        """Weights for ``metrics`` over the records of ``table`` (the experiment's observation table)."""
        from diffflux.observations import local_solar_hour

        nm, ntr = len(metrics), len(setting.tracers)
        grid = setting.grid
        nobs = table.sizes["obs"]
        st = np.zeros((nm, nobs))
        bu = np.zeros((nm, ntr))
        ft = np.zeros((nm, setting.nsteps))
        fs = np.zeros((nm, grid.nlat, grid.nlon))
        fr = np.zeros((nm, ntr))
        time = table["time"].values.astype("datetime64[s]")
        site = table["site"].values.astype(str)
        species = table["species"].values.astype(str)
        point = table["kind"].values.astype(str) == "point"
        for k, m in enumerate(metrics):
            tr = setting.tracer(m.species, f"metric[{k}].species")
            if m.kind == "station":
                sel = point & (site == m.station) & (species == setting.tracers[tr])
                s = m.period.start if m.period.start is not None else setting.start
                e = m.period.end if m.period.end is not None else setting.end
                sel &= (time >= s) & (time < e)
                if m.hours == "afternoon":
                    h = local_solar_hour(time, table["longitude"].values)
                    sel &= (h >= AFTERNOON[0]) & (h < AFTERNOON[1])
                if not sel.any():
                    _fail(
                        f"metric[{k}]",
                        f"no {m.species} records at {m.station} in {m.period.label} ({m.hours} hours)",
                    )
                st[k, sel] = 1.0 / sel.sum()
            elif m.kind == "burden":
                bu[k, tr] = 1.0
            else:
                w = m.period.weights(setting.step_edges)
                ft[k] = w / w.sum()
                fs[k] = m.region.mask(grid, "land", f"metric[{k}].region") * grid.area
                fr[k, tr] = 1.0
        return cls(*(jnp.asarray(a, dtype) for a in (st, bu, ft, fs, fr)))

    def apply(self, y, burden, flux_seq):
        """Metrics ``(nm,)`` from model equivalents ``(nobs,)``, burdens ``(ntr,)`` [mol] and the fluxes of
        every step ``(nsteps, ntr, nlat, nlon)`` [mol m-2 s-1]."""
        flux = jnp.einsum("mn,mt,myx,ntyx->m", self.flux_time, self.flux_tracer, self.flux_space, flux_seq)
        return self.station @ y + self.burden @ burden + flux
