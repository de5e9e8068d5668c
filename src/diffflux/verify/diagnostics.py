"""Error norms, convergence orders, cell averages and the Lauritzen et al. (2012) diagnostics.

All fields are 2-D ``(nlat, nlon)`` arrays on a :class:`~diffflux.grid.LatLonGrid` (cell averages
of a mixing ratio, dimensionless or in the unit of the test field); ``area`` is the cell-area array
``(nlat, nlon)`` [m2] (``grid.area``). Everything here is plain NumPy in float64: the diagnostics
run once, after the JAX integration.

References:

* Williamson, D. L., Drake, J. B., Hack, J. J., Jakob, R. and Swarztrauber, P. N. (1992),
  "A standard test set for numerical approximations to the shallow water equations in spherical
  geometry", J. Comput. Phys. 102, 211-224: normalised l1, l2, linf errors.
* Lauritzen, P. H., Skamarock, W. C., Prather, M. J. and Taylor, M. A. (2012), "A standard test case
  suite for two-dimensional linear transport on the sphere", Geosci. Model Dev. 5, 887-901,
  filament preservation diagnostic ``l_f`` and the mixing diagnostics
  ``l_r`` (real mixing), ``l_u`` (range-preserving unmixing) and ``l_o`` (overshooting) of
  Lauritzen and Thuburn (2012, Q. J. R. Meteorol. Soc. 138, 906-918).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from diffflux.grid import LatLonGrid


def _check_same_shape(name: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: arrays must have the same shape; found {a.shape} and {b.shape}")


def error_norms(q, q_exact, area) -> dict[str, float]:
    """Normalised global error norms of Williamson et al. (1992).

    ``l1 = I(|q - qT|) / I(|qT|)``, ``l2 = sqrt(I((q - qT)^2) / I(qT^2))`` and
    ``linf = max|q - qT| / max|qT|`` with the area-weighted global integral ``I(f) = sum(A f)``.

    Args:
        q: numerical solution ``(nlat, nlon)`` (any unit).
        q_exact: exact solution ``qT`` on the same cells (same unit).
        area: cell areas ``(nlat, nlon)`` [m2] (or any array broadcastable to the fields).

    Returns:
        ``{"l1", "l2", "linf"}`` as floats (dimensionless).
    """
    q = np.asarray(q, dtype=np.float64)
    qt = np.asarray(q_exact, dtype=np.float64)
    _check_same_shape("error_norms", q, qt)
    a = np.broadcast_to(np.asarray(area, dtype=np.float64), q.shape)
    err = q - qt
    den1 = np.sum(a * np.abs(qt))
    den2 = np.sum(a * qt * qt)
    deninf = np.max(np.abs(qt))
    if den1 == 0 or deninf == 0:
        raise ValueError("error_norms: the exact solution q_exact is identically zero")
    return {
        "l1": float(np.sum(a * np.abs(err)) / den1),
        "l2": float(np.sqrt(np.sum(a * err * err) / den2)),
        "linf": float(np.max(np.abs(err)) / deninf),
    }


def convergence_order(spacings: Sequence[float], errors: Sequence[float]) -> float:
    """Measured order of convergence: least-squares slope of ``log(error)`` on ``log(spacing)``.

    Args:
        spacings: grid spacings (any unit, e.g. degrees), at least two distinct values.
        errors: the error norm at each spacing (positive).

    Returns:
        The slope ``p`` of ``log e = p log h + c`` (``p = 2`` for a second-order scheme).
    """
    h = np.asarray(spacings, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if h.shape != e.shape or h.size < 2:
        raise ValueError(
            f"convergence_order: need >= 2 spacings and as many errors; found {h.size} and {e.size}"
        )
    if np.any(e <= 0) or np.any(h <= 0):
        raise ValueError(f"convergence_order: spacings and errors must be positive; found {h}, {e}")
    slope, _ = np.polyfit(np.log(h), np.log(e), 1)
    return float(slope)


def pairwise_orders(spacings: Sequence[float], errors: Sequence[float]) -> list[float]:
    """Orders between successive resolutions, ``log(e_i / e_{i+1}) / log(h_i / h_{i+1})``."""
    h = np.asarray(spacings, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    return [float(np.log(e[i] / e[i + 1]) / np.log(h[i] / h[i + 1])) for i in range(h.size - 1)]


def cell_average(fn: Callable, grid: LatLonGrid, nq: int = 4) -> np.ndarray:
    """Exact-area cell averages of a function of position, by Gauss-Legendre quadrature.

    The area element of the sphere is ``a^2 dlon d(sin lat)``, so an ``nq x nq`` Gauss-Legendre rule
    in longitude and in ``mu = sin(lat)`` integrates over each cell with uniform weight; the result
    is the finite-volume cell average that the transport carries (rather than a point value at the
    centre).

    Args:
        fn: vectorised ``fn(lat, lon) -> values`` with ``lat``, ``lon`` in degrees (NumPy
            broadcasting).
        grid: the grid whose cells are averaged over.
        nq: quadrature points per direction (``nq = 1``: the value at the equal-area midpoint).

    Returns:
        ``(nlat, nlon)`` float64 cell averages.
    """
    x, w = np.polynomial.legendre.leggauss(nq)
    w = 0.5 * w
    mu_e = np.sin(np.deg2rad(grid.lat_edges))
    mu_e[0], mu_e[-1] = -1.0, 1.0
    lon_e = grid.lon_edges
    out = np.zeros((grid.nlat, grid.nlon))
    for a, wa in zip(x, w):
        mu = 0.5 * (mu_e[:-1] + mu_e[1:]) + 0.5 * a * (mu_e[1:] - mu_e[:-1])
        lat = np.rad2deg(np.arcsin(np.clip(mu, -1.0, 1.0)))[:, None]
        for b, wb in zip(x, w):
            lon = (0.5 * (lon_e[:-1] + lon_e[1:]) + 0.5 * b * (lon_e[1:] - lon_e[:-1]))[None, :]
            out += wa * wb * np.asarray(fn(lat, lon), dtype=np.float64)
    return out


def filament_diagnostic(q, q0, area, taus: Sequence[float]) -> dict[float, float]:
    """Filament preservation diagnostic ``l_f`` of Lauritzen et al. (2012), in percent.

    ``l_f(tau, t) = 100 * A(tau, t) / A(tau, 0)`` with ``A(tau, t)`` the area where ``q(t) >= tau``.
    An exact (non-diffusive) solution of the non-divergent problem keeps ``l_f = 100`` for all
    ``tau``; diffusion lowers it at large ``tau`` and raises it at small ``tau``. Thresholds whose
    initial area is empty are skipped. A relative tolerance of ``1e-12`` is applied to ``tau`` so
    that a background value exactly equal to ``tau`` is counted despite round-off.

    Args:
        q: field at time ``t`` ``(nlat, nlon)``.
        q0: initial field.
        area: cell areas [m2].
        taus: thresholds (same unit as ``q``).

    Returns:
        ``{tau: l_f}`` [percent].
    """
    q = np.asarray(q, dtype=np.float64)
    q0 = np.asarray(q0, dtype=np.float64)
    _check_same_shape("filament_diagnostic", q, q0)
    a = np.broadcast_to(np.asarray(area, dtype=np.float64), q.shape)
    out: dict[float, float] = {}
    for tau in taus:
        thr = tau * (1.0 - 1e-12)
        a0 = np.sum(a[q0 >= thr])
        if a0 <= 0:
            continue
        out[float(tau)] = float(100.0 * np.sum(a[q >= thr]) / a0)
    return out


def correlated_cosine_bells(q1):
    """The functional relation of the correlated tracer, ``psi(q1) = -0.8 q1^2 + 0.9``.

    Lauritzen et al. (2012): a non-linear, concave relation between the cosine bells ``q1``
    (range ``[0.1, 1]``) and the second tracer.
    """
    return -0.8 * np.asarray(q1) ** 2 + 0.9


def mixing_diagnostics(
    chi,
    xi,
    area,
    chi_range: tuple[float, float] = (0.1, 1.0),
    a: float = -0.8,
    b: float = 0.9,
) -> dict[str, float]:
    """Mixing diagnostics ``l_r``, ``l_u``, ``l_o`` (Lauritzen and Thuburn 2012; Lauritzen et al.
    2012).

    The initial scatter of two tracers lies on the concave curve ``xi = psi(chi) = a chi^2 + b``
    with ``chi`` in ``chi_range``. For each cell the normalised distance to that curve segment,
    ``d_k = min_c sqrt(((chi_k - c) / dchi)^2 + ((xi_k - psi(c)) / dxi)^2)`` with ``dchi``, ``dxi``
    the ranges of the two tracers, is attributed to

    * real mixing ``l_r``: the point lies inside the convex hull of the curve (between the curve and
      the chord joining its end points) - what physical mixing produces;
    * range-preserving unmixing ``l_u``: outside the hull but inside the box spanned by the ranges;
    * overshooting ``l_o``: outside that box,

    each normalised as ``l = sum(A_k d_k) / sum(A)``. The minimisation over ``c`` is the real root
    of the cubic ``d/dc [...] = 0`` restricted to the segment (and its end points).

    Args:
        chi, xi: the two tracers ``(nlat, nlon)``.
        area: cell areas [m2].
        chi_range: ``(chi_min, chi_max)`` of the relation.
        a, b: coefficients of ``psi``; ``a < 0`` (concave).

    Returns:
        ``{"l_r", "l_u", "l_o"}`` (dimensionless).
    """
    chi = np.asarray(chi, dtype=np.float64).ravel()
    xi = np.asarray(xi, dtype=np.float64).ravel()
    if chi.shape != xi.shape:
        raise ValueError(f"mixing_diagnostics: chi and xi differ in shape: {chi.shape}, {xi.shape}")
    if a >= 0:
        raise ValueError(f"mixing_diagnostics: the relation must be concave (a < 0), found a={a}")
    w = np.broadcast_to(np.asarray(area, dtype=np.float64), np.shape(area)).ravel()
    if w.size != chi.size:
        raise ValueError(f"mixing_diagnostics: area has {w.size} cells, fields have {chi.size}")
    cmin, cmax = chi_range

    def psi(c):
        return a * c * c + b

    xmin, xmax = sorted((psi(cmin), psi(cmax)))
    dchi, dxi = cmax - cmin, xmax - xmin

    # stationary points of the squared distance: 2a^2/dxi^2 c^3 + (1/dchi^2 - 2a(xi-b)/dxi^2) c
    # - chi/dchi^2 = 0; solve all cubics at once through their companion matrices.
    c3 = 2.0 * a * a / dxi**2
    c1 = 1.0 / dchi**2 - 2.0 * a * (xi - b) / dxi**2
    c0 = -chi / dchi**2
    n = chi.size
    comp = np.zeros((n, 3, 3))
    comp[:, 0, 1] = -c1 / c3
    comp[:, 0, 2] = -c0 / c3
    comp[:, 1, 0] = 1.0
    comp[:, 2, 1] = 1.0
    roots = np.linalg.eigvals(comp)  # (n, 3)
    real = np.abs(roots.imag) <= 1e-9 * (1.0 + np.abs(roots.real))
    cand = np.where(real, np.clip(roots.real, cmin, cmax), cmin)
    cand = np.concatenate([cand, np.full((n, 1), cmin), np.full((n, 1), cmax)], axis=1)
    dist = np.sqrt(((chi[:, None] - cand) / dchi) ** 2 + ((xi[:, None] - psi(cand)) / dxi) ** 2)
    d = dist.min(axis=1)

    chord = psi(cmin) + (psi(cmax) - psi(cmin)) * (chi - cmin) / dchi
    in_range = (chi >= cmin) & (chi <= cmax)
    hull = in_range & (xi >= np.minimum(chord, psi(chi))) & (xi <= np.maximum(chord, psi(chi)))
    box = in_range & (xi >= xmin) & (xi <= xmax)
    total = np.sum(w)
    return {
        "l_r": float(np.sum(w * d * hull) / total),
        "l_u": float(np.sum(w * d * (box & ~hull)) / total),
        "l_o": float(np.sum(w * d * ~box) / total),
    }
