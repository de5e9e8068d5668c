"""Running the transport and sampling it at the observations; super-observations.

:func:`sample_run` is :func:`diffflux.transport.run` with an :class:`ObservationOperator` as its
``observe`` hook, returning model equivalents in the table's order. :func:`aggregate` groups records of
a table into super-observations (hourly/daily means per site, satellite soundings gridded to model
cells per day) and returns an :class:`Aggregation`, the matching linear (differentiable) operator on the
model side: model equivalents of the raw records are averaged with the same groups, which is how a
super-observation must be compared (sample first, then average).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from diffflux.grid import LatLonGrid
from diffflux.observations.operators import ObservationOperator, horizontal_stencil
from diffflux.observations.table import COLUMN_VARS, OBS_DIM, RET_DIM, normalise_table


def sample_run(
    model,
    met,
    state,
    operator: ObservationOperator,
    *,
    flux=None,
    elevated=None,
    checkpoint: str | None = None,
    segment: int | None = None,
    save_every: int | None = None,
):
    """Run the transport over the operator's window and sample it in the scan.

    Args:
        model, met, state, flux, elevated, checkpoint, segment, save_every: as for
            :func:`diffflux.transport.run` (``dt``, ``nsteps`` and ``t0`` come from the operator).
        operator: from :func:`diffflux.observations.build_operator`.

    Returns:
        ``(final_state, y_model (nobs,) [mol mol-1], saved)``.
    """
    from diffflux.transport.run import run

    final, saved, observed = run(
        model,
        met,
        state,
        dt=operator.dt,
        nsteps=operator.nsteps,
        t0=operator.t0,
        flux=flux,
        elevated=elevated,
        checkpoint=checkpoint,
        segment=segment,
        save_every=save_every,
        observe=operator,
    )
    return final, operator.collect(observed), saved


class Aggregation(eqx.Module):
    """Linear averaging of raw records into super-observations: ``y_super[g] = mean(y[group == g])``.

    Attributes:
        group: ``(nobs,)`` super-observation index of every raw record.
        count: ``(nsuper,)`` records per super-observation.
    """

    group: jax.Array
    count: jax.Array

    @property
    def nsuper(self) -> int:
        return int(self.count.shape[0])

    def __call__(self, y):
        """Means ``(nsuper,)`` of ``y (nobs,)`` over each group (pure JAX, differentiable)."""
        s = jax.ops.segment_sum(y, self.group, num_segments=self.nsuper)
        return s / self.count.astype(y.dtype)


def aggregate(
    ds: xr.Dataset,
    *,
    period: str = "1h",
    grid: LatLonGrid | None = None,
    uncertainty: str = "independent",
) -> tuple[xr.Dataset, Aggregation]:
    """Super-observations: means of the records that share species, kind, site, sampling, time bin (and,
    with ``grid``, model cell).

    Args:
        ds: observation table.
        period: time-bin length as a NumPy timedelta string (``"1h"``, ``"1D"``, ``"3h"``); bins start at
            00 UTC of 1970-01-01 (so daily bins are UTC days).
        grid: if given, records are also grouped by the model cell whose centre is nearest (satellite
            gridding) and the super-observation sits at the cell centre.
        uncertainty: ``"independent"``: ``sqrt(sum sigma_i^2) / n`` (errors independent);
            ``"correlated"``: ``mean(sigma_i)`` (fully correlated errors, no reduction by averaging).

    Returns:
        ``(super_table, aggregation)``: the table of means (time = mean time, coordinates = mean
        coordinates or cell centre, column arrays averaged) and the :class:`Aggregation` that averages
        model equivalents of ``ds`` the same way.
    """
    if uncertainty not in ("independent", "correlated"):
        raise ValueError(
            f"aggregate: uncertainty must be 'independent' or 'correlated', found {uncertainty!r}"
        )
    n = ds.sizes[OBS_DIM]
    unit = np.timedelta64(1, "ns")
    try:
        width = np.timedelta64(int(period[:-1] or 1), period[-1]) if period[-1] in "hDms" else None
    except ValueError:
        width = None
    if width is None:
        raise ValueError(
            f"aggregate: period must look like '1h', '3h', '1D', '30m' or '10s', found {period!r}"
        )
    tns = ds["time"].values.astype("datetime64[ns]").astype(np.int64)
    tbin = tns // int(width / unit)
    keys = [ds[k].values.astype(str) for k in ("species", "kind", "site", "sampling")] + [tbin.astype(str)]
    cell = None
    if grid is not None:
        idx, w = horizontal_stencil(grid, ds["latitude"].values, ds["longitude"].values)
        cell = idx[np.arange(n), np.argmax(w, axis=1)]
        keys.append(cell.astype(str))
    else:
        keys.append(np.round(ds["altitude"].values, 3).astype(str))
        keys.append(np.round(ds["pressure"].values, 3).astype(str))
    combined = np.array(["|".join(row) for row in zip(*keys)]) if n else np.array([], str)
    uniq, first, group = np.unique(combined, return_index=True, return_inverse=True)
    # keep the order of first appearance
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group = rank[group]
    ng = uniq.size
    count = np.bincount(group, minlength=ng).astype(np.float64)

    def mean(a):
        a = np.asarray(a, dtype=np.float64)
        s = np.zeros((ng,) + a.shape[1:])
        np.add.at(s, group, a)
        return s / count.reshape((-1,) + (1,) * (a.ndim - 1))

    rep = np.asarray(first)[order]  # first record of each group
    out = {}
    t_ref = int(tns.min()) if n else 0
    tmean = (np.round(mean(tns - t_ref)).astype(np.int64) + t_ref).astype("datetime64[ns]")
    out["time"] = (OBS_DIM, tmean)
    # longitude: average on the circle so that bins across the date line stay right
    lon = np.deg2rad(ds["longitude"].values)
    lon_mean = np.rad2deg(np.arctan2(mean(np.sin(lon)), mean(np.cos(lon))))
    out["latitude"] = (OBS_DIM, mean(ds["latitude"].values))
    out["longitude"] = (OBS_DIM, lon_mean)
    if cell is not None:
        c = cell[rep]
        out["latitude"] = (OBS_DIM, grid.lat[c // grid.nlon])
        out["longitude"] = (OBS_DIM, grid.lon[c % grid.nlon])
    for k in ("altitude", "pressure", "value"):
        out[k] = (OBS_DIM, mean(ds[k].values))
    sig = ds["uncertainty"].values
    if uncertainty == "independent":
        s2 = np.zeros(ng)
        np.add.at(s2, group, sig**2)
        out["uncertainty"] = (OBS_DIM, np.sqrt(s2) / count)
    else:
        out["uncertainty"] = (OBS_DIM, mean(sig))
    for k in ("species", "kind", "site", "sampling"):
        out[k] = (OBS_DIM, ds[k].values.astype(str)[rep])
    qc = np.zeros(ng, np.int32)
    np.maximum.at(qc, group, ds["qc"].values.astype(np.int32))
    out["qc"] = (OBS_DIM, qc)
    if RET_DIM in ds.dims:
        for k in COLUMN_VARS:
            out[k] = ((OBS_DIM, RET_DIM), mean(ds[k].values))
        out["prior_value"] = (OBS_DIM, mean(ds["prior_value"].values))
    sup = normalise_table(
        xr.Dataset(
            out,
            attrs={
                **ds.attrs,
                "aggregation": f"mean over {period} bins" + (" and model cells" if grid is not None else ""),
            },
        )
    )
    sup["count"] = (OBS_DIM, count.astype(np.int32))
    return sup, Aggregation(group=jnp.asarray(group, jnp.int32), count=jnp.asarray(count))
