"""Regions: named fractional masks on model grids and budgets of fluxes over them.

* :func:`region_mask`, :func:`region_masks`, :func:`region`, :func:`region_names`: land/ocean,
  hemispheres, latitude bands, IPCC AR6 reference regions, ocean basins and countries
  (:mod:`diffflux.regions.masks`).
* :func:`budget`: totals of a flux field per region and period in reporting units (PgC/yr, TgCH4/yr,
  TgN/yr, Gg/yr), with 1-sigma uncertainties from a flux covariance (:mod:`diffflux.regions.budgets`).
"""

from diffflux.regions.ar6 import AR6Region, ar6_regions
from diffflux.regions.budgets import Budget, budget
from diffflux.regions.masks import (
    BASINS,
    STANDARD_BANDS,
    Region,
    basin_labels,
    region,
    region_area,
    region_mask,
    region_masks,
    region_names,
)

__all__ = [
    "AR6Region",
    "BASINS",
    "Budget",
    "Region",
    "STANDARD_BANDS",
    "ar6_regions",
    "basin_labels",
    "budget",
    "region",
    "region_area",
    "region_mask",
    "region_masks",
    "region_names",
]
