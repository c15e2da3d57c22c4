#!/usr/bin/env bash
# train_bench.sh [--dry-run] BENCH_BIN OUT SECONDS [DEVICE]: the GPU training benchmark of issue 12, run by run.sh:
# BERT-base QA training steps (12 layers, hidden 768, batch 32) at seq 384 and 128, ours (BENCH_BIN: bench_train_gpu)
# in BF16 and TF32 with the quantizers off, on, and on with quant.int8_gemm, and in the same run on the same device
# PyTorch eager (bench/gpu/bench_train_torch.py: HF BertForQuestionAnswering, autocast BF16 / TF32, fake quant at
# QDQBERT's points) and torch.compile where it runs; then OUT/train_bench.md and .json (bench/gpu/train_table.py:
# seq/s, ratios to each peer, MFU against H200 dense BF16, QAT step over float step, peak memory of both).
# First the INT8 GEMM probe (bench_int8_gemm beside BENCH_BIN: the fake-quantized linear forward, fp32 path vs int8
# codes, at 12288 rows = 32 x 384 tokens). Cases run in priority order, each with a time limit, until SECONDS are spent; the rest is listed as not run.
# PyTorch: QB_TORCH_PYTHON (default python3); skipped, and said so, where it cannot import torch and transformers.
# --dry-run: the same path with a 1-layer hidden-64 model (vocabulary 512), batch 2, seq 32 in BF16 and seq 16 in TF32 (one precision
# each), 2 steps, one OpenMP thread (DEVICE: cuda on the emulated build, else cpu, in fp32); the peer (on the cpu) only with QB_GPU_DRY_PEER=1 (its start alone takes
# half a minute here).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dry=0
[ "${1:-}" = "--dry-run" ] && { dry=1; shift; }
[ $# -ge 3 ] || { echo "usage: train_bench.sh [--dry-run] BENCH_BIN OUT SECONDS [DEVICE]" >&2; exit 2; }
bin="$1" out="$2" budget="$3" device="${4:-cuda}"
py=${QB_TORCH_PYTHON:-python3}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$out/train"
rm -f "$out"/train/*.log "$out"/train/*.notrun
if [ $dry -eq 1 ]; then
  shape=(--layers 1 --hidden 64 --heads 4 --inter 128 --vocab 512 --batch 2 --steps 2 --warmup 1)
  seqs=(32 16) cap=40 peer_device=cpu
  export OMP_NUM_THREADS=1
else
  shape=(--layers 12 --hidden 768 --heads 12 --inter 3072 --batch 32 --steps ${QB_GPU_BENCH_STEPS:-10} --warmup 3)
  seqs=(384 128) cap=${QB_GPU_BENCH_CASE_S:-60} peer_device=$device
fi
peer=1
if [ $dry -eq 1 ] && [ "${QB_GPU_DRY_PEER:-0}" != 1 ]; then
  peer=0
  echo "PyTorch peer not run in the dry run (QB_GPU_DRY_PEER=1 runs it)" >"$out/train/peer.notrun"
elif ! "$py" -c 'import torch, transformers' >"$out/train/torch-import.txt" 2>&1; then
  peer=0
  echo "PyTorch peer not run: $py cannot import torch and transformers ($(tail -1 "$out/train/torch-import.txt"))" >"$out/train/peer.notrun"
fi
[ $dry -eq 1 ] && [ $peer -eq 1 ] && cap=120  # importing torch alone takes half a minute here
# case_run NAME SECONDS COMMAND...: one run into $out/train/NAME.log, at most min(SECONDS, what is left) seconds
case_run() {
  local name="$1" most="$2"; shift 2
  local limit=$(( $(left) < most ? $(left) : most ))
  if [ "$limit" -lt 5 ]; then
    echo "not run: out of time" >"$out/train/$name.notrun"
    return
  fi
  timeout "$limit" "$@" >"$out/train/$name.log" 2>&1
  local r=$?
  [ $r -eq 0 ] || echo "exit $r after at most $limit s: $(grep -m1 -iE 'error|Terminated' "$out/train/$name.log" || tail -1 "$out/train/$name.log")" >"$out/train/$name.notrun"
}
# the INT8 GEMM against the fp32 path's GEMM in each precision on BERT-base's linear shapes (bench_int8_gemm, beside BENCH_BIN)
gemm="$(dirname "$bin")/bench_int8_gemm"
if [ -x "$gemm" ]; then
  if [ $dry -eq 1 ]; then
    gp=bf16
    [ "$device" = cpu ] && gp=fp32
    case_run "int8gemm-$gp" 30 "$gemm" --device "$device" --precision "$gp" --rows 32 --hidden 64 --steps 2
  else
    for gp in bf16 tf32; do case_run "int8gemm-$gp" 30 "$gemm" --device "$device" --precision "$gp" --rows 12288 --steps 10; done
  fi
else
  echo "not run: no $gemm" >"$out/train/int8gemm.notrun"
fi
# priority: BF16 at both lengths (ours: off, on, int8; then the peer's off and on in one process), then TF32, then compile
for p in bf16 tf32; do
  for s in "${seqs[@]}"; do
    pp=$p
    if [ $dry -eq 1 ]; then  # one precision per length; the cpu in fp32 once (it has no tf32, nor bf16 everywhere)
      if [ "$device" = cpu ]; then
        [ "$p" = tf32 ] && continue
        pp=fp32
      else
        case "$s-$p" in 32-tf32|16-bf16) continue ;; esac
      fi
    fi
    for q in "0 0" "1 0" "1 1"; do
      set -- $q
      case_run "qdqbert-$pp-q$1-i$2-s$s" "$cap" "$bin" --device "$device" --precision "$pp" --quant "$1" --int8 "$2" --seq "$s" "${shape[@]}"
    done
    if [ $peer -eq 1 ]; then
      tp=$pp
      [ "$peer_device" = cpu ] && tp=fp32
      case_run "pytorch-$pp-s$s" $((2 * cap)) "$py" "$root/bench/gpu/bench_train_torch.py" --device "$peer_device" --case "$tp:0:$s" \
        --case "$tp:1:$s" "${shape[@]}"
    fi
  done
done
if [ $peer -eq 1 ] && [ $dry -eq 0 ]; then  # the second peer: torch.compile, BF16, quantizers on
  case_run "pytorch-compile-bf16" $((3 * cap)) "$py" "$root/bench/gpu/bench_train_torch.py" --device "$peer_device" --compile 1 \
    --case "bf16:1:${seqs[0]}" --case "bf16:1:${seqs[1]}" "${shape[@]}"
fi
python3 "$root/bench/gpu/train_table.py" "$out" "$dry"
