#!/usr/bin/env bash
# test_configs.sh: every shipped recipe (configs/*.ini) and every run of scripts/results_table.sh passes
# `qat-train --check` (keys and values valid for the task, nothing run or written), so a recipe cannot rot; --check
# itself fails on a bad key, value or override with the one-line error a run gives, and writes nothing; docs/config.md
# lists every key with its default.
set -u
exe=$(realpath "$1")
. "$(dirname "$0")/../common/check.sh"
cd "$QB_SOURCE_ROOT" || exit 1
recipes=(demo squad_minilm_qat squad_minilm_fp32 squad_minilm_ptq squad_minilm_qat_finetuned squad_minilm_qat_kd
  squad_bert_base_qat squad_bert_base_ptq)
for name in "${recipes[@]}"; do
  [ -f "configs/$name.ini" ]
  check "configs/$name.ini is shipped" $?
done
for cfg in configs/*.ini; do
  "$exe" --check "$cfg" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && grep -q "^$cfg: ok (task " "$tmp/out"
  ok=$?
  check "$cfg: --check passes (exit $rc, $(head -c 200 "$tmp/err"))" $ok
done
# the recipes a GPU user runs are GPU recipes
grep -q '^device = cuda$' configs/squad_bert_base_qat.ini && grep -q '^device = cuda$' configs/squad_bert_base_ptq.ini
check "the BERT-base recipes run on cuda" $?
"$exe" --check configs/squad_bert_base_qat.ini >"$tmp/out" 2>&1 && grep -q 'task qat, device cuda' "$tmp/out"
check "--check names the task and device" $?

expect_error() {  # expect_error NAME PATTERN ARGS...: exit non-zero, one line on stderr matching PATTERN
  local name="$1" pattern="$2"
  shift 2
  "$exe" "$@" >"$tmp/stdout" 2>"$tmp/err"
  local rc=$?
  [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pattern" "$tmp/err"
  local ok=$?
  check "$name: exit $rc, $(head -c 200 "$tmp/err")" $ok
}
{ cat configs/squad_minilm_ptq.ini; printf '[train]\nlearning_rat = 1e-4\n'; } >"$tmp/typo.ini"
line=$(grep -n '^learning_rat' "$tmp/typo.ini" | cut -d: -f1)
expect_error "--check: unknown key names file and line" "typo.ini:$line: unknown key 'learning_rat' in \[train\]" --check "$tmp/typo.ini"
expect_error "--check: bad override" "unknown key 'quant.calibrater'" --check configs/squad_minilm_ptq.ini quant.calibrater=mse
expect_error "--check: bad value" "command line: quant.calibrator: unknown calibrator 'minmax'" --check configs/squad_minilm_ptq.ini quant.calibrator=minmax
expect_error "--check: a bad combination" "data.doc_stride: 128 must be in \[1, max_seq_length)" --check configs/squad_minilm_fp32.ini data.doc_stride=128
expect_error "--check: unknown device name" "run.device: 'gpu'" --check configs/squad_bert_base_ptq.ini run.device=gpu
expect_error "--check: missing config" "cannot open" --check "$tmp/none.ini"
"$exe" --check >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q 'qat-train --check CONFIG.ini' "$tmp/err"
check "--check without a config: usage, exit 2" $?
"$exe" --check configs/squad_minilm_qat.ini "run.output_dir=$tmp/never" train.teacher="$tmp/none" >/dev/null 2>&1
[ $? -eq 0 ] && [ ! -e "$tmp/never" ] && [ -z "$(ls -A "$tmp" | grep -v -e '^typo.ini$' -e '^out$' -e '^err$' -e '^stdout$')" ]
check "--check writes nothing" $?
"$exe" --help | grep -q -- '--check CONFIG.ini'
check "--help names --check" $?

# docs/config.md lists every key of --help under its section, with the default --help prints
"$exe" --help | awk '/^\[/ { sec = substr($1, 2, length($1) - 2); next }
  sec != "" && $2 == "=" { d = $3; if (d == ";") d = "(empty)"; else d = "`" d "`"; print sec, $1, d }' >"$tmp/keys"
missing=$(while read -r sec key def; do
  awk -v s="## [$sec]" -v row="| \`$key\` | $def |" '$0 == s { in_sec = 1; next } /^## / { in_sec = 0 }
    in_sec && index($0, row) == 1 { found = 1 } END { exit !found }' docs/config.md || printf '%s.%s=%s ' "$sec" "$key" "$def"
done <"$tmp/keys")
[ "$(wc -l <"$tmp/keys")" -gt 60 ] && [ -z "$missing" ]
ok=$?
check "docs/config.md has each of the $(wc -l <"$tmp/keys") keys with its default (missing: ${missing:-none})" $ok

# the README's results table: every run of the script checks (its overrides and the recipes it runs)
QAT_TRAIN="$exe" bash scripts/results_table.sh --check "$tmp/results" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c ': ok$' "$tmp/out")" -eq 12 ] && [ ! -e "$tmp/results" ]
ok=$?
check "scripts/results_table.sh --check: 12 runs check, nothing written (exit $rc, $(grep -v ': ok$' "$tmp/out" | head -c 200))" $ok

echo "configs: $passed passed, $failed failed"
[ $failed -eq 0 ]
