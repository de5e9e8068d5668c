"""Polygons in longitude-latitude -> masks on the packaged 1/12-degree raster (NumPy only).

A raster cell is inside a polygon when its centre is, by the even-odd rule with straight edges in the
longitude-latitude plane (the convention of the AR6 reference regions' published vertex lists and of
``regionmask``). The test runs row by row over the polygon's bounding box: the crossings of the row's
centre latitude with the polygon edges are sorted and a cell is inside when an odd number of crossings
lie west of its centre. An edge from ``(x0, y0)`` to ``(x1, y1)`` crosses the row at latitude ``y`` when
``min(y0, y1) <= y < max(y0, y1)`` (half-open, so vertices on the row are counted once).

Masks are aggregated to model grids by :func:`diffflux.geography.aggregate_raster` (exact overlap
areas), which gives fractional masks whose area is that of the rasterised polygon.
"""

from __future__ import annotations

import numpy as np

from diffflux.geography import raster_centres


def parse_vertices(text: str, *, where: str = "") -> np.ndarray:
    """``"lon lat;lon lat;..."`` -> ``(n, 2)`` vertices [degrees]."""
    try:
        pts = np.asarray([[float(v) for v in p.split()] for p in text.split(";") if p.strip()])
    except ValueError as exc:
        raise ValueError(f"{where}: cannot parse polygon vertices {text[:60]!r}...: {exc}") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 3:
        raise ValueError(f"{where}: a polygon needs >= 3 'lon lat' vertices, found {pts.shape}")
    return pts


def rasterise_polygons(parts: list[np.ndarray]) -> tuple[np.ndarray, slice, slice] | None:
    """Even-odd rasterisation of the union of non-overlapping polygon parts on the packaged raster.

    Args:
        parts: polygons as ``(n, 2)`` arrays of ``(lon, lat)`` vertices [degrees], lon in [-180, 180].

    Returns:
        ``(mask, rows, cols)``: a boolean window of the raster and its row/column slices, or None when no
        cell centre is inside.
    """
    lat_c, lon_c = raster_centres()
    allpts = np.concatenate(parts)
    r0 = int(np.searchsorted(lat_c, allpts[:, 1].min(), side="left"))
    r1 = int(np.searchsorted(lat_c, allpts[:, 1].max(), side="right"))
    c0 = int(np.searchsorted(lon_c, allpts[:, 0].min(), side="left"))
    c1 = int(np.searchsorted(lon_c, allpts[:, 0].max(), side="right"))
    if r1 <= r0 or c1 <= c0:
        return None
    xs = lon_c[c0:c1]
    mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    for pts in parts:
        x0, y0 = pts[:, 0], pts[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
        dy = np.where(y1 != y0, y1 - y0, 1.0)
        for r in range(r0, r1):
            y = lat_c[r]
            hit = (ylo <= y) & (y < yhi)
            if not hit.any():
                continue
            xc = np.sort(x0[hit] + (y - y0[hit]) * (x1[hit] - x0[hit]) / dy[hit])
            mask[r - r0] ^= (np.searchsorted(xc, xs, side="left") % 2) == 1
    if not mask.any():
        return None
    return mask, slice(r0, r1), slice(c0, c1)
