"""write_products and the report: every file, valid PNGs, the report from files alone, forward runs."""

from __future__ import annotations

import json
import re
import shutil
import struct

import pytest

from diffflux.products import ProductError, render_report, write_products

TWIN_FIGURES = {
    "flux_CO2_fossil.png",
    "flux_increment_CO2_nee.png",
    "flux_increment_CO2_ocean.png",
    "flux_increment_CH4_wetland.png",
    "stations_CO2.png",
    "stations_CH4.png",
    "satellite_residuals.png",
    "convergence.png",
    "budgets_CO2.png",
    "budgets_CH4.png",
    "parameters.png",
}


def png_size(path) -> tuple[int, int]:
    """Width and height of a PNG (signature and IHDR checked); the image must also decode."""
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    with Image.open(path) as im:
        im.load()
        assert im.size == (w, h)
    return w, h


def test_all_products_written(twin_products):
    out, paths = twin_products
    expected = {
        "fluxes.nc",
        "observations.nc",
        "parameters.csv",
        "budgets.csv",
        "history.csv",
        "summary.json",
        "config.toml",
        "report.md",
        "report.html",
    } | {f"plots/{f}" for f in TWIN_FIGURES}
    assert set(paths) == expected
    for rel, p in paths.items():
        assert p == out / rel and p.is_file() and p.stat().st_size > 0, rel
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_pngs_valid_and_sensible(twin_products):
    out, _ = twin_products
    for name in TWIN_FIGURES:
        w, h = png_size(out / "plots" / name)
        assert 500 <= w <= 2500 and 300 <= h <= 2500, (name, w, h)
        assert (out / "plots" / name).stat().st_size > 10_000, name  # not a blank canvas


def test_summary_json_and_config(twin_products, twin_record):
    out, _ = twin_products
    doc = json.loads((out / "summary.json").read_text())
    assert doc["mode"] == "twin" and doc["title"] == twin_record.title
    assert doc["summary"]["dofs"] == twin_record.summary["dofs"]
    assert doc["command"] == "diffflux run test.toml"
    assert (out / "config.toml").read_text() == twin_record.config_toml


def test_report_content(twin_products):
    out, paths = twin_products
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for text in (
        "converged",
        "iterations",
        "reduced chi-square",
        "degrees of freedom for signal",
        "37.2",
        "error reduction",
        "wall time",
    ):
        assert text in md and text in html, text
    nee = next(ln for ln in md.splitlines() if ln.startswith("| CO2 | globe | nee |"))  # the budget table
    assert nee.count("±") == 2 and "%" in nee
    for rel in paths:
        assert f"]({rel})" in md, rel  # a link to every file and every figure
        assert f'href="{rel}"' in html, rel
    for name in TWIN_FIGURES:
        assert f'<img src="plots/{name}"' in html
        assert f"](plots/{name})" in md
    # plain HTML without external assets
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "<link" not in html
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_forward_run_report(tmp_path, forward_record):
    paths = write_products(forward_record, tmp_path, command="diffflux forward cfg.toml")
    figures = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert figures == {
        "flux_CO2_fossil.png",
        "flux_CO2_nee.png",
        "flux_CO2_ocean.png",
        "flux_CH4_wetland.png",
        "stations_CO2.png",
        "stations_CH4.png",
        "satellite_residuals.png",
        "budgets_CO2.png",
        "budgets_CH4.png",
    }
    for f in figures:
        png_size(tmp_path / "plots" / f)
    assert "parameters.csv" not in paths and "history.csv" not in paths
    md = (tmp_path / "report.md").read_text()
    assert "forward run" in md and "mode: forward" in md
    assert "| CO2 | globe | nee |" in md
    assert "posterior χ²/n" in md  # the observation table is there, with empty posterior columns


def test_report_from_files_alone(tmp_path, twin_products):
    """``diffflux report``: delete the figures and reports, render again from the files on disk."""
    src, _ = twin_products
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    shutil.rmtree(out / "plots")
    (out / "report.md").unlink()
    (out / "report.html").unlink()
    (out / "plots").mkdir()
    (out / "plots" / "stale_figure.png").write_bytes(b"old")
    html = render_report(out, replot=True)
    assert html == out / "report.html" and (out / "report.md").is_file()
    assert {p.name for p in (out / "plots").glob("*.png")} == TWIN_FIGURES  # stale figure removed
    for name in TWIN_FIGURES:
        png_size(out / "plots" / name)
    assert (out / "report.md").read_text().count("![") == len(TWIN_FIGURES)


def test_report_without_replot_uses_existing_figures(tmp_path, forward_record):
    write_products(forward_record, tmp_path, plots=False)
    assert not list(tmp_path.rglob("*.png"))
    md = (tmp_path / "report.md").read_text()
    assert "No figures" in md
    render_report(tmp_path, replot=False)
    assert "No figures" in (tmp_path / "report.md").read_text()


def test_report_refuses_other_folders(tmp_path):
    with pytest.raises(ProductError, match="does not exist"):
        render_report(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ProductError, match="is it a diffflux output folder"):
        render_report(tmp_path)


def test_reused_folder_drops_products_of_the_earlier_run(tmp_path, twin_record, forward_record):
    write_products(twin_record, tmp_path, plots=False)
    assert (tmp_path / "parameters.csv").exists() and (tmp_path / "history.csv").exists()
    paths = write_products(forward_record, tmp_path, plots=False)
    assert not (tmp_path / "parameters.csv").exists() and not (tmp_path / "history.csv").exists()
    listed = set(re.findall(r"\]\(([^)]+)\)", (tmp_path / "report.md").read_text()))
    assert listed == set(paths)
