#!/usr/bin/env bash
# test_onnx_ort.sh QAT_TRAIN QA_PROBE: MiniLM calibrated on SQuAD, exported by qat-train with every quantizer off,
# weights only and fully quantized (HDF5, QDQ ONNX, HF-style ONNX), then checked with the real libraries:
# test/ref/check_hdf5_layout.py (h5py) against docs/hdf5-format.md, and check_onnx_ort.py (onnx.checker, onnxruntime
# at two optimisation levels against our forward on real SQuAD dev features, a float64 noise floor, EM/F1).
# QB_EXPORT_MODEL=DIR checks a given calibrated or trained checkpoint instead of calibrating MiniLM here.
# numpy, h5py, onnx, onnxruntime and scipy are pip-installed into .cache/pyenv-export; SKIPPED (exit 77) where PyPI,
# MiniLM or SQuAD is not available.
set -u
exe="$1" probe="$2"
root=${QB_SOURCE_ROOT:-.}
minilm="$root/.cache/minilm" squad=${QB_SQUAD_DIR:-$root/../shared/data/squad}
QUESTIONS=${QB_EXPORT_QUESTIONS:-32} QUESTIONS_FULL=${QB_EXPORT_QUESTIONS_FULL:-64} SEQ=128 STRIDE=32 THREADS=${OMP_NUM_THREADS:-2}
# the libraries checked here are not instrumented; the sanitizer build covers the exporters in test_export and export_cli
[ -n "${ASAN_OPTIONS:-}" ] && { echo "SKIP: onnxruntime check runs in the release build (sanitizer run: test_export, export_cli)"; exit 77; }
[ -f "$minilm/model.safetensors" ] || { echo "SKIP: no MiniLM checkpoint in $minilm (scripts/fetch_minilm.sh)"; exit 77; }
[ -f "$squad/dev-v1.1.json.gz" ] && [ -f "$squad/train-v1.1.json.gz" ] || { echo "SKIP: no SQuAD v1.1 in $squad"; exit 77; }
venv="$root/.cache/pyenv-export"
if ! "$venv/bin/python" -c "import numpy, h5py, onnx, onnxruntime, scipy" 2>/dev/null; then
  python3 -m venv "$venv" >/dev/null 2>&1 &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --timeout 60 numpy h5py onnx onnxruntime scipy >"$venv.log" 2>&1 ||
    { echo "SKIP: cannot pip-install numpy h5py onnx onnxruntime scipy (PyPI not reachable?): $(tail -n 1 "$venv.log" 2>/dev/null)"; exit 77; }
fi
py="$venv/bin/python"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/run.ini" <<INI
[run]
task = calibrate
output_dir = $tmp/cal
[model]
path = $minilm
[data]
train_file = $squad/train-v1.1.json.gz
dev_file = $squad/dev-v1.1.json.gz
max_seq_length = $SEQ
doc_stride = $STRIDE
max_train_samples = 64
[quant]
calib_samples = 32
[output]
overwrite = true
INI
run() { "$exe" "$tmp/run.ini" "$@" >>"$tmp/log" 2>&1 || { echo "FAIL qat-train $*"; tail -n 5 "$tmp/log"; exit 1; }; }
if [ -n "${QB_EXPORT_MODEL:-}" ]; then mkdir -p "$tmp/cal" && cp "$QB_EXPORT_MODEL"/{config.json,model.safetensors,vocab.txt} "$tmp/cal/"; else run; fi
for v in none weights full; do
  case $v in none) q="quant.disable=true" ;; weights) q="quant.disable_keyword=input_quantizer" ;; full) q="quant.calibrator=percentile" ;; esac
  run run.task=export "model.path=$tmp/cal" "run.output_dir=$tmp/cal" "$q" export.format=both "export.path=$tmp/$v"
  mv "$tmp/$v.onnx" "$tmp/${v}_qdq.onnx"
  run run.task=export "model.path=$tmp/cal" "run.output_dir=$tmp/cal" "$q" export.format=onnx export.onnx_mode=hf "export.path=$tmp/${v}_hf.onnx"
  nq=$QUESTIONS; [ $v = full ] && nq=$QUESTIONS_FULL
  "$probe" dump "$tmp/$v.h5" "$tmp/cal" "$squad/dev-v1.1.json.gz" "$nq" $SEQ $STRIDE "$tmp/ours_$v.safetensors" >/dev/null ||
    { echo "FAIL qa_probe dump $v"; exit 1; }
done
grep "^export:" "$tmp/log" | sed 's|'"$tmp"'/||g'
run run.task=export "model.path=$tmp/cal" "run.output_dir=$tmp/cal" export.format=hdf5 export.int8_embeddings=true "export.path=$tmp/emb8.h5"
rc=0
for h in full weights none emb8; do
  "$py" "$root/test/ref/check_hdf5_layout.py" "$tmp/$h.h5" "$root/docs/hdf5-format.md" || rc=1
done
"$py" "$root/test/export/check_onnx_ort.py" "$tmp" "$probe" "$tmp/cal" "$squad/dev-v1.1.json.gz" "$QUESTIONS" "$QUESTIONS_FULL" $SEQ $STRIDE "$THREADS" || rc=1
[ -n "${QB_EXPORT_KEEP:-}" ] && cp "$tmp/summary.json" "$tmp/full_qdq.onnx" "$tmp/none_qdq.onnx" "$tmp/full.h5" "$tmp/ours_full.safetensors" "$QB_EXPORT_KEEP/"
[ $rc -eq 0 ] && echo "export onnx/ort: 1 passed, 0 failed" || echo "export onnx/ort: 0 passed, 1 failed"
exit $rc
