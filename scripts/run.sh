#!/usr/bin/env bash
# run.sh: sets everything up and runs qat-train on the shipped default config (extra arguments are overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec ./build/programs/qat-train configs/demo.ini "$@"
