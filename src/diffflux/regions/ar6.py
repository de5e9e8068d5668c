"""IPCC AR6 WGI reference regions (version 4; Iturbide et al. 2020) from the packaged vertex table.

Source: Iturbide, M. et al. (2020), An update of IPCC climate reference regions for subcontinental
analysis of climate model data: definition and aggregated datasets, Earth Syst. Sci. Data 12, 2959-2970,
doi:10.5194/essd-12-2959-2020; vertices from the IPCC-WG1 Atlas repository
(``reference-regions/IPCC-WGI-reference-regions-v4_coordinates.csv``), licence CC BY 4.0. The packaged
``data/ar6_regions.csv`` holds the same coordinates reformatted (see its header).

58 regions: 46 land regions (``surface`` "Land" or "Land-Ocean": Caribbean, Mediterranean and S.E. Asia
include sea) and 12 ocean regions. Regions crossing the date line are stored as two parts. The polygons
are rasterised at 1/12 degree by cell centre (:mod:`diffflux.regions.polygons`). The published polygons
tile the sphere except for thin slivers along some shared edges (at 1/12 degree: 560 raster cells lie in
two regions, e.g. E.Southern-Africa/S.Indic-Ocean and Caribbean/N.Atlantic, and 208 in none); the sum of
all 58 masks on a 1-degree grid lies in [0.96, 1.15] and its area is that of the sphere to 7e-5.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

from diffflux.regions.polygons import parse_vertices, rasterise_polygons


@dataclass(frozen=True)
class AR6Region:
    """One AR6 reference region.

    Attributes:
        acronym: region code, e.g. ``"EAS"``.
        name: long name, e.g. ``"E.Asia"``.
        continent: continent or ocean group of the source table, e.g. ``"ASIA"``.
        surface: ``"Land"``, ``"Land-Ocean"`` or ``"Ocean"``.
        parts: polygon parts, each ``(n, 2)`` ``(lon, lat)`` vertices [degrees].
    """

    acronym: str
    name: str
    continent: str
    surface: str
    parts: tuple[np.ndarray, ...]


@functools.cache
def ar6_regions() -> dict[str, AR6Region]:
    """Acronym -> :class:`AR6Region`, in the order of the source table."""
    text = resources.files("diffflux.data").joinpath("ar6_regions.csv").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    table: dict[str, dict] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        acr = row["acronym"]
        pts = parse_vertices(row["vertices"], where=f"diffflux/data/ar6_regions.csv, region {acr}")
        entry = table.setdefault(acr, dict(name=row["name"], continent=row["continent"],
                                           surface=row["surface"], parts=[]))
        entry["parts"].append(pts)
    return {k: AR6Region(k, v["name"], v["continent"], v["surface"], tuple(v["parts"]))
            for k, v in table.items()}


@functools.cache
def ar6_raster(acronym: str) -> tuple[np.ndarray, slice, slice] | None:
    """Raster window ``(mask, rows, cols)`` of one region on the packaged 1/12-degree raster."""
    return rasterise_polygons(list(ar6_regions()[acronym].parts))
