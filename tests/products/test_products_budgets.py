"""budgets.csv: columns, stable order, fixed number format, round trip; the Markdown table."""

from __future__ import annotations

import numpy as np
import pytest

from diffflux.products.budgets import (
    COLUMNS,
    budget_table,
    budgets_csv_text,
    budgets_markdown,
    error_reduction,
    read_budgets_csv,
    write_budgets_csv,
)


def _row(region, comp, start="2021-01-01T00:00:00", end="2021-04-01T00:00:00", **kw):
    base = {
        "region": region,
        "period_start": start,
        "period_end": end,
        "component": comp,
        "species": "CO2",
        "unit": "PgC/yr",
        "prior": 1.0,
        "posterior": None,
        "prior_sigma": 0.5,
        "posterior_sigma": None,
        "truth": None,
    }
    return base | kw


def test_csv_order_and_format():
    rows = [
        _row("ar6:WCE", "nee", prior=-0.123456789),
        _row("globe", "ocean", prior=-2.5, posterior=-2.25, posterior_sigma=0.25, truth=float("nan")),
        _row("globe", "nee", start="2021-02-01T00:00:00", end="2021-03-01T00:00:00", prior=1e-7),
        _row("globe", "nee"),
        _row("land", "nee", prior=3),
    ]
    text = budgets_csv_text(rows)
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    cells = [dict(zip(COLUMNS, ln.split(","))) for ln in lines[1:]]
    # globe before land before AR6 regions (region_names order); then period, then component
    assert [c["region"] for c in cells] == ["globe", "globe", "globe", "land", "ar6:WCE"]
    assert cells[0]["period_start"] == "2021-01-01T00:00:00" and cells[0]["component"] == "nee"
    assert cells[1]["component"] == "ocean"
    assert lines[2].endswith(",-2.5,-2.25,0.5,0.25,")  # NaN truth -> empty cell
    assert cells[4]["prior"] == "-0.123457"
    assert cells[2]["prior"] == "1e-07"
    # the order does not depend on the input order
    assert budgets_csv_text(rows[::-1]) == text


def test_csv_round_trip(tmp_path, twin_record):
    path = write_budgets_csv(twin_record.budgets, tmp_path / "budgets.csv")
    back = read_budgets_csv(path)
    assert len(back) == len(twin_record.budgets)
    assert list(back[0]) == list(COLUMNS)
    key = lambda r: (r["species"], r["region"], r["period_start"], r["period_end"], r["component"])  # noqa: E731
    orig = {key(r): r for r in twin_record.budgets}
    for r in back:
        o = orig[key(r)]
        for c in ("prior", "posterior", "prior_sigma", "posterior_sigma", "truth"):
            if o[c] is None:
                assert r[c] is None
            else:
                assert r[c] == pytest.approx(o[c], rel=1e-5)


def test_unknown_column_refused():
    with pytest.raises(ValueError, match="unknown column"):
        budgets_csv_text([_row("globe", "nee", colour="red")])


def test_error_reduction():
    assert error_reduction({"prior_sigma": 2.0, "posterior_sigma": 0.5}) == pytest.approx(0.75)
    assert error_reduction({"prior_sigma": 2.0, "posterior_sigma": None}) is None


def test_markdown_table_main_regions_window_only(twin_record):
    md = budgets_markdown(twin_record.budgets)
    lines = md.splitlines()
    assert lines[0].startswith("| species | region | component |")
    assert lines[1].startswith("|---|")
    body = [ln.split(" | ") for ln in lines[2:]]
    regions = {b[1] for b in body}
    assert regions == {"globe", "land", "ocean", "NH", "SH"}  # the AR6 region is not a main region
    assert {b[3] for b in body} == {"2021-01-01 to 2021-04-01"}  # the window, not the months
    nee_globe = next(b for b in body if b[0] == "| CO2" and b[1] == "globe" and b[2] == "nee")
    assert "±" in nee_globe[4] and "%" in nee_globe[6]
    header, rows = budget_table(twin_record.budgets, regions=["ar6:WCE"])
    assert {r[1] for r in rows} == {"ar6:WCE"} and len(header) == len(rows[0])
    assert np.all([len(r) == len(header) for r in rows])
