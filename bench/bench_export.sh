#!/usr/bin/env bash
# bench_export.sh [CHECKPOINT_DIR]: the deployment payoff, side by side on the same SQuAD dev features and threads:
# our fake-quant forward, onnxruntime running our INT8 QDQ graph, onnxruntime running the float graph (and our fp32
# forward). CHECKPOINT_DIR is a calibrated or QAT-trained checkpoint (default: MiniLM calibrated here on 32 features).
# Needs the python packages of test/export/test_onnx_ort.sh (.cache/pyenv-export). Env: QUESTIONS (64), BATCH (8).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.cache/pyenv-export/bin/python
[ -x "$py" ] || { echo "bench_export: run test/export/test_onnx_ort.sh once (it creates $py)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
squad=../shared/data/squad
ini=configs/squad_minilm_qat.ini
ck=${1:-}
if [ -z "$ck" ]; then
  ./build/programs/qat-train $ini run.task=calibrate "run.output_dir=$tmp/cal" data.max_train_samples=64 quant.calib_samples=32 >/dev/null
  ck=$tmp/cal
fi
./build/programs/qat-train $ini run.task=export "model.path=$ck" "run.output_dir=$tmp" export.format=both "export.path=$tmp/full" >/dev/null
./build/programs/qat-train $ini run.task=export "model.path=$ck" "run.output_dir=$tmp" quant.disable=true export.format=onnx "export.path=$tmp/float.onnx" >/dev/null
./build/test/export/qa_probe dump "$tmp/full.h5" "$ck" $squad/dev-v1.1.json.gz "${QUESTIONS:-64}" 128 32 "$tmp/features.safetensors" >/dev/null
./build/bench/bench_export "$tmp/full.h5" "$tmp/features.safetensors" --batch "${BATCH:-8}"
$py bench/bench_export_ort.py "$tmp/full.onnx" "$tmp/float.onnx" "$tmp/features.safetensors" --batch "${BATCH:-8}"
