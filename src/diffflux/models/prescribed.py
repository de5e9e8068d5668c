"""Prescribed flux components from files: fire, wetland and any other process given as gridded fluxes.

The biosphere model computes fire and wetland fluxes by default; these readers let a user replace them
with prescribed fields (e.g. GFED-like fire emissions, WetCHARTs-like wetland CH4). They are the
inventory reader (:func:`diffflux.models.inventories.read_inventory`: any lat-lon netCDF, CF units, sectors,
monthly or annual records, conservative regridding with exact overlap areas) with a component name and
that component's sign rule, returning an :class:`~diffflux.models.inventories.Inventory` that
:meth:`diffflux.models.composer.FluxComponent.from_inventory` turns into a composer component.

Sign rules: fire and wetland emissions must be >= 0; ``"nee"``/``"ocean"`` and other net fluxes may be
negative (``allow_negative`` overrides).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from diffflux.grid import LatLonGrid
from diffflux.models.inventories import Inventory, read_inventory
from diffflux.species import Species

NONNEGATIVE_COMPONENTS = frozenset({"fire", "wetland", "anthropogenic", "fossil", "biofuel", "agriculture",
                                    "waste", "termites", "geological"})
"""Components whose fluxes are emissions (negative values are an error)."""


def read_prescribed(
    source,
    species: str | Species,
    grid: LatLonGrid,
    component: str,
    *,
    variables: Sequence[str] | Mapping[str, str] | str | None = None,
    sectors: Sequence[str] | None = None,
    allow_negative: bool | None = None,
    missing: str = "error",
    units: str | None = None,
) -> Inventory:
    """Read a prescribed flux component (e.g. ``component="fire"`` or ``"wetland"``) onto ``grid``.

    Arguments as :func:`~diffflux.models.inventories.read_inventory`; ``allow_negative`` defaults to False
    for the components in :data:`NONNEGATIVE_COMPONENTS` and True otherwise.
    """
    if allow_negative is None:
        allow_negative = component not in NONNEGATIVE_COMPONENTS
    return read_inventory(source, species, grid, variables=variables, sectors=sectors, component=component,
                          allow_negative=allow_negative, missing=missing, units=units)


def read_fire(source, species: str | Species, grid: LatLonGrid, **kwargs) -> Inventory:
    """Prescribed fire emissions (>= 0), see :func:`read_prescribed`."""
    return read_prescribed(source, species, grid, "fire", **kwargs)


def read_wetland(source, species: str | Species, grid: LatLonGrid, **kwargs) -> Inventory:
    """Prescribed wetland emissions (>= 0; usually CH4), see :func:`read_prescribed`."""
    return read_prescribed(source, species, grid, "wetland", **kwargs)
