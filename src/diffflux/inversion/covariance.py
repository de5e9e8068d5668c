"""Matrix-free prior covariance operators ``B`` with a square root, as equinox Modules.

The inversion never forms ``B``: the solver works on the whitened control vector ``z`` with
``x = x_b + B^1/2 z`` (:meth:`AbstractCovariance.sqrt_matvec`), so only ``S = B^1/2`` (any factor with
``S S^T = B``) and its transpose must be applied. Every operator here provides

* ``matvec(x)``        ``B x``, ``x`` of shape :attr:`shape`
* ``sqrt_matvec(z)``   ``S z``, ``z`` of shape :attr:`z_shape` (may differ from ``shape``: the land/ocean
  blend has two whitened fields per cell)
* ``sqrt_T_matvec(x)`` ``S^T x`` (shape ``z_shape``); ``S S^T = B`` holds to round-off
* ``inv_matvec(x)``    ``B^-1 x`` where it is cheap (raises :class:`NotImplementedError` otherwise)
* ``diag()``           the variances ``diag(B)`` (shape ``shape``) without forming ``B``
* ``to_dense()``       ``(size, size)`` dense matrix in C order of ``shape`` (small cases / tests only)

Units: a correlation operator is dimensionless; :class:`Scaled` / :class:`Diagonal` carry the standard
deviation ``sigma`` in the unit of the control block (e.g. mol m-2 s-1 for additive flux corrections,
1 for log scaling factors), so ``B`` is in that unit squared.

Operators
---------
* :class:`Diagonal` ``B = diag(sigma^2)``.
* :class:`DenseCovariance` any small SPD matrix (eigen-decomposed; region bases, parameters).
* :class:`TemporalCorrelation` ``C_ij = k(|t_i - t_j| / tau)`` (exponential or Gaussian), eigen-decomposed.
* :class:`SpatialCorrelation` isotropic correlation between cell centres of a
  :class:`~diffflux.grid.LatLonGrid`,
  exponential in great-circle distance or Gaussian in chordal distance, exact (no separability
  approximation) and matrix-free: on a regular lat-lon grid the distance between cells ``(j, i)`` and
  ``(j', i')`` depends only on ``(j, j', (i - i') mod nlon)``, so ``C`` is block-circulant in longitude.
  A real FFT in longitude block-diagonalises it into ``nlon // 2 + 1`` symmetric ``(nlat, nlat)`` matrices
  ``C_k`` (one per zonal wavenumber ``k``), each eigen-decomposed once. Apply cost ``O(nlat nlon log nlon +
  nlat^2 nlon)``, memory ``O(nlat^2 nlon / 2)`` (1 degree: 181 x 180 x 180 floats = 47 MB in float64),
  never ``O((nlat nlon)^2)``. The symmetric square root ``S = F^-1 U_k Lambda_k^1/2 U_k^T F`` is exact.
* :class:`LandOceanCorrelation` separate land and ocean correlation lengths by a blend of two
  :class:`SpatialCorrelation` kernels, ``C = W_l C_l W_l + W_o C_o W_o`` with ``W_l = diag(sqrt(f))``,
  ``W_o = diag(sqrt(1 - f))`` and ``f`` the land fraction. It is a correlation matrix (unit diagonal),
  symmetric and positive definite (each term is PSD and ``W_l x = W_o x = 0`` only for ``x = 0``); pure
  land and pure ocean cells are uncorrelated, coastal cells share both. The square root is
  ``S = [W_l S_l, W_o S_o]`` acting on ``z`` of shape ``(2, nlat, nlon)``.
* :class:`Kronecker` ``A (x) C`` (e.g. temporal (x) spatial) with ``S = S_A (x) S_C``.
* :class:`Scaled` ``diag(sigma) C diag(sigma)`` with ``S = diag(sigma) S_C``.
* :class:`BlockDiagonal` over named blocks (dict pytrees, the control vector layout).

Positive definiteness: the exponential kernel in great-circle distance is positive definite on the sphere
for every length; the Gaussian kernel is *not* in great-circle distance (Gneiting 2013, Bernoulli 19),
hence it is evaluated in chordal distance ``2 R sin(d / 2R)`` (which equals ``d`` to ``O(d^3/R^2)``).
Eigenvalues below ``eig_floor * max`` (round-off) are raised to that floor, so ``B`` is SPD with a
condition number bounded by ``1 / eig_floor``; user matrices that are clearly indefinite raise.

References: Gneiting (2013) Strictly and non-strictly positive definite functions on spheres, Bernoulli 19;
Chevallier et al. (2005) JGR 110 D24309 (exponential correlations, separate land/ocean lengths);
Gaspari & Cohn (1999) QJRMS 125 for correlation modelling on the sphere.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.grid import LatLonGrid

__all__ = [
    "AbstractCovariance",
    "BlockDiagonal",
    "DenseCovariance",
    "Diagonal",
    "Kronecker",
    "LandOceanCorrelation",
    "Scaled",
    "SpatialCorrelation",
    "TemporalCorrelation",
]

_KINDS = ("exponential", "gaussian")
EIG_FLOOR = 1e-12


def _check_kind(kind: str, who: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"{who}: kind must be one of {_KINDS}, found {kind!r}")


def _kernel(d, length: float, kind: str, xp=np):
    """Correlation at distance ``d``, length ``L`` (same unit): ``exp(-d/L)`` or ``exp(-d^2/2L^2)``."""
    if kind == "exponential":
        return xp.exp(-d / length)
    return xp.exp(-0.5 * (d / length) ** 2)


def _check_shape(x, shape: tuple[int, ...], who: str, what: str = "x"):
    if tuple(jnp.shape(x)) != tuple(shape):
        raise ValueError(f"{who}: expected {what} of shape {tuple(shape)}, found {tuple(jnp.shape(x))}")


def _eigh_spd(matrix: np.ndarray, who: str, eig_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric positive (semi)definite matrix, round-off negatives floored."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{who}: expected a square matrix, found shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{who}: matrix contains NaN or inf")
    asym = np.max(np.abs(m - m.T)) if m.size else 0.0
    scale = np.max(np.abs(m)) if m.size else 1.0
    if asym > 1e-10 * max(scale, 1e-300):
        raise ValueError(
            f"{who}: matrix is not symmetric (max |M - M^T| = {asym:.3e}, max |M| = {scale:.3e})"
        )
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    wmax = float(np.max(w)) if w.size else 1.0
    if wmax <= 0.0:
        raise ValueError(f"{who}: matrix is not positive definite (largest eigenvalue {wmax:.3e} <= 0)")
    if w.min() < -1e-8 * wmax:
        raise ValueError(
            f"{who}: matrix is not positive definite: smallest eigenvalue {w.min():.3e} < 0 "
            f"(largest {wmax:.3e}); expected all eigenvalues > 0"
        )
    return np.maximum(w, eig_floor * wmax), v


class AbstractCovariance(eqx.Module):
    """Symmetric positive definite operator ``B`` with a square root ``S`` (``S S^T = B``), matrix-free."""

    @property
    @abc.abstractmethod
    def shape(self):
        """Shape of ``x`` (physical space)."""

    @property
    def z_shape(self):
        """Shape of the whitened vector ``z`` (defaults to :attr:`shape`)."""
        return self.shape

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def z_size(self) -> int:
        return int(np.prod(self.z_shape))

    @abc.abstractmethod
    def matvec(self, x):
        """``B x``."""

    @abc.abstractmethod
    def sqrt_matvec(self, z):
        """``S z`` with ``S S^T = B``; ``z`` of shape :attr:`z_shape`, result of shape :attr:`shape`."""

    @abc.abstractmethod
    def sqrt_T_matvec(self, x):
        """``S^T x``; ``x`` of shape :attr:`shape`, result of shape :attr:`z_shape`."""

    def inv_matvec(self, x):
        """``B^-1 x`` (only where cheap)."""
        raise NotImplementedError(f"{type(self).__name__}: inv_matvec is not available (not cheap)")

    @abc.abstractmethod
    def diag(self):
        """Variances ``diag(B)``, shape :attr:`shape`."""

    def to_dense(self) -> jax.Array:
        """Dense ``(size, size)`` matrix (C order of :attr:`shape`); small cases only."""
        return _dense_columns(self, "matvec")

    def sqrt_to_dense(self) -> jax.Array:
        """Dense ``(size, z_size)`` square root ``S``; small cases only."""
        return _dense_columns(self, "sqrt_matvec")


@eqx.filter_jit
def _dense_columns(op: AbstractCovariance, method: str) -> jax.Array:
    n_in, shp_in = (op.size, op.shape) if method == "matvec" else (op.z_size, op.z_shape)
    fn = getattr(op, method)
    cols = jax.vmap(lambda e: fn(e.reshape(shp_in)).reshape(-1))(jnp.eye(n_in))
    return cols.T


def _inv_sqrt(op: AbstractCovariance, x):
    fn = getattr(op, "inv_sqrt_matvec", None)
    if fn is None:
        raise NotImplementedError(
            f"{type(op).__name__}: no inverse square root (its whitened shape {op.z_shape} differs from "
            f"{op.shape} or it is not cheap); whiten with sqrt_T_matvec and a solve instead"
        )
    return fn(x)


class Diagonal(AbstractCovariance):
    """``B = diag(sigma^2)``; ``sigma`` [unit of x], any shape, all > 0."""

    sigma: jax.Array

    def __init__(self, sigma):
        s = np.asarray(sigma, dtype=float)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(
                f"Diagonal: sigma must be finite and > 0 everywhere (found min {np.nanmin(s):.3e}, "
                f"{int(np.sum(~np.isfinite(s)))} non-finite)"
            )
        self.sigma = jnp.asarray(s)

    @property
    def shape(self):
        return tuple(self.sigma.shape)

    def matvec(self, x):
        return self.sigma**2 * x

    def sqrt_matvec(self, z):
        return self.sigma * z

    def sqrt_T_matvec(self, x):
        return self.sigma * x

    def inv_matvec(self, x):
        return x / self.sigma**2

    def inv_sqrt_matvec(self, x):
        """``S^-1 x`` (whitening)."""
        return x / self.sigma

    def diag(self):
        return self.sigma**2


class _AbstractEigen(AbstractCovariance):
    """``B = V diag(w) V^T`` on vectors of length n, symmetric square root ``V diag(sqrt w) V^T``."""

    eigvals: eqx.AbstractVar[jax.Array]
    eigvecs: eqx.AbstractVar[jax.Array]

    @property
    def shape(self):
        return (int(self.eigvals.shape[0]),)

    def _apply(self, x, w):
        return self.eigvecs @ (w * (self.eigvecs.T @ x))

    def matvec(self, x):
        return self._apply(x, self.eigvals)

    def sqrt_matvec(self, z):
        return self._apply(z, jnp.sqrt(self.eigvals))

    def sqrt_T_matvec(self, x):
        return self._apply(x, jnp.sqrt(self.eigvals))

    def inv_matvec(self, x):
        return self._apply(x, 1.0 / self.eigvals)

    def inv_sqrt_matvec(self, x):
        """``S^-1 x`` (whitening)."""
        return self._apply(x, 1.0 / jnp.sqrt(self.eigvals))

    def diag(self):
        return jnp.sum(self.eigvecs**2 * self.eigvals[None, :], axis=1)


class DenseCovariance(_AbstractEigen):
    """A small explicit SPD matrix ``(n, n)`` (region bases, parameter blocks), eigen-decomposed once.

    Raises ``ValueError`` for non-square, non-symmetric, non-finite or indefinite input. A singular
    (positive semi-definite, rank-deficient) matrix is accepted with a ``UserWarning`` naming the number of
    null directions: their eigenvalues are raised to ``eig_floor`` times the largest (``B^1/2`` is then
    well defined and whitening finite, but those directions carry essentially no prior variance).
    """

    eigvals: jax.Array
    eigvecs: jax.Array

    def __init__(self, matrix, eig_floor: float = EIG_FLOOR):
        w, v = _eigh_spd(matrix, "DenseCovariance", eig_floor)
        floored = int(np.sum(w <= eig_floor * np.max(w) * (1.0 + 1e-12)))
        if floored and w.size > 1:
            warnings.warn(
                f"DenseCovariance: the matrix is singular ({floored} of {w.size} eigenvalues <= "
                f"{eig_floor:g} x the largest); they are raised to that floor (condition number "
                f"{1.0 / eig_floor:.0e}): the prior allows almost no change along those directions",
                UserWarning,
                stacklevel=2,
            )
        self.eigvals, self.eigvecs = jnp.asarray(w), jnp.asarray(v)


class TemporalCorrelation(_AbstractEigen):
    """Temporal correlation ``C_ij = exp(-|t_i - t_j| / tau)`` (or Gaussian ``exp(-dt^2 / 2 tau^2)``).

    Args:
        times: block times ``(nt,)`` [s] (e.g. month centres).
        timescale: correlation time ``tau`` [s] (> 0); correlation ``e^-1`` at lag ``tau`` (exponential).
        kind: ``"exponential"`` (first-order Markov, SPD for any ``tau``) or ``"gaussian"``.
    """

    eigvals: jax.Array
    eigvecs: jax.Array
    timescale: float = eqx.field(static=True)
    kind: str = eqx.field(static=True)

    def __init__(self, times, timescale: float, kind: str = "exponential", eig_floor: float = EIG_FLOOR):
        _check_kind(kind, "TemporalCorrelation")
        t = np.atleast_1d(np.asarray(times, dtype=float))
        if t.ndim != 1 or t.size == 0:
            raise ValueError(
                f"TemporalCorrelation: times must be a non-empty 1-D array [s], found shape {t.shape}"
            )
        if not timescale > 0:
            raise ValueError(f"TemporalCorrelation: timescale must be > 0 s, found {timescale}")
        c = _kernel(np.abs(t[:, None] - t[None, :]), float(timescale), kind)
        w, v = _eigh_spd(c, "TemporalCorrelation", eig_floor)
        self.eigvals, self.eigvecs = jnp.asarray(w), jnp.asarray(v)
        self.timescale, self.kind = float(timescale), kind


def _zonal_spectra(grid: LatLonGrid, length: float, kind: str) -> np.ndarray:
    """Real spectra ``(nk, nlat, nlat)`` of the block-circulant correlation (``nk = nlon // 2 + 1``)."""
    lat = np.deg2rad(grid.lat)
    dlam = np.arange(grid.nlon) * grid.dlon  # lon(i) - lon(0)
    nk = grid.nlon // 2 + 1
    out = np.empty((nk, grid.nlat, grid.nlat))
    r = grid.radius
    for j in range(grid.nlat):  # one latitude row at a time keeps memory at O(nlat nlon)
        p1, p2 = lat[j], lat[:, None]
        h = np.sin(0.5 * (p2 - p1)) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(0.5 * dlam[None, :]) ** 2
        h = np.clip(h, 0.0, 1.0)
        if kind == "exponential":
            d = 2.0 * r * np.arcsin(np.sqrt(h))  # great-circle distance [m]
        else:
            d = 2.0 * r * np.sqrt(h)  # chordal distance [m] (Gaussian is PD on the sphere only in it)
        c = _kernel(d, length, kind)  # (nlat, nlon): corr between (j, 0) and (j', i)
        out[:, j, :] = np.fft.rfft(c, axis=-1).real.T  # even in lon lag -> real spectrum
    return 0.5 * (out + np.transpose(out, (0, 2, 1)))


def _eigh_reflection_symmetric(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``eigh`` of symmetric ``(nk, nlat, nlat)`` matrices that commute with the equatorial flip.

    The regular grid is symmetric about the equator (``C[j, j'] = C[J j, J j']`` with ``J j = nlat - 1 - j``),
    so for even ``nlat`` ``C = [[A, B], [J B^T J, J A J]]`` splits into the even and odd subspaces
    ``A + B J`` and ``A - B J`` (``nlat/2`` each, eigenvectors ``[u; +-J u] / sqrt 2``): 4x fewer flops.
    """
    nk, n, _ = spec.shape
    if n % 2:
        return np.linalg.eigh(spec)
    h = n // 2
    a, b = spec[:, :h, :h], spec[:, :h, h:]
    bj = b[:, :, ::-1]
    even, odd = 0.5 * (a + bj), 0.5 * (a - bj)
    even = 0.5 * (even + np.transpose(even, (0, 2, 1)))
    odd = 0.5 * (odd + np.transpose(odd, (0, 2, 1)))
    we, ue = np.linalg.eigh(2.0 * even)
    wo, uo = np.linalg.eigh(2.0 * odd)
    r = 1.0 / math.sqrt(2.0)
    ve = np.concatenate([ue, ue[:, ::-1, :]], axis=1) * r
    vo = np.concatenate([uo, -uo[:, ::-1, :]], axis=1) * r
    return np.concatenate([we, wo], axis=1), np.concatenate([ve, vo], axis=2)


class SpatialCorrelation(AbstractCovariance):
    """Isotropic spatial correlation of cell-centre values on a :class:`LatLonGrid`, shape ``(nlat, nlon)``.

    ``C[(j,i),(j',i')] = exp(-d / L)`` with ``d`` the great-circle distance [m] between cell centres
    (``kind="exponential"``), or ``exp(-c^2 / 2L^2)`` with ``c`` the chordal distance (``kind="gaussian"``).
    Exact and matrix-free through the zonal-FFT block diagonalisation described in the module docstring;
    the square root is symmetric (``sqrt_T_matvec == sqrt_matvec``), the inverse is cheap.

    Args:
        grid: the horizontal grid (only ``nlat``, ``nlon``, ``radius`` are used).
        length: correlation length ``L`` [m] (> 0), e.g. 500e3 over land, 1000e3 over ocean.
        kind: ``"exponential"`` or ``"gaussian"``.
        eig_floor: relative floor of the eigenvalues (round-off regularisation), default 1e-12.
    """

    eigvals: jax.Array  # (nk, nlat) eigenvalues of the zonal spectra
    eigvecs: jax.Array  # (nk, nlat, nlat)
    nlat: int = eqx.field(static=True)
    nlon: int = eqx.field(static=True)
    length: float = eqx.field(static=True)
    kind: str = eqx.field(static=True)

    def __init__(
        self, grid: LatLonGrid, length: float, kind: str = "exponential", eig_floor: float = EIG_FLOOR
    ):
        _check_kind(kind, "SpatialCorrelation")
        if not isinstance(grid, LatLonGrid):
            raise TypeError(f"SpatialCorrelation: expected a LatLonGrid, found {type(grid).__name__}")
        if not (length > 0 and math.isfinite(length)):
            raise ValueError(f"SpatialCorrelation: length must be a finite distance > 0 [m], found {length}")
        spec = _zonal_spectra(grid, float(length), kind)
        w, v = _eigh_reflection_symmetric(spec)
        wmax = float(w.max())
        if w.min() < -1e-6 * wmax:  # pragma: no cover - guarded by the PD kernels above
            raise ValueError(
                f"SpatialCorrelation: kernel not positive definite (min eigenvalue {w.min():.3e})"
            )
        self.eigvals = jnp.asarray(np.maximum(w, eig_floor * wmax))
        self.eigvecs = jnp.asarray(v)
        self.nlat, self.nlon, self.length, self.kind = grid.nlat, grid.nlon, float(length), kind

    @property
    def shape(self):
        return (self.nlat, self.nlon)

    def _apply(self, x, power: float):
        _check_shape(x, self.shape, "SpatialCorrelation")
        xh = jnp.fft.rfft(x, axis=-1)  # (nlat, nk)
        w = self.eigvals**power  # (nk, nlat)
        coef = jnp.einsum("kjl,jk->lk", self.eigvecs, xh)  # U_k^T x_k  (real U)
        yh = jnp.einsum("kjl,lk->jk", self.eigvecs, w.T * coef)
        return jnp.fft.irfft(yh, n=self.nlon, axis=-1).astype(jnp.result_type(x, self.eigvals))

    def matvec(self, x):
        return self._apply(x, 1.0)

    def sqrt_matvec(self, z):
        return self._apply(z, 0.5)

    def sqrt_T_matvec(self, x):
        return self._apply(x, 0.5)

    def inv_matvec(self, x):
        return self._apply(x, -1.0)

    def inv_sqrt_matvec(self, x):
        """``S^-1 x`` (whitening)."""
        return self._apply(x, -0.5)

    def diag(self):
        # diag(C) at row j = (1/nlon) sum_k m_k (U_k w_k U_k^T)_jj, m_k the rfft multiplicity.
        d = jnp.einsum("kjl,kl->kj", self.eigvecs**2, self.eigvals)
        nk = self.eigvals.shape[0]
        mult = np.full(nk, 2.0)
        mult[0] = 1.0
        if self.nlon % 2 == 0:
            mult[-1] = 1.0
        row = jnp.asarray(mult) @ d / self.nlon
        return jnp.broadcast_to(row[:, None], self.shape)


class LandOceanCorrelation(AbstractCovariance):
    """Land/ocean blend ``C = W_l C_l W_l + W_o C_o W_o`` (see module docstring), shape ``(nlat, nlon)``.

    ``z`` has shape ``(2, nlat, nlon)``: index 0 drives the land kernel, 1 the ocean kernel.

    Args:
        grid: horizontal grid.
        length_land, length_ocean: correlation lengths [m] (e.g. 500e3 and 1000e3).
        land_fraction: ``(nlat, nlon)`` in [0, 1]; default :func:`diffflux.geography.land_fraction`.
        kind: ``"exponential"`` or ``"gaussian"``.
    """

    land: SpatialCorrelation
    ocean: SpatialCorrelation
    w_land: jax.Array  # sqrt(f), (nlat, nlon)
    w_ocean: jax.Array  # sqrt(1 - f)

    def __init__(
        self,
        grid: LatLonGrid,
        length_land: float,
        length_ocean: float,
        land_fraction=None,
        kind: str = "exponential",
        eig_floor: float = EIG_FLOOR,
    ):
        if land_fraction is None:
            from diffflux.geography import land_fraction as _lf

            land_fraction = _lf(grid)
        f = np.asarray(land_fraction, dtype=float)
        if f.shape != (grid.nlat, grid.nlon):
            raise ValueError(
                "LandOceanCorrelation: land_fraction must have shape (nlat, nlon) = "
                f"{(grid.nlat, grid.nlon)}, "
                f"found {f.shape}"
            )
        if not np.all(np.isfinite(f)) or f.min() < -1e-12 or f.max() > 1 + 1e-12:
            raise ValueError(
                f"LandOceanCorrelation: land_fraction must be finite and in [0, 1], found range "
                f"[{np.nanmin(f):.3g}, {np.nanmax(f):.3g}]"
            )
        f = np.clip(f, 0.0, 1.0)
        self.land = SpatialCorrelation(grid, length_land, kind, eig_floor)
        self.ocean = SpatialCorrelation(grid, length_ocean, kind, eig_floor)
        self.w_land, self.w_ocean = jnp.asarray(np.sqrt(f)), jnp.asarray(np.sqrt(1.0 - f))

    @property
    def shape(self):
        return self.land.shape

    @property
    def z_shape(self):
        return (2, *self.land.shape)

    def matvec(self, x):
        return self.w_land * self.land.matvec(self.w_land * x) + self.w_ocean * self.ocean.matvec(
            self.w_ocean * x
        )

    def sqrt_matvec(self, z):
        _check_shape(z, self.z_shape, "LandOceanCorrelation.sqrt_matvec", "z")
        return self.w_land * self.land.sqrt_matvec(z[0]) + self.w_ocean * self.ocean.sqrt_matvec(z[1])

    def sqrt_T_matvec(self, x):
        return jnp.stack(
            [self.land.sqrt_T_matvec(self.w_land * x), self.ocean.sqrt_T_matvec(self.w_ocean * x)]
        )

    def diag(self):
        return self.w_land**2 * self.land.diag() + self.w_ocean**2 * self.ocean.diag()


class Scaled(AbstractCovariance):
    """``B = diag(sigma) C diag(sigma)``: standard deviations ``sigma`` [unit of x], correlation ``C``."""

    sigma: jax.Array
    corr: AbstractCovariance

    def __init__(self, sigma, corr: AbstractCovariance):
        s = np.asarray(sigma, dtype=float)
        if s.ndim == 0:
            s = np.full(corr.shape, float(s))
        if s.shape != tuple(corr.shape):
            raise ValueError(
                f"Scaled: sigma must have the operator shape {tuple(corr.shape)}, found {s.shape}"
            )
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"Scaled: sigma must be finite and > 0 everywhere, found min {np.nanmin(s):.3e}")
        self.sigma, self.corr = jnp.asarray(s), corr

    @property
    def shape(self):
        return self.corr.shape

    @property
    def z_shape(self):
        return self.corr.z_shape

    def matvec(self, x):
        return self.sigma * self.corr.matvec(self.sigma * x)

    def sqrt_matvec(self, z):
        return self.sigma * self.corr.sqrt_matvec(z)

    def sqrt_T_matvec(self, x):
        return self.corr.sqrt_T_matvec(self.sigma * x)

    def inv_matvec(self, x):
        return self.corr.inv_matvec(x / self.sigma) / self.sigma

    def inv_sqrt_matvec(self, x):
        """``S^-1 x = S_C^-1 (x / sigma)`` (whitening; needs a square, invertible ``S_C``)."""
        return _inv_sqrt(self.corr, x / self.sigma)

    def diag(self):
        return self.sigma**2 * self.corr.diag()


class Kronecker(AbstractCovariance):
    """``B = A (x) C`` on ``x`` of shape ``A.shape + C.shape`` (e.g. ``(nt,) + (nlat, nlon)``).

    ``S = S_A (x) S_C`` so ``S S^T = (S_A S_A^T) (x) (S_C S_C^T)``; ``z`` has shape ``A.z_shape + C.z_shape``.
    Cost: one application of ``C`` per row of ``A`` plus one of ``A`` per element of ``C`` (vmapped).
    Nest for more factors: ``Kronecker(A, Kronecker(C, D))``.
    """

    a: AbstractCovariance
    c: AbstractCovariance

    @property
    def shape(self):
        return (*self.a.shape, *self.c.shape)

    @property
    def z_shape(self):
        return (*self.a.z_shape, *self.c.z_shape)

    def _apply(self, x, fa, fc, in_a, in_c, out_a, out_c):
        x2 = x.reshape(int(np.prod(in_a)), *in_c)
        y = jax.vmap(fc)(x2)  # (prod in_a, *out_c)
        y = y.reshape(*in_a, -1)
        y = jax.vmap(fa, in_axes=-1, out_axes=-1)(y)  # (*out_a, prod out_c)
        return y.reshape(*out_a, *out_c)

    def matvec(self, x):
        _check_shape(x, self.shape, "Kronecker.matvec")
        a, c = self.a, self.c
        return self._apply(x, a.matvec, c.matvec, a.shape, c.shape, a.shape, c.shape)

    def sqrt_matvec(self, z):
        _check_shape(z, self.z_shape, "Kronecker.sqrt_matvec", "z")
        a, c = self.a, self.c
        return self._apply(z, a.sqrt_matvec, c.sqrt_matvec, a.z_shape, c.z_shape, a.shape, c.shape)

    def sqrt_T_matvec(self, x):
        _check_shape(x, self.shape, "Kronecker.sqrt_T_matvec")
        a, c = self.a, self.c
        return self._apply(x, a.sqrt_T_matvec, c.sqrt_T_matvec, a.shape, c.shape, a.z_shape, c.z_shape)

    def inv_matvec(self, x):
        a, c = self.a, self.c
        return self._apply(x, a.inv_matvec, c.inv_matvec, a.shape, c.shape, a.shape, c.shape)

    def inv_sqrt_matvec(self, x):
        """``S^-1 x = (S_A^-1 (x) S_C^-1) x`` (whitening; square invertible factors only)."""
        a, c = self.a, self.c

        def fa(v):
            return _inv_sqrt(a, v)

        def fc(v):
            return _inv_sqrt(c, v)

        return self._apply(x, fa, fc, a.shape, c.shape, a.shape, c.shape)

    def diag(self):
        return (self.a.diag().reshape(-1)[:, None] * self.c.diag().reshape(-1)[None, :]).reshape(self.shape)


class BlockDiagonal(AbstractCovariance):
    """Block-diagonal covariance over named blocks; ``x`` and ``z`` are dicts ``{name: array}``.

    Blocks are uncorrelated. ``to_dense`` orders blocks as :attr:`names` (insertion order) and each block
    in C order; :meth:`flatten` / :meth:`unflatten` convert dicts to that flat layout.
    """

    blocks: dict[str, AbstractCovariance]
    names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, blocks: Mapping[str, AbstractCovariance]):
        if not blocks:
            raise ValueError("BlockDiagonal: expected at least one named block, found none")
        for k, v in blocks.items():
            if not isinstance(v, AbstractCovariance):
                raise TypeError(
                    f"BlockDiagonal: block {k!r} must be a covariance operator, found {type(v).__name__}"
                )
        self.blocks = dict(blocks)
        self.names = tuple(blocks)

    @property
    def shape(self):
        return {k: self.blocks[k].shape for k in self.names}

    @property
    def z_shape(self):
        return {k: self.blocks[k].z_shape for k in self.names}

    @property
    def size(self) -> int:
        return sum(self.blocks[k].size for k in self.names)

    @property
    def z_size(self) -> int:
        return sum(self.blocks[k].z_size for k in self.names)

    def _map(self, method: str, x):
        missing = set(self.names) ^ set(x)
        if missing:
            raise ValueError(f"BlockDiagonal: expected blocks {sorted(self.names)}, found {sorted(x)}")
        return {k: getattr(self.blocks[k], method)(x[k]) for k in self.names}

    def matvec(self, x):
        return self._map("matvec", x)

    def sqrt_matvec(self, z):
        return self._map("sqrt_matvec", z)

    def sqrt_T_matvec(self, x):
        return self._map("sqrt_T_matvec", x)

    def inv_matvec(self, x):
        return self._map("inv_matvec", x)

    def inv_sqrt_matvec(self, x):
        """``S^-1 x`` per block (whitening)."""
        if set(self.names) ^ set(x):
            raise ValueError(f"BlockDiagonal: expected blocks {sorted(self.names)}, found {sorted(x)}")
        return {k: _inv_sqrt(self.blocks[k], x[k]) for k in self.names}

    def diag(self):
        return {k: self.blocks[k].diag() for k in self.names}

    def flatten(self, x, z: bool = False) -> jax.Array:
        """Dict -> flat vector in block order (``z=True`` for whitened shapes)."""
        return jnp.concatenate([jnp.reshape(x[k], -1) for k in self.names])

    def unflatten(self, v, z: bool = False) -> dict:
        """Flat vector -> dict (``z=True``: whitened shapes)."""
        out, i = {}, 0
        for k in self.names:
            shp = self.blocks[k].z_shape if z else self.blocks[k].shape
            n = int(np.prod(shp))
            out[k] = v[i : i + n].reshape(shp)
            i += n
        return out

    def to_dense(self) -> jax.Array:
        return jax.scipy.linalg.block_diag(*[self.blocks[k].to_dense() for k in self.names])

    def sqrt_to_dense(self) -> jax.Array:
        return jax.scipy.linalg.block_diag(*[self.blocks[k].sqrt_to_dense() for k in self.names])
