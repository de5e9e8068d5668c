"""Checkpoint/resume of a minimisation: flat ``z``, optimiser-state leaves, iteration and history in ``.npz``.

No pickle: the optimiser state's tree structure is rebuilt from a freshly initialised state of the same
solver, and the stored leaves are checked against it (count, shape, dtype) so a checkpoint written by a
different solver or control-vector size is refused with a clear message. Files are written atomically
(temporary file then ``os.replace``), so a run killed while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["load_checkpoint", "save_checkpoint"]

_VERSION = 1


def save_checkpoint(
    path: str | os.PathLike,
    *,
    solver_name: str,
    z: jax.Array,
    state: Any,
    iteration: int,
    history_value: list[float],
    history_grad_norm: list[float],
    g0: float,
    status: int,
) -> None:
    """Write the run state to ``path`` (``.npz``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree.leaves(state)
    arrays = {f"state_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        version=np.asarray(_VERSION),
        solver=np.asarray(solver_name),
        z=np.asarray(z),
        n_state=np.asarray(len(leaves)),
        iteration=np.asarray(iteration),
        history_value=np.asarray(history_value, dtype=np.float64),
        history_grad_norm=np.asarray(history_grad_norm, dtype=np.float64),
        g0=np.asarray(g0, dtype=np.float64),
        status=np.asarray(status),
        **arrays,
    )
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, *, solver_name: str, z_template: jax.Array, state_template: Any):
    """Read a checkpoint written by :func:`save_checkpoint`; validate it against the templates.

    Returns a dict with ``z``, ``state`` (same tree as ``state_template``), ``iteration``, ``history_value``,
    ``history_grad_norm``, ``g0``, ``status``.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    where = f"checkpoint {str(path)!r}"
    if int(d.get("version", -1)) != _VERSION:
        raise ValueError(f"{where}: unsupported version {d.get('version')}, expected {_VERSION}")
    if str(d["solver"]) != solver_name:
        raise ValueError(f"{where}: written by solver {str(d['solver'])!r}, resuming with {solver_name!r}")
    if d["z"].shape != tuple(z_template.shape):
        raise ValueError(
            f"{where}: control vector has {d['z'].shape} elements, the problem has {tuple(z_template.shape)}"
        )
    leaves, treedef = jax.tree.flatten(state_template)
    if int(d["n_state"]) != len(leaves):
        raise ValueError(f"{where}: {int(d['n_state'])} optimiser-state leaves, expected {len(leaves)}")
    new = []
    for i, t in enumerate(leaves):
        a = d[f"state_{i:04d}"]
        if a.shape != tuple(jnp.shape(t)) or a.dtype != jnp.result_type(t):
            raise ValueError(
                f"{where}: state leaf {i} has shape {a.shape} dtype {a.dtype}, expected "
                f"{tuple(jnp.shape(t))} {jnp.result_type(t)}"
            )
        new.append(jnp.asarray(a))
    return {
        "z": jnp.asarray(d["z"].astype(z_template.dtype)),
        "state": jax.tree.unflatten(treedef, new),
        "iteration": int(d["iteration"]),
        "history_value": [float(v) for v in d["history_value"]],
        "history_grad_norm": [float(v) for v in d["history_grad_norm"]],
        "g0": float(d["g0"]),
        "status": int(d["status"]),
    }
