#!/usr/bin/env bash
# test_tensorboard.sh TEST_TRAINER: the event files of a test_trainer run (eval.steps, logging) read by TensorBoard's
# own EventAccumulator (test/ref/check_tensorboard.py) hold the values of metrics.jsonl. tensorboard is pip-installed
# into .cache/pyenv-tb; SKIPPED (exit 77) where PyPI is not reachable.
set -u
exe="$1"
root=${QB_SOURCE_ROOT:-.}
[ -n "${ASAN_OPTIONS:-}" ] && { echo "SKIP: TensorBoard check runs in the release build (the sanitizer run has test 'trainer')"; exit 77; }
venv="$root/.cache/pyenv-tb"
if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
  python3 -m venv "$venv" >/dev/null 2>&1 &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --timeout 60 tensorboard >"$venv.log" 2>&1 ||
    { echo "SKIP: cannot pip-install tensorboard (PyPI not reachable?): $(tail -n 1 "$venv.log" 2>/dev/null)"; exit 77; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
QB_TRAINER_KEEP="$tmp/run" "$exe" >"$tmp/log" 2>&1 || { echo "FAIL: test_trainer"; cat "$tmp/log"; exit 1; }
"$venv/bin/python" "$root/test/ref/check_tensorboard.py" "$tmp/run"
