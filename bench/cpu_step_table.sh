#!/usr/bin/env bash
# cpu_step_table.sh: issue 13's CPU table in one run: bench_model's training step (fp32 and QAT, MiniLM and
# BERT-base shapes) against the PyTorch peer in the same run, with the CPU's default GEMM (oneDNN's sgemm where built)
# and, at 2 layers, with OpenBLAS's sgemm on the generic core (what Debian's OpenBLAS picked on CPUs it did not know)
# and on the core chosen at start. Prints markdown; logs in OUT.
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
default_gemm=$(QB_CPU_GEMM= build/programs/qat-train --version | sed -n 's/^CPU fp32 GEMM: \(.* sgemm\) .*/\1/p')

# row LABEL GEMM CORE ARGS...: one bench_model run (QB_CPU_GEMM=GEMM, OPENBLAS_CORETYPE=CORE), one table row
row() {
  local label=$1 gemm=$2 core=$3 log
  shift 3
  log="$out/$(tr -c 'A-Za-z0-9\n' _ <<<"$label $gemm $core").log"
  QB_CPU_GEMM=$gemm OPENBLAS_CORETYPE=$core "$exe" --steps "$steps" "$@" >"$log" 2>&1 || { echo "cpu_step_table: $label failed (see $log)" >&2; exit 1; }
  local ours peer
  ours=$(sed -n 's/^qdqbert .*: *\([0-9.]*\) ms\/step.*/\1/p' "$log")
  peer=$(sed -n 's/^pytorch .*: *\([0-9.]*\) ms\/step.*/\1/p' "$log")
  [ -n "$ours" ] && [ -n "$peer" ] || { echo "cpu_step_table: $label: no step times in $log" >&2; exit 1; }
  local lib=$default_gemm
  [ "$gemm" = openblas ] && lib="OpenBLAS $core"
  awk -v l="$label" -v c="$lib" -v o="$ours" -v p="$peer" 'BEGIN { printf "| %s | %s | %.0f | %.0f | %.2fx |\n", l, c, o, p, p / o }'
}

sed -n 's/^CPU: //p' <<<"$version"
grep '^BLAS\|^CPU fp32 GEMM' <<<"$version"
echo "threads $OMP_NUM_THREADS, median of $steps steps, wall ms/step, the peer in the same run: $("$QB_TORCH_PYTHON" -c 'import torch; print("torch", torch.__version__)')"
echo
echo "| step | our sgemm | ours ms | PyTorch ms | ours faster by |"
echo "|---|---|---|---|---|"
for config in minilm base; do
  row "$config fp32" default "$best" --config "$config" --quant 0
  row "$config QAT" default "$best" --config "$config" --quant 1
done
for config in minilm base; do
  for q in 0 1; do
    label="$config $([ $q = 0 ] && echo fp32 || echo QAT), 2 layers"
    [ -n "$generic" ] && [ "$generic" != "$best" ] && row "$label" openblas "$generic" --config "$config" --quant $q --layers 2
    row "$label" openblas "$best" --config "$config" --quant $q --layers 2
    row "$label" default "$best" --config "$config" --quant $q --layers 2
  done
done
