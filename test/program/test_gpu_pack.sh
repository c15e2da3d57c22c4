#!/usr/bin/env bash
# test_gpu_pack.sh BUILD_DIR [--dry-run]: bench/gpu/pack.sh packs this build (qat-train and the cuda suite's binaries)
# into a self-contained folder: through the packed loader and libraries, every binary and library resolves inside the
# pack except CUDA's own libraries; a pack missing one of its libraries fails the check naming it; the wrappers run
# with a bare environment. With --dry-run, bench/gpu/run.sh --dry-run then runs from the pack (two fast suite tests,
# the training benchmark's dry run, the tiny model's QAT run on this build's device) and writes its summary.
set -u
build="$1"
root=${QB_SOURCE_ROOT:-.}
. "$(dirname "$0")/../common/check.sh"

bash "$root/bench/gpu/pack.sh" "$build" "$tmp/pack" >"$tmp/pack.log" 2>&1
check "pack.sh: $(tail -1 "$tmp/pack.log")" $?
if [ -d "$tmp/pack" ]; then
  bash "$root/bench/gpu/pack.sh" --check "$tmp/pack" >"$tmp/check.log" 2>&1
  check "pack self-contained: $(tail -1 "$tmp/check.log")" $?
  for b in "$tmp"/pack/bin/*; do
    [ -f "$tmp/pack/libexec/$(basename "$b")" ] || { check "wrapper $(basename "$b") has its binary" 1; }
  done
  env -i PATH=/usr/bin:/bin "$tmp/pack/bin/qat-train" --version >"$tmp/version.txt" 2>&1 && grep -q "^CUDA: " "$tmp/version.txt"
  check "packed qat-train runs from a bare environment: $(grep '^CUDA: ' "$tmp/version.txt")" $?
  python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["tests"]; sys.exit(0 if any(x["name"] == "test_cuda_train" for x in t) and all(a.startswith("@PACK@/bin/") or a.startswith("@ROOT@/") or a.startswith("-") for x in t for a in x["argv"]) else 1)' "$tmp/pack/tests.json"
  check "tests.json: the cuda suite with pack- and source-relative commands" $?
  cp -al "$tmp/pack" "$tmp/broken"
  rm "$tmp/broken/lib/libjansson.so.4"
  bash "$root/bench/gpu/pack.sh" --check "$tmp/broken" >"$tmp/broken.log" 2>&1
  [ $? -ne 0 ] && grep -q "needs libjansson.so.4" "$tmp/broken.log"
  check "a pack without libjansson fails the check naming it" $?
  rm -rf "$tmp/broken"
  if [ "${2:-}" = "--dry-run" ]; then
    OUT="$tmp/out" QB_GPU_SUITE='^test_cuda_(backend|train)$' QB_GPU_BUDGET_S=400 bash "$root/bench/gpu/run.sh" --dry-run --pack "$tmp/pack" >"$tmp/run.log" 2>&1
    rc=$?
    tail -25 "$tmp/run.log"
    check "run.sh --dry-run from the pack: exit $rc" $rc
    grep -q "^## cuda suite: .*, 0 failed, 0 timed out, 0 not run" "$tmp/out/summary.md" && grep -q "^## QAT tiny" "$tmp/out/summary.md" && [ -f "$tmp/out/summary.json" ]
    check "summary: the suite (no failure) and the tiny model's QAT run" $?
    grep -q "^## Training benchmark: .* DRY RUN" "$tmp/out/summary.md" && grep -q "^| qdqbert | .* | on, int8 GEMM |" "$tmp/out/summary.md"
    check "summary: the training benchmark's dry run from the pack" $?
  fi
fi
echo "gpu pack: $passed passed, $failed failed"
[ $failed -eq 0 ]
