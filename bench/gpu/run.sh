#!/usr/bin/env bash
# run.sh [--dry-run] [--pack DIR | --pack FILE.tar.gz]: the GPU machine's check, from binaries built elsewhere
# (bench/gpu/pack.sh; the machine needs CUDA 13's libraries and python3, no package registry, no network):
#   1. the machine: GPU, driver, the CUDA libraries the binaries load;
#   2. the 'cuda' test suite on the GPU (bench/gpu/run_suite.py; the commands meson runs);
#   3. a short QAT run (task qat: calibrate -> train -> eval -> export) of the tiny QA checkpoint and of MiniLM-L6-H384
#      with run.device=cuda, each repeated with run.device=cpu: EM/F1, losses, speeds side by side;
#   4. the training benchmark (bench/gpu/train_bench.sh): BERT-base QA steps at seq 384 and 128, BF16 and TF32,
#      quantizers off / on / on with the INT8 GEMM, against PyTorch eager (and torch.compile) on the same GPU;
#   5. $OUT/summary.md and summary.json (OUT defaults to out/gpu).
# Under 8 minutes in all (QB_GPU_BUDGET_S, default 470 s, shared out across the steps; what does not fit is reported).
# MiniLM: QB_MINILM_DIR, .cache/minilm, or the Hugging Face cache; where none is there, a MiniLM-shaped BERT with
# random weights made with transformers from the packed config and vocabulary (said so in the summary).
# --dry-run: the same path with small sizes on this machine: run.device=cuda where the pack's qat-train sees a CUDA
# device (the emulated build: -Dgpu_emu=true), else cpu; suite tests limited by QB_GPU_SUITE (a regex); MiniLM only
# with QB_GPU_DRY_MINILM=1.
# Exit status: 0 when the suite passed and every QAT pair ran and agreed, 1 otherwise.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
start=$(date +%s)
budget=${QB_GPU_BUDGET_S:-470}
dry=0
pack=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --pack) pack="$2"; shift ;;
    *) echo "usage: run.sh [--dry-run] [--pack DIR|FILE.tar.gz]" >&2; exit 2 ;;
  esac
  shift
done
OUT=${OUT:-$root/out/gpu}
mkdir -p "$OUT"
: >"$OUT/run.log"
log() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/run.log"; }
left() { echo $((budget - ($(date +%s) - start))); }

if [ -z "$pack" ]; then
  for p in "$root/build-pack" "$root/build-pack.tar.gz"; do [ -e "$p" ] && { pack=$p; break; }; done
fi
[ -n "$pack" ] && [ -e "$pack" ] || { log "run.sh: no pack (bench/gpu/pack.sh BUILD_DIR writes build-pack/)"; exit 1; }
if [[ "$pack" == *.tar.gz ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tar -C "$work" -xzf "$pack" || { log "run.sh: cannot unpack $pack"; exit 1; }
  pack=$(dirname "$(ls "$work"/*/env.sh | head -1)")
fi
pack=$(cd "$pack" && pwd)
. "$pack/env.sh"
qat="$pack/bin/qat-train"
squad=${QB_SQUAD_DIR:-$root/../shared/data/squad}
[ -f "$squad/dev-v1.1.json.gz" ] || squad="$pack/data"

# ---- 1. the machine
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(hostname), $(nproc) cores, $(getconf GNU_LIBC_VERSION)"
  echo "pack: $pack (commit $(cat "$pack/commit.txt")), loader: ${QB_PACK_LOADER:-none, the machine glibc}"
  echo "CUDA library dirs: ${QB_PACK_CUDA_DIRS:-none found}"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  else
    echo "gpu: no nvidia-smi"
  fi
  $QB_PACK_LOADER "$pack/libexec/qat-train" --version 2>&1
  echo "libraries:"
  if [ -n "$QB_PACK_LOADER" ]; then $QB_PACK_LOADER --list "$pack/libexec/qat-train"; else ldd "$pack/libexec/qat-train"; fi 2>&1 |
    grep -E '^[[:space:]]*lib(cuda|cudart|cublas|cublasLt)\.so|not found' | sed 's/^[[:space:]]*/  /'
} >"$OUT/system.txt" 2>&1
cat "$OUT/system.txt" | tee -a "$OUT/run.log" >/dev/null
devices=$("$qat" --version | sed -n 's/^CUDA: .*devices \([0-9]*\).*/\1/p')
devices=${devices:-0}
if [ "$devices" -gt 0 ]; then device=cuda; else device=cpu; fi
if [ $dry -eq 0 ] && [ "$device" = cpu ]; then
  log "run.sh: the pack's qat-train sees no CUDA device ($(grep '^CUDA:' "$OUT/system.txt")); nothing to measure"
  python3 "$root/bench/gpu/summary.py" "$OUT" "no CUDA device visible" >/dev/null
  exit 1
fi
log "device for the QAT runs: $device (dry run: $dry)"

# ---- 2. the cuda suite
rc=0
suite_s=$(( $(left) * 40 / 100 ))
log "cuda suite (at most $suite_s s)"
python3 "$root/bench/gpu/run_suite.py" "$pack" "$root" "$squad" "$OUT" "$suite_s" "${QB_GPU_SUITE:-}" 2>&1 | tee -a "$OUT/run.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

# ---- 3. the training benchmark (bench/gpu/train_bench.sh: BERT-base steps, ours and PyTorch's), 45% of what is left
bench_s=$(( $(left) * 45 / 100 ))
log "training benchmark (at most $bench_s s)"
dry_flag=()
[ $dry -eq 1 ] && dry_flag=(--dry-run)
bash "$root/bench/gpu/train_bench.sh" "${dry_flag[@]}" "$pack/bin/bench_train_gpu" "$OUT" "$bench_s" "$device" >"$OUT/train_bench.log" 2>&1
[ $? -eq 0 ] || { log "training benchmark: $(tail -1 "$OUT/train_bench.log")"; rc=1; }

# ---- 4. QAT runs, cuda then cpu
# qat_pair NAME MODEL SECONDS OVERRIDES...: task qat into $OUT/qat-NAME-{cuda,cpu}
qat_pair() {
  local name="$1" model="$2" seconds="$3"; shift 3
  local d devs="$device cpu"
  [ "$device" = cpu ] && devs=cpu  # a cpu-only dry run: one run
  for d in $devs; do
    local dir="$OUT/qat-$name-$d" limit=$(( $(left) < seconds ? $(left) : seconds ))
    if [ "$limit" -lt 10 ]; then
      log "qat $name on $d: not run (out of time)"
      echo "not run: out of time" >"$dir.notrun"
      rc=1
      continue
    fi
    rm -rf "$dir"
    log "qat $name on $d (at most $limit s)"
    timeout "$limit" "$qat" "$OUT/qat-$name.ini" "run.device=$d" "run.output_dir=$dir" "model.path=$model" "$@" >"$dir.log" 2>&1
    local r=$?
    echo "$r" >"$dir.rc"
    [ $r -eq 0 ] || { log "qat $name on $d: exit $r: $(grep -m1 -E 'error|Terminated' "$dir.log" || tail -1 "$dir.log")"; rc=1; }
    grep -E "^(calibrate|train|eval|export|qat): " "$dir.log" | tee -a "$OUT/run.log" >/dev/null
  done
}
write_ini() {  # write_ini NAME SEQ STRIDE TRAIN_SAMPLES STEPS BATCH EVAL_SAMPLES CALIB
  cat >"$OUT/qat-$1.ini" <<INI
[run]
task = qat
seed = 42
[data]
train_file = $squad/dev-v1.1.json.gz
dev_file = $squad/dev-v1.1.json.gz
max_seq_length = $2
doc_stride = $3
max_train_samples = $4
max_eval_samples = $7
[quant]
calibrator = percentile
calib_samples = $8
calib_batch_size = 16
[train]
max_steps = $5
batch_size = $6
learning_rate = 1e-4
logging_steps = 1
[eval]
batch_size = 32
[export]
format = hdf5
INI
}

if [ $dry -eq 1 ]; then
  write_ini tiny 64 16 16 4 4 8 8
else
  write_ini tiny 64 16 128 32 16 64 64
fi
qat_pair tiny "$root/test/model/fixtures/hf_saved" 60

minilm="" minilm_kind=""
[ $dry -eq 1 ] && [ "${QB_GPU_DRY_MINILM:-0}" != 1 ] && log "MiniLM: skipped in the dry run (QB_GPU_DRY_MINILM=1 runs it)"
[ $dry -eq 1 ] && [ "${QB_GPU_DRY_MINILM:-0}" != 1 ] || for m in "${QB_MINILM_DIR:-}" "$root/.cache/minilm" "$HOME"/.cache/huggingface/hub/models--nreimers--MiniLM-L6-H384-uncased/snapshots/*; do
  [ -n "$m" ] && [ -f "$m/model.safetensors" ] && [ -f "$m/vocab.txt" ] && { minilm=$m; minilm_kind="pretrained ($m)"; break; }
done
if [ -z "$minilm" ] && [ $dry -eq 0 ] && [ -f "$pack/data/minilm-vocab/config.json" ]; then
  minilm="$OUT/minilm-random"
  if python3 - "$pack/data/minilm-vocab" "$minilm" >"$OUT/minilm-random.log" 2>&1 <<'PY'
import shutil, sys
import torch
from transformers import BertConfig, BertModel
src, dst = sys.argv[1:3]
torch.manual_seed(0)
BertModel(BertConfig.from_json_file(src + "/config.json")).save_pretrained(dst, safe_serialization=True)
shutil.copy(src + "/vocab.txt", dst + "/vocab.txt")
PY
  then minilm_kind="MiniLM-L6-H384 shape, random weights (no pretrained checkpoint on this machine)"
  else log "MiniLM: no checkpoint and no random one ($(tail -1 "$OUT/minilm-random.log"))"; minilm=""; rc=1
  fi
fi
if [ -n "$minilm" ]; then
  echo "$minilm_kind" >"$OUT/minilm-kind.txt"
  log "MiniLM: $minilm_kind"
  if [ $dry -eq 1 ]; then
    write_ini minilm 64 16 8 2 4 4 8
  else
    write_ini minilm 128 32 512 60 16 200 128
  fi
  qat_pair minilm "$minilm" $(( $(left) / 2 )) run.threads=0
elif [ $dry -eq 1 ]; then
  log "MiniLM: no checkpoint here (.cache/minilm); skipped in the dry run"
fi

# ---- 5. summary
python3 "$root/bench/gpu/summary.py" "$OUT" "" | tee -a "$OUT/run.log" || rc=1
log "run.sh: done in $(($(date +%s) - start)) s, status $rc; $OUT/summary.md"
exit $rc
