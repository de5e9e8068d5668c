"""The ``diffflux`` command line.

Subcommands: ``demo`` (the embedded default: a joint CO2 + CH4 twin inversion on the built-in
climatology and packaged network), ``run CONFIG`` (forward, twin or inversion as the config says),
``init`` (a commented example config), ``report OUTPUT_DIR`` (re-render the report and plots),
``verify`` (the transport verification suite), ``biosphere`` (the biosphere model for a year),
``tracers`` (forward tracer transport), ``sensitivity CONFIG`` (scenarios and adjoint sensitivities),
``info`` (devices, backend, precision, versions).

Exit codes (scripts can rely on them):
    0  success;
    1  finished, but a check failed or the solver stopped without converging (see summary.json);
    2  bad usage, bad configuration or bad input (nothing computed, or stopped at the bad input);
    3  an output or file-system error (folder not writable, disk full; no half-written files left);
    130 interrupted (Ctrl-C); the optimiser checkpoint lets the same command resume.
"""

from __future__ import annotations

import argparse
import sys


def _enable_cache() -> None:
    import os

    import jax

    cache = os.environ.get("DIFFFLUX_JAX_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "diffflux-jax"))
    try:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except Exception:  # pragma: no cover - option names differ in old jax
        pass


def _cmd_info(args: argparse.Namespace) -> int:
    import platform

    if getattr(args, "regions", False):
        from diffflux.regions import region_names

        print("\n".join(region_names()))
        return 0

    import jax
    import numpy as np

    import diffflux

    try:
        import equinox
        import optax
        import xarray

        extra = (f"equinox {equinox.__version__}, optax {optax.__version__}, "
                 f"xarray {xarray.__version__}")
    except Exception as exc:  # pragma: no cover
        extra = f"(optional packages missing: {exc})"
    print(f"diffflux {diffflux.__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(f"jax {jax.__version__}, numpy {np.__version__}, {extra}")
    print(f"backend: {jax.default_backend()}")
    print(f"devices: {', '.join(str(d) for d in jax.devices())}")
    print(f"process {jax.process_index()} of {jax.process_count()}")
    print(f"default float: {'float64' if jax.config.jax_enable_x64 else 'float32'} "
          "(set JAX_ENABLE_X64=1 for float64)")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    _enable_cache()
    from diffflux.verify import suite

    if args.list:
        for name in suite.CASES:
            print(name)
        return 0
    unknown = [n for n in (args.only or []) if n not in suite.CASES]
    if unknown:
        print(f"diffflux verify: unknown case(s) {unknown}; choose from {list(suite.CASES)}",
              file=sys.stderr)
        return 2
    results = suite.run_verification(quick=not args.full, only=args.only,
                                     progress=(lambda s: print(s, file=sys.stderr, flush=True)))
    print(suite.format_table(results))
    if args.json:
        suite.to_json(results, args.json)
        print(f"wrote {args.json}")
    failed = [r["name"] for r in results if r.get("passed") is False]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_tracers(args: argparse.Namespace) -> int:
    _enable_cache()
    from diffflux.demo import run_demo

    run_demo(out=args.out, days=args.days, resolution=args.resolution, levels=args.levels,
             float64=args.float64, progress=(lambda s: print(s, flush=True)))
    return 0


def _parse_set(items: list[str] | None) -> dict:
    """``--set section.key=value`` pairs; values are TOML (``3``, ``"4x5"``, ``[1, 2]``) or bare strings."""
    import tomllib

    out = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise _UsageError(f"--set expects section.key=value, found {item!r}")
        path, text = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[path.strip()] = value
    return out


class _UsageError(ValueError):
    pass


def _apply_overrides(cfg, overrides: dict):
    from diffflux.config import parse_config

    raw = {s: dict(v) for s, v in cfg.values.items()}
    for path, value in overrides.items():
        sec, key = path.split(".", 1)
        raw.setdefault(sec, {})[key] = value
    raw = {s: {k: ("none" if v is None else v) for k, v in d.items()} for s, d in raw.items()}
    return parse_config(raw, source=cfg.source + (" + --set" if overrides else ""))


def _run_config(cfg, args: argparse.Namespace, command: str) -> int:
    _enable_cache()
    from diffflux.workflow import run

    res = run(cfg, args.out, quiet=args.quiet, command=command, plots=False if args.no_plots else None)
    report = res.files.get("report.html") or res.files.get("report.md")
    if not args.quiet:
        print(f"status {res.status}; outputs in {res.outdir}" + (f"; report {report}" if report else ""))
    return 0 if res.converged else 1


def _demo_config(args: argparse.Namespace):
    from diffflux.config import default_config

    cfg = default_config()
    over = {"run.title": "diffflux demo: joint CO2 + CH4 twin inversion on the built-in climatology",
            "outputs.directory": "diffflux-demo",
            # the chain is nearly linear in the whitened control: Gauss-Newton/CG converges in a few outer
            # iterations and its Lanczos pairs give the posterior without a separate Hessian pass
            "solver.name": "gauss-newton", "solver.max_iter": 6}
    if args.days is not None:
        over["period.days"] = args.days
        over["fluxes.block_days"] = min(cfg["fluxes.block_days"], float(args.days))
    if args.resolution is not None:
        over["grid.resolution"] = args.resolution
    if args.float32:
        over["device.precision"] = "float32"
    if args.max_iter is not None:
        over["solver.max_iter"] = args.max_iter
    over.update(_parse_set(args.set))
    return _apply_overrides(cfg, over)


def _cmd_demo(args: argparse.Namespace) -> int:
    cfg = _demo_config(args)
    return _run_config(cfg, args, args.command_line)


def _cmd_run(args: argparse.Namespace) -> int:
    from diffflux.config import load_config

    cfg = load_config(args.config, _parse_set(args.set))
    return _run_config(cfg, args, args.command_line)


def _cmd_init(args: argparse.Namespace) -> int:
    import os

    from diffflux.config import example_toml

    path = args.path
    if os.path.exists(path) and not args.force:
        print(f"diffflux init: {path} exists; use --force to overwrite", file=sys.stderr)
        return 2
    from diffflux.products.atomic import atomic_write

    with atomic_write(path, "w") as f:
        f.write(example_toml())
    print(f"wrote {path}; edit it, then: diffflux run {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from diffflux.products import render_report

    path = render_report(args.output_dir, replot=not args.no_plots)
    print(f"wrote {path}")
    return 0


def _cmd_biosphere(args: argparse.Namespace) -> int:
    _enable_cache()
    from diffflux.models.biosphere.__main__ import main as biosphere_main

    argv = ["--resolution", args.resolution]
    argv += ["--float32"] if args.float32 else []
    argv += ["--json", args.json] if args.json else []
    argv += ["--netcdf", args.netcdf] if args.netcdf else []
    return biosphere_main(argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffflux",
        description="Differentiable inversion engine for greenhouse-gas fluxes (JAX).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp):
        sp.add_argument("--out", help="output folder (default: outputs.directory of the config)")
        sp.add_argument("--quiet", action="store_true", help="no live lines (the log file is still written)")
        sp.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
        sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config key, e.g. --set period.days=7 (repeatable)")

    d = sub.add_parser("demo", help="the embedded default: a joint CO2 + CH4 twin inversion, no files needed",
                       description="Twin experiment on the built-in climatology: a random truth of flux "
                                   "corrections, biosphere parameters, initial offsets and satellite biases "
                                   "is drawn from the prior, pseudo-observations at the packaged stations "
                                   "and along a satellite track are simulated with noise, and the joint "
                                   "inversion recovers it. Writes netCDF, CSV budgets, plots and a report "
                                   "into --out (default diffflux-demo). The config is `diffflux init`'s "
                                   "defaults with the Gauss-Newton solver.")
    common(d)
    d.add_argument("--days", type=int, help="window length [days] (default 14)")
    d.add_argument("--resolution", help="grid spacing DLATxDLON (default 10x12)")
    d.add_argument("--max-iter", type=int, help="Gauss-Newton outer iterations (default 6)")
    d.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    d.set_defaults(func=_cmd_demo)

    r = sub.add_parser("run", help="run a config file (forward, twin or inversion)",
                       description="Validate CONFIG (TOML; see `diffflux init` and docs/config.md), then "
                                   "run it and write the outputs. Re-running a killed inversion with the "
                                   "same command resumes from the optimiser checkpoint in the output folder.")
    r.add_argument("config", help="TOML configuration file")
    common(r)
    r.set_defaults(func=_cmd_run)

    n = sub.add_parser("init", help="write a fully commented example config",
                       description="Write every configuration key at its default, with its meaning, units "
                                   "and allowed values, as TOML.")
    n.add_argument("path", nargs="?", default="diffflux.toml", help="file to write (default: %(default)s)")
    n.add_argument("--force", action="store_true", help="overwrite an existing file")
    n.set_defaults(func=_cmd_init)

    rp = sub.add_parser("report", help="re-render the report and plots of an output folder",
                        description="Read the files of a finished run (netCDF, CSV, summary.json) and "
                                    "write report.md, report.html and the plots again.")
    rp.add_argument("output_dir", help="output folder of `diffflux run` or `diffflux demo`")
    rp.add_argument("--no-plots", action="store_true", help="do not re-draw the PNG plots")
    rp.set_defaults(func=_cmd_report)

    t = sub.add_parser("tracers", help="forward transport of SF6, CO2 and CH4 test tracers",
                       description="Forward transport of SF6, CO2 and CH4 tracers on the built-in "
                                   "climatology; writes netCDF and a summary into --out.")
    t.add_argument("--out", default="diffflux_tracers", help="output folder (default: %(default)s)")
    t.add_argument("--days", type=float, default=30.0, help="simulated days (default: %(default)s)")
    t.add_argument("--resolution", default="4x5", help="'4x5', '2x2.5', '8x10' ... (default: %(default)s)")
    t.add_argument("--levels", default="L10", help="level set L10/L25/L47 (default: %(default)s)")
    t.add_argument("--float64", action="store_true", help="run in float64 (default float32)")
    t.set_defaults(func=_cmd_tracers)

    v = sub.add_parser("verify", help="run the transport verification suite",
                       description="Standard test cases on the sphere, conservation, analytics, "
                                   "adjoint tests and the climatology's interhemispheric exchange time.")
    v.add_argument("--full", action="store_true", help="full resolutions (slow); default is quick")
    v.add_argument("--only", nargs="+", metavar="NAME", help="run only these cases (see --list)")
    v.add_argument("--list", action="store_true", help="list the case names and exit")
    v.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    v.set_defaults(func=_cmd_verify)

    b = sub.add_parser("biosphere", help="spin up and run the biosphere for a year; print global totals",
                       description="The VISIT-like biosphere on the built-in climatology: Newton spin-up to "
                                   "the cyclo-stationary state, one simulated year, global totals next to "
                                   "their literature ranges.")
    b.add_argument("--resolution", default="4x5", help="DLATxDLON in degrees (default: %(default)s)")
    b.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    b.add_argument("--json", metavar="PATH", help="write the totals as JSON")
    b.add_argument("--netcdf", metavar="PATH", help="write annual fields as netCDF")
    b.set_defaults(func=_cmd_biosphere)

    try:
        from diffflux.experiments.cli import add_parser as _add_sensitivity
    except ImportError:  # pragma: no cover - experiments package missing
        _add_sensitivity = None
    if _add_sensitivity is not None:
        _add_sensitivity(sub)

    i = sub.add_parser("info", help="devices, JAX backend, precision and versions")
    i.add_argument("--regions", action="store_true", help="list the region names budgets accept")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``diffflux`` console script; returns the exit code (module docstring)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    import shlex

    args.command_line = "diffflux " + " ".join(shlex.quote(a) for a in argv)
    from diffflux.config import ConfigError

    try:
        from diffflux.products import ProductError
    except ImportError:  # pragma: no cover
        ProductError = OSError  # noqa: N806
    from diffflux.workflow import RunError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"diffflux {args.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except (ConfigError, RunError, _UsageError) as exc:
        print(f"diffflux {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ProductError as exc:
        print(f"diffflux {args.command}: output error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"diffflux {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"diffflux {args.command}: file-system error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
