"""Compensated (error-free) accumulation of tracer increments for low-precision (float32) runs.

In float32 a cell's tracer amount ``q`` [mol] carries about 7 significant digits. The flux-form
operators move equal and opposite amounts between neighbouring cells, but each cell adds its increment
``dq`` to its own ``q`` and rounds to *its own* ulp: increments smaller than half an ulp of ``q`` are
lost altogether (swamping), and since neighbouring cells have different amounts (thin upper layers,
polar cells) the losses of the giving and the receiving cell do not cancel. Over a year of hourly
steps this is a systematic drift of the global tracer mass of a few 1e-6 (``scripts/
float32_mass_drift.py``).

The remedy is compensated summation (Kahan 1965, "Further remarks on reducing truncation errors",
Comm. ACM 8, 40; Neumaier 1974, "Rundungsfehleranalyse einiger Verfahren zur Summation endlicher
Summen", Z. Angew. Math. Mech. 54, 39-51): every cell carries, next to ``q``, a residual ``r`` of the
same dtype with the part of the exact sum that ``q`` could not hold, so that ``q + r`` is the tracer
amount to about twice the working precision. Like Neumaier's variant, the update recovers the
rounding error of ``q + y`` exactly whatever the relative size of ``q`` and ``y`` (increments may
exceed the amount, e.g. a cell filled from empty), but with the branch-free error-free transformation
TwoSum (Moller 1965, BIT 5, 37-50; Knuth 1969, The Art of Computer Programming 2, sec. 4.2.2):

    y = dq + r;  t = q + y;  y' = t - q;  q' = t - y';  r_new = (q - q') + (y - y');  q_new = t

Having no comparison, it is formally linear in ``(q, dq, r)``, so ``jax.linear_transpose`` of a
compensated run works as well as ``jax.vjp``. Flux divergences are formed first
(``dq = f_in - f_out``, an increment of its own small size), so nothing of a cell's exchange is lost,
and the global sum of ``q + r`` changes only by the round-off of the increments themselves (relative
~1e-7 of the *moved* amount, random in sign).

The residual is a plain array operation: it differentiates (the tangent is compensated the same way)
and is not removed by XLA (which does not reassociate floating-point additions); the measured drift
is the check (``tests/transport/test_float32_mass.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compensated_add(q: jax.Array, dq: jax.Array, residual: jax.Array | None):
    """``q + dq`` with a carried compensation term (Kahan 1965 / Neumaier 1974 summation, TwoSum form).

    Args:
        q: current amounts (any shape) [mol or kg].
        dq: increment, broadcastable to ``q`` [same unit].
        residual: compensation term of ``q``'s shape (the part of the exact amount not held in ``q``)
            or None for the plain, uncompensated ``q + dq``.

    Returns:
        ``(q_new, residual_new)``; ``residual_new`` is None when ``residual`` is None.
    """
    if residual is None:
        return q + dq, None
    y = dq + residual
    t = q + y
    y_virtual = t - q
    q_virtual = t - y_virtual
    return t, (q - q_virtual) + (y - y_virtual)


def wants_compensation(dtype) -> bool:
    """Default of ``run(compensate=None)``: compensate for floating dtypes narrower than float64."""
    dtype = jnp.dtype(dtype)
    return bool(jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 8)
