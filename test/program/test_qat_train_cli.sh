#!/usr/bin/env bash
# test_qat_train_cli.sh: qat-train's command line: the demo reaches its stated loss; bad configs and overrides
# give one-line errors naming the file, line and key, exit non-zero, and leave earlier outputs intact.
set -u
exe="$1"
. "$(dirname "$0")/../common/check.sh"
skipped=0
expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"; shift 2
  "$exe" "$@" >"$tmp/stdout" 2>"$tmp/err"
  local rc=$?
  local lines=$(wc -l <"$tmp/err")
  grep -q -- "$pattern" "$tmp/err"
  local found=$?
  [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ $found -eq 0 ]
  local ok=$?
  check "$name: exit $rc, $(head -c 200 "$tmp/err")" $ok
}

cat >"$tmp/demo.ini" <<INI
[run]
task = demo
output_dir = $tmp/out
[demo]
steps = 400
target_loss = 0.1
INI
"$exe" "$tmp/demo.ini" >"$tmp/log" 2>&1
check "demo reaches its target loss" $?
grep -q '"reached": true' "$tmp/out/demo_metrics.json"
check "demo metrics written" $?
cp "$tmp/out/demo_metrics.json" "$tmp/before.json"

printf '[run]\ntask = demo\nstepz = 3\n' >"$tmp/bad_key.ini"
expect_error "unknown key names file and line" "bad_key.ini:3: unknown key 'stepz' in \[run\]" "$tmp/bad_key.ini"
printf '[run]\ntask = demo\n[demo]\nlr = fast\n' >"$tmp/bad_value.ini"
expect_error "malformed number names key" "bad_value.ini:4: demo.lr: 'fast' is not a finite number" "$tmp/bad_value.ini"
printf '[run]\ntask = demo\n[nope]\nx = 1\n' >"$tmp/bad_section.ini"
expect_error "unknown section" "bad_section.ini:4: unknown section \[nope\]" "$tmp/bad_section.ini"
printf '[run]\ntask = fly\n' >"$tmp/bad_task.ini"
expect_error "unknown task" "run.task: unknown task 'fly'" "$tmp/bad_task.ini"
expect_error "missing config file" "cannot open" "$tmp/none.ini"
expect_error "unknown precision" "command line: run.precision: unknown precision 'fp16'" "$tmp/demo.ini" "run.precision=fp16"
expect_error "tf32 refused on the cpu" "command line: run.precision: tf32 is a GPU precision" "$tmp/demo.ini" "run.precision=tf32"
expect_error "bad override syntax" "not section.key=value" "$tmp/demo.ini" "steps=3"
expect_error "unknown override key" "unknown key 'demo.stepz'" "$tmp/demo.ini" "demo.stepz=3"
expect_error "bad override value" "demo.steps: 'x' is not an integer" "$tmp/demo.ini" "demo.steps=x"
expect_error "target not reached" "above target" "$tmp/demo.ini" "demo.steps=2" "run.output_dir=$tmp/out2"
# SQuAD tasks: bad keys and values name file:line (or the command line) and the key, before any output is written
cat >"$tmp/squad.ini" <<INI
[run]
task = qat
output_dir = $tmp/out
[model]
path = $tmp/no-model
[data]
train_file = $tmp/no-train.json
dev_file = $tmp/no-dev.json
INI
expect_error "unknown calibrator on the command line" "command line: quant.calibrator: unknown calibrator 'minmax'" "$tmp/squad.ini" "quant.calibrator=minmax"
printf '[run]\ntask = eval\n[model]\npath = x\n[data]\ndev_file = y\n[quant]\ncalibrator = minmax\n' >"$tmp/bad_calib.ini"
expect_error "bad calibrator in file names its line" "bad_calib.ini:8: quant.calibrator: unknown calibrator 'minmax'" "$tmp/bad_calib.ini"
printf '[run]\ntask = train\n[model]\npath = x\n[data]\ntrain_file = y\n[train]\nbatch_size = 0\n' >"$tmp/bad_batch.ini"
expect_error "zero batch size names file:line" "bad_batch.ini:8: train.batch_size: 0 outside \[1, 4096\]" "$tmp/bad_batch.ini"
expect_error "best model needs eval steps" "command line: train.load_best_model_at_end: needs eval.steps > 0" "$tmp/squad.ini" "train.load_best_model_at_end=true"
expect_error "best model needs save steps on eval steps" "train.save_steps: 3 must be a positive multiple of eval.steps 2" "$tmp/squad.ini" "train.load_best_model_at_end=true" "eval.steps=2" "train.save_steps=3"
expect_error "accumulation steps positive" "train.gradient_accumulation_steps: 0 outside \[1, 4096\]" "$tmp/squad.ini" "train.gradient_accumulation_steps=0"
expect_error "unknown learned range mode" "quant.learn_ranges: 'adaround' (expected none, pact or lsq)" "$tmp/squad.ini" "quant.learn_ranges=adaround"
expect_error "kd_alpha range" "train.kd_alpha: 2 outside \[0, 1\]" "$tmp/squad.ini" "train.kd_alpha=2"
expect_error "unknown report_to" "train.report_to: 'wandb' (expected tensorboard or none)" "$tmp/squad.ini" "train.report_to=wandb"
expect_error "bad scheduler on the command line" "command line: train.lr_scheduler: unknown scheduler 'step'" "$tmp/squad.ini" "train.lr_scheduler=step"
expect_error "stride not below the sequence length" "data.doc_stride: 200 must be in \[1, max_seq_length)" "$tmp/squad.ini" "data.doc_stride=200"
expect_error "percentile out of range" "quant.percentile: 120 outside (0, 100\]" "$tmp/squad.ini" "quant.percentile=120"
expect_error "bad regex names the key" "command line: quant.disable_keyword: pattern 'a(b'" "$tmp/squad.ini" "quant.disable_keyword=a(b"
expect_error "aprec out of range" "quant.aprec: 1 outside \[2, 16\]" "$tmp/squad.ini" "quant.aprec=1"
expect_error "unknown quant key" "unknown key 'quant.calib'" "$tmp/squad.ini" "quant.calib=max"
expect_error "model path required" "model.path: required for task eval" "$tmp/squad.ini" "run.task=eval" "model.path="
expect_error "missing model directory names the key" "model.path: $tmp/no-model: cannot open" "$tmp/squad.ini" "run.output_dir=$tmp/fresh"
expect_error "non-empty output dir needs overwrite" "run.output_dir: '$tmp/out' exists and is not empty" "$tmp/squad.ini"
printf '{"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": [{"id": "q1", "question": "x?", "answers": [{"text": "zz", "answer_start": 0}]}]}]}], "version": "1.1"}' >"$tmp/bad_squad.json"
if [ -f "${QB_SOURCE_ROOT:-.}/.cache/minilm/model.safetensors" ]; then
  expect_error "bad SQuAD answer names file and question" "bad_squad.json.*q1" "$tmp/squad.ini" "run.output_dir=$tmp/fresh2" "model.path=${QB_SOURCE_ROOT:-.}/.cache/minilm" "data.train_file=$tmp/bad_squad.json"
  expect_error "missing train file names it" "no-train.json: cannot open" "$tmp/squad.ini" "run.output_dir=$tmp/fresh" "model.path=${QB_SOURCE_ROOT:-.}/.cache/minilm"
  printf '{"hidden_size": 7}' >"$tmp/bad_config.json"
  mkdir -p "$tmp/badmodel" && cp "$tmp/bad_config.json" "$tmp/badmodel/config.json" && cp "${QB_SOURCE_ROOT:-.}/.cache/minilm/vocab.txt" "$tmp/badmodel/"
  printf '{"data": [{"title": "t", "paragraphs": [{"context": "abc def", "qas": [{"id": "q1", "question": "x?", "answers": [{"text": "def", "answer_start": 4}]}]}]}], "version": "1.1"}' >"$tmp/ok_squad.json"
  expect_error "bad model config names the file" "badmodel/config.json" "$tmp/squad.ini" "run.output_dir=$tmp/fresh3" "model.path=$tmp/badmodel" "data.train_file=$tmp/ok_squad.json"
  [ ! -e "$tmp/fresh3/calibrated/model.safetensors" ]
  check "no checkpoint left by a failed run" $?
  if [ -n "${QB_SQUAD_DIR:-}" ] && [ -f "$QB_SQUAD_DIR/dev-v1.1.json.gz" ]; then
    "$exe" "$tmp/squad.ini" "run.output_dir=$tmp/qat" "model.path=${QB_SOURCE_ROOT:-.}/.cache/minilm" "data.train_file=$QB_SQUAD_DIR/dev-v1.1.json.gz" \
      "data.dev_file=$QB_SQUAD_DIR/dev-v1.1.json.gz" data.max_seq_length=64 data.doc_stride=16 data.max_train_samples=4 data.max_eval_samples=3 \
      quant.calib_samples=4 train.max_steps=2 train.batch_size=2 train.save_steps=1 eval.batch_size=4 >"$tmp/qat.log" 2>&1
    check "task qat runs end to end" $?
    grep -q "newly initialized: \['qa_outputs.bias', 'qa_outputs.weight'\]" "$tmp/qat.log"
    check "QA head newly initialised line printed" $?
    [ -f "$tmp/qat/calibrated/model.safetensors" ] && [ -f "$tmp/qat/calibrated/vocab.txt" ] && [ -f "$tmp/qat/checkpoint-1/optimizer.safetensors" ] &&
      [ -f "$tmp/qat/model.safetensors" ] && [ -f "$tmp/qat/trainer_state.json" ] && [ "$(wc -l <"$tmp/qat/metrics.jsonl")" -eq 2 ] &&
      [ -f "$tmp/qat/predictions.json" ] && grep -q '"eval_exact_match"' "$tmp/qat/eval_results.json"
    check "qat outputs: calibrated checkpoint, checkpoint-1, final model, metrics, predictions, eval_results" $?
    "$exe" "$tmp/squad.ini" "run.task=train" "run.output_dir=$tmp/qat" "train.resume_from=$tmp/qat/checkpoint-1" \
      "data.train_file=$QB_SQUAD_DIR/dev-v1.1.json.gz" data.max_seq_length=64 data.doc_stride=16 data.max_train_samples=4 \
      train.max_steps=2 train.batch_size=3 >"$tmp/resume.log" 2>"$tmp/err"
    grep -q "trainer_state.json: train_batch_size 2 but this run has 3" "$tmp/err"
    check "resume with another batch size is refused naming the file" $?
  fi
else
  skipped=$((skipped + 1))
  echo "skip the checks on the MiniLM checkpoint (no .cache/minilm: run scripts/fetch_minilm.sh)"
fi
cmp -s "$tmp/out/demo_metrics.json" "$tmp/before.json"
check "earlier outputs intact after failed runs" $?
ls "$tmp/out" | grep -q tmp
[ $? -ne 0 ]
check "no temporary files left behind" $?

echo "qat-train cli: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
