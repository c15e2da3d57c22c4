#!/usr/bin/env bash
# run_fuzzers.sh BUILD_DIR SECONDS [TARGET ...]: runs each libFuzzer target (all by default) for SECONDS (or, with
# QB_FUZZ_RUNS=N, for N executions, whichever ends first) from seed corpora built out of the test fixtures, one after
# another; prints executions, coverage (cov/ft) and the outcome of each. Fails when a target crashes, leaks, times
# out or reports undefined behaviour. QB_FUZZ_KEEP=DIR keeps corpora, logs and crash inputs in DIR.
set -u
bin="$1"
secs="$2"
shift 2
targets="${*:-safetensors config_json tokenizer_json vocab_txt ini squad squad_gz checkpoint}"
src="${QB_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
work="${QB_FUZZ_KEEP:-$(mktemp -d)}"
mkdir -p "$work"
[ -n "${QB_FUZZ_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
rm -rf "$work/checkpoint_seeds" && mkdir -p "$work/checkpoint_seeds"
QB_FUZZ_WRITE_SEEDS="$work/checkpoint_seeds" "$bin/fuzz_checkpoint" >/dev/null 2>&1 || { echo "FAIL fuzz_checkpoint cannot write its seeds"; exit 1; }
python3 "$src/test/fuzz/make_seeds.py" "$src" "$work/seeds" "$work/checkpoint_seeds" || { echo "FAIL seed corpora"; exit 1; }
failed=0
for t in $targets; do
  mkdir -p "$work/corpus_$t" "$work/artifacts_$t"
  max_len=8192
  case $t in tokenizer_json|checkpoint|squad|squad_gz|safetensors) max_len=65536 ;; esac
  runs=()
  [ -n "${QB_FUZZ_RUNS:-}" ] && runs=(-runs="$QB_FUZZ_RUNS")
  nice -n "${QB_FUZZ_NICE:-0}" "$bin/fuzz_$t" -max_total_time="$secs" "${runs[@]}" -max_len=$max_len -timeout=${QB_FUZZ_TIMEOUT:-60} -rss_limit_mb=2048 \
    -error_exitcode=1 -print_final_stats=1 -artifact_prefix="$work/artifacts_$t/" "$work/corpus_$t" "$work/seeds/$t" \
    >"$work/fuzz_$t.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz_$t.log" | tail -1)
  cov=$(grep -E '^#[0-9]+' "$work/fuzz_$t.log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1)
  crashes=$(ls "$work/artifacts_$t" | grep -c -E '^(crash|leak|timeout|oom)-')
  slow=$(ls "$work/artifacts_$t" | grep -c '^slow-unit-')
  ubsan=$(grep -c "runtime error:" "$work/fuzz_$t.log")
  leaks=$(grep -c "LeakSanitizer" "$work/fuzz_$t.log")
  line="fuzz_$t: ${execs:-?} executions, ${cov:-no coverage line}, corpus $(ls "$work/corpus_$t" | wc -l), $crashes crash/timeout inputs, $leaks leak reports, $ubsan UBSan reports, $slow slow inputs"
  if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ] && [ "$ubsan" -eq 0 ] && [ "$leaks" -eq 0 ]; then
    echo "ok   $line"
  else
    failed=$((failed + 1))
    echo "FAIL $line (exit $rc)"
    grep -E "ERROR|runtime error|SUMMARY|==[0-9]+==" "$work/fuzz_$t.log" | head -20
  fi
done
[ $failed -eq 0 ]
