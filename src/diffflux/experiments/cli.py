"""``diffflux sensitivity CONFIG [--out DIR] [--quiet]``: scenarios, footprints and batched runs.

:func:`add_parser` adds the subcommand to the ``diffflux`` parser (its ``func`` is :func:`main`);
``python -m diffflux.experiments CONFIG`` runs the same without it. Exit codes: 0 success, 2 bad
configuration or missing file (the message names the file, the key path and what is allowed).
"""

from __future__ import annotations

import argparse
import sys

HELP = "scenarios (sink enhancement, soil uptake, phase-downs), adjoint footprints, batched runs"
DESCRIPTION = (
    "Run the scenarios of a sensitivity configuration (TOML) as one vmapped batch and one by one, "
    "report budget, station, column and burden changes (detectability when [posterior] is given), "
    "the adjoint gradients of the metrics (footprint maps, ranked parameter sensitivities) and the "
    "gradient's prediction of each scenario next to the forward run."
)


def _configure(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.add_argument("config", help="sensitivity configuration (TOML; see examples/sensitivity.toml)")
    sub.add_argument("--out", help="output directory (default: [outputs].directory of the config)")
    sub.add_argument("--quiet", action="store_true", help="no progress lines, only errors")
    sub.set_defaults(func=main)
    return sub


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sensitivity`` to the ``diffflux`` subcommands (``subparsers`` from ``add_subparsers``)."""
    return _configure(subparsers.add_parser("sensitivity", help=HELP, description=DESCRIPTION))


def main(args: argparse.Namespace) -> int:
    """Run ``args.config``; returns the exit code."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from diffflux.cli import _enable_cache
    from diffflux.experiments.config import ConfigError, load_sensitivity_config

    _enable_cache()
    say = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    try:
        cfg = load_sensitivity_config(args.config)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"diffflux sensitivity: error: {exc}", file=sys.stderr)
        return 2
    from diffflux.experiments.run import run_sensitivity

    say(f"{args.config}: {len(cfg.scenarios)} scenarios, {len(cfg.metrics)} metrics")
    try:
        run_sensitivity(cfg, args.out, progress=say)
    except ConfigError as exc:  # checks that need the built problem (e.g. metric records)
        print(f"diffflux sensitivity: error: {exc}", file=sys.stderr)
        return 2
    say(f"report: {(args.out or cfg.outputs.directory)}/report.md")
    return 0


def run(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m diffflux.experiments``)."""
    parser = _configure(
        argparse.ArgumentParser(prog="python -m diffflux.experiments", description=DESCRIPTION)
    )
    return main(parser.parse_args(argv))
