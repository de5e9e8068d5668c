"""Prefix sums along one axis, written for speed inside the compiled transport step.

``jnp.cumsum`` lowers to an XLA ``reduce-window``; on CPU that was measured ~10x slower than a
log-depth (Hillis & Steele 1986 / Blelloch 1990) parallel prefix for a cumulative sum over the 25
levels of a 2 x 2.5 degree grid (1.9 ms against 0.21 ms per call in float32, 2.6 against 0.55 ms in
float64: a jitted loop of 50 calls on the 2-core machine of ``benchmarks/RESULTS.md``, 2026-11-28),
and it needed layout transposes around it. :func:`prefix_sum` uses :func:`jax.lax.associative_scan`,
which is made of slices, pads and adds only, so XLA fuses it on CPU and GPU alike and reverse-mode
differentiation stays cheap. The summation order differs from a sequential sum (round-off of order
``log2(n)`` ulps).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def prefix_sum(x, axis: int = 0, reverse: bool = False, exclusive: bool = False):
    """Cumulative sum of ``x`` along ``axis`` (inclusive by default).

    Args:
        x: array of any shape.
        axis: axis to accumulate along.
        reverse: accumulate from the last element towards the first (``sum_{l >= k} x_l``).
        exclusive: prepend a zero along ``axis`` (length ``n + 1``: ``[0, x_0, x_0 + x_1, ...]``, or
            with ``reverse`` append it: ``[..., x_{n-1}, 0]``), the form of cumulative masses at
            cell faces.

    Returns:
        The sums, shape of ``x`` (``n + 1`` along ``axis`` if ``exclusive``).
    """
    axis = axis % x.ndim
    out = lax.associative_scan(jnp.add, x, axis=axis, reverse=reverse)
    if not exclusive:
        return out
    zero = jnp.zeros_like(lax.slice_in_dim(x, 0, 1, axis=axis))
    return jnp.concatenate([out, zero] if reverse else [zero, out], axis=axis)
