"""Mass-flux balancing: make horizontal mass fluxes consistent with the met surface-pressure
tendency.

The transport carries its own air mass ``m`` and changes it only through the face mass fluxes. With
winds from a met archive, the column-integrated divergence of ``u dp / g`` does not match the
archived surface-pressure tendency (interpolation, A->C averaging, analysis increments, moisture),
so the model air mass drifts away from ``grid.air_mass(ps_met(t))`` and with it the mixing ratios
that are compared with observations. As in TM5 (Segers et al. 2002, KNMI report; Bregman et al.
2003, Atmos. Chem. Phys. 3, 447-457) the horizontal fluxes get the smallest correction that closes
the column budget:

    sum_k div(F + dF)_k = -(A / g) dps/dt        in every cell.

**Correction.** ``dF`` is the minimiser of ``sum_faces sum_k dF_k^2 / (w_f dp_k)`` under that
constraint, with the geometric face weights ``w = face length / centre distance``. Its column total
is ``dF_col = W G^T chi`` (a discrete velocity-potential gradient), where ``chi`` solves the Poisson
equation ``G W G^T chi = r`` with ``r`` the column residual. On the regular grid this operator is a
periodic second difference in longitude (weights constant along a row) plus a tridiagonal coupling
in latitude: an FFT in longitude leaves one tridiagonal system per zonal wavenumber, solved
directly.
The column correction is shared among the layers in proportion to their face pressure thickness,
which is what minimises the layer-weighted norm. The wavenumber-0 system is singular (constant
``chi``); it is solved with ``chi = 0`` in the southernmost row, which is exact because the residual
sums to zero globally once the global air mass is constant.

**Global air mass.** The transport conserves the total air mass exactly, while archived surface
pressures vary in global mean (water vapour, analysis). :func:`fix_global_mass` shifts every ``ps``
record by a uniform offset so that its global air mass equals the first record's; offsets are
reported.

**Time.** For records at ``t_n`` the corrected fluxes are constant over each interval ``[t_n,
t_n+1]`` (the mean of the two records' fluxes plus the correction), and ``ps`` is linear in time.
The model air mass after any whole number of steps inside an interval then equals
``grid.air_mass(ps_met(t))`` to round-off, provided the transport's step boundaries fall on the met
times (choose ``dt`` dividing the met interval). :class:`BalancedMet` is the met source that serves
such piecewise-constant fluxes.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY
from diffflux.grid import LatLonGrid
from diffflux.met.fields import MetFields, MetSource, bracket, interpolate_record, record

# -------------------------------------------------------------------------------------------------
# mass fluxes and divergence
# -------------------------------------------------------------------------------------------------


def mass_fluxes_from_winds_np(grid: LatLonGrid, u, v, ps):
    """NumPy float64 twin of :func:`diffflux.met.massflux.mass_fluxes_from_winds` for preprocessing.

    Same discretisation (A-grid winds averaged to C-grid faces, ``F_x = u_f dp_f dy / g``, ``F_y =
    v_f dp_f dx_f / g``), kept in float64 whatever the JAX precision setting, with any leading
    dims: ``u, v (..., nlev, nlat, nlon)`` [m s-1], ``ps (..., nlat, nlon)`` [Pa].

    Returns:
        ``mfx (..., nlev, nlat, nlon)``, ``mfy (..., nlev, nlat + 1, nlon)`` [kg s-1].
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    ps = np.asarray(ps, dtype=np.float64)
    dp = layer_thickness_np(grid, ps)
    u_f = 0.5 * (u + np.roll(u, 1, axis=-1))
    dpx = 0.5 * (dp + np.roll(dp, 1, axis=-1))
    mfx = u_f * dpx * (grid.dy / GRAVITY)
    v_f = 0.5 * (v[..., 1:, :] + v[..., :-1, :])
    dpy = 0.5 * (dp[..., 1:, :] + dp[..., :-1, :])
    inner = v_f * dpy * grid.dx_face_y[1:-1, None] / GRAVITY
    zero = np.zeros(inner.shape[:-2] + (1, inner.shape[-1]))
    mfy = np.concatenate([zero, inner, zero], axis=-2)
    return mfx, mfy


def layer_thickness_np(grid: LatLonGrid, ps):
    """Layer pressure thickness ``(..., nlev, nlat, nlon)`` [Pa] for ``ps (..., nlat, nlon)``
    [Pa]."""
    ps = np.asarray(ps, dtype=np.float64)
    a, b = grid.levels.a, grid.levels.b
    da = (a[:-1] - a[1:]).reshape((-1, 1, 1))
    db = (b[:-1] - b[1:]).reshape((-1, 1, 1))
    return da + db * ps[..., None, :, :]


def column_divergence(mfx, mfy):
    """Net horizontal outflow of each column ``(..., nlat, nlon)`` [kg s-1] (NumPy or JAX).

    ``mfx (..., nlev, nlat, nlon)`` through west faces (periodic), ``mfy (..., nlev, nlat + 1,
    nlon)`` through south faces.
    """
    xp = np if isinstance(mfx, np.ndarray) else jnp
    fx = mfx.sum(axis=-3)
    fy = mfy.sum(axis=-3)
    return (xp.roll(fx, -1, axis=-1) - fx) + (fy[..., 1:, :] - fy[..., :-1, :])


# -------------------------------------------------------------------------------------------------
# the Poisson solver
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class PoissonOperator:
    """The discrete operator ``G W G^T`` on a grid, factorised by wavenumber.

    Attributes:
        wx: ``(nlat,)`` zonal face weights ``dy / dx_j`` [1].
        wy: ``(nlat + 1,)`` meridional face weights ``dx_face / dy`` [1] (zero at the poles).
        lower, diag, upper: ``(nlon // 2 + 1, nlat)`` tridiagonal systems, one per zonal wavenumber
            (wavenumber 0 pinned to ``chi = 0`` in row 0).
    """

    nlon: int
    wx: np.ndarray
    wy: np.ndarray
    lower: np.ndarray
    diag: np.ndarray
    upper: np.ndarray

    @classmethod
    def for_grid(cls, grid: LatLonGrid) -> PoissonOperator:
        return _poisson_operator(grid.nlon, grid.nlat, grid.radius)

    def solve_np(self, r):
        """Potential ``chi (..., nlat, nlon)`` with ``G W G^T chi = r`` (NumPy, float64)."""
        r = np.asarray(r, dtype=np.float64)
        rh = np.fft.rfft(r, axis=-1)  # (..., nlat, nm)
        rh = np.swapaxes(rh, -1, -2)  # (..., nm, nlat)
        rh[..., 0, 0] = 0.0
        x = _thomas_np(self.lower, self.diag, self.upper, rh)
        return np.fft.irfft(np.swapaxes(x, -1, -2), n=self.nlon, axis=-1)

    def solve_jax(self, r):
        """Potential ``chi (nlat, nlon)`` for one residual field ``r (nlat, nlon)`` (JAX,
        traceable)."""
        dtype = r.dtype
        rh = jnp.fft.rfft(r, axis=-1).T  # (nm, nlat)
        rh = rh.at[0, 0].set(0.0)
        b = jnp.stack([rh.real, rh.imag], axis=-1).astype(dtype)  # (nm, nlat, 2)
        x = jax.lax.linalg.tridiagonal_solve(
            jnp.asarray(self.lower, dtype), jnp.asarray(self.diag, dtype),
            jnp.asarray(self.upper, dtype), b,
        )
        xh = (x[..., 0] + 1j * x[..., 1]).T
        return jnp.fft.irfft(xh, n=self.nlon, axis=-1).astype(dtype)

    def column_correction(self, chi):
        """Column flux corrections ``(dFx (..., nlat, nlon), dFy (..., nlat + 1, nlon))`` from
        ``chi``.

        ``dFx`` on west faces: ``wx (chi_{i-1} - chi_i)``; ``dFy`` on south faces:
        ``wy (chi_{j-1} - chi_j)``, zero at the poles.
        """
        xp = np if isinstance(chi, np.ndarray) else jnp
        wx = xp.asarray(self.wx, dtype=chi.dtype)[:, None]
        wy = xp.asarray(self.wy[1:-1], dtype=chi.dtype)[:, None]
        dfx = wx * (xp.roll(chi, 1, axis=-1) - chi)
        inner = wy * (chi[..., :-1, :] - chi[..., 1:, :])
        zero = xp.zeros_like(inner[..., :1, :])
        return dfx, xp.concatenate([zero, inner, zero], axis=-2)


@functools.lru_cache(maxsize=16)
def _poisson_operator(nlon: int, nlat: int, radius: float) -> PoissonOperator:
    g = LatLonGrid(nlon, nlat, radius=radius)
    lat = np.deg2rad(g.lat)
    wx = g.dlat / (np.cos(lat) * g.dlon)
    wy = g.dx_face_y / g.dy
    wy[0] = wy[-1] = 0.0
    m = np.arange(nlon // 2 + 1)
    sigma = 2.0 - 2.0 * np.cos(2.0 * np.pi * m / nlon)
    diag = wx[None, :] * sigma[:, None] + (wy[:-1] + wy[1:])[None, :]
    lower = np.broadcast_to(-wy[:-1], diag.shape).copy()
    upper = np.broadcast_to(-wy[1:], diag.shape).copy()
    # wavenumber 0: pin chi = 0 in row 0 (the system is singular up to a constant)
    diag[0, 0], upper[0, 0] = 1.0, 0.0
    lower[0, 1] = 0.0
    lower[:, 0] = 0.0
    upper[:, -1] = 0.0
    return PoissonOperator(nlon=nlon, wx=wx, wy=wy, lower=lower, diag=diag, upper=upper)


def _thomas_np(lower, diag, upper, rhs):
    """Thomas algorithm along the last axis; coefficients ``(nm, n)``, ``rhs (..., nm, n)``."""
    n = diag.shape[-1]
    c = np.empty(diag.shape)
    d = np.empty(rhs.shape, dtype=rhs.dtype)
    c[:, 0] = upper[:, 0] / diag[:, 0]
    d[..., 0] = rhs[..., 0] / diag[:, 0]
    for j in range(1, n):
        den = diag[:, j] - lower[:, j] * c[:, j - 1]
        c[:, j] = upper[:, j] / den
        d[..., j] = (rhs[..., j] - lower[:, j] * d[..., j - 1]) / den
    x = np.empty_like(d)
    x[..., -1] = d[..., -1]
    for j in range(n - 2, -1, -1):
        x[..., j] = d[..., j] - c[:, j] * x[..., j + 1]
    return x


def face_thickness_fractions(grid: LatLonGrid, ps):
    """Layer shares of the face pressure thickness (NumPy or JAX).

    Returns ``(fx (..., nlev, nlat, nlon), fy (..., nlev, nlat + 1, nlon))``, each summing to one
    over levels; face thicknesses are the means of the adjacent cells, as in the wind -> mass-flux
    step.
    """
    if isinstance(ps, np.ndarray):
        xp, dp = np, layer_thickness_np(grid, ps)
    else:
        xp, dp = jnp, grid.levels.thickness(ps)
    dpx = 0.5 * (dp + xp.roll(dp, 1, axis=-1))
    dpy_in = 0.5 * (dp[..., 1:, :] + dp[..., :-1, :])
    dpy = xp.concatenate([dp[..., :1, :], dpy_in, dp[..., -1:, :]], axis=-2)
    return dpx / dpx.sum(axis=-3, keepdims=True), dpy / dpy.sum(axis=-3, keepdims=True)


def balance_mass_fluxes(grid: LatLonGrid, mfx, mfy, mass_tendency, ps, *, refine: int = 1):
    """Minimal correction of horizontal mass fluxes to a prescribed column mass tendency (NumPy).

    Args:
        grid: model grid.
        mfx: ``(..., nlev, nlat, nlon)`` zonal face fluxes [kg s-1].
        mfy: ``(..., nlev, nlat + 1, nlon)`` meridional face fluxes [kg s-1].
        mass_tendency: ``(..., nlat, nlon)`` required column air-mass tendency ``(A/g) dps/dt``
            [kg s-1]; its global sum must vanish (see :func:`fix_global_mass`).
        ps: ``(..., nlat, nlon)`` surface pressure [Pa] used to share the correction among layers.
        refine: extra solves on the remaining residual (iterative refinement).

    Returns:
        ``(mfx, mfy)`` corrected, with ``column_divergence == -mass_tendency`` to round-off.
    """
    op = PoissonOperator.for_grid(grid)
    mfx = np.array(mfx, dtype=np.float64)
    mfy = np.array(mfy, dtype=np.float64)
    target = -np.asarray(mass_tendency, dtype=np.float64)
    total = np.abs(target).sum(axis=(-2, -1))
    scale = np.maximum(total, np.abs(column_divergence(mfx, mfy)).sum(axis=(-2, -1)))
    imbalance = np.abs(target.sum(axis=(-2, -1)))
    if np.any(imbalance > 1e-9 * np.maximum(scale, 1e-300)):
        raise ValueError(
            "balance_mass_fluxes: the prescribed column mass tendency does not sum to zero over "
            "the globe (relative imbalance "
            f"{float(np.max(imbalance / np.maximum(scale, 1e-300))):.3g}); "
            "apply fix_global_mass to the surface pressures first"
        )
    fx_frac, fy_frac = face_thickness_fractions(grid, np.asarray(ps, dtype=np.float64))
    for _ in range(1 + refine):
        r = target - column_divergence(mfx, mfy)
        chi = op.solve_np(r)
        dfx, dfy = op.column_correction(chi)
        mfx = mfx + fx_frac * dfx[..., None, :, :]
        mfy = mfy + fy_frac * dfy[..., None, :, :]
    return mfx, mfy


def balance_mass_fluxes_jax(grid: LatLonGrid, mfx, mfy, mass_tendency, ps):
    """JAX (traceable, differentiable) version of :func:`balance_mass_fluxes` for one time.

    ``mfx (nlev, nlat, nlon)``, ``mfy (nlev, nlat + 1, nlon)``, ``mass_tendency (nlat, nlon)``, ``ps
    (nlat, nlon)``. The global mean of the tendency is removed first (the transport conserves the
    global air mass), so the result satisfies the constraint for the mean-free tendency.
    """
    op = PoissonOperator.for_grid(grid)
    area = jnp.asarray(grid.area, dtype=mfx.dtype)
    tend = mass_tendency - area * (jnp.sum(mass_tendency) / jnp.sum(area))
    r = -tend - column_divergence(mfx, mfy)
    chi = op.solve_jax(r)
    dfx, dfy = op.column_correction(chi)
    fx_frac, fy_frac = face_thickness_fractions(grid, ps.astype(mfx.dtype))
    return mfx + fx_frac * dfx[None], mfy + fy_frac * dfy[None]


def fix_global_mass(grid: LatLonGrid, ps, reference: int = 0):
    """Shift each ``ps`` record uniformly so that its global air mass equals record ``reference``'s.

    Args:
        grid: model grid.
        ps: ``(nt, nlat, nlon)`` surface pressure [Pa].

    Returns:
        ``(ps_fixed (nt, nlat, nlon), offsets (nt,))`` [Pa], ``ps_fixed = ps + offsets[:, None,
        None]``.
    """
    ps = np.asarray(ps, dtype=np.float64)
    area = grid.area
    mean = (ps * area).sum(axis=(-2, -1)) / area.sum()
    offsets = mean[reference] - mean
    return ps + offsets[:, None, None], offsets


# -------------------------------------------------------------------------------------------------
# the met source with interval fluxes
# -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BalanceReport:
    """What balancing did (all maxima over records/intervals).

    Attributes:
        ps_offset_max: largest uniform ``ps`` shift of :func:`fix_global_mass` [Pa].
        correction_max: largest ``|dF|`` of a column flux correction relative to the largest column
            flux of that interval [1].
        residual_before: largest ``|column divergence + tendency|`` before balancing, relative to
            the largest column tendency or divergence [1].
        residual_after: the same after balancing [1].
    """

    ps_offset_max: float
    correction_max: float
    residual_before: float
    residual_after: float


class BalancedMet(MetSource):
    """Met records with linearly interpolated scalars and piecewise-constant (balanced) mass fluxes.

    Attributes:
        times: ``(nt,)`` strictly increasing record times [s since the run reference time].
        stack: :class:`MetFields` whose ``ps``, ``temperature``, ``kz``, ``conv_mflux``, ``kh`` have
            a leading record axis ``nt`` and are interpolated linearly in time, while
            ``mfx``/``mfy`` have a leading *interval* axis ``max(nt - 1, 1)``: interval ``n`` holds
            the fluxes valid on ``[times[n], times[n + 1])``, balanced so that the column mass
            changes exactly like ``ps``. Outside the record both are clamped (the first/last record
            or interval).
    """

    times: jax.Array
    stack: MetFields

    def check_steps(self, *, dt: float, nsteps: int, t0: float = 0.0) -> None:
        """Raise unless a run of ``nsteps`` steps of ``dt`` [s] from ``t0`` fits this met exactly.

        The balanced fluxes keep the air mass on the met ``ps`` only if every met time inside the
        run is a step boundary and the run stays within the record (call outside jit).
        """
        times = np.asarray(self.times, dtype=np.float64)
        t_end = t0 + nsteps * dt
        if times.size > 1 and (t0 < times[0] - 1e-6 or t_end > times[-1] + 1e-6):
            raise ValueError(
                f"BalancedMet: the run [{t0:g}, {t_end:g}] s leaves the met record "
                f"[{times[0]:g}, {times[-1]:g}] s; outside it the fluxes are clamped and the air "
                "mass no longer follows ps"
            )
        inside = times[(times > t0) & (times < t_end)]
        k = (inside - t0) / dt
        off = np.abs(k - np.round(k)) * dt
        if np.any(off > 1e-6 * max(dt, 1.0)):
            bad = inside[int(np.argmax(off))]
            raise ValueError(
                f"BalancedMet: met time {bad:g} s is not a step boundary of dt={dt:g} s from "
                f"t0={t0:g} s; choose dt dividing the met interval and start on a met time"
            )

    def fields(self, t) -> MetFields:
        if self.times.shape[0] == 1:
            return jax.tree_util.tree_map(lambda a: a[0], self.stack)
        i, w = bracket(self.times, t)

        def interp(a):
            return None if a is None else interpolate_record(a, i, w)

        def pick(a):
            return record(a, i)

        s = self.stack
        return MetFields(
            ps=interp(s.ps),
            mfx=pick(s.mfx),
            mfy=pick(s.mfy),
            temperature=interp(s.temperature),
            kz=interp(s.kz),
            conv_mflux=interp(s.conv_mflux),
            kh=interp(s.kh),
        )


def balanced_interval_fluxes(grid: LatLonGrid, times, ps, mfx, mfy, *, where: str = "met"):
    """Global-mass fix, interval-mean fluxes and balancing for a record stack (NumPy float64).

    Args:
        grid: model grid.
        times: ``(nt,)`` record times [s], strictly increasing.
        ps: ``(nt, nlat, nlon)`` [Pa].
        mfx, mfy: ``(nt, nlev, nlat, nlon)``, ``(nt, nlev, nlat + 1, nlon)`` record fluxes [kg s-1].
        where: source description for warnings.

    Returns:
        ``(ps_fixed (nt, ...), mfx_int (ni, ...), mfy_int (ni, ...), report)`` with ``ni = max(nt -
        1, 1)``; a single record gives one interval with zero column divergence.
    """
    times = np.asarray(times, dtype=np.float64)
    ps_fixed, offsets = fix_global_mass(grid, ps)
    area_g = grid.area / GRAVITY
    if times.size == 1:
        fx, fy = mfx[:1], mfy[:1]
        tend = np.zeros_like(ps_fixed[:1])
        ps_face = ps_fixed[:1]
    else:
        fx = 0.5 * (mfx[1:] + mfx[:-1])
        fy = 0.5 * (mfy[1:] + mfy[:-1])
        dt = np.diff(times)[:, None, None]
        tend = area_g * (ps_fixed[1:] - ps_fixed[:-1]) / dt
        ps_face = 0.5 * (ps_fixed[1:] + ps_fixed[:-1])
    div0 = column_divergence(fx, fy)
    ref = np.maximum(np.abs(tend).max(axis=(-2, -1)), np.abs(div0).max(axis=(-2, -1)))
    ref = np.maximum(ref, 1e-300)
    before = float(np.max(np.abs(div0 + tend).max(axis=(-2, -1)) / ref))
    bfx, bfy = balance_mass_fluxes(grid, fx, fy, tend, ps_face)
    after = float(np.max(np.abs(column_divergence(bfx, bfy) + tend).max(axis=(-2, -1)) / ref))
    colx = np.abs(fx.sum(axis=-3)).max(axis=(-2, -1))
    coly = np.abs(fy.sum(axis=-3)).max(axis=(-2, -1))
    corr = np.maximum(np.abs((bfx - fx).sum(axis=-3)).max(axis=(-2, -1)),
                      np.abs((bfy - fy).sum(axis=-3)).max(axis=(-2, -1)))
    correction = float(np.max(corr / np.maximum(np.maximum(colx, coly), 1e-300)))
    report = BalanceReport(
        ps_offset_max=float(np.abs(offsets).max()),
        correction_max=correction,
        residual_before=before,
        residual_after=after,
    )
    if report.ps_offset_max > 200.0:
        warnings.warn(
            f"{where}: the global-mean surface pressure varies by up to "
            f"{report.ps_offset_max:.1f} Pa "
            "between records; ps was shifted uniformly to keep the global air mass constant "
            "(is ps in Pa and a consistent field?)",
            stacklevel=2,
        )
    return ps_fixed, bfx, bfy, report


def balanced_met(grid: LatLonGrid, times, ps, mfx, mfy, *, dtype=None, where: str = "met",
                 **extra) -> tuple[BalancedMet, BalanceReport]:
    """Build a :class:`BalancedMet` from record arrays (NumPy) on the model grid.

    ``extra`` holds the record-valued optional fields ``temperature``, ``kz``, ``conv_mflux``,
    ``kh`` (each ``(nt, ...)`` or None).
    """
    ps_fixed, bfx, bfy, report = balanced_interval_fluxes(grid, times, ps, mfx, mfy, where=where)
    dtype = dtype or jnp.result_type(float)

    def arr(a):
        return None if a is None else jnp.asarray(a, dtype=dtype)

    stack = MetFields(
        ps=arr(ps_fixed), mfx=arr(bfx), mfy=arr(bfy),
        **{k: arr(v) for k, v in extra.items()},
    )
    return BalancedMet(times=jnp.asarray(times, dtype=dtype), stack=stack), report

