#!/usr/bin/env bash
# test_gpu_train_bench.sh BENCH_BIN DEVICE: bench/gpu/train_bench.sh --dry-run end to end with this build's
# bench_train_gpu on DEVICE (cuda in the emulated build, else cpu): every case of ours runs (quantizers off, on, on with
# the INT8 GEMM, at both sequence lengths), the table and its JSON are written, MFU and the QAT / float ratio are
# filled in, and a broken binary fails it.
set -u
bin="$1" device="$2"
root=${QB_SOURCE_ROOT:-.}
. "$(dirname "$0")/../common/check.sh"

bash "$root/bench/gpu/train_bench.sh" --dry-run "$bin" "$tmp/out" 100 "$device" >"$tmp/run.log" 2>&1
rc=$?
cat "$tmp/run.log"
check "train_bench.sh --dry-run on $device: exit $rc" $rc
python3 - "$tmp/out/train_bench.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ours = [r for r in d["runs"] if r["impl"] == "qdqbert"]
cases = {(r["seq"], r["quant"], r["int8"]) for r in ours}
want = {(s, q, i) for s in (32, 16) for q, i in ((0, 0), (1, 0), (1, 1))}
assert {r["precision"] for r in ours} == ({"bf16", "tf32"} if ours[0]["device"] == "cuda" else {"fp32"}), "precisions"
assert want <= cases, "missing cases: %s" % sorted(want - cases)
assert d["dry_run"] and all(r["seq_s"] > 0 and r["flops_step"] > 0 and r["mfu"] > 0 for r in ours)
assert all("qat_over_float_step" in r for r in ours if r["quant"]), "QAT / float step ratio missing"
assert all(r["arena_planned_mib"] >= r["arena_peak_mib"] > 0 for r in ours), "arena plan below its peak"
if ours[0]["device"] == "cuda":
    assert all(r["device_peak_mib"] > 0 for r in ours), "cudaMemGetInfo peak not measured"
PY
check "train_bench.json: every case of ours with seq/s, MFU, QAT / float step, memory" $?
grep -q "^| qdqbert | .* | on, int8 GEMM |" "$tmp/out/train_bench.md" && grep -q "^linear \[32, 64\].*int8 .*x the fp32 path" "$tmp/out/train_bench.md"
check "train_bench.md: the table with the INT8 GEMM rows and the INT8 GEMM probe" $?
printf '#!/bin/sh\nexit 3\n' >"$tmp/broken"
chmod +x "$tmp/broken"
bash "$root/bench/gpu/train_bench.sh" --dry-run "$tmp/broken" "$tmp/out2" 60 "$device" >"$tmp/broken.log" 2>&1
[ $? -ne 0 ] && grep -q "^not run: .*qdqbert-" "$tmp/out2/train_bench.md"
check "a failing benchmark binary fails the run and is listed as not run" $?
echo "gpu train bench: $passed passed, $failed failed"
[ $failed -eq 0 ]
