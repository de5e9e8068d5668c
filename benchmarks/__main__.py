"""``python -m benchmarks``: run the benchmarks and regenerate the Markdown report.

Default (full CPU sizes): JSON into ``benchmarks/results/``, report ``benchmarks/RESULTS.md``.
``--quick``: small sizes into ``benchmarks/results/quick/`` (report written there).
``--preset gpu``: the sizes of ``benchmarks/gpu.sh``. ``--out DIR``: JSON and ``RESULTS.md`` into
DIR. ``--only NAME`` (repeatable or comma-separated): ``bandwidth``, ``transport``, ``gradient``,
``gradient_window`` (the gradient against the window length),
``biosphere``, ``obs`` or ``report`` (only re-render the report from existing JSON).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.common import BENCH_DIR, DEFAULT_RESULTS, log

PARTS = (
    "bandwidth", "transport", "gradient", "gradient_window", "biosphere", "obs", "inversion", "scenarios",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--preset", choices=("quick", "full", "gpu"), help="size preset (default full)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="bandwidth | transport | gradient | gradient_window | biosphere | obs | inversion | "
        "scenarios | report (repeatable, comma-separated)",
    )
    parser.add_argument("--out", type=Path, help="directory for the JSON files and RESULTS.md")
    parser.add_argument("--mem-budget-gib", type=float, help="gradient: largest variant to execute")
    args = parser.parse_args(argv)

    preset = args.preset or ("quick" if args.quick else "full")
    only = [p.strip() for item in args.only for p in item.split(",") if p.strip()]
    unknown = [p for p in only if p not in PARTS + ("report",)]
    if unknown:
        parser.error(f"--only: unknown part(s) {unknown}; expected one of {PARTS + ('report',)}")
    parts = [p for p in PARTS if p in only] if only else list(PARTS)
    if args.out is not None:
        outdir, report_path = args.out, args.out / "RESULTS.md"
    elif preset == "full":
        outdir, report_path = DEFAULT_RESULTS, BENCH_DIR / "RESULTS.md"
    else:
        outdir = DEFAULT_RESULTS / preset
        report_path = outdir / "RESULTS.md"
    outdir.mkdir(parents=True, exist_ok=True)

    failed = []
    t0 = time.perf_counter()
    for part in parts:
        log(f"=== {part} (preset {preset}) -> {outdir}")
        try:
            if part == "bandwidth":
                from benchmarks import bandwidth

                bandwidth.main(outdir, preset=preset, quick=preset == "quick")
            elif part == "transport":
                from benchmarks import transport_bench

                transport_bench.main(outdir, preset=preset)
            elif part == "gradient":
                from benchmarks import gradient_bench

                budget = int(args.mem_budget_gib * 2**30) if args.mem_budget_gib else None
                gradient_bench.main(outdir, preset=preset, mem_budget=budget)
            elif part == "gradient_window":
                from benchmarks import gradient_bench

                budget = int(args.mem_budget_gib * 2**30) if args.mem_budget_gib else None
                gradient_bench.main(outdir, preset=preset, mem_budget=budget, window=True)
            elif part == "biosphere":
                from benchmarks import biosphere_bench

                biosphere_bench.main(outdir, preset=preset)
            elif part == "obs":
                from benchmarks import obs_bench

                obs_bench.main(outdir, preset="quick" if preset == "quick" else "full")
            elif part == "inversion":
                from benchmarks import inversion_bench

                inversion_bench.main(outdir, preset=preset)
            elif part == "scenarios":
                from benchmarks import scenario_bench

                scenario_bench.main(outdir, preset=preset)
        except Exception as exc:  # keep going: the other parts and the report are still useful
            log(f"{part} FAILED: {type(exc).__name__}: {exc}")
            failed.append(part)

    from benchmarks import report

    note = f"Preset `{preset}`."
    if parts:
        note += f" Wall time of the run that wrote it: {time.perf_counter() - t0:.0f} s."
    report_path.write_text(report.render(outdir, note) + "\n")
    log(f"report -> {report_path}")
    if failed:
        log(f"failed parts: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
