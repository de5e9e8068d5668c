"""``budgets.csv``: regional budgets (region x period x component) in reporting units, and table helpers.

Columns (:data:`COLUMNS`, the keys of :attr:`diffflux.products.RunRecord.budgets` rows): ``region,
period_start, period_end, component, species, unit, prior, posterior, prior_sigma, posterior_sigma,
truth``. Numbers are written with :data:`FLOAT_FORMAT` (the same
text for the same number on every platform); unknown values are empty cells. Rows are sorted by species,
region (the order of :func:`diffflux.regions.region_names`: globe, land, ocean, hemispheres, latitude
bands, AR6 regions ..., then other names alphabetically), period and component, so two writes of the same
budgets give the same bytes.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from diffflux.products.atomic import write_text

COLUMNS = (
    "region",
    "period_start",
    "period_end",
    "component",
    "species",
    "unit",
    "prior",
    "posterior",
    "prior_sigma",
    "posterior_sigma",
    "truth",
)
NUMBERS = ("prior", "prior_sigma", "posterior", "posterior_sigma", "truth")
FLOAT_FORMAT = "{:.6g}"
MAIN_REGIONS = ("globe", "land", "ocean", "NH", "SH", "lat:90S-30S", "lat:30S-30N", "lat:30N-90N")
"""Regions the report shows when the budgets have them."""


@functools.cache
def _region_rank() -> dict[str, int]:
    from diffflux.regions import region_names

    return {name: k for k, name in enumerate(region_names())}


def _number(v) -> float | None:
    if v is None or v == "":
        return None
    x = float(v)
    return None if math.isnan(x) else x


def format_number(v) -> str:
    """:data:`FLOAT_FORMAT` text of a number; ``""`` for None or NaN."""
    x = _number(v)
    return "" if x is None else FLOAT_FORMAT.format(x)


def sort_rows(rows: Iterable[dict]) -> list[dict]:
    """Budget rows in the file order (stable: equal keys keep their input order)."""
    rank = _region_rank()

    def key(r):
        region = str(r.get("region", ""))
        return (
            str(r.get("species", "")),
            rank.get(region, len(rank)),
            region,
            str(r.get("period_start", "")),
            str(r.get("period_end", "")),
            str(r.get("component", "")),
        )

    return sorted(rows, key=key)


def budgets_csv_text(rows: Iterable[dict]) -> str:
    """The ``budgets.csv`` text of ``rows`` (missing keys are empty cells; extra keys are refused)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sort_rows(rows):
        extra = sorted(set(r) - set(COLUMNS))
        if extra:
            raise ValueError(
                f"budgets.csv: unknown column(s) {extra} in row {r}; columns are {list(COLUMNS)}"
            )
        w.writerow(
            [
                format_number(r.get(c)) if c in NUMBERS else str(r.get(c) if r.get(c) is not None else "")
                for c in COLUMNS
            ]
        )
    return buf.getvalue()


def write_budgets_csv(rows: Iterable[dict], path: str | os.PathLike) -> Path:
    """Write ``budgets.csv`` atomically; returns the path."""
    return write_text(path, budgets_csv_text(rows))


def read_budgets_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``budgets.csv`` (numbers as float, unknown values as None)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (_number(v) if k in NUMBERS else v) for k, v in r.items()} for r in rows]


def error_reduction(row: dict) -> float | None:
    """``1 - posterior_sigma / prior_sigma`` of a budget row (None when either is unknown)."""
    a, b = _number(row.get("prior_sigma")), _number(row.get("posterior_sigma"))
    if a is None or b is None or a <= 0:
        return None
    return 1.0 - b / a


def window_rows(rows: Sequence[dict]) -> list[dict]:
    """The rows of the longest period of each species (the whole window when budgets were made for it)."""
    best: dict[str, tuple[str, str]] = {}
    for r in rows:
        sp, span = str(r["species"]), (str(r["period_start"]), str(r["period_end"]))
        cur = best.get(sp)
        if cur is None or _span(span) > _span(cur):
            best[sp] = span
    return [r for r in rows if (str(r["period_start"]), str(r["period_end"])) == best[str(r["species"])]]


def _span(period: tuple[str, str]) -> float:
    try:
        return float((np.datetime64(period[1]) - np.datetime64(period[0])) / np.timedelta64(1, "s"))
    except ValueError:
        return 0.0


def main_regions(rows: Sequence[dict], limit: int = 8) -> list[str]:
    """Regions to show: :data:`MAIN_REGIONS` that the rows have, else the first ``limit`` in file order."""
    have = list(dict.fromkeys(str(r["region"]) for r in rows))
    main = [r for r in MAIN_REGIONS if r in have]
    return main or have[:limit]


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells is escaped)."""

    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in body]
    return "\n".join(lines)


def budget_table(
    rows: Sequence[dict], regions: Sequence[str] | None = None, digits: int = 3
) -> tuple[list[str], list[list[str]]]:
    """Header and body of the report's budget table: the window period, the given (default: main) regions.

    Columns: species, region, component, period, prior +- sigma, posterior +- sigma, error reduction
    (``1 - sigma_post / sigma_prior``), truth, unit.
    """
    rows = window_rows(sort_rows(rows))
    regions = list(regions) if regions is not None else main_regions(rows)
    header = [
        "species",
        "region",
        "component",
        "period",
        "prior",
        "posterior",
        "error reduction",
        "truth",
        "unit",
    ]

    def pm(v, s) -> str:
        v, s = _number(v), _number(s)
        if v is None:
            return ""
        return f"{v:.{digits}g}" + ("" if s is None else f" ± {s:.{digits - 1}g}")

    body = []
    for r in rows:
        if str(r["region"]) not in regions:
            continue
        er = error_reduction(r)
        truth = _number(r.get("truth"))
        body.append(
            [
                str(r["species"]),
                str(r["region"]),
                str(r["component"]),
                f"{str(r['period_start'])[:10]} to {str(r['period_end'])[:10]}",
                pm(r.get("prior"), r.get("prior_sigma")),
                pm(r.get("posterior"), r.get("posterior_sigma")),
                "" if er is None else f"{100 * er:.0f} %",
                "" if truth is None else f"{truth:.{digits}g}",
                str(r.get("unit", "")),
            ]
        )
    return header, body


def budgets_markdown(rows: Sequence[dict], regions: Sequence[str] | None = None, digits: int = 3) -> str:
    """Markdown table of the budgets of the main (or given) regions over the window."""
    return markdown_table(*budget_table(rows, regions, digits))
