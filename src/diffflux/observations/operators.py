"""Observation operators: point sampling, satellite columns, in-scan sampling plans.

Everything inside the transport scan is pure JAX and linear in the tracer amounts, so
``jax.grad``/``jax.linear_transpose`` give the exact adjoint.

**Horizontal** (static, computed once in NumPy): bilinear interpolation between the four surrounding cell
centres (``lon = -180 + (i + 1/2) dlon``, ``lat = -90 + (j + 1/2) dlat``), periodic in longitude. Between
the outermost row of centres and a pole the stencil continues *across the pole* along the meridian:
the point at latitude ``lat > lat_N`` lies a fraction ``f = (lat - lat_N) / dlat`` (``0 < f <= 1/2``) of
the great-circle path from the polar-row centre at its own longitude to the polar-row centre 180 degrees
away, so it gets ``(1 - f)`` of the bilinear-in-longitude value at ``lon`` and ``f`` of that at
``lon + 180``. The operator is continuous across the polar row; at the pole itself (``f = 1/2``) it is the
mean of the two opposite meridians.

**Vertical** (inside the scan, from the met of the step): hydrostatic heights of the layer middles of each
of the four stencil columns, ``z_{k+1/2 bottom} = z_s + sum_{m<k} (R_d T_m / g) ln(p_m / p_{m+1})`` and
``z_k = z_{k, bottom} + (R_d T_k / g) ln(p_k / p_mid,k)`` with interface pressures ``p_m = a_m + b_m ps``,
``p_mid,k = (p_k + p_{k+1}) / 2``, surface height ``z_s`` (the model orography, default 0 m). The sample is
linear in height between the two layer middles that bracket the observation altitude (constant below the
lowest and above the highest middle). Records located by pressure (aircraft) interpolate linearly in
``ln p`` between layer-middle pressures instead.

**Time**: an observation at time ``t`` with ``t_n <= t < t_{n+1} = t_n + dt`` is sampled during step
``n`` as ``(1 - w) H x(t_n) + w H x(t_{n+1})``, ``w = (t - t_n) / dt``, from the states before and after
the step (so it is exact for fields linear in time).

**Columns**: the model profile of each stencil column is remapped to the retrieval pressure levels by
linear interpolation in ``ln p`` between model layer-middle pressures (constant outside), the four columns
are combined bilinearly, and ``X = X_prior + sum_k w_k a_k (x_k - x_prior,k)`` (Connor et al. 2008, JGR
113, D05305; O'Dell et al. 2012, AMT 5, 99-121: the OCO/GOSAT column operator with pressure weights
``w_k`` and column averaging kernel ``a_k``).

**Cost**: observations are sorted by step and stored in per-step padded tables ``(nsteps, K)`` with ``K``
the largest number of records in any step; step ``n`` reads row ``n`` (a dynamic slice) and gathers
``4 x nlev`` values per record and state. The work per run is ``O(nsteps K nlev)``, i.e. proportional to
the number of observations (times the padding overhead ``nsteps K / nobs``), never observations x steps.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffflux.constants import GRAVITY, M_AIR, R_DRY
from diffflux.grid import LatLonGrid
from diffflux.observations.table import ObsArrays

DEFAULT_TEMPERATURE = 250.0
"""Temperature [K] used for the hydrostatic heights when the met has none (as the transport does)."""


# ------------------------------------------------------------------------------------------------
# static horizontal and time weights (NumPy, outside jit)
# ------------------------------------------------------------------------------------------------


def horizontal_stencil(grid: LatLonGrid, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear stencil of points on the cell-centre grid (see module docstring for the poles).

    Args:
        grid: model grid.
        lat, lon: ``(n,)`` [degrees]; ``lat`` in [-90, 90], any longitude (wrapped).

    Returns:
        ``(index (n, 4) int32, weight (n, 4) float64)``: flat horizontal indices ``j * nlon + i`` and
        weights that sum to 1.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if np.any(np.abs(lat) > 90.0) or not np.all(np.isfinite(lat) & np.isfinite(lon)):
        raise ValueError("horizontal_stencil: latitudes must be finite and within [-90, 90] degrees")
    nlat, nlon = grid.nlat, grid.nlon
    dlat, dlon = 180.0 / nlat, 360.0 / nlon
    x = (lon - grid.lon[0]) / dlon
    x0 = np.floor(x)
    fx = x - x0
    i0 = np.mod(x0.astype(np.int64), nlon)
    i1 = np.mod(i0 + 1, nlon)
    y = (lat - grid.lat[0]) / dlat
    north, south = y > nlat - 1, y < 0
    j0 = np.clip(np.floor(y), 0, max(nlat - 2, 0)).astype(np.int64)
    fy = np.clip(y - j0, 0.0, 1.0)
    j1 = np.minimum(j0 + 1, nlat - 1)
    half = nlon // 2
    # across the pole: second "row" is the polar row shifted by 180 degrees of longitude
    ja = np.where(north, nlat - 1, np.where(south, 0, j0))
    jb = np.where(north | south, ja, j1)
    ib0 = np.where(north | south, np.mod(i0 + half, nlon), i0)
    ib1 = np.where(north | south, np.mod(i1 + half, nlon), i1)
    fy = np.where(north, y - (nlat - 1), np.where(south, -y, fy))
    index = np.stack([ja * nlon + i0, ja * nlon + i1, jb * nlon + ib0, jb * nlon + ib1], axis=1)
    weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=1)
    return index.astype(np.int32), weight


def step_of(time, t0: float, dt: float, nsteps: int, *, where: str = "observations") -> tuple:
    """Step index ``n`` (``t_n <= t < t_{n+1}``; the end of the window belongs to the last step) and the
    time weight ``w = (t - t_n) / dt`` of every time ``t`` [s] (NumPy).

    Raises:
        ValueError: a time outside ``[t0, t0 + nsteps dt]`` (names the first one and the window).
    """
    t = np.asarray(time, dtype=np.float64)
    t_end = t0 + nsteps * dt
    tol = 1e-9 * max(abs(t_end), dt)
    bad = (t < t0 - tol) | (t > t_end + tol)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{where}: {int(bad.sum())} observation time(s) outside the run window [{t0}, {t_end}] s "
            f"(first: index {i}, t = {t[i]} s); select the window first (select(..., start=, end=)) or "
            f"check_table(..., window=..., on_bad='drop')"
        )
    s = (t - t0) / dt
    n = np.clip(np.floor(s), 0, nsteps - 1).astype(np.int64)
    w = np.clip(s - n, 0.0, 1.0)
    return n, w


def _step_table(step: np.ndarray, nsteps: int, min_k: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-step padded layout: ``(slot (nsteps, K) int64 of record indices or -1, pos (n,), K)``.

    ``pos[i] = n_i * K + r`` is the flat position of record ``i`` in the per-step outputs.
    """
    n = step.size
    counts = np.bincount(step, minlength=nsteps) if n else np.zeros(nsteps, np.int64)
    K = max(int(counts.max()) if n else 0, min_k)
    order = np.argsort(step, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - start[step[order]]
    slot = np.full((nsteps, K), -1, np.int64)
    slot[step, rank] = np.arange(n)
    return slot, step * K + rank, K


# ------------------------------------------------------------------------------------------------
# column geometry (pure JAX)
# ------------------------------------------------------------------------------------------------


def level_pressures(a, b, ps):
    """Interface ``(..., nlev + 1)`` and layer-middle ``(..., nlev)`` pressures [Pa] for ``ps (...)`` [Pa]."""
    p_int = a + b * ps[..., None]
    return p_int, 0.5 * (p_int[..., :-1] + p_int[..., 1:])


def level_heights(a, b, ps, temperature, surface_height):
    """Hydrostatic heights of the layer middles ``(..., nlev)`` [m a.s.l.].

    Args:
        a, b: ``(nlev + 1,)`` hybrid coefficients [Pa], [1] (interface 0 at the surface).
        ps: ``(...)`` surface pressure [Pa].
        temperature: ``(..., nlev)`` layer temperature [K].
        surface_height: ``(...)`` model surface height [m a.s.l.].
    """
    p_int, p_mid = level_pressures(a, b, ps)
    h = R_DRY * temperature / GRAVITY  # scale height of each layer [m]
    nlev = temperature.shape[-1]
    if nlev > 1:
        # the top interface may be p = 0: only the layers below the top one enter the cumulative sum
        dz = h[..., :-1] * jnp.log(p_int[..., : nlev - 1] / p_int[..., 1:nlev])
        z_bot = jnp.concatenate([jnp.zeros_like(dz[..., :1]), jnp.cumsum(dz, axis=-1)], axis=-1)
    else:
        z_bot = jnp.zeros_like(h)
    return surface_height[..., None] + z_bot + h * jnp.log(p_int[..., :-1] / p_mid)


def interp_weights(coord, target):
    """Linear interpolation in a monotonically increasing coordinate, constant outside.

    Args:
        coord: ``(..., nlev)`` increasing along the last axis.
        target: ``(..., m)`` points.

    Returns:
        ``(index (..., m) int, frac (..., m))``: the value at a target is
        ``(1 - frac) v[index] + frac v[index + 1]`` (``index + 1`` clipped to ``nlev - 1``).
    """
    nlev = coord.shape[-1]
    if nlev == 1:
        zero = jnp.zeros(target.shape, jnp.int32)
        return zero, jnp.zeros_like(target)
    count = jnp.sum(coord[..., None, :] <= target[..., :, None], axis=-1)
    idx = jnp.clip(count - 1, 0, nlev - 2)
    c0 = jnp.take_along_axis(coord, idx, axis=-1)
    c1 = jnp.take_along_axis(coord, idx + 1, axis=-1)
    frac = jnp.clip((target - c0) / (c1 - c0), 0.0, 1.0)
    return idx, frac


def interp_apply(values, idx, frac):
    """Apply :func:`interp_weights` to ``values (..., nlev)``: returns ``(..., m)``."""
    nlev = values.shape[-1]
    v0 = jnp.take_along_axis(values, idx, axis=-1)
    v1 = jnp.take_along_axis(values, jnp.minimum(idx + 1, nlev - 1), axis=-1)
    return v0 + frac * (v1 - v0)


def column_average(x_ret, prior_profile, averaging_kernel, pressure_weight, prior_value):
    """``X = X_prior + sum_k w_k a_k (x_k - x_prior,k)`` (last axis = retrieval levels).

    Args:
        x_ret: ``(..., nret)`` model profile on the retrieval levels [mol mol-1].
        prior_profile: ``(..., nret)`` a-priori profile [mol mol-1].
        averaging_kernel: ``(..., nret)`` column averaging kernel [1].
        pressure_weight: ``(..., nret)`` pressure weights [1] (sum to 1).
        prior_value: ``(...)`` a-priori column [mol mol-1].
    """
    return prior_value + jnp.sum(pressure_weight * averaging_kernel * (x_ret - prior_profile), axis=-1)


def remap_profile(p_model, x_model, p_ret):
    """Model profile ``x_model (..., nlev)`` at layer-middle pressures ``p_model (..., nlev)`` [Pa]
    (decreasing with level) interpolated linearly in ``ln p`` to ``p_ret (..., nret)`` [Pa]."""
    idx, frac = interp_weights(-jnp.log(p_model), -jnp.log(p_ret))
    return interp_apply(x_model, idx, frac)


# ------------------------------------------------------------------------------------------------
# per-step plans
# ------------------------------------------------------------------------------------------------


class PointPlan(eqx.Module):
    """Point records in per-step padded layout; every array has leading dims ``(nsteps, K)``.

    Attributes:
        hindex: ``(nsteps, K, 4)`` flat horizontal indices of the stencil.
        hweight: ``(nsteps, K, 4)`` bilinear weights (0 for padding slots).
        tracer: ``(nsteps, K)`` tracer index.
        wtime: ``(nsteps, K)`` weight of the state after the step.
        target: ``(nsteps, K)`` altitude [m a.s.l.], or ``-ln(p / 1 Pa)`` for pressure-located records.
        use_pressure: ``(nsteps, K)`` bool.
    """

    hindex: jax.Array
    hweight: jax.Array
    tracer: jax.Array
    wtime: jax.Array
    target: jax.Array
    use_pressure: jax.Array


class ColumnPlan(eqx.Module):
    """Column records in per-step padded layout (leading dims ``(nsteps, K)``); retrieval arrays
    ``(nsteps, K, nret)``; see :class:`PointPlan` for the shared fields."""

    hindex: jax.Array
    hweight: jax.Array
    tracer: jax.Array
    wtime: jax.Array
    ret_pressure: jax.Array
    averaging_kernel: jax.Array
    prior_profile: jax.Array
    pressure_weight: jax.Array
    prior_value: jax.Array


def _gather_columns(state_tracer, state_air, tracer, hindex):
    """Mixing ratio ``(K, 4, nlev)`` [mol mol-1] of the stencil columns from tracer
    ``(ntr, nlev, nlat, nlon)`` [mol] and air ``(nlev, nlat, nlon)`` [kg]."""
    ntr, nlev = state_tracer.shape[:2]
    q = state_tracer.reshape(ntr, nlev, -1)
    m = state_air.reshape(nlev, -1)
    qc = q[tracer[:, None], :, hindex]  # (K, 4, nlev)
    mc = jnp.moveaxis(m[:, hindex], 0, -1)  # (K, 4, nlev)
    return qc * (M_AIR / mc)


class ObservationOperator(eqx.Module):
    """Samples a transport run at the observations, inside its scan (see the module docstring).

    Build it with :func:`build_operator`; pass it to :func:`diffflux.transport.run` as
    ``observe=operator`` (or use :func:`diffflux.observations.sample_run`) and turn the per-step outputs
    into model equivalents in the table's order with :meth:`collect`.

    Attributes:
        grid: model grid (static).
        point, column: per-step plans (None when the table has no records of that kind).
        point_pos, column_pos: ``(nobs,)`` flat position of each record in the per-step outputs of its kind
            (-1 for records of the other kind).
        surface_height: ``(nlat * nlon,)`` model surface height [m a.s.l.].
        t0, dt, nsteps: run window the plan was built for (static; [s], [s], steps).
        default_temperature: [K] used when the met has no temperature.
    """

    grid: LatLonGrid = eqx.field(static=True)
    point: PointPlan | None
    column: ColumnPlan | None
    point_pos: jax.Array
    column_pos: jax.Array
    surface_height: jax.Array
    t0: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    nsteps: int = eqx.field(static=True)
    default_temperature: float = eqx.field(static=True, default=DEFAULT_TEMPERATURE)

    @property
    def nobs(self) -> int:
        return int(self.point_pos.shape[0])

    def _met_columns(self, met, hindex):
        """Surface pressure ``(K, 4)`` and temperature ``(K, 4, nlev)`` of the stencil columns."""
        ps = met.ps.reshape(-1)[hindex]
        if met.temperature is not None:
            temp = jnp.moveaxis(met.temperature.reshape(self.grid.nlev, -1)[:, hindex], 0, -1)
        else:
            temp = jnp.full(hindex.shape + (self.grid.nlev,), self.default_temperature, ps.dtype)
        return ps, temp

    def _point_step(self, plan: PointPlan, before, after, met):
        dtype = before.air.dtype
        a = jnp.asarray(self.grid.levels.a, dtype)
        b = jnp.asarray(self.grid.levels.b, dtype)
        ps, temp = self._met_columns(met, plan.hindex)
        zs = self.surface_height[plan.hindex].astype(dtype)
        z = level_heights(a, b, ps, temp.astype(dtype), zs)  # (K, 4, nlev)
        _, p_mid = level_pressures(a, b, ps)
        coord = jnp.where(plan.use_pressure[:, None, None], -jnp.log(p_mid), z)
        idx, frac = interp_weights(
            coord, jnp.broadcast_to(plan.target[:, None, None], coord.shape[:2] + (1,))
        )

        def sample(state):
            chi = _gather_columns(state.tracer, state.air, plan.tracer, plan.hindex)
            v = interp_apply(chi, idx, frac)[..., 0]  # (K, 4)
            return jnp.sum(plan.hweight * v, axis=-1)

        w = plan.wtime
        return (1.0 - w) * sample(before) + w * sample(after)

    def _column_step(self, plan: ColumnPlan, before, after, met):
        dtype = before.air.dtype
        a = jnp.asarray(self.grid.levels.a, dtype)
        b = jnp.asarray(self.grid.levels.b, dtype)
        ps, _ = self._met_columns(met, plan.hindex)
        _, p_mid = level_pressures(a, b, ps)  # (K, 4, nlev)
        p_ret = jnp.broadcast_to(
            plan.ret_pressure[:, None, :], p_mid.shape[:2] + plan.ret_pressure.shape[-1:]
        )
        idx, frac = interp_weights(-jnp.log(p_mid), -jnp.log(p_ret))

        def sample(state):
            chi = _gather_columns(state.tracer, state.air, plan.tracer, plan.hindex)
            x = jnp.sum(plan.hweight[..., None] * interp_apply(chi, idx, frac), axis=1)  # (K, nret)
            return column_average(
                x, plan.prior_profile, plan.averaging_kernel, plan.pressure_weight, plan.prior_value
            )

        w = plan.wtime
        return (1.0 - w) * sample(before) + w * sample(after)

    def __call__(self, n, before, after, met):
        """Samples of step ``n`` from the states ``before`` and ``after`` the step and the step's met.

        Returns a dict with ``"point"`` ``(K_point,)`` and/or ``"column"`` ``(K_column,)`` [mol mol-1]
        (padding slots hold 0).
        """
        out = {}
        for name, plan, fn in (
            ("point", self.point, self._point_step),
            ("column", self.column, self._column_step),
        ):
            if plan is not None:
                row = jax.tree_util.tree_map(
                    lambda a: lax.dynamic_index_in_dim(a, n, 0, keepdims=False), plan
                )
                out[name] = fn(row, before, after, met)
        return out

    def collect(self, outputs) -> jax.Array:
        """Model equivalents ``(nobs,)`` [mol mol-1] in the table's order from the stacked per-step outputs
        (``{"point": (nsteps, K_p), "column": (nsteps, K_c)}``)."""
        y = None
        for name, pos in (("point", self.point_pos), ("column", self.column_pos)):
            if name in outputs:
                flat = outputs[name].reshape(-1)
                v = jnp.where(pos >= 0, flat[jnp.maximum(pos, 0)], 0.0)
                y = v if y is None else y + v
        return y

    def padding_efficiency(self) -> dict:
        """Records per padded slot, per kind (1 = no padding)."""
        out = {}
        for name, plan, pos in (
            ("point", self.point, self.point_pos),
            ("column", self.column, self.column_pos),
        ):
            if plan is not None:
                n = int(np.sum(np.asarray(pos) >= 0))
                out[name] = {
                    "records": n,
                    "slots_per_step": int(plan.tracer.shape[1]),
                    "efficiency": n / float(plan.tracer.size),
                }
        return out


def build_operator(
    obs: ObsArrays,
    grid: LatLonGrid,
    *,
    t0: float,
    dt: float,
    nsteps: int,
    surface_height=None,
    default_temperature: float = DEFAULT_TEMPERATURE,
    dtype=None,
) -> ObservationOperator:
    """Per-step sampling plans for ``obs`` in a run of ``nsteps`` steps of ``dt`` [s] from ``t0`` [s].

    Args:
        obs: observation arrays (times in seconds on the run's clock).
        grid: model grid.
        t0, dt, nsteps: the run window (as passed to :func:`diffflux.transport.run`).
        surface_height: ``(nlat, nlon)`` model orography [m a.s.l.] (default: 0, a flat Earth as in the
            built-in climatology).
        default_temperature: [K] for the heights when the met has no temperature.
        dtype: float dtype of the plans (default: that of ``obs.value``).

    Raises:
        ValueError: times outside the window, latitudes beyond +-90 degrees.
    """
    dtype = dtype or obs.value.dtype
    nsteps = int(nsteps)
    t = np.asarray(obs.time, dtype=np.float64)
    step, wt = step_of(t, float(t0), float(dt), nsteps)
    hidx, hw = horizontal_stencil(grid, np.asarray(obs.latitude), np.asarray(obs.longitude))
    is_col = np.asarray(obs.is_column, bool)
    tracer = np.asarray(obs.tracer)
    nobs = t.size

    def layout(sel, extra: dict):
        ii = np.flatnonzero(sel)
        slot, pos, K = _step_table(step[ii], nsteps)
        rec = np.where(slot >= 0, ii[np.maximum(slot, 0)], 0)
        valid = slot >= 0

        def pad(arr, fill=0):
            arr = np.asarray(arr)[rec]
            mask = valid.reshape(valid.shape + (1,) * (arr.ndim - 2))
            return np.where(mask, arr, fill)

        common = dict(
            hindex=jnp.asarray(pad(hidx), jnp.int32),
            hweight=jnp.asarray(pad(hw), dtype),
            tracer=jnp.asarray(pad(tracer), jnp.int32),
            wtime=jnp.asarray(pad(wt), dtype),
        )
        fields = {}
        for k, (v, fill) in extra.items():
            fields[k] = jnp.asarray(pad(v, fill), v.dtype if v.dtype == bool else dtype)
        full_pos = np.full(nobs, -1, np.int64)
        full_pos[ii] = pos
        return (
            common,
            fields,
            jnp.asarray(full_pos, jnp.int32 if full_pos.max(initial=0) < 2**31 else jnp.int64),
        )

    point = column = None
    point_pos = column_pos = jnp.full((nobs,), -1, jnp.int32)
    if (~is_col).any():
        use_p = np.asarray(obs.use_pressure, bool)
        alt = np.asarray(obs.altitude, np.float64)
        prs = np.asarray(obs.pressure, np.float64)
        if np.any(use_p & ~is_col & ~(prs > 0)):
            raise ValueError("build_operator: pressure-located point records need pressure > 0 Pa")
        target = np.where(use_p, -np.log(np.where(prs > 0, prs, 1.0)), alt)
        common, fields, point_pos = layout(~is_col, {"target": (target, 0.0), "use_pressure": (use_p, False)})
        point = PointPlan(**common, **fields)
    if is_col.any():
        extra = {
            "ret_pressure": (np.asarray(obs.ret_pressure, np.float64), 1.0e4),
            "averaging_kernel": (np.asarray(obs.averaging_kernel, np.float64), 0.0),
            "prior_profile": (np.asarray(obs.prior_profile, np.float64), 0.0),
            "pressure_weight": (np.asarray(obs.pressure_weight, np.float64), 0.0),
            "prior_value": (np.asarray(obs.prior_value, np.float64), 0.0),
        }
        if np.any(is_col[:, None] & ~(extra["ret_pressure"][0] > 0)):
            raise ValueError("build_operator: column records need retrieval pressures > 0 Pa")
        common, fields, column_pos = layout(is_col, extra)
        column = ColumnPlan(**common, **fields)
    zs = np.zeros(grid.nlat * grid.nlon) if surface_height is None else np.asarray(surface_height, np.float64)
    if zs.size != grid.nlat * grid.nlon:
        raise ValueError(
            f"build_operator: surface_height must be (nlat, nlon) = {(grid.nlat, grid.nlon)}, "
            f"found {np.shape(surface_height)}"
        )
    return ObservationOperator(
        grid=grid,
        point=point,
        column=column,
        point_pos=point_pos,
        column_pos=column_pos,
        surface_height=jnp.asarray(zs.reshape(-1), dtype),
        t0=float(t0),
        dt=float(dt),
        nsteps=nsteps,
        default_temperature=float(default_temperature),
    )


def sample_states(operator: ObservationOperator, states, met, *, t0: float | None = None) -> jax.Array:
    """Apply the operator to a given sequence of states (no transport), e.g. saved model output.

    Args:
        operator: built for ``nsteps`` steps of ``dt``.
        states: :class:`~diffflux.transport.TransportState` whose arrays have a leading axis
            ``nsteps + 1`` (the states at ``t0 + n dt``, ``n = 0..nsteps``).
        met: met source (evaluated at step middles, as in the run).
        t0: start time [s] (default ``operator.t0``).

    Returns:
        ``(nobs,)`` model equivalents [mol mol-1].
    """
    t0 = operator.t0 if t0 is None else t0
    dt = operator.dt

    def body(_, n):
        before = jax.tree_util.tree_map(lambda a: lax.dynamic_index_in_dim(a, n, 0, keepdims=False), states)
        after = jax.tree_util.tree_map(
            lambda a: lax.dynamic_index_in_dim(a, n + 1, 0, keepdims=False), states
        )
        t = t0 + (n + 0.5) * dt
        return None, operator(n, before, after, met.fields(t))

    _, outs = lax.scan(body, None, jnp.arange(operator.nsteps))
    return operator.collect(outs)
