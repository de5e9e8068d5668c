"""Small CSV products: ``parameters.csv`` (scalar controls) and ``history.csv`` (the minimisation's history).

Numbers are written with a fixed format (``repr``-exact ``.17g`` would be noise; ``.10g`` keeps the
convergence curve and parameters well beyond their accuracy) and empty cells for unknown values, so the
same record gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from diffflux.products.atomic import write_text
from diffflux.products.record import ParameterRecord

PARAMETER_COLUMNS = ("name", "prior", "prior_sigma", "posterior", "posterior_sigma", "truth")
HISTORY_COLUMNS = ("iteration", "cost", "grad_norm")
_FMT = "{:.10g}"


def _fmt(x) -> str:
    if x is None:
        return ""
    x = float(x)
    return "" if math.isnan(x) else _FMT.format(x)


def _csv(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _read(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(v) -> float | None:
    return None if v in (None, "") else float(v)


def write_parameters_csv(par: ParameterRecord, path: str | os.PathLike) -> Path:
    """Write ``parameters.csv`` (one row per parameter, :data:`PARAMETER_COLUMNS`) atomically."""
    cols = {
        c: (None if getattr(par, c) is None else np.asarray(getattr(par, c), dtype=np.float64))
        for c in PARAMETER_COLUMNS[1:]
    }
    rows = [
        [name] + [_fmt(None if cols[c] is None else cols[c][i]) for c in PARAMETER_COLUMNS[1:]]
        for i, name in enumerate(par.names)
    ]
    return write_text(path, _csv(PARAMETER_COLUMNS, rows))


def read_parameters_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``parameters.csv``: ``name`` and numbers (None where unknown)."""
    return [{k: (v if k == "name" else _num(v)) for k, v in r.items()} for r in _read(path)]


def write_history_csv(history: dict, path: str | os.PathLike) -> Path:
    """Write ``history.csv`` atomically: :data:`HISTORY_COLUMNS`, then any other 1-D arrays of the
    history."""
    keys = [k for k in HISTORY_COLUMNS if k in history] + sorted(set(history) - set(HISTORY_COLUMNS))
    arrays = [np.asarray(history[k]).ravel() for k in keys]
    n = len(arrays[0]) if arrays else 0
    rows = [
        [(str(int(a[i])) if k == "iteration" else _fmt(a[i])) for k, a in zip(keys, arrays)] for i in range(n)
    ]
    return write_text(path, _csv(keys, rows))


def read_history_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Columns of a ``history.csv`` as float arrays (NaN where empty)."""
    rows = _read(path)
    if not rows:
        return {}
    return {k: np.array([np.nan if r[k] == "" else float(r[k]) for r in rows]) for k in rows[0]}
