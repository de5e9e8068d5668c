"""The control vector: named blocks with prior means and covariances, whitening, flatten/unflatten.

The inversion estimates a joint control vector ``x`` made of named *blocks* (INVERSION.md):

==============  ======================================  =================================================
role            block value ``x_k``                     used as
==============  ======================================  =================================================
``"flux"``      correction of one composer component    ``FluxComposer`` corrections ``{component: u}``;
                ``(nblock, nlat, nlon)`` or             [mol m-2 s-1] for ``Additive``, [1] for
                ``(nblock, nregion)``                   ``LogNormal`` (log factor) / ``LinearScale``
``"biosphere"`` ``log`` of the selected                 ``BiosphereParams`` multipliers ``exp(x)`` (log-normal
                ``BiosphereParams`` multipliers ``(n,)``  prior; a subset via ``BiosphereParams.filter_spec``)
``"initial"``   initial mixing-ratio offset:            added to the initial mixing ratio of the transport
                ``(ntracer,)`` global offsets or
                ``(ntracer, nlev, nlat, nlon)`` field
                [mol mol-1]
``"bias"``      observation bias per group (site or     added to the model equivalents of that group's
                platform) ``(ngroup,)`` [mol mol-1]     records
==============  ======================================  =================================================

Every block has a prior mean ``x_b`` (block shape) and a prior covariance ``B`` given by any object with
``sqrt_matvec(z)`` (``B^1/2 z``, same shape as the block) and ``matvec(x)`` (``B x``); the covariance
operators of :mod:`diffflux.inversion.covariance` fit, and :class:`DiagonalSqrt` is a minimal diagonal
one. The solvers see only the whitened vector ``z`` (Lorenc 1986 / Courtier et al. 1994 control-variable
transform)::

    x_k = x_b,k + B_k^1/2 z_k,          J_b = 1/2 z . z

``z`` lives either as a dict ``{block name: array (block shape)}`` or flattened to one vector
(:meth:`ControlVector.flatten` / :meth:`ControlVector.unflatten`, blocks in declaration order, C order
inside a block); :meth:`ControlVector.labels` names every element of the flat vector for output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

ROLES = ("flux", "biosphere", "initial", "bias")


# -------------------------------------------------------------------------------------------------
# minimal covariance (fallback until/besides diffflux.inversion.covariance)
# -------------------------------------------------------------------------------------------------


class DiagonalSqrt(eqx.Module):
    """Diagonal prior covariance ``B = diag(sigma^2)`` (uncorrelated errors).

    Attributes:
        sigma: prior standard deviations, the block's shape (or broadcastable to it), > 0, in the block's
            units.
    """

    sigma: jax.Array

    def __check_init__(self):
        s = np.asarray(self.sigma)
        if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
            bad = s[~(np.isfinite(s) & (s > 0))] if s.size else s
            raise ValueError(
                f"DiagonalSqrt: prior standard deviations must be finite and > 0, found {bad[:5].tolist()}"
                + (" (empty)" if s.size == 0 else "")
            )

    def sqrt_matvec(self, z):
        """``B^1/2 z = sigma z``."""
        return self.sigma * z

    def matvec(self, x):
        """``B x = sigma^2 x``."""
        return self.sigma**2 * x

    def inv_sqrt_matvec(self, x):
        """``B^-1/2 x = x / sigma``."""
        return x / self.sigma


def diagonal(sigma, shape: tuple[int, ...] | None = None, dtype=jnp.float64):
    """Diagonal covariance from standard deviations ``sigma`` (scalar or array, > 0), broadcast to ``shape``.

    Returns a :class:`DiagonalSqrt`; pass ``cov=`` to the block constructors for any other operator
    (e.g. those of :mod:`diffflux.inversion.covariance`).
    """
    s = np.asarray(sigma, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"prior standard deviation must be finite and > 0, found {np.ravel(s)[:5].tolist()}")
    if shape is not None:
        s = np.broadcast_to(s, shape).copy()
    return DiagonalSqrt(sigma=jnp.asarray(s, dtype=dtype))


# -------------------------------------------------------------------------------------------------
# blocks
# -------------------------------------------------------------------------------------------------


class Block(eqx.Module):
    """One named block of the control vector.

    Attributes:
        name: unique block name (static).
        role: ``"flux"``, ``"biosphere"``, ``"initial"`` or ``"bias"`` (static; see the module docstring).
        mean: prior mean ``x_b`` (block shape; units as in the module docstring).
        cov: prior covariance (``sqrt_matvec`` / ``matvec`` on arrays of the block shape).
        target: what the block controls (static): the composer component (flux), the parameter labels
            (biosphere, e.g. ``("pmax[TrEF]", ...)``), ``"global"`` or ``"field"`` (initial), the group
            labels (bias).
        units: units of ``x`` (static, for output).
    """

    name: str = eqx.field(static=True)
    role: str = eqx.field(static=True)
    mean: jax.Array
    cov: eqx.Module
    target: tuple | str = eqx.field(static=True, default="")
    units: str = eqx.field(static=True, default="")

    def __check_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"Block {self.name!r}: role must be one of {ROLES}, found {self.role!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def z_shape(self) -> tuple[int, ...]:
        """Shape of the whitened block: the operator's ``z_shape`` when it has one (e.g. two whitened
        fields per cell for a land/ocean blend), else the block shape."""
        zs = getattr(self.cov, "z_shape", None)
        return self.shape if zs is None else tuple(zs)

    @property
    def z_size(self) -> int:
        return int(math.prod(self.z_shape))

    def unwhiten(self, z):
        """``x = x_b + B^1/2 z`` (block shape)."""
        return self.mean + jnp.reshape(self.cov.sqrt_matvec(z), self.shape)

    def whiten(self, x):
        """``z = B^-1/2 (x - x_b)``: with the operator's ``inv_sqrt_matvec`` if it has one, else by a
        dense solve with the ``B^1/2`` matrix built column by column (small blocks only, <= 4096)."""
        d = jnp.asarray(x) - self.mean
        if self.z_shape != self.shape:
            raise ValueError(f"Block {self.name!r}: cannot whiten, B^1/2 maps {self.z_shape} to {self.shape} "
                             f"(not square)")
        inv = getattr(type(self.cov), "inv_sqrt_matvec", None)
        if inv is not None:
            return jnp.reshape(self.cov.inv_sqrt_matvec(d), self.shape)
        if self.size > 4096:
            raise ValueError(
                f"Block {self.name!r}: whitening needs inv_sqrt_matvec for blocks larger than 4096 "
                f"elements (this one has {self.size})"
            )
        eye = jnp.eye(self.size, dtype=self.mean.dtype).reshape((self.size,) + self.shape)
        cols = jax.vmap(lambda e: jnp.ravel(self.cov.sqrt_matvec(e)))(eye)  # row k = B^1/2 e_k
        return jnp.linalg.solve(cols.T, jnp.ravel(d)).reshape(self.shape)


def _cov_for(name: str, shape, sigma, cov, dtype):
    if (sigma is None) == (cov is None):
        raise ValueError(f"block {name!r}: give exactly one of sigma= (diagonal prior) or cov=")
    if cov is None:
        try:
            return diagonal(sigma, shape, dtype)
        except ValueError as e:
            raise ValueError(f"block {name!r}: {e}") from None
    if not callable(getattr(cov, "sqrt_matvec", None)):
        raise TypeError(f"block {name!r}: cov must have a sqrt_matvec(z) method, found {type(cov).__name__}")
    zs = getattr(cov, "z_shape", None)
    zs = tuple(shape) if zs is None else tuple(zs)
    try:
        out = jax.eval_shape(cov.sqrt_matvec, jax.ShapeDtypeStruct(zs, dtype))
    except (TypeError, ValueError) as e:
        raise ValueError(f"block {name!r}: cov.sqrt_matvec does not accept a {zs} block: {e}") from None
    if math.prod(out.shape) != math.prod(shape):
        raise ValueError(
            f"block {name!r}: cov.sqrt_matvec maps a {zs} block to {out.shape}; expected {tuple(shape)}"
        )
    return cov


def _mean_for(name: str, shape, mean, dtype):
    if mean is None:
        return jnp.zeros(shape, dtype)
    m = jnp.asarray(mean, dtype)
    if m.ndim == 0:
        return jnp.full(shape, m, dtype)
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"block {name!r}: prior mean must have shape {tuple(shape)}, found {tuple(m.shape)}")
    if not np.all(np.isfinite(np.asarray(m))):
        raise ValueError(f"block {name!r}: prior mean has non-finite values")
    return m


def flux_block(composer, component: str, *, sigma=None, cov=None, mean=None, name: str | None = None,
               dtype=jnp.float64) -> Block:
    """Block of the correction of a composer component (shape from ``composer.correction_shapes()``).

    Args:
        composer: the :class:`~diffflux.models.composer.FluxComposer`.
        component: a corrected component's name.
        sigma: prior standard deviation (scalar or block-shaped; [mol m-2 s-1] for Additive, [1] for the
            multiplicative forms) for a diagonal prior, or ``cov`` any covariance operator.
        mean: prior mean (default 0: the prior flux).
    """
    shapes = composer.correction_shapes()
    if component not in shapes:
        raise KeyError(
            f"flux_block: {component!r} is not a corrected component of the composer; corrected: "
            f"{sorted(shapes)}"
        )
    shape = shapes[component]
    comp = next(c for c in composer.components if c.name == component)
    units = "mol m-2 s-1" if comp.correction.form.name == "additive" else "1"
    nm = name or f"flux:{component}"
    return Block(name=nm, role="flux", mean=_mean_for(nm, shape, mean, dtype),
                 cov=_cov_for(nm, shape, sigma, cov, dtype), target=component, units=units)


def biosphere_labels(names: Sequence[str]) -> tuple[str, ...]:
    """Element labels of a biosphere block for parameter ``names`` (``"pmax[TrEF]"``, ``"k_soil"``)."""
    from diffflux.models.biosphere.params import BiosphereParams
    from diffflux.models.biosphere.pft import PFTS

    p = BiosphereParams.ones()
    p.filter_spec(names)  # raises for unknown names
    labels = []
    # flattening order of the pytree: the pft dict (sorted keys), then the glob dict (sorted keys)
    sel, _ = eqx.partition(p, p.filter_spec(names))
    leaves = jax.tree_util.tree_flatten_with_path(sel)[0]
    for path, leaf in leaves:
        key = path[-1].key
        if np.ndim(leaf) == 1:
            labels.extend(f"{key}[{PFTS[i].code}]" for i in range(leaf.shape[0]))
        else:
            labels.append(key)
    return tuple(labels)


def biosphere_block(names: Sequence[str], *, sigma=None, cov=None, mean=None, name: str = "biosphere",
                    dtype=jnp.float64) -> Block:
    """Block of log multipliers of the named :class:`BiosphereParams` (PFT parameters contribute ``NPFT``
    elements each, global ones one). ``sigma`` [1] is the prior standard deviation of ``log(multiplier)``
    (e.g. 0.2 = about 20 %); ``mean`` the prior log multiplier (default 0: the default parameters)."""
    if not names:
        raise ValueError("biosphere_block: no parameter names")
    labels = biosphere_labels(names)
    shape = (len(labels),)
    return Block(name=name, role="biosphere", mean=_mean_for(name, shape, mean, dtype),
                 cov=_cov_for(name, shape, sigma, cov, dtype), target=labels, units="1 (log multiplier)")


def initial_block(tracers: Sequence[str], *, field_shape: tuple[int, int, int] | None = None, sigma=None,
                  cov=None, mean=None, name: str = "initial", dtype=jnp.float64) -> Block:
    """Initial-condition block [mol mol-1]: one global offset per tracer ``(ntracer,)``, or a 3D offset
    field ``(ntracer, nlev, nlat, nlon)`` when ``field_shape = (nlev, nlat, nlon)``."""
    n = len(tracers)
    if n == 0:
        raise ValueError("initial_block: no tracers")
    shape = (n,) if field_shape is None else (n,) + tuple(field_shape)
    return Block(name=name, role="initial", mean=_mean_for(name, shape, mean, dtype),
                 cov=_cov_for(name, shape, sigma, cov, dtype),
                 target="global" if field_shape is None else "field", units="mol mol-1")


def bias_block(groups: Sequence[str], *, sigma=None, cov=None, mean=None, name: str = "bias",
               dtype=jnp.float64) -> Block:
    """Observation-bias block [mol mol-1]: one offset per group (site or platform id, as in the
    observation table's ``site`` variable; :func:`diffflux.inversion.problem.bias_index` maps records)."""
    groups = tuple(str(g) for g in groups)
    if not groups:
        raise ValueError("bias_block: no groups")
    if len(set(groups)) != len(groups):
        raise ValueError(f"bias_block: groups must be unique, found {list(groups)}")
    shape = (len(groups),)
    return Block(name=name, role="bias", mean=_mean_for(name, shape, mean, dtype),
                 cov=_cov_for(name, shape, sigma, cov, dtype), target=groups, units="mol mol-1")


# -------------------------------------------------------------------------------------------------
# the control vector
# -------------------------------------------------------------------------------------------------


class ControlVector(eqx.Module):
    """Ordered named blocks; maps whitened ``z`` to physical ``x`` and flat vectors to dicts.

    Build with ``ControlVector.create([flux_block(...), biosphere_block(...), ...])``.
    """

    blocks: tuple[Block, ...]

    @classmethod
    def create(cls, blocks: Sequence[Block]) -> ControlVector:
        blocks = tuple(blocks)
        if not blocks:
            raise ValueError("ControlVector: no blocks")
        names = [b.name for b in blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"ControlVector: block names must be unique, found {names}")
        for role in ("biosphere", "initial", "bias"):
            if sum(b.role == role for b in blocks) > 1:
                raise ValueError(f"ControlVector: at most one {role!r} block, found "
                                 f"{[b.name for b in blocks if b.role == role]}")
        targets = [b.target for b in blocks if b.role == "flux"]
        if len(set(targets)) != len(targets):
            raise ValueError(f"ControlVector: one block per flux component, found {targets}")
        return cls(blocks=blocks)

    # ---- structure --------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Block name -> shape of the whitened block (``z``; equal to the physical shape unless the
        covariance has a different ``z_shape``)."""
        return {b.name: b.z_shape for b in self.blocks}

    @property
    def x_shapes(self) -> dict[str, tuple[int, ...]]:
        """Block name -> shape of the physical block ``x``."""
        return {b.name: b.shape for b in self.blocks}

    @property
    def size(self) -> int:
        """Length of the flat (whitened) control vector."""
        return sum(b.z_size for b in self.blocks)

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"ControlVector: no block {name!r}; blocks: {list(self.names)}")

    def by_role(self, role: str) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.role == role)

    def offsets(self) -> dict[str, tuple[int, int]]:
        """Block name -> ``(start, stop)`` in the flat vector."""
        out, k = {}, 0
        for b in self.blocks:
            out[b.name] = (k, k + b.z_size)
            k += b.z_size
        return out

    def labels(self) -> list[str]:
        """A label for every element of the flat vector: ``"block[i,j,...]"``, or the block's target
        labels for biosphere (``"biosphere:pmax[TrEF]"``) and bias (``"bias:MLO"``) blocks."""
        out = []
        for b in self.blocks:
            if b.role in ("biosphere", "bias"):
                out.extend(f"{b.name}:{t}" for t in b.target)
            else:
                out.extend(f"{b.name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*b.z_shape))
        return out

    # ---- dict <-> flat ---------------------------------------------------------------------------
    def check(self, tree, what: str = "z") -> None:
        """Raise a clear error unless ``tree`` is a dict with exactly the block names and shapes."""
        if not isinstance(tree, dict):
            raise TypeError(f"ControlVector: {what} must be a dict of blocks, found {type(tree).__name__}")
        unknown = sorted(set(tree) - set(self.names))
        missing = [n for n in self.names if n not in tree]
        if unknown or missing:
            raise KeyError(
                f"ControlVector: {what} has unknown block(s) {unknown} and lacks {missing}; blocks: "
                f"{list(self.names)}"
            )
        for b in self.blocks:
            want = b.z_shape if what == "z" else b.shape
            if tuple(jnp.shape(tree[b.name])) != want:
                raise ValueError(
                    f"ControlVector: {what}[{b.name!r}] must have shape {want}, "
                    f"found {jnp.shape(tree[b.name])}"
                )

    def zeros(self, dtype=None) -> dict[str, jax.Array]:
        """``z = 0`` (the prior) as a dict."""
        return {b.name: jnp.zeros(b.z_shape, dtype or b.mean.dtype) for b in self.blocks}

    def flatten(self, tree) -> jax.Array:
        """Dict of blocks -> ``(size,)`` vector (declaration order, C order inside each block)."""
        self.check(tree)
        return jnp.concatenate([jnp.ravel(tree[b.name]) for b in self.blocks])

    def unflatten(self, vec) -> dict[str, jax.Array]:
        """``(size,)`` vector -> dict of blocks (inverse of :meth:`flatten`)."""
        vec = jnp.asarray(vec)
        if vec.shape != (self.size,):
            raise ValueError(f"ControlVector: a flat control vector must have shape ({self.size},), "
                             f"found {vec.shape}")
        out = {}
        for b, (i, j) in zip(self.blocks, self.offsets().values()):
            out[b.name] = vec[i:j].reshape(b.z_shape)
        return out

    # ---- whitening -----------------------------------------------------------------------------
    def unwhiten(self, z) -> dict[str, jax.Array]:
        """``x = x_b + B^1/2 z`` per block; ``z`` a dict or a flat vector. Returns a dict."""
        zd = self.unflatten(z) if not isinstance(z, dict) else z
        self.check(zd)
        return {b.name: b.unwhiten(zd[b.name]) for b in self.blocks}

    def whiten(self, x) -> dict[str, jax.Array]:
        """``z = B^-1/2 (x - x_b)`` per block (dict in, dict out; square ``B^1/2`` only)."""
        self.check(x, "x")
        return {b.name: b.whiten(x[b.name]) for b in self.blocks}

    def prior(self) -> dict[str, jax.Array]:
        """The prior means ``x_b`` as a dict."""
        return {b.name: b.mean for b in self.blocks}

    def prior_variance(self, max_size: int = 4096) -> dict[str, jax.Array]:
        """Diagonal of ``B`` per block: ``sigma^2`` for diagonal operators, else ``sum_k (B^1/2 e_k)^2``
        (block sizes up to ``max_size``)."""
        out = {}
        for b in self.blocks:
            if isinstance(b.cov, DiagonalSqrt):
                out[b.name] = jnp.broadcast_to(b.cov.sigma**2, b.shape)
                continue
            if callable(getattr(b.cov, "diag", None)):
                out[b.name] = jnp.reshape(b.cov.diag(), b.shape)
                continue
            if b.z_size > max_size:
                raise ValueError(f"prior_variance: block {b.name!r} has {b.z_size} > {max_size} elements")
            eye = jnp.eye(b.z_size, dtype=b.mean.dtype).reshape((b.z_size,) + b.z_shape)
            cols = jax.vmap(lambda e, b=b: jnp.ravel(b.cov.sqrt_matvec(e)))(eye)
            out[b.name] = jnp.sum(cols**2, axis=0).reshape(b.shape)
        return out
