"""The ``diffflux`` command line.

Subcommands: ``demo`` (the embedded default run), ``verify`` (the transport verification suite),
``biosphere`` (the biosphere model for a year on the built-in climatology), ``info`` (devices,
backend, precision, versions). Exit codes: 0 success, 1 a check failed,
2 bad usage or bad input.
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


def _cmd_demo(args: argparse.Namespace) -> int:
    _enable_cache()
    from diffflux.demo import run_demo

    run_demo(out=args.out, days=args.days, resolution=args.resolution, levels=args.levels,
             float64=args.float64, progress=(lambda s: print(s, flush=True)))
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

    d = sub.add_parser("demo", help="run the embedded default (built-in climatology, no files)",
                       description="Forward transport of SF6, CO2 and CH4 tracers on the built-in "
                                   "climatology; writes netCDF and a summary into --out.")
    d.add_argument("--out", default="diffflux_out", help="output folder (default: %(default)s)")
    d.add_argument("--days", type=float, default=30.0, help="simulated days (default: %(default)s)")
    d.add_argument("--resolution", default="4x5", help="'4x5', '2x2.5', '8x10' ... (default: %(default)s)")
    d.add_argument("--levels", default="L10", help="level set L10/L25/L47 (default: %(default)s)")
    d.add_argument("--float64", action="store_true", help="run in float64 (default float32)")
    d.set_defaults(func=_cmd_demo)

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

    i = sub.add_parser("info", help="devices, JAX backend, precision and versions")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"diffflux {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
