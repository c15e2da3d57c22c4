#!/usr/bin/env bash
# test_dist.sh PART DIST_RANK [QAT_TRAIN]: data-parallel runs with mpirun -np 2 on the CPU against one process (dist_rank.c).
#   train   2 ranks x batch 2 == 1 rank x batch 4: parameters and losses after 5 steps within 1e-6 relative; the same
#           with a short last batch that leaves rank 1 without rows
#   calib   2 ranks == 1 rank on the union (range first), every calibrator, bit for bit
#   resume  a checkpoint of 2 ranks resumed on 1 rank continues with the same losses
#   cli     qat-train's qat task on 2 ranks (MiniLM, a few SQuAD questions; accumulation, evaluation during training):
#           rank 0 alone prints and writes
#   faults  a SIGKILLed rank, a stopped (hung) rank and a NaN on one rank end the job non-zero within 60 s
#   nccl    (emulated GPUs, the nccl backend over the emulator's MPI-served NCCL) 2 ranks == 1 rank with twice the batch;
#           overlapped == non-overlapped all-reduce bit for bit; accumulation on 2 ranks == 1 rank with the big batch;
#           the ncclUniqueId over the TCP rendezvous; a SIGKILLed or stopped rank ends the job within 60 s
#   tcp     (CPU, no mpirun) 2 processes with torchrun's variables == the mpirun run bit for bit; a killed rank ends the
#           other with an error
set -u
part=$1
bin=$2
[ "$part" = tcp ] || command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
tmp=$(mktemp -d /tmp/qb_dist_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
# root in CI; 2 ranks on 2 cores; shared memory without CMA (containers), TCP on loopback only
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo \
  OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_mpi_yield_when_idle=1
# sanitizer builds: ranks under mpirun run without LeakSanitizer (Open MPI keeps allocations until exit in plugins it
# unloads, which no suppression can name); the one-process runs, which never start MPI, keep it
mpirun_env=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --allow-run-as-root --oversubscribe --bind-to none)
mpi() { "${mpirun_env[@]}" -np "$@"; }
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }

fault_env=()
# the rank with OMPI_COMM_WORLD_RANK=1 among mpirun's children
rank1() {
  local d p
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$(awk '/^PPid:/ {print $2}' "$d/status" 2>/dev/null)" = "$1" ] || continue
    tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && { echo "$p"; return; }
  done
}
# start a long run, wait for step 2 on rank 0, then do $1 to rank 1; prints the seconds until mpirun ended
fault_run() {
  local sig=$1 out=$2
  "${mpirun_env[@]}" -np 2 "${fault_env[@]}" "$bin" train "$tmp/f" 2 100000 0 1e-8 >"$out" 2>&1 &
  local job=$! p="" t0 i
  for i in $(seq 600); do grep -q "step      2/" "$out" && break; sleep 0.1; done
  for i in $(seq 50); do p=$(rank1 "$job"); [ -n "$p" ] && break; sleep 0.1; done
  [ -n "$p" ] || { echo "FAIL: no rank 1 under mpirun $job"; kill "$job"; return 1; }
  t0=$(date +%s%N)
  kill -s "$sig" "$p"
  for i in $(seq 900); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then echo "FAIL: still running 90 s after SIG$sig"; kill -KILL "$p" 2>/dev/null; kill "$job"; wait "$job"; return 1; fi
  wait "$job"
  local rc=$? ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill -KILL "$p" 2>/dev/null
  echo "SIG$sig to rank 1: mpirun exited $rc after $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
  [ "$rc" -ne 0 ] && [ "$ms" -lt 60000 ]
}
# a free TCP port on loopback for a rendezvous
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case $part in
train)
  # Adam with epsilon 1: the update is proportional to the gradient, so the parameters show the all-reduced gradient's
  # rounding (with epsilon 1e-8 Adam turns the rounding noise of gradients that are zero in exact arithmetic, those of
  # qa_outputs.bias and the last LayerNorm bias, into steps of the size of the learning rate; printed, not asserted)
  check mpi 2 "$bin" train "$tmp/two" 2 5 0 1
  check "$bin" train "$tmp/one" 4 5 0 1
  check "$bin" compare-train "$tmp/two" "$tmp/one" 1e-6
  # 24 features, 2 x 5 rows: the third global batch has 4 rows, all on rank 0 (rank 1 has none and adds zeros)
  check mpi 2 "$bin" train "$tmp/two5" 5 4 0 1
  check "$bin" train "$tmp/one10" 10 4 0 1
  check "$bin" compare-train "$tmp/two5" "$tmp/one10" 1e-6
  echo "AdamW epsilon 1e-8 (informational):"
  mpi 2 "$bin" train "$tmp/two8" 2 5 0 1e-8 >/dev/null && "$bin" train "$tmp/one8" 4 5 0 1e-8 >/dev/null &&
    "$bin" compare-train "$tmp/two8" "$tmp/one8" 1 | head -2
  ;;
calib)
  check mpi 2 "$bin" calib "$tmp/two" 0
  check "$bin" calib "$tmp/one" 1
  check "$bin" compare-calib "$tmp/two" "$tmp/one"
  echo "one process, reference single pass vs range first (informational):"
  "$bin" calib "$tmp/single" 0 >/dev/null && "$bin" compare-calib "$tmp/single" "$tmp/one" || true
  ;;
resume)
  check mpi 2 "$bin" train "$tmp/two" 2 8 4 1e-8
  check test -f "$tmp/two/checkpoint-4/trainer_state.json"
  check grep -q '"train_batch_size": 4' "$tmp/two/checkpoint-4/trainer_state.json"
  check "$bin" train "$tmp/resumed" 4 8 0 1e-8 "$tmp/two/checkpoint-4"
  check "$bin" compare-resume "$tmp/two" "$tmp/resumed" 1e-6
  # the global batch must match: 1 rank x batch 2 is refused with the file named
  if "$bin" train "$tmp/bad" 2 8 0 1e-8 "$tmp/two/checkpoint-4" 2>"$tmp/bad.err"; then echo "FAIL: resume with another global batch"; fail=1; fi
  check grep -q "checkpoint-4/trainer_state.json: train_batch_size" "$tmp/bad.err"
  ;;
faults)
  check fault_run KILL "$tmp/kill.log"
  tail -n 3 "$tmp/kill.log"
  # a hung rank: the collective deadline (here 5 s) ends rank 0 with a message naming the collective
  QB_COMM_TIMEOUT=5 check fault_run STOP "$tmp/stop.log"
  check grep -q "did not complete within 5 s: another rank died or hangs" "$tmp/stop.log"
  grep "did not complete" "$tmp/stop.log"
  # NaN on rank 1 only: every rank sees the non-finite all-reduced gradient and stops
  if mpi 2 "$bin" nan "$tmp/nan" 2 5 0 1e-8 >"$tmp/nan.log" 2>&1; then echo "FAIL: NaN run succeeded"; fail=1; fi
  check grep -q "rank 0/2: train step 1: loss .* over 2 ranks (not finite)" "$tmp/nan.log"
  grep "not finite" "$tmp/nan.log" | head -2
  ;;
cli)
  # qat-train calibrate -> train -> eval -> export on 2 ranks: rank 0 alone prints and writes
  exe=$3 model="${QB_SOURCE_ROOT:-.}/.cache/minilm" squad="${QB_SQUAD_DIR:-}"
  if [ ! -f "$model/model.safetensors" ] || [ ! -f "$squad/dev-v1.1.json.gz" ]; then
    echo "SKIP: needs .cache/minilm (scripts/fetch_minilm.sh) and the SQuAD dev set"; exit 77
  fi
  printf '[run]\ntask = qat\noutput_dir = %s\n[model]\npath = %s\n[data]\ntrain_file = %s\ndev_file = %s\n' \
    "$tmp/qat" "$model" "$squad/dev-v1.1.json.gz" "$squad/dev-v1.1.json.gz" >"$tmp/qat.ini"
  args=(data.max_seq_length=48 data.doc_stride=16 data.max_train_samples=4 data.max_eval_samples=2 quant.calib_samples=4
        quant.calib_batch_size=2 train.max_steps=2 train.batch_size=2 train.gradient_accumulation_steps=2 eval.steps=2 eval.batch_size=4
        export.format=hdf5)
  check mpi 2 "$exe" "$tmp/qat.ini" "${args[@]}" >"$tmp/qat.log" 2>"$tmp/qat.err"
  cat "$tmp/qat.err"
  check grep -q "qat-train: 2 ranks (mpirun, mpi backend)" "$tmp/qat.log"
  check grep -q "global batch 8 (2 per device x 2 ranks x 2 accumulated)" "$tmp/qat.log"
  check test "$(grep -c '^eval: [0-9]* questions' "$tmp/qat.log")" -eq 1
  check test "$(grep -c '^eval: step 2 ' "$tmp/qat.log")" -eq 1
  check test "$(grep -c '^qat-train [0-9]' "$tmp/qat.log")" -eq 1
  check grep -q '"train_batch_size": 8' "$tmp/qat/trainer_state.json"
  check grep -q '"eval_exact_match"' "$tmp/qat/eval_results.json"
  check test -f "$tmp/qat/predictions.json"
  check test -f "$tmp/qat/model.h5"
  check test "$(wc -l <"$tmp/qat/metrics.jsonl")" -eq 3  # 2 steps and the evaluation at step 2
  grep -E "^(train:|eval:|calibrate:)" "$tmp/qat.log"
  ;;
nccl)
  # every rank on its own emulated GPU (QB_CUDA_EMU_DEVICES=2: cuda:local rank); buckets of 256 floats, so the tiny
  # model's 1872 gradients make 8 buckets and the overlap has something to overlap
  gpu=(-x QB_TEST_DEVICE=cuda -x QB_CUDA_EMU_DEVICES=2 -x QB_GRAD_BUCKET_FLOATS=256)
  export QB_TEST_DEVICE=cuda QB_CUDA_EMU_DEVICES=2
  check "$bin" train "$tmp/one" 4 5 0 1 >/dev/null
  check mpi 2 "${gpu[@]}" "$bin" train "$tmp/two" 2 5 0 1 >"$tmp/two.log"
  check grep -q "dist_rank: 2 ranks, nccl backend, device cuda:0" "$tmp/two.log"
  grep "buckets started" "$tmp/two.log"
  check grep -Eq "dist_rank: [1-9][0-9]* of 40 gradient buckets started during the backward pass" "$tmp/two.log"
  check "$bin" compare-train "$tmp/two" "$tmp/one" 1e-6
  # the all-reduce after the backward pass: the same bits
  check mpi 2 "${gpu[@]}" -x QB_GRAD_OVERLAP=0 "$bin" train "$tmp/seq" 2 5 0 1 >"$tmp/seq.log"
  check grep -q "dist_rank: 0 of 40 gradient buckets started during the backward pass" "$tmp/seq.log"
  check "$bin" compare-train "$tmp/two" "$tmp/seq" 0
  # a short last batch (rank 1 without rows starts its buckets after no backward pass, in the same order)
  check mpi 2 "${gpu[@]}" "$bin" train "$tmp/two5" 5 4 0 1 >/dev/null
  check "$bin" train "$tmp/one10" 10 4 0 1 >/dev/null
  check "$bin" compare-train "$tmp/two5" "$tmp/one10" 1e-6
  # gradient accumulation: 2 ranks x batch 1 x 2 micro-batches == 1 rank x batch 4, on the nccl and the mpi backend
  check mpi 2 "${gpu[@]}" -x QB_TEST_ACCUM=2 "$bin" train "$tmp/acc" 1 5 0 1 >"$tmp/acc.log"
  check grep -q "global batch 4 (1 per device x 2 ranks x 2 accumulated)" "$tmp/acc.log"
  check "$bin" compare-train "$tmp/acc" "$tmp/one" 1e-6
  check mpi 2 -x QB_TEST_ACCUM=2 -x QB_TEST_DEVICE=cpu "$bin" train "$tmp/acc_cpu" 1 5 0 1 >/dev/null
  QB_TEST_DEVICE=cpu check "$bin" train "$tmp/one_cpu" 4 5 0 1 >/dev/null
  check "$bin" compare-train "$tmp/acc_cpu" "$tmp/one_cpu" 1e-6
  # the ncclUniqueId over the TCP rendezvous (torchrun's variables; the emulated NCCL still moves the data over MPI)
  port=$(free_port)
  check mpi 2 "${gpu[@]}" -x QB_COMM_BOOTSTRAP=tcp -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT="$port" -x WORLD_SIZE=2 \
    sh -c 'RANK=$OMPI_COMM_WORLD_RANK LOCAL_RANK=$OMPI_COMM_WORLD_LOCAL_RANK LOCAL_WORLD_SIZE=2 exec "$0" "$@"' "$bin" train "$tmp/tcp" 2 5 0 1 \
    >"$tmp/tcp.log"
  check grep -q "dist_rank train: 2 ranks (mpirun, tcp)" "$tmp/tcp.log"
  check grep -q "nccl backend" "$tmp/tcp.log"
  check "$bin" compare-train "$tmp/tcp" "$tmp/two" 0
  # a killed rank under nccl; a stopped (hung) one: rank 0's deadline (the watchdog over the blocking emulated
  # ncclAllReduce; on a GPU the polling of its event) names the collective
  fault_env=("${gpu[@]}")
  check fault_run KILL "$tmp/kill.log"
  fault_env=("${gpu[@]}" -x QB_COMM_TIMEOUT=5)
  check fault_run STOP "$tmp/stop.log"
  check grep -q "gradient all-reduce (step [0-9]*) did not complete within 5 s: another rank died or hangs" "$tmp/stop.log"
  grep "did not complete" "$tmp/stop.log"
  ;;
tcp)
  # torchrun --nproc-per-node 2 --no-python without torchrun: its variables by hand, no MPI
  unset OMPI_COMM_WORLD_SIZE PMIX_RANK PMI_RANK PMI_SIZE SLURM_PROCID
  export QB_TEST_DEVICE=cpu
  port=$(free_port)
  ranks() {
    local out=$1 r pids=()
    shift
    for r in 0 1; do
      env RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" TORCHELASTIC_RUN_ID=test \
        "$@" >"$out.$r" 2>&1 &
      pids+=($!)
    done
    local rc=0
    for r in 0 1; do wait "${pids[$r]}" || rc=1; done
    return $rc
  }
  check ranks "$tmp/tcp" "$bin" train "$tmp/tcp" 2 5 0 1
  cat "$tmp/tcp.1"
  check grep -q "dist_rank train: 2 ranks (torchrun, tcp)" "$tmp/tcp.0"
  check "$bin" train "$tmp/one" 4 5 0 1 >/dev/null
  check "$bin" compare-train "$tmp/tcp" "$tmp/one" 1e-6
  if command -v mpirun >/dev/null; then
    check mpi 2 -x QB_TEST_DEVICE=cpu "$bin" train "$tmp/mpi" 2 5 0 1 >/dev/null
    check "$bin" compare-train "$tmp/tcp" "$tmp/mpi" 0
  fi
  # rank 1 killed: rank 0 fails with an error naming the dead rank
  port=$(free_port)
  t0=$(date +%s%N)
  ranks "$tmp/kill" sh -c 'if [ "$RANK" = 1 ]; then timeout -s KILL 3 "$0" "$@"; else exec "$0" "$@"; fi' "$bin" train "$tmp/k" 2 100000 0 1e-8
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "rank 1 killed after 3 s: rank 0 ended after $((ms / 1000)).$(printf %03d $((ms % 1000))) s:"
  grep "rank 0/2" "$tmp/kill.0"
  check grep -q "dist_rank: rank 0/2: .*rank 1 .*died" "$tmp/kill.0"
  check test "$ms" -lt 60000
  # a rendezvous nobody joins: an error within the deadline
  port=$(free_port)
  if QB_COMM_TIMEOUT=2 RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" "$bin" train "$tmp/alone" 2 5 0 1 2>"$tmp/alone.err"; then
    echo "FAIL: rank 1 without rank 0 succeeded"; fail=1
  fi
  cat "$tmp/alone.err"
  check grep -q "cannot reach rank 0 at 127.0.0.1:$port within 2 s" "$tmp/alone.err"
  ;;
*) echo "unknown part $part"; exit 2 ;;
esac
exit $fail
