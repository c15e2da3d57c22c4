#!/usr/bin/env bash
# test.sh: sets everything up, runs the test suite in the release build and again in an AddressSanitizer +
# UBSan build, runs every libFuzzer target briefly in a clang ASan + UBSan build (build-fuzz), and ends with one line
# "N passed, N failed, N skipped" over all runs.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcuda=disabled -Dwerror_ci=true >/dev/null || exit 1
fi
ninja -C build-asan >/dev/null || { ninja -C build-asan; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcuda=disabled -Dwerror_ci=true >/dev/null || exit 1
fi
ninja -C build-fuzz fuzz >/dev/null || { ninja -C build-fuzz fuzz; exit 1; }  # only the fuzz targets and what they need

rc=0
echo "== release build"
meson test -C build --print-errorlogs --num-processes 2 || rc=1
echo "== sanitizer build (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 || rc=1

echo "== fuzz targets (libFuzzer, clang ASan + UBSan, 20 s each)"
ASAN_OPTIONS=detect_leaks=1 meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz || rc=1

python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        counts["failed"] += 1
        continue
    for line in lines:
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif r == "SKIP":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
print("%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"], counts["skipped"]))
PY
exit $rc
