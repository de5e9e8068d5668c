"""Device meshes, sharding of model states and ensembles, and multi-host start-up.

diffflux shards through XLA's SPMD partitioner: arrays carry a :class:`jax.sharding.NamedSharding` and the
jitted step is compiled once for the whole mesh; XLA inserts the halo exchanges (neighbour
collective-permutes for the stencils, all-gathers where a sweep needs a whole row). Two layouts:

* **grid decomposition** (``axis="lat"`` or ``"lon"``, or ``("lat", "lon")`` on a 2-D mesh): one model
  run split in latitude bands or longitude slabs or blocks (:func:`shard_state`, :func:`shard_field`);
* **ensemble decomposition** (``axis="member"``): independent runs (scenarios, Monte-Carlo members)
  batched with ``jax.vmap`` along a leading axis that is split across devices (:func:`shard_batch`).

Results agree with single-device runs to round-off (the operations are the same; only the order of a
few floating-point reductions may differ): tested on CPU with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.

Multi-host: call :func:`initialize_distributed` once at start-up on every process (it wraps
``jax.distributed.initialize``; under SLURM the coordinator, process count and id are detected from the
environment), then build the mesh over ``jax.devices()`` (all hosts' devices). Example batch script::

    #!/bin/bash
    #SBATCH --nodes=2 --ntasks-per-node=4 --gpus-per-task=1
    srun python -c "import diffflux.parallel as p; p.initialize_distributed(); import myrun; myrun.main()"

Only the process with ``jax.process_index() == 0`` should write output files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(axes: str | Sequence[str] = "lat", shape: Sequence[int] | None = None, devices=None) -> Mesh:
    """A device mesh with named ``axes`` (``"lat"``, ``"lon"``, ``"member"``).

    Args:
        axes: one name or a sequence of names.
        shape: devices along each axis (default: all devices on the single axis; for two axes a
            near-square factorisation).
        devices: devices to use (default ``jax.devices()``, i.e. all hosts' devices after
            :func:`initialize_distributed`).
    """
    names = (axes,) if isinstance(axes, str) else tuple(axes)
    devs = np.asarray(devices if devices is not None else jax.devices())
    n = devs.size
    if shape is None:
        if len(names) == 1:
            shape = (n,)
        elif len(names) == 2:
            a = max(d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0)
            shape = (a, n // a)
        else:
            raise ValueError(f"make_mesh: give shape= for {len(names)} axes")
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) != n:
        raise ValueError(f"make_mesh: mesh shape {shape} needs {math.prod(shape)} devices, found {n}")
    return Mesh(devs.reshape(shape), names)


def _spec(ndim: int, mesh: Mesh, trailing_axes: Sequence[str]) -> P:
    """PartitionSpec splitting the trailing grid axes (``lat``, ``lon``) that appear in ``mesh``."""
    entries: list = [None] * ndim
    for k, name in enumerate(trailing_axes):
        if name in mesh.axis_names:
            entries[ndim - len(trailing_axes) + k] = name
    return P(*entries)


def _check_divisible(shape, spec: P, mesh: Mesh, what: str) -> None:
    for size, name in zip(shape, spec, strict=False):
        if name is not None and size % mesh.shape[name]:
            raise ValueError(
                f"{what}: axis of size {size} cannot be split evenly over the {mesh.shape[name]} devices of "
                f"mesh axis '{name}'; choose a grid whose number of {name} cells is a multiple of it"
            )


def shard_field(x, mesh: Mesh):
    """Place an array whose last two axes are ``(lat, lon)`` on ``mesh`` (grid decomposition)."""
    x = jax.numpy.asarray(x)
    spec = _spec(x.ndim, mesh, ("lat", "lon"))
    _check_divisible(x.shape, spec, mesh, "shard_field")
    return jax.device_put(x, NamedSharding(mesh, spec))


def shard_state(state, mesh: Mesh):
    """Place every array leaf of a pytree (e.g. a ``TransportState``) by its trailing ``(lat, lon)`` axes.

    Leaves with fewer than two dimensions are replicated.
    """

    def put(x):
        x = jax.numpy.asarray(x)
        if x.ndim < 2:
            return jax.device_put(x, NamedSharding(mesh, P()))
        return shard_field(x, mesh)

    return jax.tree_util.tree_map(put, state)


def shard_batch(tree, mesh: Mesh, axis: str = "member"):
    """Split the leading (ensemble) axis of every array leaf over mesh axis ``axis``; the rest replicated."""

    def put(x):
        x = jax.numpy.asarray(x)
        spec = P(axis, *([None] * (x.ndim - 1)))
        _check_divisible(x.shape, spec, mesh, "shard_batch")
        return jax.device_put(x, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map(put, tree)


def replicate(tree, mesh: Mesh):
    """Replicate every array leaf on all devices of ``mesh``."""
    return jax.tree_util.tree_map(
        lambda x: jax.device_put(jax.numpy.asarray(x), NamedSharding(mesh, P())), tree
    )


def initialize_distributed(**kwargs) -> dict:
    """Start multi-host JAX (``jax.distributed.initialize``) once per process; returns a description.

    Without arguments JAX detects SLURM (and other cluster environments) itself; pass
    ``coordinator_address="host:port", num_processes=N, process_id=i`` elsewhere. Safe to call in a
    single-process run without a cluster environment: it then does nothing.
    """
    import os

    cluster = any(
        k in os.environ for k in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "JAX_COORDINATOR_ADDRESS")
    )
    if kwargs or cluster:
        jax.distributed.initialize(**kwargs)
    return {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_devices": len(jax.local_devices()),
        "devices": len(jax.devices()),
    }
