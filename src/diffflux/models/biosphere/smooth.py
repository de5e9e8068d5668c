"""Smooth surrogates for the clips, thresholds and minima of VISIT/Sim-CYCLE.

Every function here is differentiable everywhere with finite derivatives (no ``where`` branches that
leak NaN through the untaken side), so gradients stay finite over the whole driver space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def softplus(x, width=1.0):
    """``width * log(1 + exp(x / width))``: a smooth ``max(x, 0)`` with rounding scale ``width``."""
    return width * jax.nn.softplus(x / width)


def smooth_clamp(x, lo, hi, width=1.0):
    """Smooth clamp of ``x`` into ``[lo, hi]`` (exactly within the bounds, ``C^inf``).

    ``lo + s(x - lo) - s(x - hi)`` with ``s`` the softplus of rounding scale ``width``; since ``s`` is
    increasing and 1-Lipschitz the result never leaves ``[lo, hi]``.
    """
    return lo + softplus(x - lo, width) - softplus(x - hi, width)


def logistic(x, centre=0.0, width=1.0):
    """Logistic step ``1 / (1 + exp(-(x - centre) / width))`` in ``(0, 1)``."""
    return jax.nn.sigmoid((x - centre) / width)


def smin(x, y, theta=0.99):
    """VISIT's hyperbolic smooth minimum of two non-negative numbers.

    ``((x + y) - sqrt((x + y)^2 - 4 theta x y)) / (2 theta)``: the smaller root of
    ``theta m^2 - (x + y) m + x y = 0``; ``<= min(x, y)``, tends to ``min`` as ``theta -> 1`` (Ito & Oikawa
    2002; the co-limitation form of Collatz et al. 1991). A tiny offset keeps the square root's derivative
    finite when ``x = y = 0``.
    """
    s = x + y
    disc = s * s - 4.0 * theta * x * y
    eps = jnp.asarray(1e-30 if jnp.result_type(s) == jnp.float64 else 1e-20, dtype=jnp.result_type(s))
    return (s - jnp.sqrt(jnp.maximum(disc, 0.0) + eps)) / (2.0 * theta) + jnp.sqrt(eps) / (2.0 * theta)


def exact_loss(pool, rate, dt):
    """Amount lost in ``dt`` by first-order decay: ``pool * (1 - exp(-rate dt))`` (never exceeds ``pool``)."""
    return pool * -jnp.expm1(-rate * dt)


def safe_div(num, den, eps):
    """``num / (den + eps)`` for non-negative ``den``: finite, with finite derivatives, at ``den = 0``."""
    return num / (den + eps)
