# check.sh: sourced by the shell tests: a temporary directory $tmp removed on exit, and check NAME STATUS, which
# counts $passed / $failed and prints "ok" or "FAIL" with the name.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() {  # check NAME CONDITION-EXIT-STATUS
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}
