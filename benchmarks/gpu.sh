#!/usr/bin/env bash
# diffflux: prepared benchmark run for a GPU machine.
#
# Needs Python with JAX (CUDA build), NumPy, equinox, xarray, netCDF4 and pytest already installed;
# installs nothing and needs no network. Run from anywhere:
#
#     bash benchmarks/gpu.sh                 # results in benchmarks/results/gpu/
#     OUT=/some/dir bash benchmarks/gpu.sh   # results in $OUT
#
# Steps (each under its own time limit; the whole script stays under 8 minutes):
#   1. environment record (JAX version, backend, devices, nvidia-smi);
#   2. correctness on the device: the NumPy-reference agreement tests (float64, ~1e-12) and the
#      conservation / uniformity / checkpoint-agreement tests of the transport;
#   3. `python -m benchmarks --preset gpu`: bandwidth, transport throughput at 2x2.5, 1x1 and
#      0.5x0.5 degrees x 25 levels (float32 and float64), gradient/forward ratio and peak device memory
#      of a 200-step 1x1 L25 window with checkpoint None / step / nested;
#   4. biosphere model throughput at 4x5, 1x1 and 0.5x0.5 degrees (one year, daily step);
#   5. RESULTS.md rendered into the output directory.
# A stage that fails or runs out of time is recorded in gpu_sh.log and the script goes on; the exit
# status is non-zero if any stage failed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT_DIR="${OUT:-$REPO/benchmarks/results/gpu}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
PRESET="${GPU_SH_PRESET:-gpu}"   # (quick: a dry run of this script on a CPU)
export PYTHONPATH="$REPO/src:$REPO${PYTHONPATH:+:$PYTHONPATH}"
# every benchmark process allocates device memory on demand (the gradient variants run in separate
# processes, and the device-memory peaks must be their own)
export XLA_PYTHON_CLIENT_PREALLOCATE=false

TOTAL_BUDGET="${GPU_SH_BUDGET:-465}"   # seconds for the whole script
START=$(date +%s)
FAILED=()
LOG="$OUT_DIR/gpu_sh.log"
: > "$LOG"

log() { echo "[gpu.sh $(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

# stage NAME LIMIT_SECONDS COMMAND...: run under min(LIMIT, time left), output also into
# $OUT_DIR/NAME.txt; records failures and time-outs but never aborts the script
stage() {
    local name="$1" limit="$2"
    shift 2
    local left=$(( TOTAL_BUDGET - ($(date +%s) - START) ))
    if (( left < 20 )); then
        log "SKIP $name: only ${left}s of the budget left"
        FAILED+=("$name(skipped)")
        return 0
    fi
    (( limit > left )) && limit=$left
    log "START $name (limit ${limit}s)"
    local t0 rc=0
    t0=$(date +%s)
    # (pipefail: the status is timeout's unless tee itself fails)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.txt" || rc=$?
    if (( rc != 0 )); then
        if (( rc == 124 || rc == 137 )); then
            log "TIMEOUT $name after ${limit}s"
        else
            log "FAIL $name (exit $rc)"
        fi
        FAILED+=("$name")
    else
        log "DONE $name in $(( $(date +%s) - t0 ))s"
    fi
    return 0
}

# 1. environment ---------------------------------------------------------------------------------
if command -v nvidia-smi > /dev/null 2>&1; then
    nvidia-smi > "$OUT_DIR/nvidia-smi.txt" 2>&1 || true
fi
stage environment 60 "$PY" -c '
import sys, jax, numpy
print("python", sys.version.split()[0], "numpy", numpy.__version__, "jax", jax.__version__)
print("backend", jax.default_backend(), "devices", jax.devices())
if jax.default_backend() != "gpu":
    print("WARNING: JAX does not see a GPU; the figures will be CPU figures", file=sys.stderr)
'

# 2. correctness on the device ------------------------------------------------------------------
stage correctness 90 "$PY" -m pytest -q -x -p no:cacheprovider \
    tests/benchmarks/test_numpy_reference.py \
    tests/transport/test_advection.py tests/transport/test_run.py \
    -k "numpy_reference or conservation or closes_column or large_courant or checkpoint_variants"

# 3. benchmarks (each part writes its JSON incrementally into $OUT_DIR) ----------------------------
stage bandwidth 40 "$PY" -m benchmarks --preset "$PRESET" --out "$OUT_DIR" --only bandwidth
stage transport 170 "$PY" -m benchmarks --preset "$PRESET" --out "$OUT_DIR" --only transport
stage gradient 110 "$PY" -m benchmarks --preset "$PRESET" --out "$OUT_DIR" --only gradient
stage biosphere 60 "$PY" -m benchmarks --preset "$PRESET" --out "$OUT_DIR" --only biosphere

# 4. report (always, from whatever JSON exists) ---------------------------------------------------
timeout 30 "$PY" -m benchmarks --preset "$PRESET" --out "$OUT_DIR" --only report \
    || log "FAIL report"

log "finished in $(( $(date +%s) - START ))s; output in $OUT_DIR"
if (( ${#FAILED[@]} > 0 )); then
    log "failed or skipped stages: ${FAILED[*]}"
    exit 1
fi
