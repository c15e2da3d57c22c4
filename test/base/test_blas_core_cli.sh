#!/usr/bin/env bash
# test_blas_core_cli.sh: qat-train names its BLAS core in --version and in a run's first line; a user's
# OPENBLAS_CORETYPE wins (with a note when the CPU runs a faster family); one the CPU cannot run is refused. The CPU's
# fp32 GEMM library (oneDNN's sgemm where built with it, else OpenBLAS's) is named too, QB_CPU_GEMM and run.cpu_gemm
# choose it, and a bad value is refused in one line naming it.
set -u
exe="$1"
. "$(dirname "$0")/../common/check.sh"
user_core="${OPENBLAS_CORETYPE:-}"
user_gemm="${QB_CPU_GEMM:-}"
unset OPENBLAS_CORETYPE QB_CPU_GEMM

"$exe" --version >"$tmp/version" 2>&1
check "--version exits 0" $?
for key in "qat-train [0-9]" "build: buildtype" "BLAS: OpenBLAS" "BLAS core: [A-Za-z0-9_]* (" "BLAS cores this CPU runs: [A-Z]" \
           "CPU: .*OpenMP threads" "CPU fp32 GEMM: \(oneDNN [0-9.]* sgemm\|OpenBLAS sgemm\) (run.cpu_gemm" "CUDA: "; do
  grep -q "^$key" "$tmp/version"
  check "--version has '$key'" $?
done
cores=$(sed -n 's/^BLAS cores this CPU runs: //p' "$tmp/version")
best=${cores##* }
generic=${cores%% *}
grep -q "^BLAS core: .*(chosen by OpenBLAS, the best family\|^BLAS core: .*re-executed with the best" "$tmp/version"
check "without OPENBLAS_CORETYPE the core is the best family for this CPU (best: $best)" $?

OPENBLAS_CORETYPE="$generic" "$exe" --version >"$tmp/forced" 2>&1
grep -q "^BLAS core: $generic (set by OPENBLAS_CORETYPE" "$tmp/forced"
check "the user's OPENBLAS_CORETYPE=$generic wins" $?
if [ "$generic" != "$best" ]; then
  grep -q "this CPU runs $best: unset OPENBLAS_CORETYPE" "$tmp/forced"
  check "a forced weaker core is noted, naming $best" $?
fi

QB_CPU_GEMM=openblas "$exe" --version | grep -q "^CPU fp32 GEMM: OpenBLAS sgemm"
check "QB_CPU_GEMM=openblas names OpenBLAS's sgemm" $?

flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
unrunnable=""
for c in SkylakeX Haswell Sandybridge; do
  case " $cores " in *" $c "*) ;; *) unrunnable=$c; break ;; esac
done
[ -z "$unrunnable" ] && [[ "$flags" != *" fma4 "* ]] && unrunnable=Bulldozer
if [ -n "$unrunnable" ]; then
  OPENBLAS_CORETYPE=$unrunnable "$exe" --version >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "OPENBLAS_CORETYPE=$unrunnable needs .*, which this CPU lacks" "$tmp/err"
  check "OPENBLAS_CORETYPE=$unrunnable (not runnable here) refused: exit $rc, $(head -c 200 "$tmp/err")" $?
fi

printf '[run]\ntask = demo\noutput_dir = %s/run\n[demo]\nsteps = 2\ntarget_loss = 100\n' "$tmp" >"$tmp/demo.ini"
[ -n "$user_core" ] && export OPENBLAS_CORETYPE="$user_core"
[ -n "$user_gemm" ] && export QB_CPU_GEMM="$user_gemm"
"$exe" "$tmp/demo.ini" >"$tmp/log" 2>&1
check "demo run exits 0" $?
head -n 1 "$tmp/log" | grep -q "^qat-train [0-9.]*: OpenBLAS [0-9.]* core [A-Za-z0-9_]* (.*); CPU .*threads$"
check "a run's first line names the BLAS core: $(head -n 1 "$tmp/log" | head -c 300)" $?
gemm=$(sed -n 's/^CPU fp32 GEMM: \(.* sgemm\) .*/\1/p' "$tmp/version")
[ -n "$user_gemm" ] && gemm=$("$exe" --version | sed -n 's/^CPU fp32 GEMM: \(.* sgemm\) .*/\1/p')
grep -q "GEMMs in fp32, fp32 by $gemm" "$tmp/log"
check "a run names its fp32 GEMM ($gemm)" $?
"$exe" "$tmp/demo.ini" run.cpu_gemm=openblas run.output_dir="$tmp/run2" >"$tmp/log2" 2>&1 && grep -q "fp32 by OpenBLAS sgemm" "$tmp/log2"
check "run.cpu_gemm=openblas runs OpenBLAS's sgemm" $?
"$exe" "$tmp/demo.ini" run.cpu_gemm=mkl run.output_dir="$tmp/run3" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "run.cpu_gemm.*mkl" "$tmp/err" && [ ! -e "$tmp/run3" ]
check "run.cpu_gemm=mkl refused in one line: exit $rc, $(head -c 200 "$tmp/err")" $?
QB_CPU_GEMM=mkl "$exe" "$tmp/demo.ini" run.output_dir="$tmp/run4" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "QB_CPU_GEMM=mkl" "$tmp/err"
check "QB_CPU_GEMM=mkl refused in one line: exit $rc, $(head -c 200 "$tmp/err")" $?

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
