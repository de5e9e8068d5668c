"""Build the packaged geography raster ``src/diffflux/data/geography_5min.npz`` (developers only).

Not run at install or run time: the result is committed. It documents exactly how the packaged country
and land masks were derived, so they can be rebuilt or refined.

Inputs (obtain once, by hand):

* ``world-atlas`` 2.0.2 (the npm package, e.g. ``npm pack world-atlas@2.0.2`` and unpack the tarball;
  TopoJSON redistribution of Natural Earth 4.1.0 1:50m ``countries`` and ``land`` layers; Natural Earth is
  public domain, the TopoJSON packaging is ISC-licensed, Copyright 2013-2019 Michael Bostock),
* the ISO 3166-1 table ``iso3166-1.json`` of the Debian ``iso-codes`` project (as shipped in the
  ``pycountry`` wheel) for alpha-3 codes.

Method: decode the TopoJSON arcs (delta-encoded, quantised), then classify the centre of every cell of a
global 1/12-degree (5 arc-minute) raster, rows from south to north, columns from 180 W eastward, by a
scan-line even-odd fill over all rings of each country (so holes and enclaves are honoured). Cells whose
centre is in no country polygon have index 0. The land raster is the same fill of the ``land`` layer.

The rings are spherical: world-atlas keeps polygons that cross the antimeridian whole (Chukotka, Wrangel
Island, Fiji), jumping between +180 and -180 degrees, and the Antarctic coast is one ring round the South
Pole. Filled as plane polygons, each jump is an edge across the whole map and every row between its ends
swaps land and sea, and the Antarctic ring, closed straight across at 84.3 S, leaves out everything south
of it (the bug of the first build). So each ring is unwrapped in longitude, a ring round a pole is closed
along the pole, and crossings are counted on copies shifted by +-360 degrees (:func:`rasterise`); edges
cross a scan line under the half-open vertex rule. :func:`check_rasters` then checks the result (row to
row smoothness, the polar cap, global land area, land and country layers against each other) and the
build stops if a check fails.

Usage::

    python scripts/build_geography.py /path/to/world-atlas/package /path/to/iso3166-1.json
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

RES = 12  # cells per degree
NLAT, NLON = 180 * RES, 360 * RES

# Natural Earth units without an ISO 3166-1 numeric code: user-assigned alpha-3 codes (ISO 3166-1 reserves
# the X.. range for user assignment; XKX is the code the EU and IMF use for Kosovo).
UNASSIGNED = {
    "Kosovo": "XKX",
    "Somaliland": "XSL",
    "N. Cyprus": "XNC",
    "Indian Ocean Ter.": "XIO",
    "Siachen Glacier": "XSG",
}


def decode_arcs(topo: dict) -> list[np.ndarray]:
    """Absolute (lon, lat) coordinates of every TopoJSON arc."""
    scale = np.asarray(topo["transform"]["scale"])
    translate = np.asarray(topo["transform"]["translate"])
    arcs = []
    for arc in topo["arcs"]:
        q = np.cumsum(np.asarray(arc, dtype=np.float64), axis=0)
        arcs.append(q * scale + translate)
    return arcs


def ring_coords(ring: list[int], arcs: list[np.ndarray]) -> np.ndarray:
    """Stitch a ring from arc indices (negative index ``~i`` means arc ``i`` reversed)."""
    parts = []
    for k, index in enumerate(ring):
        a = arcs[index] if index >= 0 else arcs[~index][::-1]
        parts.append(a if k == 0 else a[1:])
    return np.concatenate(parts, axis=0)


def geometry_rings(geom: dict, arcs: list[np.ndarray]) -> list[np.ndarray]:
    if geom["type"] == "Polygon":
        polys = [geom["arcs"]]
    elif geom["type"] == "MultiPolygon":
        polys = geom["arcs"]
    else:
        return []
    return [ring_coords(r, arcs) for poly in polys for r in poly]


def unwrap_ring(ring: np.ndarray) -> tuple[np.ndarray, int]:
    """Make a spherical ring continuous in longitude; return it and its winding about the pole axis.

    TopoJSON rings that cross the antimeridian (Chukotka, Wrangel Island, Fiji, Antarctica) jump between
    +180 and -180 degrees; every step of more than 180 degrees is such a jump and is replaced by the short
    way round, so the unwrapped ring may extend past +-180. ``winding`` is the number of times the ring
    goes round the pole axis (0 for an ordinary ring; +-1 for a ring that encloses a pole, such as the
    Antarctic coast).
    """
    lon = ring[:, 0].copy()
    lon[0] = (lon[0] + 180.0) % 360.0 - 180.0
    step = np.diff(ring[:, 0])
    step -= 360.0 * np.round(step / 360.0)
    lon[1:] = lon[0] + np.cumsum(step)
    winding = int(np.round((lon[-1] - lon[0]) / 360.0))
    if np.array_equal(ring[0], ring[-1]):
        lon[-1] = lon[0] + 360.0 * winding  # exactly closed (or exactly 360 degrees round) again
    return np.column_stack([lon, ring[:, 1]]), winding


def close_polar_ring(ring: np.ndarray, winding: int) -> np.ndarray:
    """Close a ring that goes round a pole along that pole: down the meridian of its last vertex to the
    pole (the raster's south or north edge), along the pole back to the meridian of its first vertex
    (360 degrees away), and up to the first vertex. The enclosed pole is the one on the ring's side of the
    equator (Natural Earth's only such ring is the Antarctic coast)."""
    if winding == 0:
        return ring
    pole = -90.0 if ring[:, 1].mean() < 0.0 else 90.0
    cap = np.array([[ring[-1, 0], pole], [ring[0, 0], pole], ring[0]])
    return np.concatenate([ring, cap], axis=0)


def crossings(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and longitudes where the edges of ``ring`` cross the raster's row-centre latitudes.

    Half-open vertex rule: an edge from latitude ``y0`` to ``y1`` crosses the row-centre latitude ``y``
    when ``min(y0, y1) <= y < max(y0, y1)``, so a vertex exactly on a scan line is counted once (by one of
    its two edges, or by none or both where the ring only touches the line), and horizontal edges never.
    """
    (x0, y0), (x1, y1) = ring[:-1].T, ring[1:].T
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows j with lo <= -90 + (j + 0.5) / RES < hi
    j0 = np.ceil((lo + 90.0) * RES - 0.5).astype(np.int64)
    j1 = np.ceil((hi + 90.0) * RES - 0.5).astype(np.int64)
    j0, j1 = np.clip(j0, 0, NLAT), np.clip(j1, 0, NLAT)
    n = j1 - j0
    edge = np.repeat(np.arange(x0.size), n)
    row = np.repeat(j0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    y = -90.0 + (row + 0.5) / RES
    t = (y - y0[edge]) / (y1[edge] - y0[edge])
    x = x0[edge] + t * (x1[edge] - x0[edge])
    return row, x


def rasterise(rings: list[np.ndarray]) -> np.ndarray:
    """Even-odd fill of all raster cell centres by ``rings`` (one geometry); returns a bool raster.

    Scan-line fill on the sphere's longitude-latitude plane: each ring is unwrapped across the antimeridian
    (:func:`unwrap_ring`), a ring round a pole is closed along the pole (:func:`close_polar_ring`), and
    its crossings with every row-centre latitude are taken with the half-open vertex rule
    (:func:`crossings`). A cell is inside when an odd number of crossings of all rings together lie west
    of its centre; the crossings are counted on copies shifted by -360, 0 and +360 degrees, so the parts
    of an unwrapped ring beyond +-180 wrap onto the other edge of the raster (a copy entirely west of the
    raster adds an even count, one entirely east adds none). Holes and enclaves are honoured.
    """
    rows, xs = [], []
    for ring in rings:
        flat, winding = unwrap_ring(ring)
        if abs(winding) > 1:
            raise ValueError(f"ring winds {winding} times round the pole axis")
        closed = close_polar_ring(flat, winding)
        if not np.allclose(closed[0], closed[-1]):
            closed = np.concatenate([closed, closed[:1]], axis=0)
        row, x = crossings(closed)
        for shift in (-360.0, 0.0, 360.0):
            rows.append(row)
            xs.append(x + shift)
    if not rows:
        return np.zeros((NLAT, NLON), dtype=bool)
    row, x = np.concatenate(rows), np.concatenate(xs)
    # first column whose centre -180 + (i + 0.5) / RES lies east of x; toggles in column NLON fall off
    col = np.clip(np.floor((x + 180.0) * RES - 0.5).astype(np.int64) + 1, 0, NLON)
    toggles = np.bincount(row * (NLON + 1) + col, minlength=NLAT * (NLON + 1)).reshape(NLAT, NLON + 1)
    return (np.cumsum(toggles[:, :NLON] & 1, axis=1) & 1).astype(bool)


# Checks of the finished rasters. Adjacent 5-arc-minute rows of Natural Earth land differ in land fraction
# by at most 0.03; a row whose land and sea are swapped jumps by |1 - 2 f| (0.2 to 0.6 in the first
# build). The land layer's southernmost vertex is at 85.19 S (the Ross Ice Shelf grounding line), so the
# rows south of 85.25 S are all land. Reference land area: 148.94 M km2 for all land (CIA World Factbook)
# less the Antarctic ice shelves (1.56 M km2, Rignot et al. 2013, Science 341, 266) and the Caspian Sea
# (0.37 M km2), which Natural Earth's land layer leaves out (it keeps all other lakes as land).
MAX_ROW_STEP = 0.06
POLAR_CAP_LAT = -85.25
LAND_AREA_REF = 148.94e12 - 1.56e12 - 0.37e12  # [m2]
LAND_AREA_TOL = 0.01
MIN_ROW_AGREEMENT = 0.95  # share of cells in each row where land and "in some country" agree
EARTH_RADIUS = 6371.0088e3  # [m], IUGG mean radius (the areas quoted in data/README.md)


def row_cell_area() -> np.ndarray:
    """Area of one raster cell in each row ``(NLAT,)`` [m2]."""
    edges = np.deg2rad(np.linspace(-90.0, 90.0, NLAT + 1))
    return EARTH_RADIUS**2 * np.deg2rad(1.0 / RES) * np.diff(np.sin(edges))


def check_rasters(land: np.ndarray, index: np.ndarray) -> list[str]:
    """Consistency checks of the land and country rasters; returns the problems found (empty if none)."""
    problems = []
    lat = -90.0 + (np.arange(NLAT) + 0.5) / RES
    for name, mask in (("land", land), ("country", index > 0)):
        frac = mask.mean(axis=1)
        step = np.abs(np.diff(frac))
        for j in np.flatnonzero(step > MAX_ROW_STEP):
            problems.append(
                f"{name}: fraction jumps from {frac[j]:.3f} at {lat[j]:.3f} to {frac[j + 1]:.3f} at "
                f"{lat[j + 1]:.3f} (more than {MAX_ROW_STEP}: land and sea swapped along a row?)"
            )
        cap = lat < POLAR_CAP_LAT
        if not mask[cap].all():
            missing = int((~mask[cap]).sum())
            problems.append(f"{name}: {missing} cells south of {-POLAR_CAP_LAT} S unset (polar cap lost)")
    area = float((land.sum(axis=1) * row_cell_area()).sum())
    print(f"land area {area / 1e12:.2f} M km2 (reference {LAND_AREA_REF / 1e12:.2f})")
    if abs(area / LAND_AREA_REF - 1.0) > LAND_AREA_TOL:
        problems.append(
            f"land area {area / 1e12:.2f} M km2 is not within {100 * LAND_AREA_TOL:.0f} % of "
            f"{LAND_AREA_REF / 1e12:.2f} M km2"
        )
    agree = (land == (index > 0)).mean(axis=1)
    for j in np.flatnonzero(agree < MIN_ROW_AGREEMENT):
        problems.append(f"land and country layers agree in only {agree[j]:.3f} of the row at {lat[j]:.3f}")
    return problems


def main(atlas_dir: str, iso_json: str) -> None:
    atlas = Path(atlas_dir)
    iso = json.loads(Path(iso_json).read_text())["3166-1"]
    by_numeric = {int(c["numeric"]): c for c in iso}
    countries = json.loads((atlas / "countries-50m.json").read_text())
    arcs = decode_arcs(countries)
    index = np.zeros((NLAT, NLON), dtype=np.uint8)
    rows = []
    geoms = sorted(countries["objects"]["countries"]["geometries"], key=lambda g: g["properties"]["name"])
    for k, geom in enumerate(geoms, start=1):
        name = geom["properties"]["name"]
        if geom.get("id") is None:
            numeric, alpha3, iso_name = -1, UNASSIGNED[name], name
        else:
            numeric = int(geom["id"])
            alpha3 = by_numeric[numeric]["alpha_3"]
            iso_name = by_numeric[numeric].get("common_name", by_numeric[numeric]["name"])
        inside = rasterise(geometry_rings(geom, arcs))
        index[inside & (index == 0)] = k
        rows.append((k, alpha3, numeric, name, iso_name, int(inside.sum())))
        print(f"{k:3d} {alpha3} {name:30s} {inside.sum():8d} cells")
    land_topo = json.loads((atlas / "land-50m.json").read_text())
    land_arcs = decode_arcs(land_topo)
    land = np.zeros((NLAT, NLON), dtype=bool)
    for geom in land_topo["objects"]["land"]["geometries"]:
        land |= rasterise(geometry_rings(geom, land_arcs))
    problems = check_rasters(land, index)
    if problems:
        raise SystemExit("geography checks failed:\n  " + "\n  ".join(problems))
    out = Path(__file__).resolve().parents[1] / "src" / "diffflux" / "data"
    np.savez_compressed(
        out / "geography_5min.npz",
        country=index,
        land=np.packbits(land, axis=None),
        cells_per_degree=np.int32(RES),
    )
    with open(out / "countries.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "iso_a3", "iso_numeric", "natural_earth_name", "name"])
        for k, alpha3, numeric, name, iso_name, _ in rows:
            w.writerow([k, alpha3, numeric, name, iso_name])
    print("land cells", int(land.sum()), "country cells", int((index > 0).sum()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
