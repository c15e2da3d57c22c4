#!/usr/bin/env bash
# test_qat_train_device.sh QAT_TRAIN: run.device. Bad values give one-line errors naming run.device (an unknown name,
# a GPU ordinal past the visible ones, no GPU at all); then, where a CUDA device is there (a GPU or the emulated build),
# task qat (calibrate -> train -> eval -> export) of the tiny QA checkpoint (test/model/fixtures/hf_saved) on a few real
# SQuAD questions with run.device=cuda and with run.device=cpu: the same EM/F1, the losses of every step and the
# calibrated and trained checkpoints (saved from device memory) within 1e-4 relative, and an export written.
# Where no CUDA device is visible the comparison is SKIPPED with the reason. QB_CUDA_ALLOW_MISSING=1 reports a missing
# cuda kernel as skipped instead of failed.
set -u
exe="$1"
root=${QB_SOURCE_ROOT:-.}
. "$(dirname "$0")/../common/check.sh"
skipped=0
squad=${QB_SQUAD_DIR:-$root/../shared/data/squad}
expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"; shift 2
  "$exe" "$@" >"$tmp/stdout" 2>"$tmp/err"
  local rc=$? lines=$(wc -l <"$tmp/err")
  grep -q -- "$pattern" "$tmp/err"
  local found=$?
  [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ $found -eq 0 ]
  check "$name: exit $rc, $(head -c 200 "$tmp/err")" $?
}

cuda_line=$("$exe" --version | sed -n 's/^CUDA: //p')
devices=$(sed -n 's/.*devices \([0-9]*\).*/\1/p' <<<"$cuda_line")
devices=${devices:-0}
echo "CUDA: $cuda_line"

cat >"$tmp/run.ini" <<INI
[run]
task = qat
device = cpu
output_dir = $tmp/cpu
[model]
path = $root/test/model/fixtures/hf_saved
[data]
train_file = $squad/dev-v1.1.json.gz
dev_file = $squad/dev-v1.1.json.gz
max_seq_length = 64
doc_stride = 16
max_train_samples = 16
max_eval_samples = 8
[quant]
calib_samples = 8
[train]
max_steps = 4
batch_size = 4
learning_rate = 1e-3
logging_steps = 1
[eval]
batch_size = 8
[export]
format = hdf5
INI
printf '[run]\ntask = demo\ndevice = tpu\n' >"$tmp/bad_device.ini"
expect_error "unknown device in the file names its line" "bad_device.ini:3: run.device: 'tpu' (expected cpu, cuda or cuda:N)" "$tmp/bad_device.ini"
expect_error "malformed ordinal on the command line" "command line: run.device: 'cuda:x' (expected cpu, cuda or cuda:N)" "$tmp/run.ini" "run.device=cuda:x"
expect_error "ordinal past the visible devices" "run.device: cuda:99: " "$tmp/run.ini" "run.device=cuda:99"
if [ "$devices" -eq 0 ]; then
  expect_error "cuda without a device" "command line: run.device: cuda: " "$tmp/run.ini" "run.device=cuda"
else
  expect_error "cuda:N past the last device names the count" "run.device: cuda:$devices: only $devices CUDA device" "$tmp/run.ini" "run.device=cuda:$devices"
  # the emulated build: QB_CUDA_EMU_DEVICES=0 makes a machine without a GPU
  if [ "$(QB_CUDA_EMU_DEVICES=0 "$exe" --version | sed -n 's/^CUDA: .*devices \([0-9]*\).*/\1/p')" = 0 ]; then
    QB_CUDA_EMU_DEVICES=0 "$exe" "$tmp/run.ini" run.device=cuda >"$tmp/stdout" 2>"$tmp/err"
    rc=$?
    [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "run.device: cuda: no CUDA device visible" "$tmp/err"
    check "emulated machine without a GPU: run.device=cuda refused naming the key: $(head -c 200 "$tmp/err")" $?
  fi
fi
[ ! -e "$tmp/cpu" ]
check "nothing written by the refused runs" $?

if [ "$devices" -eq 0 ]; then
  echo "SKIP cpu vs cuda qat run: no CUDA device visible ($cuda_line)"
  skipped=$((skipped + 1))
elif [ ! -f "$squad/dev-v1.1.json.gz" ]; then
  echo "SKIP cpu vs cuda qat run: no SQuAD v1.1 in $squad"
  skipped=$((skipped + 1))
else
  "$exe" "$tmp/run.ini" >"$tmp/cpu.log" 2>&1
  check "task qat on run.device=cpu" $?
  "$exe" "$tmp/run.ini" run.device=cuda "run.output_dir=$tmp/cuda" >"$tmp/cuda.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && [ "${QB_CUDA_ALLOW_MISSING:-0}" = 1 ] && grep -q "no cuda kernel" "$tmp/cuda.log"; then
    echo "SKIP cpu vs cuda qat run: $(grep 'no cuda kernel' "$tmp/cuda.log" | head -1)"
    skipped=$((skipped + 1))
  else
    check "task qat on run.device=cuda: $(grep -m1 'error' "$tmp/cuda.log")" $rc
    grep -q "; device cuda;" "$tmp/cuda.log" && grep -q "export: wrote $tmp/cuda/model.h5" "$tmp/cuda.log"
    check "the cuda run names its device and exports: $(grep -E '^qat-train|^export: wrote' "$tmp/cuda.log" | head -3 | tr '\n' '|')" $?
    python3 - "$tmp/cpu" "$tmp/cuda" <<'PY'
import json, struct, sys
from array import array
cpu, gpu = sys.argv[1], sys.argv[2]
failed = 0
def check(ok, msg):
    global failed
    print(("ok   " if ok else "FAIL ") + msg)
    failed += not ok
a, b = (json.load(open(d + "/eval_results.json")) for d in (cpu, gpu))
check(a["eval_exact_match"] == b["eval_exact_match"] and a["eval_f1"] == b["eval_f1"],
      "EM/F1 cpu %.4f/%.4f, cuda %.4f/%.4f" % (a["eval_exact_match"], a["eval_f1"], b["eval_exact_match"], b["eval_f1"]))
la, lb = ([json.loads(l)["loss"] for l in open(d + "/metrics.jsonl")] for d in (cpu, gpu))
worst = max(abs(x - y) / abs(x) for x, y in zip(la, lb)) if la and len(la) == len(lb) else float("inf")
check(len(la) == 4 and worst <= 1e-4, "losses of %d steps within 1e-4 relative (max %.3g): cpu %s cuda %s" % (len(la), worst, la, lb))
def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        s, e = v["data_offsets"]
        out[k] = array("f", raw[8 + n + s:8 + n + e])
    return out
# per tensor, except where the losses do not depend on a tensor: qa_outputs.bias, the last LayerNorm bias and the key
# biases (softmax is shift-invariant) have gradients that are rounding noise, and AdamW's normalised step follows its
# sign; those are held to the step bound 2 lr steps (test_cuda_train does the same per element)
bound = 2 * 1e-3 * 4 * 1.01
for sub, what in (("calibrated/", "calibrated checkpoint (amax)"), ("", "trained checkpoint")):
    ta, tb = tensors(cpu + "/" + sub + "model.safetensors"), tensors(gpu + "/" + sub + "model.safetensors")
    last = max(int(k.split(".")[3]) for k in ta if k.startswith("bert.encoder.layer."))
    invariant = {"qa_outputs.bias", "bert.encoder.layer.%d.output.LayerNorm.bias" % last}
    worst, name, inv_worst, bad = 0.0, "", 0.0, []
    for k in ta:
        if k not in tb or len(tb[k]) != len(ta[k]):
            bad.append(k)
            continue
        diff = max(abs(x - y) for x, y in zip(ta[k], tb[k]))
        if k in invariant or k.endswith("attention.self.key.bias"):
            inv_worst = max(inv_worst, diff)
            if diff > bound:
                bad.append(k)
            continue
        d = diff / max(max(abs(x) for x in ta[k]), 1e-30)
        if d > 1e-4:
            bad.append(k)
        if d > worst:
            worst, name = d, k
    check(set(ta) == set(tb) and not bad, "%s: %d tensors, max |cuda - cpu| / max|cpu| %.3g (%s); loss-invariant biases %.3g (bound %.3g)%s" % (
        what, len(ta), worst, name, inv_worst, bound, "; outside: " + ", ".join(bad[:4]) if bad else ""))
same = open(cpu + "/predictions.json").read() == open(gpu + "/predictions.json").read()
print("info predictions.json %s" % ("identical" if same else "differ"))
sys.exit(1 if failed else 0)
PY
    check "cpu and cuda runs agree (EM/F1, losses, checkpoints)" $?
  fi
fi

echo "qat-train run.device: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $passed -gt 0 ] || exit 77
exit 0
