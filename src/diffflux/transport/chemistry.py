"""First-order chemical loss: loss-frequency fields per tracer, calibrated to global lifetimes.

The transport applies ``q <- q exp(-k dt)`` per cell (exact for a loss frequency ``k`` that is
constant over the step), so the loss stays linear in the tracer and the flux inversion stays linear.
:class:`FirstOrderLoss` builds ``k (ntr, nlev, nlat, nlon)`` [s-1] from four process patterns:

* **OH** (``"oh"``): ``k = k_OH(T, p) [OH]`` with the Arrhenius rate constant of the species
  (:class:`~diffflux.species.OHRateConstant`, JPL 19-5) and a packaged analytic OH climatology:
  ``[OH] = c L(lat) V(p) H_trop(p)`` with ``L = 0.15 + 0.85 exp(-(lat / 40 deg)^2)`` (tropical
  maximum, about 0.3 of it at 50 deg), ``V = 0.4 + 0.6 exp(-(ln(p / 600 hPa) / 0.6)^2)``
  (mid-tropospheric maximum) and a smooth cut-off above the tropopause ``H_trop = 1 / (1 + exp(-ln(p
  / p_trop) / 0.1))``. It is a smooth, annual-mean pattern resembling the zonal means of Spivakovsky
  et al. (2000, J. Geophys. Res. 105, 8931-8980), scaled so that its air-mass-weighted tropospheric
  mean on the reference atmosphere is ``oh_mean`` (default 1.0e6 molecule cm-3, their mean is
  1.16e6). There is no season (the ``rates`` interface has no time) and no diurnal cycle.
* **stratosphere** (``"stratosphere"``): loss above the tropopause ``p_trop(lat) = 300 hPa - 200 hPa
  cos^2(lat)`` (100 hPa at the equator, 300 hPa at the poles), growing with log-pressure height as
  ``ln(p_trop / p)^2``, averaged exactly over each layer's pressure range (so a single layer
  reaching ``p = 0`` gets its share).
* **boundary layer** (``"boundary_layer"``): uniform loss in the lowest ``bl_depth`` (default 100
  hPa) of each column, weighted by each layer's overlap with it (deposition-like loss, e.g. BC).
* **uniform** (``"uniform"``): the same frequency everywhere (e.g. NOx).

**Calibration (stated honestly).** The patterns fix only where loss happens. At construction, each
species' pattern for each of its loss processes is multiplied by the constant that makes its
air-mass-weighted global-mean loss frequency on the *reference atmosphere* (surface pressure
``ps_ref``, default 1000 hPa everywhere, and the U.S. standard-atmosphere temperature unless
``temperature_ref`` is given) equal ``1 / partial lifetime`` from :mod:`diffflux.species`. The mean
of the summed rates is then exactly ``1 / lifetime`` on that atmosphere, i.e. the initial e-folding
rate of the burden of a uniformly mixed tracer. The burden of a non-uniform tracer, or one under
different temperatures (``met.temperature`` is used when given), decays at a different rate, as it
should. For OH species the calibration constant times ``oh_mean`` is the OH the species' lifetime
implies (:meth:`FirstOrderLoss.implied_oh`), a consistency check of rate constants and lifetimes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY, P_REF
from diffflux.grid import LatLonGrid
from diffflux.met.profiles import standard_atmosphere_temperature
from diffflux.species import Species, get_species
from diffflux.transport.prefix import prefix_sum

# -------------------------------------------------------------------------------------------------
# analytic patterns (NumPy or JAX)
# -------------------------------------------------------------------------------------------------

OH_LAT_WIDTH = 40.0
"""e-folding latitude of the OH maximum [degrees]."""
OH_LAT_FLOOR = 0.15
"""Relative OH at high latitudes [1]."""
OH_P_PEAK = 600.0e2
"""Pressure of the OH maximum [Pa]."""
OH_P_WIDTH = 0.6
"""Width of the vertical OH maximum in ln p [1]."""
OH_VERTICAL_FLOOR = 0.4
"""Relative OH away from the vertical maximum [1]."""
TROPOPAUSE_SHARPNESS = 0.1
"""Width of the OH cut-off at the tropopause in ln p [1]."""


def _xp(x):
    return np if isinstance(x, np.ndarray) else jnp


def tropopause_pressure(lat):
    """Tropopause pressure [Pa] at latitude ``lat`` [degrees]: 100 hPa at the equator, 300 at the
    poles."""
    xp = _xp(lat)
    c = xp.cos(xp.deg2rad(lat))
    return 300.0e2 - 200.0e2 * c * c


def oh_shape(lat, p_mid):
    """Unscaled OH pattern ``L(lat) V(p) H_trop(p)`` [1] (see module docstring).

    Args:
        lat: ``(nlat, 1)`` latitudes [degrees].
        p_mid: ``(nlev, nlat, nlon)`` layer mid pressures [Pa].
    """
    xp = _xp(p_mid)
    lat_term = OH_LAT_FLOOR + (1.0 - OH_LAT_FLOOR) * xp.exp(-((lat / OH_LAT_WIDTH) ** 2))
    lp = xp.log(p_mid / OH_P_PEAK) / OH_P_WIDTH
    vert = OH_VERTICAL_FLOOR + (1.0 - OH_VERTICAL_FLOOR) * xp.exp(-(lp**2))
    p_trop = tropopause_pressure(lat)
    cut = 1.0 / (1.0 + xp.exp(-xp.log(p_mid / p_trop) / TROPOPAUSE_SHARPNESS))
    return lat_term * vert * cut


def _strat_integral(p, p_trop):
    """``int_0^min(p, p_trop) ln(p_trop / p')^2 dp' = q (L^2 + 2 L + 2)``, ``q = min(p,
    p_trop)``."""
    xp = _xp(p)
    q = xp.minimum(p, p_trop)
    positive = q > 0
    q_safe = xp.where(positive, q, 1.0)  # double-where: finite gradients at p = 0
    L = xp.log(p_trop / q_safe)
    return xp.where(positive, q_safe * (L * L + 2.0 * L + 2.0), 0.0)


def stratosphere_shape(lat, p_int):
    """Layer mean of ``ln(p_trop / p)^2`` above the tropopause ``(nlev, nlat, nlon)`` [1].

    Args:
        lat: ``(nlat, 1)`` [degrees].
        p_int: ``(nlev + 1, nlat, nlon)`` interface pressures [Pa], surface first.
    """
    p_trop = tropopause_pressure(lat)
    g = _strat_integral(p_int, p_trop)
    return (g[:-1] - g[1:]) / (p_int[:-1] - p_int[1:])


def boundary_layer_shape(p_int, depth: float):
    """Fraction of each layer inside the lowest ``depth`` [Pa] of the column ``(nlev, nlat,
    nlon)``."""
    xp = _xp(p_int)
    p_bl = p_int[0] - depth
    overlap = xp.maximum(p_int[:-1] - xp.maximum(p_int[1:], p_bl[None]), 0.0)
    return overlap / (p_int[:-1] - p_int[1:])


def pressure_from_air(grid: LatLonGrid, air):
    """Interface pressures ``(nlev + 1, nlat, nlon)`` [Pa] implied by air masses ``(nlev, ...)``
    [kg].

    ``p`` is accumulated from the model top ``p_top`` down, as in the transport's vertical
    diffusion.
    """
    xp = _xp(air)
    area = xp.asarray(grid.area, dtype=air.dtype)
    dp = air * GRAVITY / area[None]
    above = xp.cumsum(dp[::-1], axis=0)[::-1] if xp is np else prefix_sum(dp, axis=0, reverse=True)
    p_top = xp.full_like(dp[:1], grid.levels.p_top)
    return xp.concatenate([p_top + above, p_top], axis=0)


def _arrhenius(A, E_over_R, pc, temperature, p_mid):
    xp = _xp(temperature)
    return A * xp.exp(-E_over_R / temperature) * (1.0 + pc * p_mid / 101325.0)


# -------------------------------------------------------------------------------------------------
# the loss operator
# -------------------------------------------------------------------------------------------------


class FirstOrderLoss(eqx.Module):
    """Loss frequencies for a list of tracers (see the module docstring for patterns and
    calibration).

    Build it with :meth:`for_species`. Coefficients are array leaves (so they can be traced or
    differentiated); ``oh_factor`` scales all OH loss (default 1) and is a natural parameter for an
    OH-scaling inversion.

    Attributes:
        names: tracer names, in tracer-axis order.
        oh_coef, strat_coef, bl_coef, uniform: ``(ntr,)`` calibration constants: dimensionless OH
            scaling, and [s-1] per unit pattern for the others (0 where a process does not apply).
        oh_A, oh_E_over_R, oh_pressure_coefficient: ``(ntr,)`` Arrhenius parameters (A in
            cm3 molecule-1 s-1, E/R in K).
        oh_factor: scalar multiplier of all OH loss [1].
        oh_norm: OH [molecule cm-3] per unit :func:`oh_shape`.
        bl_depth: boundary-layer depth [Pa].
    """

    names: tuple[str, ...] = eqx.field(static=True)
    oh_coef: jax.Array
    strat_coef: jax.Array
    bl_coef: jax.Array
    uniform: jax.Array
    oh_A: jax.Array
    oh_E_over_R: jax.Array
    oh_pressure_coefficient: jax.Array
    oh_factor: jax.Array
    oh_norm: float = eqx.field(static=True)
    oh_mean: float = eqx.field(static=True)
    bl_depth: float = eqx.field(static=True)

    # ---- construction
    # ------------------------------------------------------------------------------
    @classmethod
    def for_species(
        cls,
        species: Sequence[str | Species],
        grid: LatLonGrid,
        *,
        lifetimes: dict[str, float] | None = None,
        oh_mean: float = 1.0e6,
        bl_depth: float = 100.0e2,
        ps_ref=None,
        temperature_ref=None,
        oh_factor: float = 1.0,
    ) -> FirstOrderLoss:
        """Calibrated loss for ``species`` (names or :class:`~diffflux.species.Species`) on
        ``grid``.

        Args:
            species: one entry per tracer, in tracer-axis order.
            grid: model grid (its levels decide where the stratosphere is).
            lifetimes: optional total lifetimes [s] by species name, replacing the table's (the
                split between processes is kept), e.g. ``{"SF6": 850 * SECONDS_PER_YEAR}``.
            oh_mean: air-mass-weighted tropospheric mean of the OH pattern on the reference
                atmosphere [molecule cm-3] (affects :meth:`implied_oh` only; rates are calibrated).
            bl_depth: depth of the boundary-layer loss region [Pa].
            ps_ref: ``(nlat, nlon)`` reference surface pressure [Pa] (default ``P_REF`` everywhere).
            temperature_ref: ``(nlev, nlat, nlon)`` reference temperature [K] (default: U.S.
                standard atmosphere at the reference layer pressures).
            oh_factor: initial value of the OH multiplier.

        Raises:
            ValueError: unknown species (lists the valid names), a lifetime for a species not in the
                list, or a process whose pattern vanishes on this grid (e.g. stratospheric loss on a
                grid whose top is below the tropopause).
        """
        specs = [get_species(s) for s in species]
        if not specs:
            raise ValueError("FirstOrderLoss.for_species: the species list is empty")
        names = tuple(s.name for s in specs)
        lifetimes = dict(lifetimes or {})
        for key, value in lifetimes.items():
            matched = [i for i, s in enumerate(specs) if s.name == get_species(key).name]
            if not matched:
                raise ValueError(f"FirstOrderLoss.for_species: lifetime given for {key!r}, which "
                                 f"is not in the species list {list(names)}")
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"FirstOrderLoss.for_species: lifetime of {key!r} must be "
                                 f"positive and finite [s], found {value}")
            for i in matched:
                specs[i] = specs[i].with_lifetime(float(value))

        ps = (np.full((grid.nlat, grid.nlon), P_REF) if ps_ref is None
              else np.asarray(ps_ref, dtype=np.float64))
        if ps.shape != (grid.nlat, grid.nlon):
            raise ValueError(f"FirstOrderLoss.for_species: ps_ref must have shape "
                             f"{(grid.nlat, grid.nlon)}, found {ps.shape}")
        air = np.asarray(grid.air_mass(ps), dtype=np.float64)
        p_int = pressure_from_air(grid, air)
        p_mid = 0.5 * (p_int[:-1] + p_int[1:])
        if temperature_ref is None:
            temp = standard_atmosphere_temperature(p_mid)
        else:
            temp = np.asarray(temperature_ref, dtype=np.float64)
            if temp.shape != grid.shape:
                raise ValueError(f"FirstOrderLoss.for_species: temperature_ref must have shape "
                                 f"{grid.shape}, found {temp.shape}")
        lat = grid.lat[:, None]
        weight = air / air.sum()
        shape_oh = oh_shape(lat, p_mid)
        tropo = p_mid > tropopause_pressure(lat)
        oh_norm = oh_mean / float((air * shape_oh)[tropo].sum() / air[tropo].sum())
        oh = oh_norm * shape_oh
        patterns = {
            "stratosphere": stratosphere_shape(lat, p_int),
            "boundary_layer": boundary_layer_shape(p_int, bl_depth),
            "uniform": np.ones_like(air),
        }

        ntr = len(specs)
        coef = {k: np.zeros(ntr) for k in ("oh", "stratosphere", "boundary_layer", "uniform")}
        arr = {k: np.zeros(ntr) for k in ("A", "E", "pc")}
        for i, s in enumerate(specs):
            for term in s.loss:
                if term.process == "oh":
                    k = s.k_oh
                    arr["A"][i], arr["E"][i], arr["pc"][i] = k.A, k.E_over_R, k.pressure_coefficient
                    pattern = _arrhenius(k.A, k.E_over_R, k.pressure_coefficient, temp, p_mid) * oh
                else:
                    pattern = patterns[term.process]
                mean = float((weight * pattern).sum())
                if not mean > 0:
                    raise ValueError(
                        f"FirstOrderLoss: species {s.name} has '{term.process}' loss but its "
                        f"pattern is zero on grid {grid.describe()} (e.g. no level above the "
                        f"tropopause, model top {grid.levels.p_top:g} Pa); use a grid with such "
                        f"levels or give the species a different loss process"
                    )
                coef[term.process][i] = (1.0 / term.lifetime) / mean
        return cls(
            names=names,
            oh_coef=coef["oh"],
            strat_coef=coef["stratosphere"],
            bl_coef=coef["boundary_layer"],
            uniform=coef["uniform"],
            oh_A=arr["A"],
            oh_E_over_R=arr["E"],
            oh_pressure_coefficient=arr["pc"],
            oh_factor=np.asarray(oh_factor, dtype=np.float64),
            oh_norm=oh_norm,
            oh_mean=float(oh_mean),
            bl_depth=float(bl_depth),
        )

    # ---- the interface used by Transport.step
    # -----------------------------------------------------
    def rates(self, met, air, grid: LatLonGrid):
        """Loss frequencies ``(ntr, nlev, nlat, nlon)`` [s-1] (pure JAX; jit/grad/vmap safe).

        Args:
            met: :class:`~diffflux.met.fields.MetFields`; ``met.temperature`` ``(nlev, nlat, nlon)``
                [K] is used when given, else the U.S. standard atmosphere at the layer pressures.
            air: ``(nlev, nlat, nlon)`` air mass [kg] carried by the transport (gives the
                pressures).
            grid: model grid.
        """
        air = jnp.asarray(air)
        dtype = air.dtype
        p_int = pressure_from_air(grid, air)
        p_mid = 0.5 * (p_int[:-1] + p_int[1:])
        temperature = getattr(met, "temperature", None) if met is not None else None
        if temperature is None:
            temperature = standard_atmosphere_temperature(p_mid)
        temperature = jnp.asarray(temperature, dtype)
        lat = jnp.asarray(grid.lat[:, None], dtype)

        def col(a):
            return jnp.asarray(a, dtype)[:, None, None, None]

        oh = (self.oh_norm * oh_shape(lat, p_mid))[None]
        k_oh = _arrhenius(col(self.oh_A), col(self.oh_E_over_R), col(self.oh_pressure_coefficient),
                          temperature[None], p_mid[None])
        k = (jnp.asarray(self.oh_factor, dtype) * col(self.oh_coef)) * k_oh * oh
        k = k + col(self.strat_coef) * stratosphere_shape(lat, p_int)[None]
        k = k + col(self.bl_coef) * boundary_layer_shape(p_int, self.bl_depth)[None]
        k = k + col(self.uniform) * jnp.ones_like(air)[None]
        return k.astype(dtype)

    # ---- diagnostics
    # ----------------------------------------------------------------------------------
    def global_lifetimes(self, met, air, grid: LatLonGrid):
        """``(ntr,)`` inverse air-mass-weighted mean loss frequency [s] (``inf`` without loss)."""
        k = self.rates(met, air, grid)
        air = jnp.asarray(air)
        mean = jnp.sum(k * air[None], axis=(1, 2, 3)) / jnp.sum(air)
        return jnp.where(mean > 0, 1.0 / jnp.where(mean > 0, mean, 1.0), jnp.inf)

    def implied_oh(self) -> dict[str, float]:
        """Mean tropospheric OH [molecule cm-3] each OH species' lifetime implies on the reference.

        With the packaged pattern this is ``oh_coef * oh_mean`` (about 1e6 for CH4 and the HFCs when
        the rate constants and lifetimes are mutually consistent).
        """
        c = np.asarray(self.oh_coef)
        return {n: float(c[i] * self.oh_mean) for i, n in enumerate(self.names) if c[i] > 0}


__all__ = [
    "FirstOrderLoss",
    "boundary_layer_shape",
    "oh_shape",
    "pressure_from_air",
    "stratosphere_shape",
    "tropopause_pressure",
]
