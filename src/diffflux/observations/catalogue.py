"""The packaged station catalogue ``diffflux/data/stations.csv``: real flask, in-situ, tower and TCCON sites.

Columns: ``id``, ``name``, ``latitude`` [degrees north], ``longitude`` [degrees east], ``elevation_m``
[m a.s.l., ground or instrument], ``inlet_height_m`` [m above ground; 0 for TCCON column sites],
``networks`` (``;``-separated: NOAA, GAW, ICOS, AGAGE, TCCON, NIES, JMA, KMA, CMA ...), ``type``
(``;``-separated: ``flask``, ``continuous``, ``tower``, ``tccon``), ``country`` and ``aliases``
(other ids, ``;``-separated). Sources and licence: ``diffflux/data/README.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from importlib import resources

import numpy as np
import xarray as xr

CATALOGUE_FILE = "stations.csv"


@dataclasses.dataclass(frozen=True)
class Station:
    """One catalogue entry (see module docstring for units)."""

    id: str
    name: str
    latitude: float
    longitude: float
    elevation_m: float
    inlet_height_m: float
    networks: tuple[str, ...]
    type: tuple[str, ...]
    country: str
    aliases: tuple[str, ...] = ()

    @property
    def sampling_altitude(self) -> float:
        """Intake altitude [m a.s.l.] = elevation + inlet height."""
        return self.elevation_m + self.inlet_height_m


@functools.lru_cache(maxsize=1)
def _stations() -> tuple[Station, ...]:
    text = resources.files("diffflux").joinpath("data", CATALOGUE_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    out = []
    for r in rows:
        out.append(
            Station(
                id=r["id"].strip(),
                name=r["name"].strip(),
                latitude=float(r["latitude"]),
                longitude=float(r["longitude"]),
                elevation_m=float(r["elevation_m"]),
                inlet_height_m=float(r["inlet_height_m"]),
                networks=tuple(x for x in r["networks"].split(";") if x),
                type=tuple(x for x in r["type"].split(";") if x),
                country=r["country"].strip(),
                aliases=tuple(x for x in (r.get("aliases") or "").split(";") if x),
            )
        )
    return tuple(out)


def station_ids() -> list[str]:
    """All catalogue ids in file order."""
    return [s.id for s in _stations()]


def get_station(site_id: str) -> Station:
    """Catalogue entry by id or alias (case-insensitive).

    Raises:
        KeyError: unknown id; the message lists the valid ids.
    """
    key = str(site_id).strip().upper()
    for s in _stations():
        if s.id.upper() == key or key in (a.upper() for a in s.aliases):
            return s
    raise KeyError(f"unknown station id {site_id!r}; valid ids: {', '.join(station_ids())}")


def load_station_catalogue(*, network: str | None = None, type: str | None = None) -> xr.Dataset:  # noqa: A002
    """The catalogue as an ``xarray.Dataset`` with dimension ``site`` (optionally filtered).

    Args:
        network: keep sites whose networks include this one (case-insensitive), e.g. ``"ICOS"``.
        type: keep sites of this type, e.g. ``"tower"`` or ``"tccon"``.

    Variables: ``name``, ``latitude`` [degrees_north], ``longitude`` [degrees_east], ``elevation``
    [m a.s.l.], ``inlet_height`` [m above ground], ``sampling_altitude`` [m a.s.l.], ``networks``, ``type``,
    ``country``; coordinate ``site`` (the ids).
    """
    st = [
        s
        for s in _stations()
        if (network is None or network.upper() in (n.upper() for n in s.networks))
        and (type is None or type.lower() in s.type)
    ]
    ds = xr.Dataset(
        {
            "name": ("site", np.array([s.name for s in st], dtype=str)),
            "latitude": ("site", np.array([s.latitude for s in st]), {"units": "degrees_north"}),
            "longitude": ("site", np.array([s.longitude for s in st]), {"units": "degrees_east"}),
            "elevation": (
                "site",
                np.array([s.elevation_m for s in st]),
                {"units": "m", "long_name": "height above sea level"},
            ),
            "inlet_height": (
                "site",
                np.array([s.inlet_height_m for s in st]),
                {"units": "m", "long_name": "above ground"},
            ),
            "sampling_altitude": ("site", np.array([s.sampling_altitude for s in st]), {"units": "m"}),
            "networks": ("site", np.array([";".join(s.networks) for s in st], dtype=str)),
            "type": ("site", np.array([";".join(s.type) for s in st], dtype=str)),
            "country": ("site", np.array([s.country for s in st], dtype=str)),
        },
        coords={"site": np.array([s.id for s in st], dtype=str)},
        attrs={"title": "diffflux station catalogue", "source": "see diffflux/data/README.md"},
    )
    return ds
