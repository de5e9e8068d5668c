"""The met-field snapshot consumed by one transport step, and the met-source interface.

Everything here is a JAX pytree. A *met source* is any object with ``fields(t) -> MetFields`` that is a
pure function of the time ``t`` [s since the run's reference time]; it is evaluated inside the transport
scan at the middle of each step, so analytic/climatological met costs no memory and file-based met is a
linear interpolation between stored met times.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp


class MetFields(eqx.Module):
    """Met fields at one time, on the model grid. Dims ``(level, lat, lon)``; level 0 at the surface.

    Attributes:
        ps: ``(nlat, nlon)`` surface pressure [Pa] (used for diffusion/chemistry coefficients; the
            transport carries its own air mass, initialised from ``ps`` at the start time).
        mfx: ``(nlev, nlat, nlon)`` eastward dry-air mass flux through the west face of each cell [kg s-1].
        mfy: ``(nlev, nlat + 1, nlon)`` northward dry-air mass flux through the south face of each row
            [kg s-1]; rows 0 and ``nlat`` are the poles and must be zero.
        temperature: ``(nlev, nlat, nlon)`` [K] or None (then 250 K where needed).
        kz: ``(nlev + 1, nlat, nlon)`` vertical eddy diffusivity at level interfaces [m2 s-1] or None.
        conv_mflux: ``(nlev + 1, nlat, nlon)`` convective updraft mass flux through interfaces [kg s-1]
            (zero at the surface and top) or None.
        kh: horizontal eddy diffusivity ``(nlev, nlat, nlon)`` or broadcastable [m2 s-1], or None.
    """

    ps: jax.Array
    mfx: jax.Array
    mfy: jax.Array
    temperature: jax.Array | None = None
    kz: jax.Array | None = None
    conv_mflux: jax.Array | None = None
    kh: jax.Array | None = None


class MetSource(eqx.Module):
    """Abstract met source: ``fields(t)`` returns :class:`MetFields` at time ``t`` [s]."""

    @abc.abstractmethod
    def fields(self, t) -> MetFields:
        """Met fields valid at time ``t`` [s]."""


class ConstantMet(MetSource):
    """Met fields frozen in time (steady flows, tests)."""

    met: MetFields

    def fields(self, t) -> MetFields:
        return self.met


class FunctionMet(MetSource):
    """Met from a pure function ``fn(t) -> MetFields`` (analytic flows, user-defined fields).

    ``params`` is an optional pytree passed as ``fn(t, params)`` so that met parameters can be traced
    (and differentiated) instead of being baked into the function as constants.
    """

    fn: object = eqx.field(static=True)
    params: object = None

    def fields(self, t) -> MetFields:
        if self.params is None:
            return self.fn(t)
        return self.fn(t, self.params)


class InterpolatedMet(MetSource):
    """Met stored at ``nt`` times and interpolated linearly in time (clamped outside the record).

    Attributes:
        times: ``(nt,)`` strictly increasing met times [s since the run's reference time].
        stack: :class:`MetFields` whose arrays have a leading time axis ``nt``.
    """

    times: jax.Array
    stack: MetFields

    def fields(self, t) -> MetFields:
        if self.times.shape[0] == 1:
            return jax.tree_util.tree_map(lambda a: a[0], self.stack)
        i, w = bracket(self.times, t)
        return jax.tree_util.tree_map(lambda a: interpolate_record(a, i, w), self.stack)


def bracket(times, t):
    """Index ``i`` of the met interval ``[times[i], times[i+1]]`` holding ``t`` and the weight of ``i+1``.

    Clamped outside the record (``w`` in [0, 1]); ``times (nt,)`` with ``nt >= 2``, strictly increasing.
    """
    nt = times.shape[0]
    t = jnp.asarray(t, dtype=times.dtype)
    i = jnp.clip(jnp.searchsorted(times, t, side="right") - 1, 0, nt - 2)
    w = jnp.clip((t - times[i]) / (times[i + 1] - times[i]), 0.0, 1.0)
    return i, w


def record(a, i):
    """Record ``i`` of a time-stacked array ``a (nt, ...)``."""
    return jax.lax.dynamic_index_in_dim(a, i, axis=0, keepdims=False)


def interpolate_record(a, i, w):
    """Linear interpolation between records ``i`` and ``i + 1`` of ``a (nt, ...)`` with weight ``w``."""
    a0 = record(a, i)
    return a0 + w.astype(a.dtype) * (record(a, i + 1) - a0)
