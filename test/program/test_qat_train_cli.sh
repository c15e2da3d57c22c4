#!/usr/bin/env bash
# test_qat_train_cli.sh: qat-train's command line: the demo reaches its stated loss; bad configs and overrides
# give one-line errors naming the file, line and key, exit non-zero, and leave earlier outputs intact.
set -u
exe="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() {  # check NAME CONDITION-EXIT-STATUS
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}
expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"; shift 2
  "$exe" "$@" >"$tmp/stdout" 2>"$tmp/err"
  local rc=$?
  local lines=$(wc -l <"$tmp/err")
  grep -q -- "$pattern" "$tmp/err"
  local found=$?
  [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ $found -eq 0 ]
  check "$name: exit $rc, $(head -c 200 "$tmp/err")" $?
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
expect_error "bad override syntax" "not section.key=value" "$tmp/demo.ini" "steps=3"
expect_error "unknown override key" "unknown key 'demo.stepz'" "$tmp/demo.ini" "demo.stepz=3"
expect_error "bad override value" "demo.steps: 'x' is not an integer" "$tmp/demo.ini" "demo.steps=x"
expect_error "target not reached" "above target" "$tmp/demo.ini" "demo.steps=2" "run.output_dir=$tmp/out2"
cmp -s "$tmp/out/demo_metrics.json" "$tmp/before.json"
check "earlier outputs intact after failed runs" $?
ls "$tmp/out" | grep -q tmp
[ $? -ne 0 ]
check "no temporary files left behind" $?

echo "qat-train cli: $passed passed, $failed failed, 0 skipped"
[ $failed -eq 0 ]
