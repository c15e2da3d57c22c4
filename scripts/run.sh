#!/usr/bin/env bash
# run.sh: sets everything up and runs the main job on the shipped defaults: QDQBERT's SQuAD QAT recipe
# (calibrate -> QAT fine-tune -> evaluate) with the MiniLM checkpoint on a CPU-sized SQuAD subset
# (configs/squad_minilm_qat.ini; about 2 minutes on 2 idle cores). Extra arguments are section.key=value overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -s .cache/minilm/model.safetensors ] || { echo "run: the MiniLM checkpoint is missing (scripts/fetch_minilm.sh failed)" >&2; exit 1; }
squad=$(scripts/fetch_squad.sh)
train=$(ls "$squad"/train-v1.1.json* | head -n 1)
dev=$(ls "$squad"/dev-v1.1.json* | head -n 1)
exec ./build/programs/qat-train configs/squad_minilm_qat.ini "data.train_file=$train" "data.dev_file=$dev" "$@"
