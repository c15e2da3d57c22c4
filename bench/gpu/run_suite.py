#!/usr/bin/env python3
"""run_suite.py PACK ROOT SQUAD_DIR OUT_DIR SECONDS [NAME_REGEX]: runs the 'cuda' suite recorded in PACK/tests.json
(pack.sh) from the packed binaries, as meson would (its commands, environments and timeouts; exit 0 passed, 77
skipped, else failed), within SECONDS in all. Writes OUT_DIR/suite/NAME.log per test and OUT_DIR/suite.json, prints
one line per test; exits 1 when a test failed or did not run."""
import json
import os
import re
import subprocess
import sys
import time


def main():
    pack, root, squad, out, seconds = sys.argv[1:6]
    pattern = re.compile(sys.argv[6] if len(sys.argv) > 6 else "")
    deadline = time.monotonic() + float(seconds)
    os.makedirs(os.path.join(out, "suite"), exist_ok=True)
    tests = json.load(open(os.path.join(pack, "tests.json")))["tests"]
    results = []

    def subst(v):
        return v.replace("@PACK@", pack).replace("@ROOT@", root).replace("@SQUAD@", squad)

    for t in tests:
        if not pattern.search(t["name"]):
            continue
        left = deadline - time.monotonic()
        log_path = os.path.join(out, "suite", t["name"] + ".log")
        env = dict(os.environ)
        env.update({k: subst(v) for k, v in t["env"].items()})
        argv = [subst(a) for a in t["argv"]]
        t0 = time.monotonic()
        if left < 5:
            result, rc, tail = "NOT RUN", None, "out of time"
        else:
            limit = min(float(t["timeout"]), left)
            with open(log_path, "w") as log:
                log.write("$ %s\n" % " ".join(argv))
                log.flush()
                try:
                    rc = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=limit, cwd=root).returncode
                    result = "ok" if rc == 0 else "SKIP" if rc == 77 else "FAIL"
                except subprocess.TimeoutExpired:
                    rc, result = None, "TIMEOUT"
            lines = [l for l in open(log_path, errors="replace").read().splitlines() if l.strip()]
            tail = lines[-1] if lines else ""
        seconds_run = time.monotonic() - t0
        results.append({"name": t["name"], "result": result, "rc": rc, "seconds": round(seconds_run, 2), "last_line": tail[:300]})
        print("%-8s %-24s %7.1f s  %s" % (result, t["name"], seconds_run, tail[:160]), flush=True)
    json.dump(results, open(os.path.join(out, "suite.json"), "w"), indent=1)
    counts = {k: sum(r["result"] == k for r in results) for k in ("ok", "SKIP", "FAIL", "TIMEOUT", "NOT RUN")}
    print("cuda suite: %d passed, %d skipped, %d failed, %d timed out, %d not run" % tuple(counts.values()))
    return 1 if counts["FAIL"] or counts["TIMEOUT"] or counts["NOT RUN"] or not results else 0


if __name__ == "__main__":
    sys.exit(main())
