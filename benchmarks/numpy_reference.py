"""A straightforward NumPy implementation of the diffflux transport step (reference and baseline).

Written from the equations, not from the JAX code, so that agreement between the two is an
independent check of both. It implements exactly the same scheme as
``diffflux.transport.Transport`` with the default strategies:

* Strang-split advection ``X(dt/2) Y(dt/2) Z(dt) Y(dt/2) X(dt/2)`` (Strang 1968) in flux form, where
  every one-dimensional sweep moves the air mass ``m`` [kg] with the same face air-mass fluxes as
  the tracer (Easter 1993, Mon. Wea. Rev. 121, 297-304), so mass is conserved and a uniform mixing
  ratio stays uniform;
* monotone piecewise-parabolic reconstruction of the mixing ratio (Colella & Woodward 1984,
  J. Comput. Phys. 54, 174-201, eq. 1.5-1.10) with van Leer / monotonised-central limited slopes in
  the fourth-order edge interpolation, and the CW84 integrals over the swept fraction (eq. 1.12);
* zonal sweep: flux-form semi-Lagrangian (Lin & Rood 1996, Mon. Wea. Rev. 124, 2046-2070) on the
  periodic latitude circle for any Courant number. Here it is computed by *walking upstream* cell by
  cell and subtracting whole-cell air masses from the face flux until the remainder fits into one
  cell (the JAX code instead searches the cumulative air mass), then adding the parabola integral
  over the swept fraction of that departure cell;
* meridional sweep: Eulerian flux form with ghost rows continued across the poles (the row at the
  same latitude on the opposite meridian, ``lon + 180``);
* vertical sweep: Eulerian flux form with the vertical air-mass fluxes from continuity on hybrid
  levels (level ``k`` keeps the hybrid share ``(b_k - b_{k+1})`` of the column mass change);
* implicit (backward Euler) vertical eddy diffusion with the exchange coefficient
  ``E = A rho^2 g Kz / dp_mid`` [kg s-1] at interior interfaces, solved per column by the Thomas
  algorithm; surface emissions [mol m-2 s-1] enter level 0 before the solve.

Array layout (as in diffflux): tracer ``q (ntr, nlev, nlat, nlon)`` [mol], air ``m (nlev, nlat,
nlon)`` [kg], zonal face fluxes ``mfx (nlev, nlat, nlon)`` through the west face of every cell
(periodic), meridional ``mfy (nlev, nlat + 1, nlon)`` through the south face of every row (zero at
the poles), vertical ``fz (nlev + 1, nlat, nlon)`` upward through the bottom interface of every
level; level 0 is at the surface. All arithmetic runs in the dtype of the inputs (float32 or
float64).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from diffflux.constants import GRAVITY, M_AIR, R_DRY

# ------------------------------------------------------------------------------------------------
# PPM reconstruction along the last axis
# ------------------------------------------------------------------------------------------------


def ppm_parabolas(a: np.ndarray, monotone: bool = True):
    """PPM edge values and curvature for the cells of ``a`` that have two neighbours on each side.

    Args:
        a: ``(..., N)`` cell means (mixing ratio) including ghost cells along the last axis.
        monotone: apply the van Leer slope limiter and the CW84 monotonicity constraint.

    Returns:
        ``(aL, aR, a6)``, each ``(..., N - 4)``, for cells ``2 .. N - 3`` of ``a``; the parabola
        over the cell is ``a(xi) = aL + xi (aR - aL + a6 (1 - xi))`` with ``xi in [0, 1]``
        west/south to east/north (CW84 eq. 1.4-1.5).
    """
    # slope of cells 1 .. N-2 (CW84 eq. 1.7 / 1.8)
    am, a0, ap = a[..., :-2], a[..., 1:-1], a[..., 2:]
    central = 0.5 * (ap - am)
    if monotone:
        left, right = a0 - am, ap - a0
        bound = 2.0 * np.minimum(np.abs(left), np.abs(right))
        slope = np.where(left * right > 0.0, np.sign(central) * np.minimum(np.abs(central), bound), 0.0)
        slope = slope.astype(a.dtype, copy=False)
    else:
        slope = central
    # interface value between cells i and i+1 for i = 1 .. N-3 (CW84 eq. 1.6 with uniform cells)
    edge = 0.5 * (a[..., 1:-2] + a[..., 2:-1]) - (slope[..., 1:] - slope[..., :-1]) / 6.0
    aL = edge[..., :-1]  # west face of cells 2 .. N-3
    aR = edge[..., 1:]  # east face of cells 2 .. N-3
    c = a[..., 2:-2]
    if monotone:
        # CW84 eq. 1.10: flatten local extrema, pull back the edge where the parabola overshoots
        flat = (aR - c) * (c - aL) <= 0.0
        aL = np.where(flat, c, aL)
        aR = np.where(flat, c, aR)
        diff = aR - aL
        curv = 6.0 * (c - 0.5 * (aL + aR))
        fix_left = diff * curv > diff * diff
        fix_right = diff * curv < -(diff * diff)
        aL = np.where(fix_left, 3.0 * c - 2.0 * aR, aL)
        aR = np.where(fix_right, 3.0 * c - 2.0 * aL, aR)
    a6 = 6.0 * (c - 0.5 * (aL + aR))
    return aL, aR, a6


def _mean_upper(aL, aR, a6, x):
    """Mean of the parabola over ``xi in [1 - x, 1]`` (the part leaving through the east face)."""
    # integral of aL + xi (da + a6 (1 - xi)) over [1 - x, 1], divided by x (CW84 eq. 1.12)
    return aR - 0.5 * x * ((aR - aL) - (1.0 - 2.0 * x / 3.0) * a6)


def _mean_lower(aL, aR, a6, x):
    """Mean of the parabola over ``xi in [0, x]`` (the part that leaves through the west face)."""
    return aL + 0.5 * x * ((aR - aL) + (1.0 - 2.0 * x / 3.0) * a6)


# ------------------------------------------------------------------------------------------------
# one-dimensional sweeps
# ------------------------------------------------------------------------------------------------


def _eulerian_fluxes(chi_pad, m_pad, F, monotone):
    """Tracer fluxes [mol] through the ``n + 1`` faces of a bounded direction (last axis).

    ``chi_pad (..., n + 6)`` carries three ghost cells per side, ``m_pad (..., n + 2)`` one, and
    ``F (..., n + 1)`` is the air mass crossing every face during the sweep [kg] (positive towards
    increasing index). Face ``f`` lies between cells ``f - 1`` and ``f``.
    """
    aL, aR, a6 = ppm_parabolas(chi_pad, monotone)  # cells -1 .. n
    pos = F > 0.0
    m_up = np.where(pos, m_pad[..., :-1], m_pad[..., 1:])
    frac = np.clip(np.abs(F) / m_up, 0.0, 1.0)
    from_left = _mean_upper(aL[..., :-1], aR[..., :-1], a6[..., :-1], frac)
    from_right = _mean_lower(aL[..., 1:], aR[..., 1:], a6[..., 1:], frac)
    return F / M_AIR * np.where(pos, from_left, from_right)


def _across_pole(x: np.ndarray, rows: list[int]) -> np.ndarray:
    """Rows of ``x (..., nlat, nlon)`` seen across the nearest pole (shifted by 180 degrees)."""
    nlon = x.shape[-1]
    return np.roll(x[..., rows, :], nlon // 2, axis=-1)


def sweep_meridional(q, m, Fy, monotone=True):
    """Meridional sweep of ``q`` [mol] and ``m`` [kg] with ``Fy (nlev, nlat + 1, nlon)`` [kg]."""
    nlat = m.shape[-2]
    chi = q * M_AIR / m
    chi_pad = np.concatenate(
        [_across_pole(chi, [2, 1, 0]), chi, _across_pole(chi, [nlat - 1, nlat - 2, nlat - 3])],
        axis=-2,
    )
    m_pad = np.concatenate([_across_pole(m, [0]), m, _across_pole(m, [nlat - 1])], axis=-2)
    # move latitude to the last axis for the one-dimensional kernel
    f = _eulerian_fluxes(
        np.swapaxes(chi_pad, -1, -2),
        np.swapaxes(m_pad, -1, -2)[None],
        np.swapaxes(Fy, -1, -2)[None],
        monotone,
    )
    f = np.swapaxes(f, -1, -2)  # (ntr, nlev, nlat + 1, nlon)
    q_new = q + f[..., :-1, :] - f[..., 1:, :]
    m_new = m + Fy[:, :-1, :] - Fy[:, 1:, :]
    return q_new, m_new


def sweep_vertical(q, m, Fz, monotone=True):
    """Vertical sweep: ``Fz (nlev + 1, nlat, nlon)`` [kg] upward, zero at surface and top."""
    chi = q * M_AIR / m
    chi_pad = np.concatenate([chi[:, :1]] * 3 + [chi] + [chi[:, -1:]] * 3, axis=1)
    m_pad = np.concatenate([m[:1], m, m[-1:]], axis=0)
    f = _eulerian_fluxes(
        np.moveaxis(chi_pad, 1, -1),
        np.moveaxis(m_pad, 0, -1)[None],
        np.moveaxis(Fz, 0, -1)[None],
        monotone,
    )
    f = np.moveaxis(f, -1, 1)  # (ntr, nlev + 1, nlat, nlon)
    return q + f[:, :-1] - f[:, 1:], m + Fz[:-1] - Fz[1:]


def sweep_zonal(q, m, Fx, monotone=True):
    """Zonal flux-form semi-Lagrangian sweep on periodic circles, any Courant number.

    For the west face of cell ``i`` with eastward air-mass flux ``F > 0`` the air that crosses it
    comes from cells ``i-1, i-2, ...``: whole cells are taken while the remaining flux exceeds their
    air mass, and the last (departure) cell contributes the east fraction ``r / m`` of its parabola,
    ``r`` being the remainder. ``F < 0`` walks east through cells ``i, i+1, ...`` and takes west
    fractions. The walk is vectorised over all faces that are still active.

    Args:
        q: ``(ntr, nlev, nlat, nlon)`` [mol]; m: ``(nlev, nlat, nlon)`` [kg];
        Fx: ``(nlev, nlat, nlon)`` air mass through the west faces during the sweep [kg].

    Returns:
        ``(q, m)`` after the sweep.
    """
    ntr = q.shape[0]
    n = m.shape[-1]
    chi = q * M_AIR / m
    chi_pad = np.concatenate([chi[..., -2:], chi, chi[..., :2]], axis=-1)
    aL, aR, a6 = ppm_parabolas(chi_pad, monotone)  # (ntr, nlev, nlat, n)

    rows = m.size // n
    m2 = m.reshape(rows, n)
    q2 = q.reshape(ntr, rows, n)
    aL2, aR2, a62 = (v.reshape(ntr, rows, n) for v in (aL, aR, a6))
    F2 = Fx.reshape(rows, n)
    flux = np.zeros_like(q2)  # tracer through every west face [mol]

    row, face = np.nonzero(F2)
    eastward = F2[row, face] > 0.0
    remaining = np.abs(F2[row, face])
    step = 0
    while row.size:
        # cell visited at this step of the walk: i-1-step (eastward flow) or i+step (westward)
        cell = np.where(eastward, face - 1 - step, face + step) % n
        mass = m2[row, cell]
        whole = remaining >= mass
        sign = np.where(eastward, 1.0, -1.0).astype(q.dtype)
        # whole cells: their entire tracer content crosses the face
        w = np.nonzero(whole)[0]
        # (every face appears at most once per walk step, so plain fancy-index updates are exact)
        flux[:, row[w], face[w]] += sign[w] * q2[:, row[w], cell[w]]
        # departure cell: the swept fraction of its parabola
        p = np.nonzero(~whole)[0]
        rp, cp, fp = row[p], cell[p], face[p]
        x = remaining[p] / mass[p]
        coef = (aL2[:, rp, cp], aR2[:, rp, cp], a62[:, rp, cp])
        mean = np.where(eastward[p], _mean_upper(*coef, x), _mean_lower(*coef, x))
        flux[:, rp, fp] += sign[p] * (remaining[p] / M_AIR) * mean
        # continue the walk for faces that took a whole cell
        row, face, eastward = row[w], face[w], eastward[w]
        remaining = remaining[w] - mass[w]
        step += 1
        if step > 64 * n:
            raise RuntimeError("sweep_zonal: the upstream walk did not terminate (non-positive air mass?)")
    flux = flux.reshape(q.shape)
    q_new = q + flux - np.roll(flux, -1, axis=-1)
    m_new = m + Fx - np.roll(Fx, -1, axis=-1)
    return q_new, m_new


def vertical_fluxes(Fx, Fy, b):
    """Upward air mass through the bottom interface of every level from continuity [kg].

    Starting from zero at the surface, ``W_{k+1} = W_k - D_k + (b_k - b_{k+1}) sum_l D_l`` where
    ``D_k`` is the horizontal net outflow of level ``k``: each level keeps its hybrid share of the
    column change. ``W`` at the model top is set to exactly zero (the recursion gives it to
    round-off).
    """
    D = (np.roll(Fx, -1, axis=-1) - Fx) + (Fy[:, 1:] - Fy[:, :-1])
    column = D.sum(axis=0)
    nlev = D.shape[0]
    W = np.zeros((nlev + 1,) + D.shape[1:], dtype=D.dtype)
    for k in range(nlev - 1):
        W[k + 1] = W[k] - D[k] + (b[k] - b[k + 1]) * column
    return W


# ------------------------------------------------------------------------------------------------
# vertical diffusion
# ------------------------------------------------------------------------------------------------


def diffuse_vertical(q, m, kz, temperature, area, p_top, dt, kz_min=0.0):
    """Backward-Euler vertical diffusion of the mixing ratio, no flux at surface and top.

    ``m_k (chi'_k - chi_k) = dt [E_{k+1} (chi'_{k+1} - chi'_k) - E_k (chi'_k - chi'_{k-1})]`` with
    ``E = A rho^2 g (Kz + kz_min) / dp_mid`` [kg s-1], ``rho = p / (R_dry T)`` at the interface,
    interface pressures from the carried air mass (``p = p_top + g sum_{above} m / A``) and
    ``dp_mid`` the pressure difference of the adjacent layer mid-points.

    Args:
        q, m: state [mol], [kg]; kz: ``(nlev + 1, nlat, nlon)`` [m2 s-1]; temperature:
        ``(nlev, nlat, nlon)`` [K]; area: ``(nlat, nlon)`` [m2]; p_top [Pa]; dt [s].
    """
    nlev = m.shape[0]
    dp = m * GRAVITY / area
    p = np.empty((nlev + 1,) + m.shape[1:], dtype=m.dtype)
    p[nlev] = p_top
    for k in range(nlev - 1, -1, -1):
        p[k] = p[k + 1] + dp[k]
    p_mid = 0.5 * (p[:-1] + p[1:])
    rho = p[1:-1] / (R_DRY * 0.5 * (temperature[:-1] + temperature[1:]))
    E = area * rho * rho * GRAVITY * (kz[1:-1] + kz_min) / (p_mid[:-1] - p_mid[1:])
    a = dt * E  # coupling between level k and k+1, k = 0 .. nlev-2
    # per column: -a_{k-1} x_{k-1} + (m_k + a_{k-1} + a_k) x_k - a_k x_{k+1} = m_k chi_k
    zero = np.zeros_like(m[:1])
    a_below = np.concatenate([zero, a], axis=0)  # coupling to the level below (k-1)
    a_above = np.concatenate([a, zero], axis=0)  # coupling to the level above (k+1)
    diag = m + a_below + a_above
    rhs = q * M_AIR  # = m chi
    # Thomas algorithm, forward elimination then back substitution
    cp = np.empty_like(m)
    dp_ = np.empty_like(rhs)
    cp[0] = -a_above[0] / diag[0]
    dp_[:, 0] = rhs[:, 0] / diag[0]
    for k in range(1, nlev):
        den = diag[k] + a_below[k] * cp[k - 1]
        cp[k] = -a_above[k] / den
        dp_[:, k] = (rhs[:, k] + a_below[k] * dp_[:, k - 1]) / den
    chi = np.empty_like(rhs)
    chi[:, nlev - 1] = dp_[:, nlev - 1]
    for k in range(nlev - 2, -1, -1):
        chi[:, k] = dp_[:, k] - cp[k] * chi[:, k + 1]
    return chi * m / M_AIR


# ------------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class NumpyMet:
    """Met fields at one time (NumPy arrays, same placement as :class:`diffflux.met.MetFields`)."""

    mfx: np.ndarray
    mfy: np.ndarray
    kz: np.ndarray | None = None
    temperature: np.ndarray | None = None


@dataclasses.dataclass
class NumpyInterpolatedMet:
    """Met stored at increasing times ``times (nt,)`` [s], linearly interpolated (clamped) in time.

    ``fields`` maps ``mfx``, ``mfy`` and optionally ``kz``, ``temperature`` to ``(nt, ...)`` arrays.
    """

    times: np.ndarray
    fields_stack: dict[str, np.ndarray]

    def fields(self, t: float) -> NumpyMet:
        times = self.times
        if times.size == 1:
            return NumpyMet(**{k: v[0] for k, v in self.fields_stack.items()})
        i = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, times.size - 2))
        w = float(np.clip((t - times[i]) / (times[i + 1] - times[i]), 0.0, 1.0))
        out = {}
        for k, v in self.fields_stack.items():
            out[k] = v[i] + v.dtype.type(w) * (v[i + 1] - v[i])
        return NumpyMet(**out)


@dataclasses.dataclass
class NumpyTransport:
    """The diffflux transport step in NumPy.

    Args:
        b: ``(nlev + 1,)`` hybrid sigma coefficients of the interfaces (interface 0 at the surface).
        area: ``(nlat, nlon)`` cell areas [m2].
        p_top: model-top pressure [Pa].
        monotone: monotone PPM (default, as ``diffflux.transport.PPM()``) or unlimited PPM.
        vertical_diffusion: apply implicit Kz diffusion in :meth:`step` when the met has ``kz``.
        kz_min: background diffusivity [m2 s-1].
    """

    b: np.ndarray
    area: np.ndarray
    p_top: float
    monotone: bool = True
    vertical_diffusion: bool = True
    kz_min: float = 0.0

    @classmethod
    def from_grid(cls, grid, **kwargs) -> NumpyTransport:
        """Build from a :class:`diffflux.grid.LatLonGrid` (only its geometry is used)."""
        return cls(
            b=np.asarray(grid.levels.b),
            area=np.asarray(grid.area),
            p_top=float(grid.levels.p_top),
            **kwargs,
        )

    def advect(self, q, m, mfx, mfy, dt):
        """Advection ``X/2 Y/2 Z Y/2 X/2``, face fluxes [kg s-1] times ``dt`` [s] -> ``(q, m)``."""
        dtype = m.dtype
        fx = (mfx * dt).astype(dtype)
        fy = (mfy * dt).astype(dtype)
        fz = vertical_fluxes(fx, fy, self.b.astype(dtype))
        half_x = dtype.type(0.5) * fx
        half_y = dtype.type(0.5) * fy
        q, m = sweep_zonal(q, m, half_x, self.monotone)
        q, m = sweep_meridional(q, m, half_y, self.monotone)
        if m.shape[0] > 1:
            q, m = sweep_vertical(q, m, fz, self.monotone)
        q, m = sweep_meridional(q, m, half_y, self.monotone)
        q, m = sweep_zonal(q, m, half_x, self.monotone)
        return q, m

    def step(self, q, m, met: NumpyMet, dt, flux=None):
        """Advection, surface flux ``(ntr, nlat, nlon)`` [mol m-2 s-1] into level 0, Kz."""
        dtype = m.dtype
        q, m = self.advect(q, m, met.mfx, met.mfy, dt)
        area = self.area.astype(dtype)
        if flux is not None:
            q = q.copy()
            q[:, 0] += (np.asarray(flux, dtype=dtype) * area) * dtype.type(dt)
        if self.vertical_diffusion and met.kz is not None and m.shape[0] > 1:
            temperature = met.temperature
            if temperature is None:
                temperature = np.full_like(m, 250.0)
            q = diffuse_vertical(
                q,
                m,
                met.kz.astype(dtype),
                temperature.astype(dtype),
                area,
                dtype.type(self.p_top),
                dtype.type(dt),
                self.kz_min,
            )
        return q, m

    def run(self, q, m, met, dt, nsteps, t0=0.0, flux=None):
        """``nsteps`` steps, met ``met.fields(t)`` at the middle of every step -> ``(q, m)``."""
        for n in range(nsteps):
            q, m = self.step(q, m, met.fields(t0 + (n + 0.5) * dt), dt, flux)
        return q, m
