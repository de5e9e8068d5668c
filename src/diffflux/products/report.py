"""The run report (``report.md`` and ``report.html``), made from the files in an output folder only.

:func:`render_report` reads ``summary.json``, ``budgets.csv``, ``observations.nc``, ``history.csv``,
``parameters.csv`` and the figures in ``plots/`` (redrawing them from the files first with
``replot=True``), and writes a Markdown and a plain-HTML report (inline style, no external assets, images by
relative path): a summary table (status, iterations, wall time, cost, chi-square, DOFS, error reductions),
the budgets of the main regions over the window, observation statistics per species and sampling, every
figure with a one-line caption and a link to every file. It works for forward runs (no posterior) and
inversions alike; it is what ``diffflux report OUTPUT_DIR`` calls.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from diffflux.products.atomic import ProductError, write_text
from diffflux.products.budgets import budget_table, markdown_table, read_budgets_csv

FILE_CAPTIONS = {
    "fluxes.nc": "gridded fluxes per species and component: prior, posterior, truth and 1-sigma "
    "uncertainties (CF-1.8 netCDF, mol m-2 s-1)",
    "observations.nc": "observation table with observed values, model equivalents, errors and residuals "
    "(CF-1.8 netCDF, mol mol-1)",
    "budgets.csv": "regional budgets per period and component in reporting units (prior, posterior, "
    "uncertainties, truth)",
    "parameters.csv": "scalar controls (biosphere parameters ...): prior, posterior, uncertainties, truth",
    "history.csv": "minimisation history: cost and gradient norm per iteration",
    "summary.json": "run summary and diagnostics (machine-readable)",
    "config.toml": "the full resolved configuration of the run",
    "report.md": "this report (Markdown)",
    "report.html": "this report (HTML)",
}

SUMMARY_LABELS = {
    "status": "status",
    "message": "solver message",
    "iterations": "iterations",
    "wall_time_s": "wall time [s]",
    "wall_time": "wall time",
    "n_obs": "observations used",
    "n_controls": "control-vector elements",
    "cost_prior": "cost at the prior",
    "cost_posterior": "cost at the posterior",
    "reduced_chi_square": "reduced chi-square 2J/m",
    "chi2": "chi-square",
    "chi_square": "chi-square",
    "dofs": "degrees of freedom for signal",
    "error_reduction": "error reduction 1 − σpost/σprior",
    "error_reductions": "error reduction 1 − σpost/σprior",
}
"""Labels of the summary keys the report knows; other keys are listed under their own names, after these."""


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def summary_rows(summary: dict) -> list[list[str]]:
    """``[label, value]`` rows of a run summary: known keys first (in :data:`SUMMARY_LABELS` order), then the
    others in their order; mappings become one row per entry (``error reduction: nee``)."""
    keys = [k for k in SUMMARY_LABELS if k in summary] + [k for k in summary if k not in SUMMARY_LABELS]
    rows = []
    for k in keys:
        label, v = SUMMARY_LABELS.get(k, k), summary[k]
        if isinstance(v, dict):
            rows += [[f"{label}: {sub}", _fmt(x)] for sub, x in v.items()]
        else:
            rows.append([label, _fmt(v)])
    return rows


def observation_rows(obs) -> tuple[list[str], list[list[str]]]:
    """Per species and sampling: count, then mean and RMS of observed-minus-model at the prior and the
    posterior, and chi-square per observation at the posterior, in the species' reporting unit."""
    from diffflux.products.plots import mixing_ratio_display

    header = [
        "species",
        "sampling",
        "records",
        "unit",
        "prior mean (y−Hx)",
        "prior RMS",
        "posterior mean (y−Hx)",
        "posterior RMS",
        "posterior χ²/n",
    ]
    sp = obs["species"].values.astype(str)
    samp = obs["sampling"].values.astype(str) if "sampling" in obs else np.full(sp.size, "")
    body = []
    for s, m in sorted(set(zip(sp, samp))):
        sel = (sp == s) & (samp == m)
        scale, unit = mixing_ratio_display(s)
        row = [s, m or "–", str(int(sel.sum())), unit]
        for role in ("prior", "posterior"):
            key = f"residual_{role}"
            if key in obs:
                r = obs[key].values[sel] / scale
                row += [f"{np.mean(r):+.3g}", f"{np.sqrt(np.mean(r**2)):.3g}"]
            else:
                row += ["–", "–"]
        if "residual_posterior" in obs and "sigma" in obs:
            z = obs["residual_posterior"].values[sel] / obs["sigma"].values[sel]
            row.append(f"{np.mean(z**2):.3g}")
        else:
            row.append("–")
        body.append(row)
    return header, body


def _html_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in body)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.6em 0 1.2em}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:0.92em}th{background:#f2f2f2}figure{margin:1.2em 0}img{max-width:100%;
border:1px solid #ddd}figcaption{font-size:0.9em;color:#444}code,pre{background:#f6f6f6}
pre{padding:0.6em;overflow-x:auto;font-size:0.85em}"""


class _Doc:
    """A report built once and rendered as Markdown and as HTML."""

    def __init__(self, title: str):
        self.md = [f"# {title}", ""]
        self.html = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str) -> None:
        self.md += [f"## {text}", ""]
        self.html.append(f"<h2>{html.escape(text)}</h2>")

    def para(self, text: str) -> None:
        self.md += [text, ""]
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, header, body) -> None:
        self.md += [markdown_table(header, body), ""]
        self.html.append(_html_table(header, body))

    def figure(self, rel: str, cap: str) -> None:
        self.md += [f"![{cap}]({rel})", "", f"*{cap}* ([{rel}]({rel}))", ""]
        r, c = html.escape(rel, quote=True), html.escape(cap)
        self.html.append(
            f'<figure><a href="{r}"><img src="{r}" alt="{c}"></a><figcaption>{c}</figcaption></figure>'
        )

    def links(self, items: Sequence[tuple[str, str, str]]) -> None:
        self.md += [f"- [{rel}]({rel}) ({size}): {cap}" for rel, size, cap in items] + [""]
        li = "".join(
            f'<li><a href="{html.escape(rel, quote=True)}">{html.escape(rel)}</a> ({html.escape(size)}): '
            f"{html.escape(cap)}</li>"
            for rel, size, cap in items
        )
        self.html.append(f"<ul>{li}</ul>")

    def code(self, text: str, summary: str) -> None:
        self.md += ["```toml", text.rstrip("\n"), "```", ""]
        self.html.append(
            f"<details><summary>{html.escape(summary)}</summary><pre><code>{html.escape(text)}"
            "</code></pre></details>"
        )

    def markdown(self) -> str:
        return "\n".join(self.md).rstrip("\n") + "\n"

    def to_html(self, title: str) -> str:
        body = "\n".join(self.html)
        return (
            f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}'
            f"</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )


def _size(path: Path) -> str:
    n = path.stat().st_size if path.exists() else 0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return ""  # pragma: no cover


def _product_files(outdir: Path) -> list[Path]:
    files = [p for p in outdir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (len(p.relative_to(outdir).parts), str(p.relative_to(outdir))))


def render_report(outdir: str | os.PathLike, replot: bool = True) -> Path:
    """Write ``report.md`` and ``report.html`` in ``outdir`` from the files there; returns the HTML path.

    Args:
        outdir: a diffflux output folder (holding at least ``summary.json`` or ``fluxes.nc``).
        replot: redraw the figures from the files first (:func:`diffflux.products.plots.make_plots`);
            otherwise the figures already in ``plots/`` are shown.

    Raises:
        ProductError: the folder is missing or holds no diffflux products, or a report file cannot be
            written.
    """
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise ProductError(f"report: output folder {str(outdir)!r} does not exist", outdir)
    if not (outdir / "summary.json").exists() and not (outdir / "fluxes.nc").exists():
        raise ProductError(
            f"report: {str(outdir)!r} holds neither summary.json nor fluxes.nc; is it a diffflux output "
            "folder?",
            outdir,
        )
    if replot:
        from diffflux.products.plots import make_plots

        make_plots(outdir)
    meta = {}
    if (outdir / "summary.json").exists():
        try:
            meta = json.loads((outdir / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProductError(
                f"report: cannot read {str(outdir / 'summary.json')!r}: {exc}", outdir / "summary.json", exc
            ) from exc
    title = str(meta.get("title", "diffflux run"))
    doc = _Doc(title)
    facts = [
        f"mode: {meta.get('mode', 'unknown')}",
        f"diffflux {meta.get('diffflux_version', '?')}",
        f"written {meta.get('created', '?')}",
    ]
    if meta.get("command"):
        facts.append(f"command: {meta['command']}")
    doc.para("; ".join(facts))

    doc.heading("Summary")
    rows = summary_rows(meta.get("summary", {}))
    if rows:
        doc.table(["quantity", "value"], rows)
    else:
        doc.para("No summary diagnostics were recorded.")

    if (outdir / "budgets.csv").exists():
        brows = read_budgets_csv(outdir / "budgets.csv")
        if brows:
            doc.heading("Budgets (main regions, whole window)")
            doc.table(*budget_table(brows))
            doc.para(
                "Mean rates over the period in reporting units, ± 1 sigma; error reduction "
                "1 − σpost/σprior. All regions and periods: budgets.csv."
            )

    if (outdir / "observations.nc").exists():
        from diffflux.products.netcdf import read_dataset

        obs = read_dataset(outdir / "observations.nc")
        doc.heading("Observations")
        doc.table(*observation_rows(obs))

    from diffflux.products.plots import caption, figure_order

    figures = (
        sorted((outdir / "plots").glob("*.png"), key=figure_order) if (outdir / "plots").is_dir() else []
    )
    doc.heading("Figures")
    if figures:
        for p in figures:
            doc.figure(p.relative_to(outdir).as_posix(), caption(p))
    else:
        doc.para("No figures (plots were not drawn; run `diffflux report` with matplotlib installed).")

    doc.heading("Files")
    files = {p.relative_to(outdir).as_posix(): p for p in _product_files(outdir)}
    for name in ("report.md", "report.html"):
        files.setdefault(name, outdir / name)
    items = []
    for rel, p in files.items():
        if p.suffix == ".png":
            cap = "figure: " + caption(p)
        else:
            cap = FILE_CAPTIONS.get(rel, "")
        items.append((rel, "this report" if rel in ("report.md", "report.html") else _size(p), cap))
    doc.links(items)

    if (outdir / "config.toml").exists():
        doc.heading("Configuration")
        doc.code(
            (outdir / "config.toml").read_text(encoding="utf-8"),
            "config.toml (the full resolved configuration)",
        )
    write_text(outdir / "report.md", doc.markdown())
    return write_text(outdir / "report.html", doc.to_html(title))
