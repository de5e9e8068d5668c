"""diffflux benchmarks: memory bandwidth, transport throughput, gradient cost and memory.

Run everything with ``python -m benchmarks`` from the repository root (``--quick`` for a smoke run,
``--only bandwidth|transport|gradient|report``); results go to ``benchmarks/results/*.json`` and
``benchmarks/RESULTS.md``. :mod:`benchmarks.numpy_reference` is an independent NumPy implementation
of the transport step, used as the speed baseline and as a correctness check of the JAX code.
"""
