"""STREAM-like memory bandwidth in NumPy and in jitted JAX [GB/s].

Kernels (McCalpin 1995, "Memory bandwidth and machine balance", IEEE TCCA newsletter), on float64
arrays of ``n`` elements, each far larger than the last-level cache:

* ``copy``  ``b = a``            (2 words moved per element: 1 read, 1 write; in JAX written into
  the donated buffer of the previous call's output),
* ``scale`` ``b = s a``          (2 words),
* ``add``   ``c = a + b``        (3 words),
* ``triad`` ``a = b + s c``      (3 words),
* ``read4_write1`` ``e = a + b + c + s d`` (5 words; JAX only, the access pattern of a fused
  transport kernel that reads several fields and writes one, as in ARCHITECTURE.md's probe).

Bytes are counted the STREAM way (no write-allocate traffic). NumPy runs each kernel as ufuncs with
preallocated outputs (``out=``), single-threaded; its triad is two passes (``a = s c; a += b``) and
is still credited 3 words, so it shows what NumPy code achieves, not the hardware limit. JAX kernels
run ``iters`` times inside one jitted ``lax.fori_loop`` (output buffers reused in place, no page
faults; the scalar changes every iteration so nothing is loop-invariant); the best of ``reps`` calls
counts. The bound used by the transport benchmark is the best figure of all kernels, NumPy or JAX
(on CPU usually NumPy's ``copy``, a ``memcpy`` that can bypass write-allocate traffic): the most
favourable bandwidth, hence the most conservative fraction of the bound.

Compute roof (the other side of the roofline, Williams, Waterman & Patterson 2009, CACM 52(4)): the
rate of elementwise operations of one fused XLA kernel, in the unit XLA's cost analysis counts (one
operation per element per HLO add, multiply, compare, select, min, divide...), for a long dependent
chains per element (4 independent ones, for instruction-level parallelism) that read one word and
write one (compute bound by construction). ``fma``:
``y = a y + b`` repeated; ``mixed``: multiply-add, compare, select and minimum repeated, the mix of
a limited reconstruction. The best of the two is the roof used by the transport benchmark.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks.common import DEFAULT_RESULTS, log, write_result

WORDS = {"copy": 2, "scale": 2, "add": 3, "triad": 3, "read4_write1": 5}


def numpy_bandwidth(n: int, reps: int, dtype=np.float64) -> dict:
    """Best-of-``reps`` bandwidth [GB/s] of the NumPy kernels on ``n``-element arrays."""
    rng = np.random.default_rng(0)
    a = rng.random(n).astype(dtype)
    b = rng.random(n).astype(dtype)
    c = np.empty_like(a)
    s = dtype(1.0000001)
    kernels = {
        "copy": lambda: np.copyto(b, a),
        "scale": lambda: np.multiply(a, s, out=b),
        "add": lambda: np.add(a, b, out=c),
        "triad": lambda: (np.multiply(c, s, out=a), np.add(a, b, out=a)),
    }
    out = {}
    itemsize = np.dtype(dtype).itemsize
    for name, fn in kernels.items():
        fn()  # touch the pages
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        out[name] = {"gb_per_s": WORDS[name] * itemsize * n / best / 1e9, "seconds": best}
    return out


def _jax_kernel(name: str, iters: int):
    def scalar(i, dtype):
        return jnp.asarray(1.0, dtype) + i.astype(dtype) * jnp.asarray(1e-9, dtype)

    if name == "scale":

        def f(a, b):
            return lax.fori_loop(0, iters, lambda i, bb: a * scalar(i, a.dtype), b)
    elif name == "add":

        def f(a, b, c):
            return lax.fori_loop(0, iters, lambda i, cc: a + b * scalar(i, a.dtype), c)
    elif name == "triad":

        def f(a, b, c):
            return lax.fori_loop(0, iters, lambda i, aa: b + scalar(i, a.dtype) * c, a)
    elif name == "read4_write1":

        def f(a, b, c, d, e):
            return lax.fori_loop(0, iters, lambda i, ee: a + b + c + scalar(i, a.dtype) * d, e)
    else:  # pragma: no cover - guarded by WORDS
        raise ValueError(name)
    return jax.jit(f)


def jax_bandwidth(n: int, reps: int, iters: int, dtype=jnp.float64) -> dict:
    """Best-of-``reps`` bandwidth [GB/s] of jitted JAX kernels (``iters`` loop trips per call)."""
    key = jax.random.PRNGKey(0)
    arrays = [jax.random.uniform(k, (n,), dtype=dtype) for k in jax.random.split(key, 5)]
    itemsize = jnp.dtype(dtype).itemsize
    out = {}
    # copy: b = a written into the donated output buffer of the previous call (no fresh pages)
    copy = jax.jit(lambda a, b: b.at[:].set(a), donate_argnums=1)
    a, b = arrays[0], arrays[1] + 0.0
    b = jax.block_until_ready(copy(a, b))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        b = jax.block_until_ready(copy(a, b))
        best = min(best, time.perf_counter() - t)
    out["copy"] = {"gb_per_s": WORDS["copy"] * itemsize * n / best / 1e9, "seconds": best}
    for name in ("scale", "add", "triad", "read4_write1"):
        nargs = {"scale": 2, "add": 3, "triad": 3, "read4_write1": 5}[name]
        fn = _jax_kernel(name, iters)
        args = arrays[:nargs]
        jax.block_until_ready(fn(*args))  # compile and touch
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            best = min(best, time.perf_counter() - t)
        per_iter = best / iters
        out[name] = {"gb_per_s": WORDS[name] * itemsize * n / per_iter / 1e9, "seconds": per_iter}
    return out


def _compute_kernel(name: str, chain: int, lanes: int = 4):
    """``lanes`` independent dependent chains per element (instruction-level parallelism: one chain
    alone is latency bound, measured 3x below the rate of 4 on the 2-core CPU), summed at the end."""

    def fma(ys, a, b):
        return [v * a + b for v in ys]

    def mixed(ys, a, b):
        out = []
        for v in ys:
            t = v * a + b
            t = jnp.where(t > b, t, b - t)
            out.append(jnp.minimum(t, a))
        return out

    step = {"fma": fma, "mixed": mixed}[name]

    def f(y, a, b):
        ys = [y + i * b for i in range(lanes)]
        for _ in range(chain):
            ys = step(ys, a, b)
        total = ys[0]
        for v in ys[1:]:
            total = total + v
        return total

    return jax.jit(f)


def compute_roof(n: int, reps: int, dtype) -> dict:
    """Elementwise operations per second of one fused XLA kernel (ops counted by XLA's cost analysis).

    Args:
        n: elements of the array (one read, one write per element; the chains are long enough that
            memory traffic is below 1/20 of the work).
        reps: best of ``reps`` calls.
        dtype: float32 or float64.
    """
    y = jax.random.uniform(jax.random.PRNGKey(1), (n,), dtype=dtype)
    a = jnp.asarray(0.999, dtype)
    b = jnp.asarray(1e-3, dtype)
    out = {}
    for name, chain in (("fma", 24), ("mixed", 12)):
        fn = _compute_kernel(name, chain)
        compiled = fn.lower(y, a, b).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        ops = float(cost.get("flops", 0.0))
        jax.block_until_ready(compiled(y, a, b))
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            jax.block_until_ready(compiled(y, a, b))
            best = min(best, time.perf_counter() - t)
        out[name] = {"ops_per_element": ops / n, "ops_per_s": ops / best, "seconds": best}
    out["roof_ops_per_s"] = max(v["ops_per_s"] for v in out.values() if isinstance(v, dict))
    return out


def main(outdir: Path = DEFAULT_RESULTS, quick: bool = False, preset: str | None = None) -> dict:
    """Measure and write ``bandwidth.json``; returns the payload."""
    preset = preset or ("quick" if quick else "full")
    # (elements of the NumPy arrays, of the JAX arrays, best-of reps, loop trips per JAX call)
    n_np, n, reps, iters = {
        "quick": (2**22, 2**22, 3, 5),
        "full": (2**25, 2**25, 7, 10),
        "gpu": (2**25, 2**27, 10, 50),
    }[preset]
    log(f"bandwidth: n={n} float64 ({n * 8 / 2**20:.0f} MiB per array), best of {reps}")
    t0 = time.perf_counter()
    np_bw = numpy_bandwidth(n_np, reps)
    jx_bw = jax_bandwidth(n, reps, iters)
    n_roof = {"quick": 2**20, "full": 2**22, "gpu": 2**26}[preset]
    roof = {dt: compute_roof(n_roof, reps, jnp.dtype(dt)) for dt in ("float32", "float64")}
    for dt, r in roof.items():
        log(f"compute roof {dt}: {r['roof_ops_per_s'] / 1e9:.1f} G elementwise ops/s "
            f"(fma {r['fma']['ops_per_s'] / 1e9:.1f}, mixed {r['mixed']['ops_per_s'] / 1e9:.1f})")
    candidates = {f"jax {k}": v["gb_per_s"] for k, v in jx_bw.items()}
    candidates.update({f"numpy {k}": v["gb_per_s"] for k, v in np_bw.items()})
    best_name = max(candidates, key=candidates.get)
    payload = {
        "method": (
            "STREAM-like kernels on float64 arrays; bytes = words x 8 x n (no write-allocate); "
            "NumPy ufuncs with out=, single thread; JAX kernels inside one jitted fori_loop "
            f"of {iters} trips, best of {reps} calls"
        ),
        "preset": preset,
        "n_elements": n,
        "n_elements_numpy": n_np,
        "array_mib": n * 8 / 2**20,
        "numpy": np_bw,
        "jax": jx_bw,
        "bound_gb_per_s": candidates[best_name],
        "compute": {
            "method": (
                "elementwise operations per second of one fused jitted kernel (ops = XLA cost "
                f"analysis 'flops'), arrays of {n_roof} elements, best of {reps}; 4 independent "
                "chains per element; fma: 24 x (y = a y + b); mixed: 12 x (multiply-add, compare, "
                "select, minimum)"
            ),
            **roof,
        },
        "bound_kernel": best_name,
        "wall_seconds": time.perf_counter() - t0,
    }
    path = write_result("bandwidth", payload, outdir)
    log(f"bandwidth: bound {payload['bound_gb_per_s']:.1f} GB/s ({best_name}); wrote {path}")
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", choices=("quick", "full", "gpu"))
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args()
    main(args.out, args.quick, args.preset)
