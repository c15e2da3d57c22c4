#!/usr/bin/env bash
# test.sh: sets everything up, runs the test suite in the release build and again in an AddressSanitizer +
# UBSan build, runs every libFuzzer target briefly in a clang ASan + UBSan build (build-fuzz), and ends with one line
# "N passed, N failed, N skipped" over all runs. The sanitizer build compiles the .cu files for the CPU CUDA emulator
# (-Dgpu_emu=true, docs/cuda.md); its suite 'cuda' runs under two thread orders (QB_CUDA_EMU_SEED 1 in the full run,
# 2 in a second run).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcuda=disabled -Dgpu_emu=true -Dwerror_ci=true >/dev/null || exit 1
elif ! grep -q '"name": "gpu_emu", "value": true' build-asan/meson-info/intro-buildoptions.json 2>/dev/null; then
  meson configure build-asan -Dcuda=disabled -Dgpu_emu=true >/dev/null || exit 1
fi
ninja -C build-asan >/dev/null || { ninja -C build-asan; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcuda=disabled -Dwerror_ci=true >/dev/null || exit 1
fi
ninja -C build-fuzz fuzz >/dev/null || { ninja -C build-fuzz fuzz; exit 1; }  # only the fuzz targets and what they need

rc=0
echo "== release build"
meson test -C build --print-errorlogs --num-processes 2 || rc=1
# The release suite runs the CPU's default fp32 GEMM (oneDNN's where built with it); then again with OpenBLAS's sgemm
# (QB_CPU_GEMM=openblas) forced to the generic kernel family (SSE3), the one older OpenBLAS builds get wrong most often;
# QB_TEST_ALL_CORES=1 forces every other family this CPU runs too (each run adds minutes: Prescott's GEMMs are 4-7x
# slower). The sanitizer build runs OpenBLAS's sgemm with the core OpenBLAS chose.
version=$(./build/programs/qat-train --version)
active=$(sed -n 's/^BLAS core: \([A-Za-z0-9_]*\).*/\1/p' <<<"$version")
read -r -a cores <<<"$(sed -n 's/^BLAS cores this CPU runs: //p' <<<"$version")"
[ ${#cores[@]} -gt 0 ] && grep -q '^BLAS core: .*the best' <<<"$version" && unset 'cores[-1]'  # the sanitizer run has the best family
[ "${QB_TEST_ALL_CORES:-0}" = 1 ] || cores=("${cores[@]:0:1}")
core_logs=()
for core in "${cores[@]}"; do
  [ "$core" = "$active" ] && continue
  echo "== release build, QB_CPU_GEMM=openblas OPENBLAS_CORETYPE=$core"
  OPENBLAS_CORETYPE=$core QB_CPU_GEMM=openblas meson test -C build --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
    --logbase "testlog-core-$core" || rc=1
  core_logs+=("build/meson-logs/testlog-core-$core.json")
done
echo "== sanitizer build (ASan + UBSan), QB_CPU_GEMM=openblas"
export QB_CPU_GEMM=openblas ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 || rc=1
echo "== sanitizer build, suite cuda (emulated) under a second thread order"
meson test -C build-asan --setup emu_seed2 --suite cuda --print-errorlogs --num-processes 2 --timeout-multiplier 3 || rc=1

echo "== fuzz targets (libFuzzer, clang ASan + UBSan, 60 s each, two at a time)"
ASAN_OPTIONS=detect_leaks=1 meson test -C build-fuzz --no-rebuild --print-errorlogs --num-processes 2 --suite fuzz || rc=1

python3 - build/meson-logs/testlog.json "${core_logs[@]}" build-asan/meson-logs/testlog.json \
  build-asan/meson-logs/testlog-emu_seed2.json build-fuzz/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        counts["failed"] += 1
        continue
    for line in lines:
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif r == "SKIP":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
print("%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"], counts["skipped"]))
PY
exit $rc
