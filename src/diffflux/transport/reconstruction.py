"""Sub-grid reconstructions of the mixing ratio for flux-form finite-volume advection.

Every reconstruction describes the profile inside a cell, in the normalised coordinate
``xi in [0, 1]`` (0 = upstream/left face, 1 = right face), by the parabola of Colella & Woodward
(1984, eq. 1.4-1.5):

    chi(xi) = aL + xi * (da + a6 * (1 - xi)),   da = aR - aL,   a6 = 6 * (a - (aL + aR) / 2)

so piecewise-linear schemes are the special case ``a6 = 0``. The reconstruction works along one array
axis; the input carries ``halo`` ghost cells on both sides of that axis, the output covers the interior.

Implemented:

* :class:`PPM` - monotone piecewise-parabolic method (Colella & Woodward 1984) with the fourth-order
  edge interpolation built from van Leer-limited slopes (CW84 eq. 1.7-1.8) and the CW84 monotonicity
  constraint (eq. 1.10). This is the reconstruction of the Lin & Rood (1996) flux-form semi-Lagrangian
  scheme used by GEOS-Chem and FV3.
* :class:`PiecewiseLinear` - van Leer (1977) piecewise-linear with the monotonised-central (MC) limiter,
  or unlimited central slopes (``limiter=None``; a linear operator on the tracer field, so its adjoint
  is exact for linear inversions).

Cells are treated as uniform in the reconstruction coordinate (index space), as in Lin & Rood (1996).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jax import lax


def shift(x, offset: int, n: int, axis: int, halo: int):
    """Slice ``n`` cells starting ``offset`` cells from the first interior cell along ``axis``."""
    return lax.slice_in_dim(x, halo + offset, halo + offset + n, axis=axis)


class Reconstruction(eqx.Module):
    """Abstract reconstruction: ``edges(chi_ext, n, axis)`` -> ``(aL, aR, a6)`` for ``n`` cells.

    ``halo`` is the number of ghost cells needed on each side; ``is_linear`` says whether the map from
    mixing ratios to edge values is linear (then the whole advection is linear in the tracer).
    """

    halo: eqx.AbstractClassVar[int]

    @property
    @abc.abstractmethod
    def is_linear(self) -> bool:
        """Whether the edge values are a linear function of the mixing ratios."""

    @abc.abstractmethod
    def edges(self, chi_ext, n: int, axis: int):
        """``(aL, aR, a6)`` for ``n`` cells of ``chi_ext`` (which has ``halo`` ghosts before them)."""


def _mc_slope(am, a0, ap):
    """Monotonised-central limited slope (van Leer 1977), times the cell width."""
    dc = 0.5 * (ap - am)
    dl = a0 - am
    dr = ap - a0
    lim = 2.0 * jnp.minimum(jnp.abs(dl), jnp.abs(dr))
    s = jnp.sign(dc) * jnp.minimum(jnp.abs(dc), lim)
    return jnp.where(dl * dr > 0, s, jnp.zeros_like(s))


class PiecewiseLinear(Reconstruction):
    """Piecewise-linear reconstruction (van Leer 1977).

    Args:
        limiter: ``"mc"`` for the monotonised-central limiter (monotone, positivity preserving) or
            ``None`` for unlimited centred slopes (second order, linear, not monotone).
    """

    limiter: str | None = eqx.field(static=True, default="mc")
    halo: ClassVar[int] = 1

    def __check_init__(self):
        if self.limiter not in ("mc", None):
            raise ValueError(f"PiecewiseLinear: limiter must be 'mc' or None, found {self.limiter!r}")

    @property
    def is_linear(self) -> bool:
        return self.limiter is None

    def edges(self, chi_ext, n: int, axis: int):
        am = shift(chi_ext, -1, n, axis, self.halo)
        a0 = shift(chi_ext, 0, n, axis, self.halo)
        ap = shift(chi_ext, 1, n, axis, self.halo)
        s = 0.5 * (ap - am) if self.limiter is None else _mc_slope(am, a0, ap)
        return a0 - 0.5 * s, a0 + 0.5 * s, jnp.zeros_like(a0)


class PPM(Reconstruction):
    """Monotone piecewise-parabolic method (Colella & Woodward 1984, section 1).

    Edge values ``a_{i+1/2} = (a_i + a_{i+1}) / 2 - (da_{i+1} - da_i) / 6`` with van Leer-limited slopes
    ``da`` (CW84 eq. 1.7-1.8, fourth order for smooth data), then the CW84 monotonicity constraint
    (eq. 1.10): flat in local extrema, edge pulled in where the parabola would overshoot.

    Args:
        monotone: apply the CW84 limiter (default). ``False`` gives the unlimited fourth-order-edge PPM
            (with unlimited slopes; a linear operator).
    """

    monotone: bool = eqx.field(static=True, default=True)
    halo: ClassVar[int] = 2

    @property
    def is_linear(self) -> bool:
        return not self.monotone

    def edges(self, chi_ext, n: int, axis: int):
        h = self.halo
        # slopes on cells -1 .. n (n + 2 cells), needing values -2 .. n + 1
        am = shift(chi_ext, -2, n + 2, axis, h)
        a0 = shift(chi_ext, -1, n + 2, axis, h)
        ap = shift(chi_ext, 0, n + 2, axis, h)
        if self.monotone:
            da = _mc_slope(am, a0, ap)
        else:
            da = 0.5 * (ap - am)
        # edge value at the right face of cells -1 .. n: a_{i+1/2}
        a_c = lax.slice_in_dim(a0, 0, n + 1, axis=axis)  # cells -1 .. n-1
        a_n = lax.slice_in_dim(a0, 1, n + 2, axis=axis)  # cells 0 .. n
        d_c = lax.slice_in_dim(da, 0, n + 1, axis=axis)
        d_n = lax.slice_in_dim(da, 1, n + 2, axis=axis)
        edge = 0.5 * (a_c + a_n) - (d_n - d_c) / 6.0  # faces -1/2 .. n-1/2 (n + 1 faces)
        aL = lax.slice_in_dim(edge, 0, n, axis=axis)
        aR = lax.slice_in_dim(edge, 1, n + 1, axis=axis)
        a = shift(chi_ext, 0, n, axis, h)
        if self.monotone:
            # CW84 eq. 1.10
            extremum = (aR - a) * (a - aL) <= 0
            aL = jnp.where(extremum, a, aL)
            aR = jnp.where(extremum, a, aR)
            da_ = aR - aL
            a6 = 6.0 * (a - 0.5 * (aL + aR))
            over_l = da_ * a6 > da_ * da_
            over_r = -da_ * da_ > da_ * a6
            aL = jnp.where(over_l, 3.0 * a - 2.0 * aR, aL)
            aR = jnp.where(over_r, 3.0 * a - 2.0 * aL, aR)
        a6 = 6.0 * (a - 0.5 * (aL + aR))
        return aL, aR, a6


def mean_right(aL, aR, a6, c):
    """Mean of the reconstruction over the right fraction ``c`` of the cell, ``xi in [1 - c, 1]``.

    CW84 eq. 1.12: ``aR - c/2 (da - (1 - 2c/3) a6)``.
    """
    return aR - 0.5 * c * ((aR - aL) - (1.0 - 2.0 * c / 3.0) * a6)


def mean_left(aL, aR, a6, c):
    """Mean of the reconstruction over the left fraction ``c`` of the cell, ``xi in [0, c]``."""
    return aL + 0.5 * c * ((aR - aL) + (1.0 - 2.0 * c / 3.0) * a6)
