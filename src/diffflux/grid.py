"""Global regular longitude-latitude grid with hybrid sigma-pressure levels.

Placement (TRANSPORT.md): cell centres at ``lon = -180 + (i + 1/2) dlon`` and
``lat = -90 + (j + 1/2) dlat`` in degrees; ``i = 0..nlon-1`` runs eastward, ``j = 0..nlat-1``
northward. Vertical interfaces ``p_{k} = a_k + b_k ps`` for ``k = 0..nlev`` with interface 0 at the
surface (``a_0 = 0, b_0 = 1``) and level ``k`` between interfaces ``k`` (bottom) and ``k + 1`` (top).
Array dims are ``(level, lat, lon)``.

Cell area ``A_j = a^2 dlon (sin lat_{j+1/2} - sin lat_{j-1/2})`` [m2] sums to ``4 pi a^2`` exactly.
Dry-air mass per cell ``m = (p_k - p_{k+1}) A / g`` [kg].

The grid objects are static configuration (plain frozen dataclasses holding NumPy arrays); they are
closed over by jitted functions, never traced.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from diffflux.constants import EARTH_RADIUS, GRAVITY, P_REF


@dataclasses.dataclass(frozen=True, eq=False)
class HybridLevels:
    """Hybrid sigma-pressure interface coefficients.

    Attributes:
        a: ``(nlev + 1,)`` pressure part of the interfaces [Pa]; ``a[0] = 0`` at the surface.
        b: ``(nlev + 1,)`` sigma part [1]; ``b[0] = 1`` at the surface and ``b[-1] = 0`` at the top.
        name: label of the level set.
    """

    a: np.ndarray
    b: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        a = np.asarray(self.a, dtype=np.float64)
        b = np.asarray(self.b, dtype=np.float64)
        if a.ndim != 1 or a.shape != b.shape or a.size < 2:
            raise ValueError(
                f"HybridLevels '{self.name}': a and b must be 1-D of equal length >= 2 "
                f"(nlev + 1 interfaces); found shapes {a.shape} and {b.shape}"
            )
        if abs(b[0] - 1.0) > 1e-12 or abs(a[0]) > 1e-9:
            raise ValueError(
                f"HybridLevels '{self.name}': interface 0 must be the surface (a[0]=0, b[0]=1); "
                f"found a[0]={a[0]}, b[0]={b[0]}"
            )
        if abs(b[-1]) > 1e-12:
            raise ValueError(
                f"HybridLevels '{self.name}': the top interface must be pure pressure (b[-1]=0); "
                f"found b[-1]={b[-1]}"
            )
        # Thickness must be positive for any surface pressure in a physical range.
        for ps in (5.0e4, P_REF, 1.08e5):
            dp = (a[:-1] - a[1:]) + (b[:-1] - b[1:]) * ps
            if np.any(dp <= 0):
                k = int(np.argmax(dp <= 0))
                raise ValueError(
                    f"HybridLevels '{self.name}': level {k} has non-positive thickness "
                    f"{dp[k]:.3g} Pa at surface pressure {ps:.0f} Pa"
                )
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    @property
    def nlev(self) -> int:
        """Number of layers."""
        return self.a.size - 1

    @property
    def p_top(self) -> float:
        """Model-top pressure [Pa]."""
        return float(self.a[-1])

    def interfaces(self, ps):
        """Interface pressures ``(nlev + 1, ...)`` [Pa] for surface pressure ``ps`` [Pa], shape ``(...)``."""
        xp = jnp if not isinstance(ps, (np.ndarray, float, int)) else np
        ps = xp.asarray(ps)
        a = self.a.reshape((-1,) + (1,) * ps.ndim)
        b = self.b.reshape((-1,) + (1,) * ps.ndim)
        return a.astype(ps.dtype) + b.astype(ps.dtype) * ps[None]

    def thickness(self, ps):
        """Layer pressure thickness ``(nlev, ...)`` [Pa], positive."""
        p = self.interfaces(ps)
        return p[:-1] - p[1:]

    def reference_pressures(self, ps: float = P_REF) -> np.ndarray:
        """Layer mid pressures ``(nlev,)`` [Pa] for a reference surface pressure."""
        p = np.asarray(self.interfaces(np.float64(ps)))
        return 0.5 * (p[:-1] + p[1:])


def stretched_hybrid_levels(
    nlev: int, p_top: float, gamma: float, p_transition: float = 1.0e4, name: str | None = None
) -> HybridLevels:
    """Hybrid levels with log-pressure interfaces stretched towards the surface.

    Reference interfaces (for ``ps = P_REF``) satisfy ``ln(P_REF / p_k) = ln(P_REF / p_top) (k/nlev)^gamma``;
    ``gamma > 1`` refines the boundary layer. Interfaces below ``p_transition`` are sigma-pressure hybrids
    ``b_k = (p_k - p_t) / (P_REF - p_t)``, ``a_k = p_k - b_k P_REF``; above it they are pure pressure.
    This is the usual construction of terrain-following-to-isobaric coordinates (Simmons & Burridge 1981).
    """
    k = np.arange(nlev + 1) / nlev
    p = P_REF * np.exp(-np.log(P_REF / p_top) * k**gamma)
    b = np.clip((p - p_transition) / (P_REF - p_transition), 0.0, None)
    a = p - b * P_REF
    a[0], b[0] = 0.0, 1.0
    a[-1], b[-1] = p_top, 0.0
    return HybridLevels(a=a, b=b, name=name or f"L{nlev}")


def standard_levels(name: str | int) -> HybridLevels:
    """One of the standard level sets.

    ``"L10"`` (top 10 hPa), ``"L25"`` (top 1 hPa), ``"L47"`` (top 0.01 hPa), all with their lowest
    layer 0.3-1.2 km thick, or ``"2D"``/``"L1"``: a single sigma layer from the surface to ``p = 0``
    (the two-dimensional mode of the test cases, air mass ``ps A / g``).
    """
    key = str(name).upper()
    if key.isdigit():
        key = f"L{key}"
    if key in ("2D", "L1"):
        return HybridLevels(a=np.array([0.0, 0.0]), b=np.array([1.0, 0.0]), name="2D")
    table = {
        "L10": dict(nlev=10, p_top=1.0e3, gamma=1.5),
        "L25": dict(nlev=25, p_top=1.0e2, gamma=1.4),
        "L47": dict(nlev=47, p_top=1.0, gamma=1.5),
    }
    if key not in table:
        raise ValueError(f"unknown level set {name!r}; expected one of 'L10', 'L25', 'L47', '2D'")
    return stretched_hybrid_levels(name=key, **table[key])


def sigma_levels(nlev: int) -> HybridLevels:
    """Pure sigma levels equally spaced in sigma from the surface to ``p = 0`` (idealised cases)."""
    b = np.linspace(1.0, 0.0, nlev + 1)
    return HybridLevels(a=np.zeros(nlev + 1), b=b, name=f"sigma{nlev}")


@dataclasses.dataclass(frozen=True, eq=False)
class LatLonGrid:
    """Regular global longitude-latitude grid with hybrid levels.

    Args:
        nlon: number of longitudes (must be even so that the across-pole neighbour is a cell).
        nlat: number of latitudes.
        levels: vertical level set (default: the single-layer 2D mode).
        radius: sphere radius [m].
    """

    nlon: int
    nlat: int
    levels: HybridLevels = dataclasses.field(default_factory=lambda: standard_levels("2D"))
    radius: float = EARTH_RADIUS

    def __post_init__(self) -> None:
        for name in ("nlon", "nlat"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 2:
                raise ValueError(f"LatLonGrid: {name} must be an integer >= 2, found {v!r}")
        if self.nlon % 2:
            raise ValueError(
                f"LatLonGrid: nlon must be even (the cell across the pole is used by the advection), "
                f"found nlon={self.nlon}"
            )

    # ---- constructors -------------------------------------------------------------------------
    @classmethod
    def from_resolution(
        cls, dlat: float, dlon: float, levels: HybridLevels | str | int = "2D"
    ) -> LatLonGrid:
        """Grid from a resolution in degrees (e.g. ``4, 5`` or ``1, 1``); must tile the globe exactly."""
        nlon, nlat = 360.0 / dlon, 180.0 / dlat
        if abs(nlon - round(nlon)) > 1e-9 or abs(nlat - round(nlat)) > 1e-9:
            raise ValueError(
                f"LatLonGrid.from_resolution: dlon={dlon} and dlat={dlat} degrees must divide 360 and "
                f"180 exactly to cover the globe (found {nlon:.4f} x {nlat:.4f} cells)"
            )
        if not isinstance(levels, HybridLevels):
            levels = standard_levels(levels)
        return cls(nlon=int(round(nlon)), nlat=int(round(nlat)), levels=levels)

    # ---- horizontal geometry --------------------------------------------------------------------
    @property
    def nlev(self) -> int:
        return self.levels.nlev

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nlev, nlat, nlon)``."""
        return (self.nlev, self.nlat, self.nlon)

    @property
    def dlon(self) -> float:
        """Longitude spacing [rad]."""
        return 2.0 * math.pi / self.nlon

    @property
    def dlat(self) -> float:
        """Latitude spacing [rad]."""
        return math.pi / self.nlat

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes ``(nlon,)`` [degrees east], in [-180, 180)."""
        return -180.0 + (np.arange(self.nlon) + 0.5) * 360.0 / self.nlon

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes ``(nlat,)`` [degrees north]."""
        return -90.0 + (np.arange(self.nlat) + 0.5) * 180.0 / self.nlat

    @property
    def lon_edges(self) -> np.ndarray:
        """Cell-face longitudes ``(nlon + 1,)`` [degrees east]; face ``i`` is the west face of cell ``i``."""
        return -180.0 + np.arange(self.nlon + 1) * 360.0 / self.nlon

    @property
    def lat_edges(self) -> np.ndarray:
        """Cell-face latitudes ``(nlat + 1,)`` [degrees north]; face ``j`` is the south face of row ``j``."""
        return -90.0 + np.arange(self.nlat + 1) * 180.0 / self.nlat

    @property
    def area_lat(self) -> np.ndarray:
        """Cell area per latitude row ``(nlat,)`` [m2]."""
        s = np.sin(np.deg2rad(self.lat_edges))
        s[0], s[-1] = -1.0, 1.0
        return self.radius**2 * self.dlon * (s[1:] - s[:-1])

    @property
    def area(self) -> np.ndarray:
        """Cell areas ``(nlat, nlon)`` [m2]; they sum to ``4 pi radius^2``."""
        return np.broadcast_to(self.area_lat[:, None], (self.nlat, self.nlon)).copy()

    @property
    def dx_face_y(self) -> np.ndarray:
        """Length of the south face of each row ``(nlat + 1,)`` [m] (zero at the poles)."""
        c = np.cos(np.deg2rad(self.lat_edges))
        c[0] = c[-1] = 0.0
        return self.radius * self.dlon * c

    @property
    def dy(self) -> float:
        """Meridional cell length [m]."""
        return self.radius * self.dlat

    # ---- vertical ---------------------------------------------------------------------------------
    def pressure_interfaces(self, ps):
        """Interface pressures ``(nlev + 1, nlat, nlon)`` [Pa] for ``ps`` of shape ``(nlat, nlon)`` [Pa]."""
        return self.levels.interfaces(ps)

    def air_mass(self, ps):
        """Dry-air mass per cell ``(nlev, nlat, nlon)`` [kg] for surface pressure ``ps`` [Pa]."""
        dp = self.levels.thickness(ps)
        area = self.area.astype(dp.dtype)
        return dp * area[None] / GRAVITY

    def describe(self) -> str:
        """One-line human-readable description."""
        return (
            f"{180.0 / self.nlat:g} x {360.0 / self.nlon:g} deg ({self.nlat} x {self.nlon}), "
            f"{self.nlev} level(s) '{self.levels.name}'"
        )


def great_circle_distance(lat1, lon1, lat2, lon2, radius: float = EARTH_RADIUS):
    """Great-circle distance [m] between points given in degrees (haversine; broadcasts)."""
    xp = jnp if any(isinstance(v, jnp.ndarray) for v in (lat1, lon1, lat2, lon2)) else np
    p1, p2 = xp.deg2rad(lat1), xp.deg2rad(lat2)
    dl = xp.deg2rad(lon2) - xp.deg2rad(lon1)
    h = xp.sin(0.5 * (p2 - p1)) ** 2 + xp.cos(p1) * xp.cos(p2) * xp.sin(0.5 * dl) ** 2
    return 2.0 * radius * xp.arcsin(xp.sqrt(xp.clip(h, 0.0, 1.0)))


def rotate_to_pole(lat, lon, pole_lat: float, pole_lon: float):
    """Coordinates [degrees] of points relative to a rotated pole at (pole_lat, pole_lon) [degrees].

    Returns ``(lat_r, lon_r)``: latitude/longitude in the rotated frame whose north pole is the given
    point (Williamson et al. 1992, eq. 7-8 style rotation). Broadcasts; NumPy or JAX inputs.
    """
    xp = jnp if any(isinstance(v, jnp.ndarray) for v in (lat, lon)) else np
    phi, lam = xp.deg2rad(lat), xp.deg2rad(lon)
    pp, pl = math.radians(pole_lat), math.radians(pole_lon)
    sin_r = xp.sin(phi) * math.sin(pp) + xp.cos(phi) * math.cos(pp) * xp.cos(lam - pl)
    lat_r = xp.arcsin(xp.clip(sin_r, -1.0, 1.0))
    y = xp.cos(phi) * xp.sin(lam - pl)
    x = xp.cos(phi) * math.sin(pp) * xp.cos(lam - pl) - xp.sin(phi) * math.cos(pp)
    lon_r = xp.arctan2(y, x)
    return xp.rad2deg(lat_r), xp.rad2deg(lon_r)
