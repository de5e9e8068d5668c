"""Build the packaged geography raster ``src/diffflux/data/geography_5min.npz`` (developers only).

Not run at install or run time: the result is committed. It documents exactly how the packaged country
and land masks were derived, so they can be rebuilt or refined.

Inputs (obtain once, by hand):

* ``world-atlas`` 2.0.2 (the npm package; TopoJSON redistribution of Natural Earth 4.1.0 1:50m
  ``countries`` and ``land`` layers; Natural Earth is public domain, the TopoJSON packaging is ISC-licensed,
  Copyright 2013-2019 Michael Bostock),
* the ISO 3166-1 table ``iso3166-1.json`` of the Debian ``iso-codes`` project (as shipped in the
  ``pycountry`` wheel) for alpha-3 codes.

Method: decode the TopoJSON arcs (delta-encoded, quantised), then classify the centre of every cell of a
global 1/12-degree (5 arc-minute) raster, rows from south to north, columns from 180 W eastward, by the
even-odd rule over all rings of each country (so holes and enclaves are honoured). Cells whose centre is
in no country polygon have index 0. The land raster is the same test against the ``land`` layer.

Usage::

    python scripts/build_geography.py /path/to/world-atlas/package /path/to/iso3166-1.json
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.path import Path as MplPath

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


def rasterise(rings: list[np.ndarray]) -> np.ndarray:
    """Even-odd inside test of all raster cell centres against ``rings``; returns a bool raster."""
    inside = np.zeros((NLAT, NLON), dtype=bool)
    for ring in rings:
        lon0, lat0 = ring.min(axis=0)
        lon1, lat1 = ring.max(axis=0)
        j0 = max(int(np.floor((lat0 + 90.0) * RES - 0.5)), 0)
        j1 = min(int(np.ceil((lat1 + 90.0) * RES - 0.5)) + 1, NLAT)
        i0 = max(int(np.floor((lon0 + 180.0) * RES - 0.5)), 0)
        i1 = min(int(np.ceil((lon1 + 180.0) * RES - 0.5)) + 1, NLON)
        if j1 <= j0 or i1 <= i0:
            continue
        lat = -90.0 + (np.arange(j0, j1) + 0.5) / RES
        lon = -180.0 + (np.arange(i0, i1) + 0.5) / RES
        glon, glat = np.meshgrid(lon, lat)
        pts = np.column_stack([glon.ravel(), glat.ravel()])
        hit = MplPath(ring).contains_points(pts).reshape(glat.shape)
        inside[j0:j1, i0:i1] ^= hit
    return inside


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
