"""Reference vertical profiles: standard-atmosphere temperature, layer heights, boundary-layer Kz.

All functions accept NumPy or JAX arrays (they use the array module of their input), so the same
code serves file preprocessing (NumPy, float64) and the met functions evaluated inside the transport
scan (JAX, traced).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY, R_DRY

# U.S. Standard Atmosphere 1976 (NOAA/NASA/USAF, Table 4): base pressure [Pa], base temperature [K]
# and lapse rate dT/dH [K m-1] of its layers in geopotential height, from the surface to 84.852 km.
_USSA_P = (101325.0, 22632.06, 5474.889, 868.0187, 110.9063, 66.93887, 3.956420, 0.3733836)
_USSA_T = (288.15, 216.65, 216.65, 228.65, 270.65, 270.65, 214.65, 186.946)
_USSA_L = (-6.5e-3, 0.0, 1.0e-3, 2.8e-3, 0.0, -2.8e-3, -2.0e-3, 0.0)
_USSA_R = 8.31432 / 28.9644e-3  # the standard's own gas constant for air [J kg-1 K-1]
_USSA_G0 = 9.80665


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, float, int, np.floating)) for a in arrays) else jnp


def standard_atmosphere_temperature(p):
    """Temperature [K] of the U.S. Standard Atmosphere 1976 at pressure ``p`` [Pa] (any shape).

    Within a layer of constant lapse rate ``L`` the hydrostatic relation gives ``T = T_b (p /
    p_b)^(-L R / g0)``; isothermal layers keep ``T_b``. Pressures above 1013.25 hPa use the lowest
    layer's formula, pressures below 0.37 Pa the top temperature 186.9 K.
    """
    xp = _xp(p)
    p = xp.asarray(p)
    p_safe = xp.maximum(p, _USSA_P[-1])
    temp = xp.full_like(p_safe, _USSA_T[-1])
    # overwrite from the top layer down: layer i covers (p_{i+1}, p_i], the lowest one also p > p_0
    for i in range(len(_USSA_L) - 2, -1, -1):
        pb, tb, lapse = _USSA_P[i], _USSA_T[i], _USSA_L[i]
        if lapse:
            layer = tb * (p_safe / pb) ** (-lapse * _USSA_R / _USSA_G0)
        else:
            layer = xp.full_like(p_safe, tb)
        temp = xp.where(p_safe > _USSA_P[i + 1], layer, temp)
    return temp


def interface_heights(p_int, temperature):
    """Heights above the surface of the interior level interfaces [m] (hypsometric equation).

    ``z_{k+1} = z_k + (R_d T_k / g) ln(p_k / p_{k+1})`` with ``z_0 = 0`` at the surface.

    Args:
        p_int: ``(nlev + 1, ...)`` interface pressures [Pa], surface first (the top may be 0).
        temperature: ``(nlev, ...)`` layer temperatures [K].

    Returns:
        ``(nlev + 1, ...)`` heights [m]; the top interface (possibly at ``p = 0``) gets the height
        of the interface below it plus one scale height of the top layer, so that it stays finite.
    """
    xp = _xp(p_int, temperature)
    p_int = xp.asarray(p_int)
    nlev = temperature.shape[0]
    if nlev == 1:
        dz = (R_DRY / GRAVITY) * temperature
        return xp.concatenate([xp.zeros_like(p_int[:1]), dz], axis=0)
    ratio = p_int[:-2] / p_int[1:-1]
    dz = (R_DRY / GRAVITY) * temperature[:-1] * xp.log(ratio)
    z_inner = xp.cumsum(dz, axis=0)
    z_top = z_inner[-1:] + (R_DRY / GRAVITY) * temperature[-1:]
    return xp.concatenate([xp.zeros_like(p_int[:1]), z_inner, z_top], axis=0)


@dataclasses.dataclass(frozen=True)
class BoundaryLayerProfile:
    """Vertical eddy diffusivity from the boundary-layer height.

    ``Kz(z) = kappa w_s z (1 - z / h)^2 + kz_free`` for ``0 < z < h`` and ``kz_free`` above, the
    cubic profile of Troen & Mahrt (1986) and Holtslag & Boville (1993, J. Climate 6, 1825-1842).
    Surface fluxes and friction velocity are not read from met files, so the turbulent velocity
    scale ``w_s`` is a fixed parameter (default 1 m s-1, which gives a maximum Kz of ~0.06 w_s h,
    i.e. ~60 m2 s-1 for a 1 km deep mixed layer).

    Attributes:
        velocity_scale: ``w_s`` [m s-1].
        kz_free: background diffusivity above the boundary layer [m2 s-1].
        kappa: von Karman constant [1].
    """

    velocity_scale: float = 1.0
    kz_free: float = 0.1
    kappa: float = 0.4

    def __call__(self, z, blh):
        """Kz [m2 s-1] at heights ``z (nlev + 1, ...)`` [m] for boundary-layer height ``blh (...)``
        [m]."""
        xp = _xp(z, blh)
        h = xp.maximum(xp.asarray(blh)[None], 1.0)
        inside = (z > 0) & (z < h)
        zz = xp.where(inside, z, 0.0)
        k = self.kappa * self.velocity_scale * zz * (1.0 - zz / h) ** 2
        return xp.where(inside, k, 0.0) + self.kz_free

    def kz_on_interfaces(self, p_int, temperature, blh):
        """Kz ``(nlev + 1, ...)`` at the model interfaces [m2 s-1], zero at the surface and the top.

        Args:
            p_int: ``(nlev + 1, ...)`` interface pressures [Pa].
            temperature: ``(nlev, ...)`` [K].
            blh: ``(...)`` boundary-layer height [m].
        """
        xp = _xp(p_int, temperature, blh)
        z = interface_heights(p_int, temperature)
        k = self(z, blh)
        k = xp.concatenate([xp.zeros_like(k[:1]), k[1:-1], xp.zeros_like(k[:1])], axis=0)
        return k
