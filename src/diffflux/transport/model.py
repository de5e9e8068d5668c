"""The transport model: one operator-split step of advection, emissions, mixing and loss.

State (dims ``(tracer, level, lat, lon)``, level 0 at the surface):

* ``tracer``: tracer amount per cell [mol],
* ``air``: dry-air mass per cell [kg], carried through the advection sweeps with the same fluxes,
* ``residual`` (optional, None by default): compensation term of ``tracer`` [mol] for compensated
  summation in float32 (Kahan 1965, Neumaier 1974; see :mod:`diffflux.transport.compensated`): the
  tracer amount is ``tracer + residual`` to about twice the working precision. When present, every
  operator adds its increment with compensation and carries it on; :func:`~diffflux.transport.run`
  adds it by default for float32 states and folds it back into ``tracer`` at the end.

Mixing ratio ``chi = tracer * M_air / air`` [mol mol-1].

Step sequence (symmetric Strang splitting of the advection, Strang 1968):
``X(dt/2) Y(dt/2) Z(dt) Y(dt/2) X(dt/2)``, then surface emissions into level 0, convective mixing,
implicit vertical diffusion, horizontal diffusion and exact first-order loss ``q exp(-k dt)``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.constants import GRAVITY, M_AIR
from diffflux.grid import LatLonGrid
from diffflux.met.fields import MetFields
from diffflux.transport.advection import sweep_x, sweep_y, sweep_z, vertical_mass_flux
from diffflux.transport.compensated import compensated_add
from diffflux.transport.convection import ConvectiveMassFlux
from diffflux.transport.diffusion import HorizontalDiffusion, ImplicitVerticalDiffusion
from diffflux.transport.prefix import prefix_sum
from diffflux.transport.reconstruction import PPM, Reconstruction


class TransportState(eqx.Module):
    """Tracer amounts ``(ntr, nlev, nlat, nlon)`` [mol] and air mass ``(nlev, nlat, nlon)`` [kg].

    ``residual`` is None (plain arithmetic) or the compensation term of ``tracer`` [mol], same shape
    and dtype (compensated float32 summation; the amount is ``tracer + residual``).
    """

    tracer: jax.Array
    air: jax.Array
    residual: jax.Array | None = None

    def with_residual(self) -> TransportState:
        """This state with a zero compensation term (unchanged if it already has one)."""
        if self.residual is not None:
            return self
        return TransportState(tracer=self.tracer, air=self.air, residual=jnp.zeros_like(self.tracer))

    def folded(self) -> TransportState:
        """This state with the compensation term added into ``tracer`` (one rounding) and dropped."""
        if self.residual is None:
            return self
        return TransportState(tracer=self.tracer + self.residual, air=self.air)

    def mixing_ratio(self):
        """Dry-air mole fraction ``(ntr, nlev, nlat, nlon)`` [mol mol-1]."""
        return self.tracer * (M_AIR / self.air)[None]

    @classmethod
    def from_mixing_ratio(cls, chi, air) -> TransportState:
        """State from mixing ratios ``(ntr, nlev, nlat, nlon)`` [mol mol-1] and air mass [kg]."""
        air = jnp.asarray(air)
        chi = jnp.asarray(chi, dtype=air.dtype)
        return cls(tracer=chi * (air / M_AIR)[None], air=air)


class Transport(eqx.Module):
    """Global finite-volume transport model (strategy object).

    Args:
        grid: model grid (static).
        advection: reconstruction for all three directions (default monotone :class:`PPM`).
        vertical_diffusion: :class:`ImplicitVerticalDiffusion` or None (needs ``met.kz``).
        horizontal_diffusion: :class:`HorizontalDiffusion` or None (needs ``met.kh``).
        convection: a convection scheme with ``__call__(q, m, conv_mflux, dt)`` or None
            (needs ``met.conv_mflux``).
        chemistry: object with ``rates(met, air, grid) -> (ntr, nlev, nlat, nlon)`` loss frequencies
            [s-1], or None.
        ffsl_latitude: rows poleward of this latitude [degrees] always use the semi-Lagrangian zonal
            sweep; the others use the Eulerian sweep unless their Courant number reaches 1 (then the
            whole sweep switches to semi-Lagrangian). A performance setting only: results agree to
            round-off whatever its value.
    """

    grid: LatLonGrid = eqx.field(static=True)
    advection: Reconstruction = PPM()
    vertical_diffusion: ImplicitVerticalDiffusion | None = ImplicitVerticalDiffusion()
    horizontal_diffusion: HorizontalDiffusion | None = None
    convection: eqx.Module | None = None
    chemistry: eqx.Module | None = None
    ffsl_latitude: float = eqx.field(static=True, default=70.0)

    def __check_init__(self):
        need = self.advection.halo + 1
        g = self.grid
        if g.nlat < need or g.nlon < need or (g.nlev > 1 and g.nlev < need):
            raise ValueError(
                f"Transport: the {type(self.advection).__name__} reconstruction needs at least {need} "
                f"cells along each direction; the grid has nlat={g.nlat}, nlon={g.nlon}, nlev={g.nlev}"
            )

    @property
    def polar_rows(self) -> int:
        """Number of rows at each pole that always use the semi-Lagrangian zonal sweep."""
        return int(np.sum(self.grid.lat > self.ffsl_latitude))

    @property
    def is_linear(self) -> bool:
        """True when the step is linear in the tracer (unlimited reconstruction)."""
        return bool(self.advection.is_linear)

    def initial_state(self, chi, ps) -> TransportState:
        """State from mixing ratios ``(ntr, nlev, nlat, nlon)`` and surface pressure ``(nlat, nlon)`` [Pa]."""
        ps = jnp.asarray(ps)
        return TransportState.from_mixing_ratio(chi, self.grid.air_mass(ps))

    def advect(self, state: TransportState, met: MetFields, dt) -> TransportState:
        """Advection only, ``X/2 Y/2 Z Y/2 X/2`` with face fluxes ``met.mfx``/``met.mfy`` times ``dt``."""
        q, m = state.tracer, state.air
        dtype = m.dtype
        fx = (met.mfx * dt).astype(dtype)
        fy = (met.mfy * dt).astype(dtype)
        fz = vertical_mass_flux(fx, fy, self.grid.levels.b)
        r = self.advection
        if state.residual is not None:  # compensated tracer updates (float32)
            res = state.residual
            q, m, res = sweep_x(q, m, 0.5 * fx, r, self.polar_rows, residual=res)
            q, m, res = sweep_y(q, m, 0.5 * fy, r, residual=res)
            if self.grid.nlev > 1:
                q, m, res = sweep_z(q, m, fz, r, residual=res)
            q, m, res = sweep_y(q, m, 0.5 * fy, r, residual=res)
            q, m, res = sweep_x(q, m, 0.5 * fx, r, self.polar_rows, residual=res)
            return TransportState(tracer=q, air=m, residual=res)
        q, m = sweep_x(q, m, 0.5 * fx, r, self.polar_rows)
        q, m = sweep_y(q, m, 0.5 * fy, r)
        if self.grid.nlev > 1:
            q, m = sweep_z(q, m, fz, r)
        q, m = sweep_y(q, m, 0.5 * fy, r)
        q, m = sweep_x(q, m, 0.5 * fx, r, self.polar_rows)
        return TransportState(tracer=q, air=m)

    def step(self, state: TransportState, met: MetFields, dt, flux=None,
             elevated=None) -> TransportState:
        """One full step of length ``dt`` [s].

        Args:
            state: current state.
            met: met fields valid at the middle of the step.
            dt: step length [s].
            flux: surface flux ``(ntr, nlat, nlon)`` [mol m-2 s-1] (positive = emission) or None.
            elevated: emissions into every level ``(ntr, nlev, nlat, nlon)`` [mol m-2 s-1] (stacks,
                aircraft, fire plumes; per unit horizontal area) or None.
        """
        grid = self.grid
        state = self.advect(state, met, dt)
        q, m, res = state.tracer, state.air, state.residual
        dtype = m.dtype
        area = jnp.asarray(grid.area, dtype=dtype)
        if flux is not None:
            dq0 = (jnp.asarray(flux, dtype=dtype) * area[None]) * dt
            if res is None:
                q = q.at[:, 0].add(dq0)
            else:
                q0, r0 = compensated_add(q[:, 0], dq0, res[:, 0])
                q, res = q.at[:, 0].set(q0), res.at[:, 0].set(r0)
        if elevated is not None:
            q, res = compensated_add(q, (jnp.asarray(elevated, dtype=dtype) * area[None, None]) * dt, res)
        if self.convection is not None and met.conv_mflux is not None:
            mu = met.conv_mflux.astype(dtype)
            if res is None:
                q = self.convection(q, m, mu, dt)
            elif isinstance(self.convection, ConvectiveMassFlux):
                q, res = self.convection(q, m, mu, dt, residual=res)
            else:  # a scheme without compensation: take its increment as a whole
                q, res = compensated_add(q, self.convection(q, m, mu, dt) - q, res)
        if self.vertical_diffusion is not None and met.kz is not None and grid.nlev > 1:
            temperature = met.temperature if met.temperature is not None else jnp.full_like(m, 250.0)
            p_int = self._pressure_interfaces(m)
            E = self.vertical_diffusion.exchange(m, met.kz.astype(dtype), temperature.astype(dtype),
                                                 p_int, area)
            if res is None:
                q = self.vertical_diffusion(q, m, E, dt)
            else:
                q, res = self.vertical_diffusion(q, m, E, dt, residual=res)
        if self.horizontal_diffusion is not None and met.kh is not None:
            dp = m * GRAVITY / area[None]
            if res is None:
                q = self.horizontal_diffusion(q, m, met.kh, dp, grid, dt)
            else:
                q, res = self.horizontal_diffusion(q, m, met.kh, dp, grid, dt, residual=res)
        if self.chemistry is not None:
            k = self.chemistry.rates(met, m, grid)
            if res is None:
                q = q * jnp.exp(-k * dt).astype(dtype)
            else:  # exact loss of the compensated amount q + res: q (e - 1) added, res scaled
                kdt = (k * dt).astype(dtype)
                q, res = compensated_add(q, q * jnp.expm1(-kdt), res * jnp.exp(-kdt))
        return TransportState(tracer=q, air=m, residual=res)

    def _pressure_interfaces(self, m):
        """Interface pressures ``(nlev + 1, nlat, nlon)`` [Pa] implied by the carried air mass."""
        area = jnp.asarray(self.grid.area, dtype=m.dtype)
        dp = m * GRAVITY / area[None]
        p_top = jnp.asarray(self.grid.levels.p_top, dtype=m.dtype)
        above = prefix_sum(dp, axis=0, reverse=True)  # pressure at bottom interface of each level
        return jnp.concatenate([p_top + above, jnp.full_like(dp[:1], p_top)], axis=0)

    def replace(self, **changes) -> Transport:
        """Copy with some strategies replaced."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(changes)
        return Transport(**fields)
