"""Output products of a run: CF-netCDF, CSV tables, JSON summary, figures and the report.

One call turns the in-memory :class:`RunRecord` of a run into files::

    check_output_dir(outdir)                      # before any computation: fails early, names the folder
    ...                                           # run
    paths = write_products(record, outdir, command="diffflux run config.toml")
    render_report(outdir)                         # later, from the files alone (``diffflux report``)

Files (every one written atomically: complete under its final name, or absent):

============================ ====================================================================
``fluxes.nc``                 gridded fluxes per species/component/role (:mod:`.netcdf`)
``observations.nc``           observation table, model equivalents, residuals (with observations)
``parameters.csv``            scalar controls (with parameters)
``budgets.csv``               regional budgets (with budgets; :mod:`.budgets`)
``history.csv``               cost and gradient norm per iteration (with a history)
``summary.json``              title, mode, version, time, command and the run's summary dict
``config.toml``               the full resolved configuration
``plots/*.png``               figures (:mod:`.plots`), drawn from the files above
``report.md``, ``report.html`` the report (:mod:`.report`), made from the files above
============================ ====================================================================

Products of an earlier run in the same folder that this record does not produce (say
``parameters.csv`` when the new run has no parameters) are removed, so the folder and its report always
describe one run.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from diffflux.products.atomic import ProductError, atomic_save, atomic_write, check_output_dir, write_text
from diffflux.products.budgets import budgets_markdown, read_budgets_csv, write_budgets_csv
from diffflux.products.cf import cf_check
from diffflux.products.netcdf import utc_now, write_fluxes, write_observations
from diffflux.products.plots import PLOTS_DIR, make_plots, plots_available
from diffflux.products.record import (
    FluxField,
    ObservationRecord,
    ParameterRecord,
    RunRecord,
    check_record,
)
from diffflux.products.report import render_report
from diffflux.products.tables import write_history_csv, write_parameters_csv

__all__ = [
    "FluxField",
    "ObservationRecord",
    "ParameterRecord",
    "ProductError",
    "RunRecord",
    "atomic_save",
    "atomic_write",
    "budgets_markdown",
    "cf_check",
    "check_output_dir",
    "check_record",
    "make_plots",
    "plots_available",
    "read_budgets_csv",
    "render_report",
    "write_products",
]

_OPTIONAL = ("observations.nc", "parameters.csv", "budgets.csv", "history.csv")


def _jsonable(v):
    """``v`` with NumPy scalars/arrays, datetimes and paths turned into JSON values (NaN/inf -> None)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, (_dt.datetime, _dt.date, np.datetime64)):
        return str(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    raise TypeError(f"summary.json: cannot store a value of type {type(v).__name__} ({v!r})")


def summary_document(record: RunRecord, *, created: str, command: str = "") -> dict:
    """The content of ``summary.json``."""
    from diffflux import __version__

    return {
        "title": record.title,
        "mode": record.mode,
        "diffflux_version": __version__,
        "created": created,
        "command": command,
        "summary": _jsonable(record.summary),
    }


def write_products(
    record: RunRecord, outdir: str | os.PathLike, *, plots: bool = True, command: str = ""
) -> dict[str, Path]:
    """Write every product of ``record`` into ``outdir`` (atomically, file by file).

    Args:
        record: the run.
        outdir: output folder (created if missing).
        plots: draw the figures (needs matplotlib; without it the figures are skipped with a warning and
            the report says so).
        command: the command line, recorded in the ``history`` attribute and ``summary.json``.

    Returns:
        ``{relative path: path}`` of every file written, e.g. ``"fluxes.nc"``, ``"plots/convergence.png"``,
        ``"report.html"``.

    Raises:
        ValueError: the record's arrays do not fit together (nothing is written).
        ProductError: the folder is not writable or a file could not be written (names it and the cause).
    """
    check_record(record)
    created = utc_now()
    doc = summary_document(record, created=created, command=command)  # refuses non-JSON values up front
    outdir = check_output_dir(outdir)
    out: dict[str, Path] = {}
    out["config.toml"] = write_text(outdir / "config.toml", record.config_toml)
    out["fluxes.nc"] = write_fluxes(record, outdir / "fluxes.nc", created=created, command=command)
    if record.observations is not None:
        out["observations.nc"] = write_observations(
            record, outdir / "observations.nc", created=created, command=command
        )
    if record.parameters is not None:
        out["parameters.csv"] = write_parameters_csv(record.parameters, outdir / "parameters.csv")
    if record.budgets:
        out["budgets.csv"] = write_budgets_csv(record.budgets, outdir / "budgets.csv")
    if record.history:
        out["history.csv"] = write_history_csv(record.history, outdir / "history.csv")
    out["summary.json"] = write_text(
        outdir / "summary.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    )
    for name in _OPTIONAL:
        if name not in out and (outdir / name).exists():
            (outdir / name).unlink()
    if plots and not plots_available():
        warnings.warn(
            "write_products: matplotlib is not installed, no figures drawn (pip install 'diffflux[plot]')",
            stacklevel=2,
        )
        plots = False
    if plots:
        for p in make_plots(outdir):
            out[f"{PLOTS_DIR}/{p.name}"] = p
    elif (outdir / PLOTS_DIR).is_dir():
        for old in (outdir / PLOTS_DIR).glob("*.png"):
            old.unlink()
    out["report.html"] = render_report(outdir, replot=False)
    out["report.md"] = outdir / "report.md"
    return out
