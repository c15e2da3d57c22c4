#!/usr/bin/env bash
# cpu_step_table.sh: issue 13's CPU table in one run: bench_model's training step (fp32 and QAT, MiniLM and
# BERT-base shapes) against the PyTorch peer in the same run, with the OpenBLAS core chosen at start and, at 2 layers,
# with the generic core (what Debian's OpenBLAS picked on CPUs it did not know). Prints markdown; logs in OUT.
# usage: bench/cpu_step_table.sh [OUT] [STEPS]      (OUT: out/cpu_step_table, STEPS: 3)
# QB_TORCH_PYTHON names the peer's python (default python3); threads: OMP_NUM_THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -*) sed -n '2,6s/^# \{0,1\}//p' "$0" >&2; exit 2 ;; esac
out=${1:-out/cpu_step_table}
steps=${2:-3}
exe=build/bench/bench_model
[ -x "$exe" ] || { echo "cpu_step_table: $exe: not built (meson setup build && ninja -C build)" >&2; exit 1; }
export QB_SOURCE_ROOT=$PWD QB_TORCH_PYTHON=${QB_TORCH_PYTHON:-python3} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$out"
version=$(build/programs/qat-train --version)
best=$(sed -n 's/^BLAS core: \([A-Za-z0-9_]*\).*/\1/p' <<<"$version")
generic=$(sed -n 's/^BLAS cores this CPU runs: \([A-Za-z0-9_]*\).*/\1/p' <<<"$version")

# row LABEL CORE ARGS...: one bench_model run, one table row
row() {
  local label=$1 core=$2 log
  shift 2
  log="$out/$(tr -c 'A-Za-z0-9\n' _ <<<"$label").log"
  OPENBLAS_CORETYPE=$core "$exe" --steps "$steps" "$@" >"$log" 2>&1 || { echo "cpu_step_table: $label failed (see $log)" >&2; exit 1; }
  local ours peer
  ours=$(sed -n 's/^qdqbert .*: *\([0-9.]*\) ms\/step.*/\1/p' "$log")
  peer=$(sed -n 's/^pytorch .*: *\([0-9.]*\) ms\/step.*/\1/p' "$log")
  [ -n "$ours" ] && [ -n "$peer" ] || { echo "cpu_step_table: $label: no step times in $log" >&2; exit 1; }
  awk -v l="$label" -v c="$core" -v o="$ours" -v p="$peer" 'BEGIN { printf "| %s | %s | %.0f | %.0f | %.2fx |\n", l, c, o, p, p / o }'
}

sed -n 's/^CPU: //p' <<<"$version"
grep '^BLAS' <<<"$version"
echo "threads $OMP_NUM_THREADS, median of $steps steps, wall ms/step, the peer in the same run: $("$QB_TORCH_PYTHON" -c 'import torch; print("torch", torch.__version__)')"
echo
echo "| step | OpenBLAS core | ours ms | PyTorch ms | ours faster by |"
echo "|---|---|---|---|---|"
for config in minilm base; do
  row "$config fp32" "$best" --config "$config" --quant 0
  row "$config QAT" "$best" --config "$config" --quant 1
done
if [ -n "$generic" ] && [ "$generic" != "$best" ]; then
  for config in minilm base; do
    row "$config fp32, 2 layers" "$generic" --config "$config" --quant 0 --layers 2
    row "$config QAT, 2 layers" "$generic" --config "$config" --quant 1 --layers 2
    row "$config fp32, 2 layers" "$best" --config "$config" --quant 0 --layers 2
    row "$config QAT, 2 layers" "$best" --config "$config" --quant 1 --layers 2
  done
fi
