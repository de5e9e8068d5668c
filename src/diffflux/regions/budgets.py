"""Budgets: totals of a surface-flux field per region and period, in reporting units, with uncertainty.

For a flux ``F`` [mol m-2 s-1] on records ``t`` with durations ``d_t`` [s], a region mask ``m_r`` and cell
areas ``A``, the mean rate of region ``r`` over period ``p`` (a set of records) is

    ``T_rp = s * sum_t w_pt sum_xy m_r(x, y) A(x, y) F_t(x, y)``,   ``w_pt = d_t / sum_{t' in p} d_t'``

converted from mol s-1 to the species' reporting unit per year by ``s`` (:meth:`Species.flux_scale`;
PgC/yr for CO2, TgCH4/yr, TgN/yr for N2O, Gg/yr for HFCs and SF6). ``T = G vec(F)`` is linear, so given
the covariance ``C`` of ``vec(F)`` [(mol m-2 s-1)^2] the budget covariance is ``G C G^T`` and the 1-sigma
uncertainty its square-rooted diagonal. ``C`` may be a dense matrix ``(n, n)``, a diagonal (variances of
the flux's shape, or ``(n,)``), or a callable applying ``C`` to a vector of length ``n`` (a
matrix-free covariance operator, e.g. ``B^1/2 (B^1/2)^T`` of the inversion). ``vec`` flattens
``(time, lat, lon)`` in C order. The amount over the period (e.g. PgC) is ``T_rp`` times the period's
duration in years when durations are given.

This is reporting code: NumPy in, NumPy/xarray out, after the differentiable chain.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from diffflux.constants import SECONDS_PER_YEAR
from diffflux.grid import LatLonGrid
from diffflux.regions.masks import region, region_mask
from diffflux.species import Species, get_species


@dataclasses.dataclass(frozen=True, eq=False)
class Budget:
    """Regional totals.

    Attributes:
        species: the species.
        regions: region names ``(nreg,)``.
        periods: period labels ``(nper,)``.
        total: ``(nreg, nper)`` mean rate [``unit``, e.g. PgC/yr].
        sigma: ``(nreg, nper)`` 1-sigma uncertainty [``unit``] or None.
        covariance: ``(nreg * nper, nreg * nper)`` covariance [``unit``^2] of ``total`` flattened in C
            order (region-major), or None.
        duration: ``(nper,)`` length of each period [s] (None when record durations were not given).
        unit: reporting unit, e.g. ``"PgC/yr"``.
    """

    species: Species
    regions: tuple[str, ...]
    periods: tuple[str, ...]
    total: np.ndarray
    sigma: np.ndarray | None
    covariance: np.ndarray | None
    duration: np.ndarray | None
    unit: str

    @property
    def amount(self) -> np.ndarray | None:
        """``(nreg, nper)`` amount over each period [reporting mass, e.g. PgC] (None without
        durations)."""
        if self.duration is None:
            return None
        return self.total * (self.duration / SECONDS_PER_YEAR)[None, :]

    def rows(self) -> list[dict]:
        """One dict per (region, period): region, period, total, unit, and sigma/amount when known."""
        out = []
        for i, r in enumerate(self.regions):
            for j, p in enumerate(self.periods):
                row = {"region": r, "period": p, "total": float(self.total[i, j]), "unit": self.unit}
                if self.sigma is not None:
                    row["sigma"] = float(self.sigma[i, j])
                if self.duration is not None:
                    row["amount"] = float(self.amount[i, j])
                    row["amount_unit"] = self.species.amount_unit
                out.append(row)
        return out

    def to_csv(self, path) -> None:
        """Write :meth:`rows` as CSV (header line first)."""
        rows = self.rows()
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def to_dataset(self):
        """The budget as an ``xarray.Dataset`` with dims ``(region, period)``."""
        import xarray as xr

        data = {"total": (("region", "period"), self.total, {
            "units": self.unit, "long_name": f"mean {self.species.name} flux over region and period"})}
        if self.sigma is not None:
            data["sigma"] = (("region", "period"), self.sigma, {
                "units": self.unit, "long_name": "1-sigma uncertainty of total"})
        if self.duration is not None:
            data["amount"] = (("region", "period"), self.amount, {
                "units": self.species.amount_unit, "long_name": "amount over the period"})
            data["duration"] = (("period",), self.duration, {"units": "s"})
        return xr.Dataset(data, coords={"region": list(self.regions), "period": list(self.periods)},
                          attrs={"species": self.species.name})

    def __str__(self) -> str:
        lines = [f"{self.species.name} budget [{self.unit}]"]
        for row in self.rows():
            s = f"  {row['region']:<24} {row['period']:<12} {row['total']:12.5g}"
            if "sigma" in row:
                s += f" +/- {row['sigma']:.3g}"
            lines.append(s)
        return "\n".join(lines)


def _as_masks(grid: LatLonGrid, regions, surface, share) -> tuple[list[str], np.ndarray]:
    if isinstance(regions, Mapping):
        names = [str(k) for k in regions]
        masks = np.stack([np.asarray(v, dtype=np.float64) for v in regions.values()])
        if masks.shape[1:] != (grid.nlat, grid.nlon):
            raise ValueError(
                f"budget: custom region masks must have shape ({grid.nlat}, {grid.nlon}), found "
                f"{masks.shape[1:]}"
            )
        return names, masks
    regions = [regions] if isinstance(regions, str) else list(regions)
    if not regions:
        raise ValueError("budget: no regions given")
    names = [region(r).name for r in regions]
    return names, np.stack([region_mask(grid, r, surface=surface, share=share) for r in regions])


def _period_weights(ntime: int, durations, periods) -> tuple[list[str], np.ndarray]:
    """Labels and weights ``(nper, ntime)`` that sum to 1 over each period's records."""
    d = np.ones(ntime) if durations is None else np.asarray(durations, dtype=np.float64)
    if d.shape != (ntime,) or np.any(d <= 0):
        raise ValueError(f"budget: durations must be {ntime} positive values [s], found {d}")
    if periods is None:
        groups = {f"record {k}": [k] for k in range(ntime)} if ntime > 1 else {}
        groups["all"] = list(range(ntime))
    elif isinstance(periods, Mapping):
        groups = {str(k): list(np.atleast_1d(np.asarray(v)).ravel()) for k, v in periods.items()}
    else:
        raise TypeError("budget: periods must be None or a mapping label -> record indices")
    labels, rows = [], []
    for label, idx in groups.items():
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(int)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= ntime:
            raise ValueError(
                f"budget: period {label!r} must list record indices in 0..{ntime - 1}, found {idx.tolist()}"
            )
        w = np.zeros(ntime)
        w[idx] = d[idx]
        rows.append(w / w.sum())
        labels.append(label)
    return labels, np.stack(rows)


def budget(
    flux,
    grid: LatLonGrid,
    species: str | Species,
    regions: Sequence[str] | Mapping[str, np.ndarray] | str = ("globe",),
    *,
    durations=None,
    periods: Mapping[str, Sequence[int]] | None = None,
    covariance: np.ndarray | Callable | None = None,
    surface: str | None = None,
    share: str | None = None,
) -> Budget:
    """Totals of a flux field per region and period in the species' reporting unit.

    Args:
        flux: ``(time, nlat, nlon)`` or ``(nlat, nlon)`` surface flux [mol m-2 s-1] (positive = to the
            atmosphere).
        grid: model grid.
        species: name or :class:`~diffflux.species.Species` (sets the reporting unit).
        regions: region names (:mod:`diffflux.regions.masks`) or a mapping name -> mask ``(nlat, nlon)``.
        durations: ``(time,)`` record lengths [s] for time weighting (default equal); also gives
            :attr:`Budget.amount`.
        periods: mapping label -> record indices; default: each record and ``"all"``.
        covariance: covariance of ``vec(flux)`` (see the module docstring) or None.
        surface: None, ``"land"`` or ``"ocean"``: restrict named regions to land or sea.
        share: None, ``"land"`` or ``"ocean"``: weight cells by the share of their land (sea) area in
            the region (:func:`~diffflux.regions.masks.region_mask`); recommended for national budgets of
            land fluxes on coarse grids.

    Returns:
        :class:`Budget`.
    """
    sp = get_species(species)
    f = np.asarray(flux, dtype=np.float64)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3 or f.shape[1:] != (grid.nlat, grid.nlon):
        raise ValueError(
            f"budget: flux must be (time, {grid.nlat}, {grid.nlon}) or ({grid.nlat}, {grid.nlon}) "
            f"[mol m-2 s-1], found shape {np.shape(flux)}"
        )
    if not np.all(np.isfinite(f)):
        raise ValueError(f"budget: flux contains {int(np.sum(~np.isfinite(f)))} non-finite values")
    names, masks = _as_masks(grid, regions, surface, share)
    labels, w = _period_weights(f.shape[0], durations, periods)
    scale = sp.flux_scale  # reporting unit per (mol s-1)
    ma = masks * grid.area[None]  # (nreg, y, x) [m2]
    # per-record regional rates [mol s-1], then period means
    rec = np.einsum("rxy,txy->rt", ma, f)
    total = scale * rec @ w.T  # (nreg, nper)

    sigma = cov = None
    if covariance is not None:
        n = f.size
        nreg, nper = total.shape
        if callable(covariance):
            rows = [scale * np.einsum("t,rxy->rtxy", w[p], ma)[r].ravel()
                    for r in range(nreg) for p in range(nper)]
            applied = []
            for g in rows:
                cg = np.asarray(covariance(g), dtype=np.float64).ravel()
                if cg.shape != (n,):
                    raise ValueError(
                        f"budget: the covariance operator must map a vector of length {n} to one of "
                        f"the same length, returned shape {cg.shape}"
                    )
                applied.append(cg)
            cov = np.asarray(rows) @ np.asarray(applied).T
        else:
            c = np.asarray(covariance, dtype=np.float64)
            if c.shape in ((n,), f.shape, np.shape(flux)):  # diagonal: variances
                var = c.reshape(f.shape)
                h = np.einsum("rxy,sxy,txy->trs", ma, ma, var)
                cov = scale**2 * np.einsum("pt,qt,trs->rpsq", w, w, h).reshape(nreg * nper, nreg * nper)
            elif c.shape == (n, n):
                g = scale * np.einsum("pt,rxy->rptxy", w, ma).reshape(nreg * nper, n)
                cov = g @ c @ g.T
            else:
                raise ValueError(
                    f"budget: covariance must be a dense ({n}, {n}) matrix, variances of shape "
                    f"{f.shape} or ({n},), or a callable; found shape {c.shape}"
                )
        cov = 0.5 * (cov + cov.T)
        sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None)).reshape(nreg, nper)
    dur = None
    if durations is not None:
        d = np.asarray(durations, dtype=np.float64)
        dur = np.array([d[wp > 0].sum() for wp in w])
    return Budget(species=sp, regions=tuple(names), periods=tuple(labels), total=total, sigma=sigma,
                  covariance=cov, duration=dur, unit=sp.flux_unit)
