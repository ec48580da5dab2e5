#!/usr/bin/env bash
# The GPU runbook: on a machine with an NVIDIA GPU (CUDA 12 driver), from the repository root,
#
#     bash benchmarks/gpu_runbook.sh            # or: make gpu
#
# 1. installs spectral_sim with its CUDA extra into .venv (`pip install -e ".[dev,cuda]"`) and
#    checks that JAX sees the GPU;
# 2. runs `make bench` (the figures go to benchmarks/results/<host>.json);
# 3. runs every experiment at `--scale paper` with a limit of LIMIT seconds each (default 600)
#    and a chunk budget of 60 % of the GPU's memory (the paper sizes need more than the 2 GB
#    default), into results-paper/<name> (reports and figures); one past its limit is stopped,
#    keeps its finished sweep chunks, and is listed as such (rerun this script, or the printed
#    command, to continue it);
# 4. writes results-paper/RUNBOOK.md: the device, each experiment's wall time and outcome, and
#    the verdict counts of those that finished.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${LIMIT:-600}"
PYTHON="${PYTHON:-python3}"

make .venv/.installed PYTHON="$PYTHON"
.venv/bin/python -m pip install --quiet -e ".[dev,cuda]"
.venv/bin/python -c "import jax; d = jax.devices(); print(d); assert d[0].platform == 'gpu', d"

make bench

BUDGET=$(.venv/bin/python -c "import jax; m = jax.devices()[0].memory_stats() or {}; \
print(int(0.6 * m.get('bytes_limit', 2**31)))")
mkdir -p results-paper
log=results-paper/RUNBOOK.md
{
    echo "# GPU runbook: --scale paper, at most ${LIMIT} s per experiment"
    echo
    echo "- commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "- device: $(.venv/bin/python -c 'import jax; print(jax.devices()[0].device_kind)')"
    echo "- chunk budget: ${BUDGET} bytes per device"
    echo
    echo "| experiment | seconds | outcome |"
    echo "|---|---:|---|"
} > "$log"
for name in $(.venv/bin/python -c "from spectral_sim import registry; print(*registry.names())")
do
    start=$(date +%s)
    if timeout "$LIMIT" .venv/bin/spectral-sim run "$name" --scale paper \
        --chunk-budget "$BUDGET" --out "results-paper/$name" > "results-paper/$name.log" 2>&1; then
        outcome=$(grep -m1 -o "[0-9]* PASS.*INCONCLUSIVE" "results-paper/$name.log" || echo done)
    elif [ $? -eq 124 ]; then
        outcome="past ${LIMIT} s: stopped; continue with \`spectral-sim run $name --scale paper --chunk-budget $BUDGET --out results-paper/$name\`"
    else
        outcome="failed: see results-paper/$name.log"
    fi
    echo "| $name | $(( $(date +%s) - start )) | $outcome |" | tee -a "$log"
done
echo "written: $log, benchmarks/results/$(hostname).json"
