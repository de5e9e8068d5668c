"""Adjoint sensitivities of metrics: footprints (gradients with respect to gridded fluxes), parameter
gradients, their finite-difference check, and the gradient's prediction of scenarios (linear check).

For metrics ``m_k`` (:mod:`diffflux.experiments.metrics`) one reverse pass (``jax.jacrev``: one
vector-Jacobian product per metric, sharing the forward run) gives

* ``G_k[n, tr, j, i] = dm_k / dF[n, tr, j, i]``: the response to a flux [mol m-2 s-1] added in cell
  ``(j, i)`` of tracer ``tr`` during transport step ``n``. The footprint of a time block is the sum over
  its steps (the response to a flux held over the block), the window footprint the sum over all steps.
  Units: metric unit per (mol m-2 s-1), e.g. mol mol-1 (mol m-2 s-1)-1 for a station.
* ``dm_k / d ln p``: with respect to the log of every biosphere multiplier (all PFT and global
  parameters, applied everywhere): the change of the metric per relative change of the parameter.

The transport of :func:`~diffflux.inversion.standard_twin` is linear (unlimited advection, diffusion),
so a metric is affine in the fluxes and a finite difference of a flux pulse reproduces the footprint to
round-off (:func:`finite_difference_footprint`).

**Linear check**: the gradient's prediction of scenario ``s`` is ``sum_n <G_k[n], dF_s(n)>`` where
``dF_s = d F_s / d alpha`` at ``alpha = 0`` is the tangent of the scenario's fluxes in its amplitude
(:meth:`ScenarioArrays.scaled`): exact for flux and area changes (linear in the fluxes), first order for
parameter changes (through the biosphere). It is compared with forward runs at amplitude ``alpha``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.experiments.model import ExperimentModel, ScenarioArrays


@dataclasses.dataclass
class Sensitivities:
    """Gradients of the metrics at the baseline.

    Attributes:
        values: ``(nm,)`` metrics [SI].
        per_step: ``(nm, nsteps, ntr, nlat, nlon)`` ``dm/dF`` per transport step [SI metric per
            (mol m-2 s-1)].
        params: ``{"pft": {name: (nm, NPFT)}, "glob": {name: (nm,)}}`` ``dm / d ln p`` [SI], or None without
            a biosphere.
    """

    values: np.ndarray
    per_step: np.ndarray
    params: dict | None

    def footprint(self, k: int, tracer: int, steps_per_block: int) -> np.ndarray:
        """``(nblock, nlat, nlon)`` block footprints of metric ``k`` for ``tracer`` (blocks of
        ``steps_per_block`` steps; the last one may be shorter)."""
        g = self.per_step[k, :, tracer]
        nsteps = g.shape[0]
        starts = np.arange(0, nsteps, steps_per_block)
        return np.add.reduceat(g, starts, axis=0)

    def window_footprint(self, k: int, tracer: int) -> np.ndarray:
        """``(nlat, nlon)``: the response to a flux held over the whole window."""
        return self.per_step[k, :, tracer].sum(axis=0)

    def parameter_rows(self, k: int) -> list[dict]:
        """Parameter sensitivities of metric ``k``, largest ``|dm/d ln p|`` first (exact zeros, e.g. PFTs
        absent from the grid, left out)."""
        from diffflux.models.biosphere.pft import PFT_CODES

        if self.params is None:
            return []
        rows = []
        for name, g in self.params["pft"].items():
            for i, code in enumerate(PFT_CODES):
                rows.append({"parameter": name, "pft": code, "gradient": float(g[k, i])})
        for name, g in self.params["glob"].items():
            rows.append({"parameter": name, "pft": "", "gradient": float(g[k])})
        rows = [r for r in rows if r["gradient"] != 0.0]
        rows.sort(key=lambda r: -abs(r["gradient"]))
        for rank, r in enumerate(rows, 1):
            r["rank"] = rank
        return rows


def _zeros_log_mult(model: ExperimentModel):
    p = model.problem
    if p.biosphere is None:
        return None
    return jax.tree_util.tree_map(jnp.zeros_like, p.bio_params)


def _zeros_flux(model: ExperimentModel):
    p = model.problem
    shape = (int(p.operator.nsteps), len(model.tracers)) + tuple(p.chi0.shape[2:])
    return jnp.zeros(shape, p.air0.dtype)


@eqx.filter_jit
def _jacobian(model: ExperimentModel, log_mult, flux_pert, checkpoint: str | None):
    def f(lm, fp):
        return model.simulate(
            None, log_mult=lm, flux_pert=fp, checkpoint=checkpoint, bio_checkpoint=checkpoint is not None
        )["metrics"]

    value, vjp = jax.vjp(f, log_mult, flux_pert)
    return value, jax.vmap(vjp)(jnp.eye(value.shape[0], dtype=value.dtype))


def gradients(model: ExperimentModel, *, checkpoint: str | None = "nested") -> Sensitivities:
    """Metric values and their gradients with respect to every gridded flux and biosphere parameter (one
    compiled reverse pass over all metrics; ``checkpoint`` as for :func:`diffflux.transport.run`)."""
    lm = _zeros_log_mult(model)
    value, (g_lm, g_flux) = _jacobian(model, lm, _zeros_flux(model), checkpoint)
    params = None
    if lm is not None:
        params = {
            "pft": {k: np.asarray(v) for k, v in g_lm.pft.items()},
            "glob": {k: np.asarray(v) for k, v in g_lm.glob.items()},
        }
    return Sensitivities(values=np.asarray(value), per_step=np.asarray(g_flux), params=params)


def finite_difference_footprint(
    model: ExperimentModel, k: int, tracer: int, cells, steps, h, checkpoint: str | None = "nested"
) -> np.ndarray:
    """Central finite difference ``(m_k(+h) - m_k(-h)) / 2h`` of metric ``k`` for a flux pulse ``h``
    [mol m-2 s-1] (a number, or one per cell) in each cell ``(j, i)`` of ``cells`` and ``tracer`` during
    transport ``steps``; the forward runs reuse the compiled function of :func:`gradients`.

    Returns ``(ncell,)``: compare with ``per_step[k, steps, tracer, j, i].sum()``. The metrics are affine in
    the fluxes, so ``h`` only sets the round-off: choose ``h |footprint|`` well above ``1e-12 |m_k|``.
    """
    base = _zeros_flux(model)
    lm = _zeros_log_mult(model)
    steps = jnp.asarray(np.asarray(steps))
    hs = np.broadcast_to(np.asarray(h, dtype=np.float64), (len(cells),))
    out = []
    for (j, i), hc in zip(cells, hs):
        pulse = base.at[steps, tracer, j, i].set(hc)
        up = _jacobian(model, lm, pulse, checkpoint)[0][k]
        down = _jacobian(model, lm, -pulse, checkpoint)[0][k]
        out.append(float((up - down) / (2.0 * hc)))
    return np.asarray(out)


@eqx.filter_jit
def _tangent(model: ExperimentModel, arrays: ScenarioArrays, weights):
    def one(a):
        zero = jnp.zeros((), weights.dtype)
        return jax.jvp(
            lambda al: model.flux_functional(a.scaled(al), weights), (zero,), (jnp.ones((), weights.dtype),)
        )[1]

    return jax.vmap(one)(arrays)


def linear_predictions(model: ExperimentModel, arrays: ScenarioArrays, sens: Sensitivities) -> np.ndarray:
    """``(nscenario, nm)``: the gradients' first-order change of every metric per unit amplitude of every
    scenario, ``sum_n <G_k[n], dF_s/dalpha (n)>`` (one compiled call, vmapped over scenarios)."""
    weights = jnp.asarray(sens.per_step, model.problem.air0.dtype)
    return np.asarray(_tangent(model, arrays, weights))


def parameter_prediction(sens: Sensitivities, log_mult) -> np.ndarray:
    """``(nm,)``: ``sum_p dm/dln p * dln p`` for log multipliers ``log_mult`` applied everywhere (a
    parameter change over the globe and the whole window): the parameter-gradient route to the same
    prediction as :func:`linear_predictions`."""
    out = 0.0
    for group in ("pft", "glob"):
        for name, g in sens.params[group].items():
            d = np.asarray(getattr(log_mult, group)[name])
            out = out + (g * d).reshape(g.shape[0], -1).sum(axis=1)
    return np.asarray(out)
