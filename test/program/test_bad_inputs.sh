#!/usr/bin/env bash
# test_bad_inputs.sh: qat-train on the tiny model (test/model/fixtures/tiny, vocab and SQuAD from fixtures/) with bad
# inputs: values out of range, duplicates, wrong JSON types, defective safetensors, non-finite parameters and logits,
# special files, unusable output directories, a busy export.path. Each gives one line naming the file and
# line/key/offset (or the config key), a non-zero exit, no work done before a check that could have come first, and no
# output directory left behind.
set -u
exe="$1"
src="${QB_SOURCE_ROOT:-.}"
fix="$src/test/program/fixtures"
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0 failed=0
check() {  # check NAME STATUS
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}
n_runs=0
expect_error() {  # expect_error NAME PATTERN CONFIG ARGS...: non-zero exit, one line on stderr matching PATTERN
  local name="$1" pattern="$2" config="$3"; shift 3
  n_runs=$((n_runs + 1))
  out="$tmp/out$n_runs"  # each run its own output directory (ARGS may name another)
  timeout -s KILL 60 "$exe" "$config" run.output_dir="$out" "$@" >"$tmp/stdout" 2>"$tmp/err"
  local rc=$?
  local lines=$(wc -l <"$tmp/err")
  grep -q -- "$pattern" "$tmp/err"
  local found=$?
  [ $rc -ne 0 ] && [ $rc -ne 137 ] && [ "$lines" -eq 1 ] && [ $found -eq 0 ]
  local ok=$?
  check "$name: exit $rc, $(head -c 300 "$tmp/err")" $ok
}
no_output() {  # no_output NAME: the last failed run left no output directory
  [ ! -e "$out" ]
  check "$1: no output directory left behind" $?
}

. "$src/test/program/tiny_env.sh"
tiny_env calibrate "$tmp/model" 2 0
ini="$tmp/run.ini"
"$exe" "$ini" run.output_dir="$tmp/good" >"$tmp/good.log" 2>&1
check "calibrate the tiny model (setup)" $?

# ---- max_seq_length above the tokenizer's model_max_length: capped as run_qa does (a note, not an error)
mkdir -p "$tmp/short" && cp "$tmp/model/"* "$tmp/short/" && printf '{"do_lower_case": true, "model_max_length": 24}' >"$tmp/short/tokenizer_config.json"
"$exe" "$ini" model.path="$tmp/short" run.output_dir="$tmp/short_out" >"$tmp/short.log" 2>&1 &&
  grep -q "max_seq_length 32 is larger than the tokenizer's model_max_length 24: using 24" "$tmp/short.log" &&
  grep -q "features (24 tokens each)" "$tmp/short.log"
check "max_seq_length capped at the tokenizer's model_max_length" $?

# ---- values out of range
expect_error "calib_samples 2^63-1" "command line: quant.calib_samples: 9223372036854775807 outside \[1, " "$ini" quant.calib_samples=9223372036854775807
no_output "calib_samples 2^63-1"
expect_error "max_steps 2^63-1" "command line: train.max_steps: 9223372036854775807 outside \[0, " "$ini" run.task=train train.max_steps=9223372036854775807
expect_error "epochs 1e300" "command line: train.epochs: 1e+300 outside (0, " "$ini" run.task=train train.max_steps=0 train.epochs=1e300
printf '[run]\ntask = calibrate\n[quant]\ncalib_batch_size = 99999999999\n' >"$tmp/range.ini"
expect_error "range error names file:line" "range.ini:4: quant.calib_batch_size: 99999999999 outside \[1, 4096\]" "$tmp/range.ini"
expect_error "integer beyond int64 on the command line" "command line: run.seed: '99999999999999999999' is out of range" "$ini" run.seed=99999999999999999999
"$exe" --help | grep -E '^[a-z_0-9]+ += ' | grep -v -E '; (string|true/false)' | grep -v -E 'in [[(][^]]*[])]' >"$tmp/unranged"
[ ! -s "$tmp/unranged" ]
ranged=$?
check "--help states a range for every numeric key $(head -c 200 "$tmp/unranged")" $ranged

# ---- SQuAD files: overflow, duplicates, wrong types, special files
sq() {  # sq FILE QAS-JSON: a one-paragraph SQuAD file
  printf '{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "the blue river of the city", "qas": [%s]}]}]}' "$2" >"$1"
}
sq "$tmp/big_start.json" '{"id": "q1", "question": "what?", "answers": [{"text": "blue", "answer_start": 9223372036854775807}]}'
expect_error "answer_start 2^63-1" "big_start.json: question id q1: answers\[0\]: answer_start 9223372036854775807 outside the context (26 characters)" "$ini" data.train_file="$tmp/big_start.json"
no_output "answer_start 2^63-1"
sq "$tmp/dup_ids.json" '{"id": "q1", "question": "what?", "answers": [{"text": "blue", "answer_start": 4}]}, {"id": "q1", "question": "which?", "answers": [{"text": "river", "answer_start": 9}]}'
expect_error "duplicate question ids" "dup_ids.json: data\[0\].paragraphs\[0\].qas\[1\]: question id q1 appears twice (first at data\[0\].paragraphs\[0\].qas\[0\])" "$ini" run.task=eval data.dev_file="$tmp/dup_ids.json" model.path="$tmp/good"
sq "$tmp/int_question.json" '{"id": "q1", "question": 5, "answers": [{"text": "blue", "answer_start": 4}]}'
expect_error "question of the wrong type" "int_question.json: question id q1: key question: expected a string, got an integer" "$ini" data.train_file="$tmp/int_question.json"
sq "$tmp/str_start.json" '{"id": "q1", "question": "what?", "answers": [{"text": "blue", "answer_start": "4"}]}'
expect_error "answer_start of the wrong type" "question id q1: answers\[0\]: key answer_start: expected an integer, got a string" "$ini" data.train_file="$tmp/str_start.json"
sq "$tmp/obj_answers.json" '{"id": "q1", "question": "what?", "answers": {"text": "blue"}}'
expect_error "answers of the wrong type" "question id q1: key answers: expected an array, got an object" "$ini" data.train_file="$tmp/obj_answers.json"
mkfifo "$tmp/fifo.json"
expect_error "FIFO as the SQuAD file is refused" "fifo.json: not a regular file (a FIFO)" "$ini" data.train_file="$tmp/fifo.json"
mkfifo "$tmp/fifo.ini"
expect_error "FIFO as the config file is refused" "fifo.ini: not a regular file (a FIFO)" "$tmp/fifo.ini"
mkdir -p "$tmp/devmodel" && cp "$tmp/model/config.json" "$tmp/model/model.safetensors" "$tmp/devmodel/" && ln -s /dev/zero "$tmp/devmodel/vocab.txt"
expect_error "device as vocab.txt is refused" "devmodel/vocab.txt: not a regular file (a character device)" "$ini" model.path="$tmp/devmodel"
mkdir -p "$tmp/fifotok" && cp "$tmp/model/config.json" "$tmp/model/model.safetensors" "$tmp/model/vocab.txt" "$tmp/fifotok/" && mkfifo "$tmp/fifotok/tokenizer.json"
expect_error "FIFO as tokenizer.json is refused, not taken for absent" "fifotok/tokenizer.json: not a regular file (a FIFO)" "$ini" model.path="$tmp/fifotok"

# ---- config files
printf '[run]\ntask = calibrate\n[data]\nmax_seq_length = 32\n[run]\ntask = eval\n' >"$tmp/dup.ini"
expect_error "duplicate INI key" "dup.ini:6: duplicate key 'task' in \[run\] (first set on line 2)" "$tmp/dup.ini"
printf '[run]\ntask = calibrate\n  eval\n' >"$tmp/cont.ini"
expect_error "INI continuation line" "cont.ini:3: .*continuation" "$tmp/cont.ini"

# ---- checkpoints: non-finite parameters, defective safetensors, vocabulary larger than the embedding
mkmodel() {  # mkmodel DIR EDIT-ARGS...: the tiny model with an edited model.safetensors
  local dir="$1"; shift
  mkdir -p "$dir" && cp "$tmp/model/config.json" "$tmp/model/vocab.txt" "$dir/"
  python3 "$src/test/program/st_edit.py" "$tmp/model/model.safetensors" "$dir/model.safetensors" "$@"
}
mkmodel "$tmp/nan" fill bert.encoder.layer.1.output.LayerNorm.weight nan
expect_error "NaN parameter no quantizer sees" "nan/model.safetensors: tensor bert.encoder.layer.1.output.LayerNorm.weight: element 0 is nan (parameters must be finite)" "$ini" model.path="$tmp/nan"
no_output "NaN parameter"
mkmodel "$tmp/inf" fill bert.embeddings.word_embeddings.weight inf
expect_error "Inf parameter" "inf/model.safetensors: tensor bert.embeddings.word_embeddings.weight: element 0 is inf" "$ini" model.path="$tmp/inf" run.task=eval
mkmodel "$tmp/meta" meta format 5
expect_error "non-string safetensors metadata" "meta/model.safetensors: __metadata__ key format: expected a string, got an integer" "$ini" model.path="$tmp/meta"
mkmodel "$tmp/hole" hole 16
expect_error "hole in the safetensors data" "hole/model.safetensors: data section bytes \[[0-9]*, [0-9]*) belong to no tensor" "$ini" model.path="$tmp/hole"
mkdir -p "$tmp/bigvocab" && cp "$tmp/model/config.json" "$tmp/model/model.safetensors" "$tmp/bigvocab/"
{ cat "$tmp/model/vocab.txt"; printf 'blue\nriver\ncity\nzzz\nyyy\n'; } >"$tmp/bigvocab/vocab.txt"
expect_error "vocabulary larger than the embedding" "bigvocab/vocab.txt: 104 tokens but .*bigvocab/config.json has vocab_size 99" "$ini" model.path="$tmp/bigvocab"
expect_error "max_seq_length above max_position_embeddings" "command line: data.max_seq_length: 64 is above max_position_embeddings 32 of .*model/config.json" "$ini" data.max_seq_length=64
mkdir -p "$tmp/novocab" && cp "$tmp/model/config.json" "$tmp/model/model.safetensors" "$tmp/novocab/"
expect_error "missing tokenizer names the file" "model.tokenizer: $tmp/novocab/vocab.txt: cannot open" "$ini" model.path="$tmp/novocab"
expect_error "missing resume directory names the key" "train.resume_from: $tmp/no-such-checkpoint: cannot open" "$ini" run.task=train train.resume_from="$tmp/no-such-checkpoint"
python3 "$src/test/program/st_edit.py" "$tmp/good/model.safetensors" "$tmp/huge.safetensors" fill qa_outputs.weight 1e38
mkdir -p "$tmp/hugelogits" && cp "$tmp/good/config.json" "$tmp/good/vocab.txt" "$tmp/hugelogits/" && mv "$tmp/huge.safetensors" "$tmp/hugelogits/model.safetensors"
expect_error "non-finite logits at eval name the feature" "evaluate: feature 0 (question q1): .* logit .* is [-a-z]* (not finite)" "$ini" run.task=eval model.path="$tmp/hugelogits"
no_output "non-finite logits"

# ---- output directory: checked before any work, created only when the inputs have been read
printf 'x' >"$tmp/a_file"
expect_error "output directory that is a file" "run.output_dir: '$tmp/a_file' is a file, not a directory" "$ini" run.output_dir="$tmp/a_file"
! grep -q "^data:" "$tmp/stdout"
check "output directory that is a file: refused before reading data" $?
expect_error "output directory under a file" "run.output_dir: '$tmp/a_file/out': $tmp/a_file is not a directory" "$ini" run.output_dir="$tmp/a_file/out"
mkdir -p "$tmp/ro"
if [ "$(id -u)" -ne 0 ]; then chmod 555 "$tmp/ro"; ro_ok=1; elif chattr +i "$tmp/ro" 2>/dev/null; then ro_ok=1; else ro_ok=0; fi
if [ $ro_ok -eq 1 ]; then
  expect_error "read-only output directory" "run.output_dir: '$tmp/ro/out': $tmp/ro is not writable" "$ini" run.output_dir="$tmp/ro/out"
  ! grep -q "^data:" "$tmp/stdout"
  check "read-only output directory: refused before reading data" $?
  [ "$(id -u)" -eq 0 ] && chattr -i "$tmp/ro"
else
  echo "skip read-only output directory (root without chattr)"
fi
expect_error "missing train file" "no-train.json: cannot open: No such file or directory" "$ini" data.train_file="$tmp/no-train.json" run.output_dir="$tmp/deep/er/out"
out="$tmp/deep"
no_output "missing train file"
# ---- an export.path in use by another run (its lock held here) is refused before any work, naming the key
exec 9>"$tmp/.busy.h5.lock"
flock -n 9
expect_error "export.path in use" "command line: export.path: '$tmp/busy.h5' is in use by another run" "$ini" run.task=export \
  model.path="$tmp/good" export.format=hdf5 export.path="$tmp/busy.h5"
exec 9>&-
! grep -q "^model:" "$tmp/stdout" && [ ! -e "$tmp/busy.h5" ]
check "export.path in use: refused before loading the model" $?
rm -f "$tmp/.busy.h5.lock"
expect_error "export.path's lock made no directories" "model.path: $tmp/none: cannot open" "$ini" run.task=export model.path="$tmp/none" \
  export.path="$tmp/exp/sub/model"
[ ! -e "$tmp/exp" ]
check "a failed export leaves no directory for export.path" $?
[ -z "$(ls -A "$tmp" | grep -E '\.lock$|\.tmp-')" ]
check "no lock or staging files left beside the output directories" $?

echo "qat-train bad inputs: $passed passed, $failed failed, 0 skipped"
[ $failed -eq 0 ]
