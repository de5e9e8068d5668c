"""Observation-error model ``R``: measurement uncertainty plus model-data mismatch by site class.

Per observation ``i`` (diagonal ``R``, uncorrelated errors)::

    R_ii = sigma_meas,i^2 + sigma_mdm(class_i, species_i)^2            [(mol mol-1)^2]

``sigma_meas`` is the table's ``uncertainty`` (instrument/retrieval); ``sigma_mdm`` the model-data mismatch
(representation and transport error) of the record's *site class* from :data:`MISMATCH_TABLE`, the usual
practice of CarbonTracker (Peters et al. 2007, PNAS 104, table S3: 0.75 ppm marine boundary layer,
2.5-3 ppm continental, 3 ppm and more for "difficult" sites), CAMS/TM5-4DVar (Basu et al. 2013, ACP 13)
and the IMI (Varon et al. 2022, GMD 15: TROPOMI XCH4 ~ 15 ppb single-sounding). The defaults:

=========================  ==================  ==================  ========================================
class                      CO2 [ppm]           CH4 [ppb]           assigned to
=========================  ==================  ==================  ========================================
``remote_flask``           0.5                 5                   flask/continuous records at remote,
``remote_continuous``      0.75                7                   marine or high-altitude sites
``continental_flask``      2.0                 15                  flasks at continental sites
``continental_continuous`` 3.0                 25                  hourly in-situ at continental sites
``tower``                  2.0                 20                  tall towers (``sampling="tower"``)
``aircraft``               1.0                 10                  aircraft profiles
``satellite``              1.5 (XCO2)          12 (XCH4)           satellite columns (``kind="column"``)
``tccon``                  0.8 (XCO2)          7 (XCH4)            ground-based columns (``sampling="tccon"``)
=========================  ==================  ==================  ========================================

Other species fall back to ``1 %`` of a typical background (:data:`FALLBACK_FRACTION`) unless the table
gives them. A site is *remote* when less than :data:`REMOTE_LAND_SHARE` of the sphere within ~5 degrees
of it is land (packaged Natural Earth raster) or it sits above :data:`MOUNTAIN_ALTITUDE` (free troposphere);
otherwise *continental*.

``R^-1/2`` is applied as a diagonal scaling (:meth:`ObservationError.whiten`). Temporal error correlation
of continuous records (e.g. exponential in lag, as CarbonTracker-Europe/ICOS inversions use) is not
modelled here: continuous records are best thinned or averaged to super-observations
(:func:`diffflux.observations.aggregate`) before they enter ``R``.
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

PPM = 1e-6
PPB = 1e-9

MISMATCH_TABLE: dict[str, dict[str, float]] = {
    "remote_flask": {"CO2": 0.5 * PPM, "CH4": 5.0 * PPB},
    "remote_continuous": {"CO2": 0.75 * PPM, "CH4": 7.0 * PPB},
    "continental_flask": {"CO2": 2.0 * PPM, "CH4": 15.0 * PPB},
    "continental_continuous": {"CO2": 3.0 * PPM, "CH4": 25.0 * PPB},
    "tower": {"CO2": 2.0 * PPM, "CH4": 20.0 * PPB},
    "aircraft": {"CO2": 1.0 * PPM, "CH4": 10.0 * PPB},
    "satellite": {"CO2": 1.5 * PPM, "CH4": 12.0 * PPB},
    "tccon": {"CO2": 0.8 * PPM, "CH4": 7.0 * PPB},
}
"""Default model-data mismatch 1-sigma [mol mol-1] by site class and species (see the module docstring)."""

SITE_CLASSES: tuple[str, ...] = tuple(MISMATCH_TABLE)
REMOTE_LAND_SHARE = 0.3
"""A site with less land than this within ~5 degrees is remote [1]."""
MOUNTAIN_ALTITUDE = 2500.0
"""Sites sampling above this altitude [m a.s.l.] are remote (free troposphere)."""
FALLBACK_FRACTION = 0.01
"""Mismatch for species missing from the table: this fraction of a typical background mole fraction."""
_BACKGROUND = {"N2O": 335e-9, "CO": 90e-9, "SF6": 11e-12, "HFC-134a": 120e-12, "HFC-32": 25e-12,
               "HFC-125": 40e-12, "BC": 1e-9, "NOX": 1e-9}


def land_share_around(lat, lon, radius_deg: float = 5.0, n: int = 9) -> np.ndarray:
    """Share of land [1] on an ``n x n`` lattice of points within ``radius_deg`` of each site."""
    from diffflux.observations.osse import is_land

    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    off = np.linspace(-radius_deg, radius_deg, n)
    dla, dlo = np.meshgrid(off, off, indexing="ij")
    la = np.clip(lat[:, None] + dla.ravel()[None], -89.99, 89.99)
    lo = lon[:, None] + dlo.ravel()[None] / np.maximum(np.cos(np.deg2rad(la)), 0.2)
    return is_land(la.ravel(), lo.ravel()).reshape(la.shape).mean(axis=1)


def classify(table) -> np.ndarray:
    """Site class (one of :data:`SITE_CLASSES`) of every record of an observation table.

    Rules: columns -> ``"tccon"`` if ``sampling == "tccon"`` else ``"satellite"``; ``sampling`` ``"aircraft"``
    and ``"tower"`` -> those classes; other point records (flask, continuous, anything else: flask if the
    sampling is ``"flask"``) -> ``remote_*`` or ``continental_*`` by the land share around the site and the
    sampling altitude (module docstring).
    """
    from diffflux.observations.table import OBS_DIM

    n = table.sizes[OBS_DIM]
    kind = table["kind"].values.astype(str)
    sampling = np.char.lower(table["sampling"].values.astype(str))
    lat = table["latitude"].values
    lon = table["longitude"].values
    alt = np.nan_to_num(table["altitude"].values, nan=0.0)
    out = np.empty(n, dtype=object)
    col = kind == "column"
    out[col & (sampling == "tccon")] = "tccon"
    out[col & (sampling != "tccon")] = "satellite"
    pts = ~col
    out[pts & (sampling == "aircraft")] = "aircraft"
    out[pts & (sampling == "tower")] = "tower"
    rest = pts & (sampling != "aircraft") & (sampling != "tower")
    if rest.any():
        # one land-share evaluation per distinct site position
        key = np.round(np.stack([lat[rest], lon[rest]], 1), 4)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        share = land_share_around(uniq[:, 0], uniq[:, 1])[np.ravel(inv)]
        remote = (share < REMOTE_LAND_SHARE) | (alt[rest] > MOUNTAIN_ALTITUDE)
        flask = sampling[rest] == "flask"
        cls = np.where(remote, np.where(flask, "remote_flask", "remote_continuous"),
                       np.where(flask, "continental_flask", "continental_continuous"))
        out[rest] = cls
    return out.astype(str)


def mismatch(classes, species, table: Mapping[str, Mapping[str, float]] | None = None) -> np.ndarray:
    """Model-data mismatch 1-sigma [mol mol-1] per record from its class and species."""
    from diffflux.species import get_species

    tab = MISMATCH_TABLE if table is None else table
    classes = np.asarray(classes).astype(str)
    species = np.asarray(species).astype(str)
    out = np.empty(classes.size)
    for c in np.unique(classes):
        if c not in tab:
            raise KeyError(f"mismatch: unknown site class {c!r}; classes: {sorted(tab)}")
        for s in np.unique(species[classes == c]):
            name = get_species(s).name
            sel = (classes == c) & (species == s)
            if name in tab[c]:
                out[sel] = tab[c][name]
            elif name.upper() in _BACKGROUND or name in _BACKGROUND:
                out[sel] = FALLBACK_FRACTION * _BACKGROUND.get(name, _BACKGROUND.get(name.upper()))
            else:
                raise KeyError(f"mismatch: no model-data mismatch for species {name!r} in class {c!r}")
    return out


class ObservationError(eqx.Module):
    """Diagonal observation-error covariance ``R = diag(sigma^2)``.

    Attributes:
        sigma: ``(nobs,)`` total 1-sigma [mol mol-1], ``sqrt(sigma_meas^2 + sigma_mdm^2)``, > 0.
        class_index: ``(nobs,)`` int index into ``class_names`` (-1: unknown), for reporting.
        class_names: the site classes present (static, short).
    """

    sigma: jax.Array
    class_index: jax.Array | None = None
    class_names: tuple[str, ...] = eqx.field(static=True, default=())

    def __check_init__(self):
        s = np.asarray(self.sigma)
        if s.ndim != 1 or s.size == 0:
            raise ValueError(
                f"ObservationError: sigma must be a non-empty (nobs,) array, found shape {s.shape}"
            )
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            bad = np.flatnonzero(~(np.isfinite(s) & (s > 0)))
            raise ValueError(
                f"ObservationError: sigma must be finite and > 0; bad records {bad[:10].tolist()}"
            )

    @classmethod
    def from_table(cls, table, *, mismatch_table=None, measurement: bool = True,
                   scale: float = 1.0, dtype=jnp.float64) -> ObservationError:
        """``R`` for an observation table: ``sigma^2 = uncertainty^2 + mdm(class, species)^2`` (times
        ``scale^2``); ``measurement=False`` uses the mismatch alone (e.g. when the table's uncertainty is
        already a total)."""
        classes = classify(table)
        mdm = mismatch(classes, table["species"].values, mismatch_table)
        meas = table["uncertainty"].values.astype(np.float64) if measurement else 0.0
        sigma = scale * np.sqrt(meas**2 + mdm**2)
        names, index = np.unique(classes, return_inverse=True)
        return cls(sigma=jnp.asarray(sigma, dtype), class_index=jnp.asarray(np.ravel(index), jnp.int32),
                   class_names=tuple(str(c) for c in names))

    @property
    def classes(self) -> np.ndarray:
        """Site class of every record (``"?"`` where unknown)."""
        if self.class_index is None:
            return np.full(self.nobs, "?")
        names = np.array(list(self.class_names) + ["?"])
        idx = np.asarray(self.class_index)
        return names[np.where(idx >= 0, idx, len(self.class_names))]

    @property
    def nobs(self) -> int:
        return int(self.sigma.shape[0])

    @property
    def variance(self) -> jax.Array:
        """Diagonal of ``R`` [(mol mol-1)^2]."""
        return self.sigma**2

    def whiten(self, r):
        """``R^-1/2 r`` (``r`` [mol mol-1], ``(nobs,)``) -> dimensionless."""
        return r / self.sigma

    def matvec(self, r):
        """``R r``."""
        return self.sigma**2 * r

    def summary(self) -> dict[str, dict[str, float]]:
        """Per class: number of records and the median sigma [mol mol-1]."""
        s = np.asarray(self.sigma)
        cls = self.classes
        return {str(c): {"n": int((cls == c).sum()), "median_sigma": float(np.median(s[cls == c]))}
                for c in np.unique(cls)}
