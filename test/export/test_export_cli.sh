#!/usr/bin/env bash
# test_export_cli.sh QAT_TRAIN: qat-train's export paths with MiniLM on real SQuAD: task ptq (calibrate -> eval ->
# export), evaluation from the HDF5 export (same predictions and n-best logits as the checkpoint), re-export of the
# HDF5 file to ONNX (byte-identical graph), and the errors: missing amax, unwritable path, a truncated export, and a
# full disk (a small tmpfs; skipped where none can be mounted), each one line, earlier exports intact.
set -u
exe="$1"
root=${QB_SOURCE_ROOT:-.}
minilm="$root/.cache/minilm" squad=${QB_SQUAD_DIR:-$root/../shared/data/squad}
[ -f "$minilm/model.safetensors" ] || { echo "SKIP: no MiniLM checkpoint in $minilm"; exit 77; }
[ -f "$squad/dev-v1.1.json.gz" ] || { echo "SKIP: no SQuAD v1.1 in $squad"; exit 77; }
tmp=$(mktemp -d)
mnt="$tmp/small"
cleanup() { mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"; rm -rf "$tmp"; }
trap cleanup EXIT
passed=0 failed=0 skipped=0
check() { if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi; }
expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"; shift 2
  "$exe" "$tmp/run.ini" "$@" >"$tmp/stdout" 2>"$tmp/err"
  local rc=$? lines=$(wc -l <"$tmp/err")
  grep -q -- "$pattern" "$tmp/err"
  local found=$?
  [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ $found -eq 0 ]
  local ok=$?
  check "$name: exit $rc, $(head -c 240 "$tmp/err")" $ok
}
cat >"$tmp/run.ini" <<INI
[run]
task = ptq
output_dir = $tmp/ptq
[model]
path = $minilm
[data]
train_file = $squad/dev-v1.1.json.gz
dev_file = $squad/dev-v1.1.json.gz
max_seq_length = 64
doc_stride = 16
max_train_samples = 16
max_eval_samples = 6
[quant]
calib_samples = 16
[eval]
batch_size = 8
INI
"$exe" "$tmp/run.ini" >"$tmp/ptq.log" 2>&1
check "task ptq runs (calibrate, eval, export)" $?
[ -f "$tmp/ptq/model.safetensors" ] && [ -f "$tmp/ptq/predictions.json" ] && [ -s "$tmp/ptq/model.h5" ] && [ -s "$tmp/ptq/model.onnx" ]
check "ptq outputs: calibrated checkpoint, predictions, model.h5, model.onnx" $?
grep -q "activation Q/DQ pairs" "$tmp/ptq.log" && grep -q "TensorRT fusion" "$tmp/ptq.log"
check "export prints the Q/DQ pair count and TensorRT's equal-scale report" $?
grep -q "export: wrote $tmp/ptq/model.h5 " "$tmp/ptq.log" && grep -q "export: wrote $tmp/ptq/model.onnx " "$tmp/ptq.log" && ! grep -q "wrote .*\.tmp-" "$tmp/ptq.log"
check "the export lines name the final paths, not the staging directory" $?
"$exe" "$tmp/run.ini" run.task=eval "model.path=$tmp/ptq/model.h5" "run.output_dir=$tmp/evh5" >"$tmp/evh5.log" 2>&1
check "eval from the HDF5 export runs" $?
cmp -s "$tmp/ptq/predictions.json" "$tmp/evh5/predictions.json" && cmp -s "$tmp/ptq/nbest_predictions.json" "$tmp/evh5/nbest_predictions.json"
check "eval from model.h5: predictions and n-best logits identical to the checkpoint's" $?
"$exe" "$tmp/run.ini" run.task=export "model.path=$tmp/ptq/model.h5" export.format=onnx "export.path=$tmp/re.onnx" >"$tmp/re.log" 2>&1 &&
  cmp -s "$tmp/re.onnx" "$tmp/ptq/model.onnx"
check "ONNX re-exported from model.h5 is byte-identical to the one from the checkpoint" $?
mkdir -p "$tmp/stale" && echo partial >"$tmp/stale/m.h5.tmp.999999" && echo partial >"$tmp/stale/m.onnx.tmp.999998" && echo keep >"$tmp/stale/m.h5.tmp.notapid"
"$exe" "$tmp/run.ini" run.task=export "model.path=$tmp/ptq" "export.path=$tmp/stale/m" >"$tmp/stale.log" 2>&1 &&
  [ "$(ls "$tmp/stale" | sort | tr '\n' ' ')" = "m.h5 m.h5.tmp.notapid m.onnx " ] && grep -q "removed 2 temporary files a killed run left" "$tmp/stale.log"
check "export.path: temporary files a killed export left beside it are removed, others kept" $?
cp "$tmp/ptq/model.h5" "$tmp/before.h5"
expect_error "uncalibrated model: enabled quantizers without an amax are listed" "120 enabled quantizers without an amax (calibrate first): bert.encoder.layer.0" \
  run.task=export "model.path=$minilm" "export.path=$tmp/ptq/model"
cmp -s "$tmp/ptq/model.h5" "$tmp/before.h5"
check "earlier export intact after the failed one" $?
expect_error "unwritable path" "export.path: .*model.h5/x.h5: .*Not a directory" run.task=export "model.path=$tmp/ptq" export.format=hdf5 "export.path=$tmp/ptq/model.h5/x.h5"
expect_error "ONNX needs 8 bits" "export.format: ONNX QuantizeLinear is 8-bit" run.task=export "model.path=$tmp/ptq" quant.aprec=6
head -c 5000 "$tmp/ptq/model.h5" >"$tmp/trunc.h5"
expect_error "truncated export names the file" "trunc.h5" run.task=eval "model.path=$tmp/trunc.h5" "run.output_dir=$tmp/ev2"
# a full disk: a 72 MiB tmpfs holding an earlier 58 MiB export
mkdir -p "$mnt"
if mount -t tmpfs -o size=72m tmpfs "$mnt" 2>/dev/null; then
  cp "$tmp/ptq/model.h5" "$mnt/model.h5"
  expect_error "full disk (HDF5): one line with strerror" "No space left on device" run.task=export "model.path=$tmp/ptq" export.format=hdf5 "export.path=$mnt/model.h5"
  expect_error "full disk (ONNX): one line with strerror" "No space left on device" run.task=export "model.path=$tmp/ptq" export.format=onnx "export.path=$mnt/model.onnx"
  cmp -s "$mnt/model.h5" "$tmp/ptq/model.h5" && [ ! -e "$mnt/model.onnx" ] && [ "$(ls "$mnt" | wc -l)" -eq 1 ]
  check "full disk: earlier export intact, no partial or temporary file left" $?
else
  skipped=$((skipped + 1))
  echo "skip full disk: cannot mount a tmpfs here (not root)"
fi
ls "$tmp/ptq" | grep -q '\.tmp\.'
[ $? -ne 0 ]
check "no temporary files left in the run directory" $?
echo "export cli: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
