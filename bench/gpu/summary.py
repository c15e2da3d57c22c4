#!/usr/bin/env python3
"""summary.py OUT_DIR [NOTE]: bench/gpu/run.sh's summary: the machine (system.txt), the cuda suite (suite.json) and
each QAT run pair (OUT_DIR/qat-NAME-DEVICE: eval_results.json, metrics.jsonl, train_results.json, the log) side by
side, into OUT_DIR/summary.md and summary.json; prints the markdown. A pair agrees when the first step's loss is within
1e-4 relative and EM and F1 within one question's worth (100 / questions); exit 1 when a pair disagrees or a run of a
pair is missing."""
import glob
import json
import os
import re
import sys


def read_run(d):
    r = {"dir": os.path.basename(d), "ok": os.path.exists(os.path.join(d, "eval_results.json"))}
    log = open(d + ".log", errors="replace").read() if os.path.exists(d + ".log") else ""
    for key, pat in (("calibrate_s", r"calibrate: .* in ([0-9.]+) s"), ("eval_s", r"eval: .* in ([0-9.]+) s"),
                     ("total_s", r"qat: done in ([0-9.]+) s")):
        m = re.search(pat, log)
        r[key] = float(m.group(1)) if m else None
    m = re.search(r"^qat-train .*; (\d+) threads; device ([^;\s]+)", log, re.M)
    r["threads"], r["device"] = (int(m.group(1)), m.group(2)) if m else (None, None)
    err = re.search(r"error: (.*)", log)
    r["error"] = err.group(1)[:300] if err else None
    rc = open(d + ".rc").read().strip() if os.path.exists(d + ".rc") else ""
    r["exit_status"] = int(rc) if rc.isdigit() else None
    if r["exit_status"] == 124:
        r["error"] = "stopped by run.sh's time budget"
    elif r["exit_status"] and not r["error"]:
        r["error"] = "exit status %d" % r["exit_status"]
    if r["ok"]:
        e = json.load(open(os.path.join(d, "eval_results.json")))
        r["exact_match"], r["f1"] = e.get("eval_exact_match"), e.get("eval_f1")
        r["questions"], r["eval_s"] = e.get("eval_examples"), e.get("eval_runtime", r["eval_s"])
    if os.path.exists(os.path.join(d, "metrics.jsonl")):
        rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl")) if line.strip()]
        r["losses"] = [x["loss"] for x in rows]
    if os.path.exists(os.path.join(d, "train_results.json")):
        t = json.load(open(os.path.join(d, "train_results.json")))
        r["train_s"], r["train_examples_per_s"] = t.get("train_runtime"), t.get("train_samples_per_second")
    return r


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def main():
    out = sys.argv[1]
    note = sys.argv[2] if len(sys.argv) > 2 else ""
    s = {"note": note, "system": open(os.path.join(out, "system.txt")).read() if os.path.exists(os.path.join(out, "system.txt")) else ""}
    suite = json.load(open(os.path.join(out, "suite.json"))) if os.path.exists(os.path.join(out, "suite.json")) else []
    s["suite"] = suite
    runs = {}
    for d in sorted(glob.glob(os.path.join(out, "qat-*-*"))):
        if os.path.isdir(d):
            name, dev = os.path.basename(d)[4:].rsplit("-", 1)
            runs.setdefault(name, {})[dev] = read_run(d)
    kind_path = os.path.join(out, "minilm-kind.txt")
    s["minilm_checkpoint"] = open(kind_path).read().strip() if os.path.exists(kind_path) else None
    s["qat"], bad = {}, 0
    for name, by_dev in runs.items():
        pair = {"runs": by_dev}
        c, g = by_dev.get("cpu"), by_dev.get("cuda")
        if c and g:
            if c["ok"] and g["ok"]:
                n = c.get("questions") or 1
                la, lb = c.get("losses") or [], g.get("losses") or []
                pair["first_loss_rel_diff"] = abs(la[0] - lb[0]) / abs(la[0]) if la and lb else None
                pair["max_loss_rel_diff"] = max(abs(x - y) / abs(x) for x, y in zip(la, lb)) if la and lb else None
                pair["em_diff"], pair["f1_diff"] = abs(c["exact_match"] - g["exact_match"]), abs(c["f1"] - g["f1"])
                pair["agree"] = (pair["first_loss_rel_diff"] is not None and pair["first_loss_rel_diff"] <= 1e-4 and
                                 pair["em_diff"] <= 100.0 / n + 1e-9 and pair["f1_diff"] <= 100.0 / n + 1e-9)
                if c.get("train_examples_per_s") and g.get("train_examples_per_s"):
                    pair["train_speedup_cuda_vs_cpu"] = g["train_examples_per_s"] / c["train_examples_per_s"]
                if c.get("eval_s") and g.get("eval_s"):
                    pair["eval_speedup_cuda_vs_cpu"] = c["eval_s"] / g["eval_s"]
            else:
                pair["agree"] = False
            bad += not pair["agree"]
        elif not any(r["ok"] for r in by_dev.values()):
            bad += 1
        s["qat"][name] = pair
    for f in glob.glob(os.path.join(out, "qat-*.notrun")):
        s["qat"].setdefault(os.path.basename(f)[4:-7].rsplit("-", 1)[0], {})["not_run"] = True
        bad += 1
    tb = os.path.join(out, "train_bench.json")
    s["train_bench"] = json.load(open(tb)) if os.path.exists(tb) else None
    json.dump(s, open(os.path.join(out, "summary.json"), "w"), indent=1)

    md = ["# qdqbert on a GPU: bench/gpu/run.sh", ""]
    if note:
        md += ["**%s**" % note, ""]
    md += ["```", s["system"].strip(), "```", ""]
    if suite:
        counts = {k: sum(t["result"] == k for t in suite) for k in ("ok", "SKIP", "FAIL", "TIMEOUT", "NOT RUN")}
        md += ["## cuda suite: %d passed, %d skipped, %d failed, %d timed out, %d not run" % tuple(counts.values()), "",
               "| test | result | s | last line |", "|---|---|---|---|"]
        md += ["| %s | %s | %.1f | %s |" % (t["name"], t["result"], t["seconds"], t["last_line"].replace("|", "/")[:120]) for t in suite]
        md.append("")
    for name, pair in s["qat"].items():
        md += ["## QAT %s%s" % (name, " (%s)" % s["minilm_checkpoint"] if name == "minilm" and s["minilm_checkpoint"] else ""), ""]
        if pair.get("not_run"):
            md += ["not run (out of time)", ""]
        md += ["| device | threads | EM | F1 | calibrate s | train s | train ex/s | eval s | total s | first / last loss | error |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for dev, r in pair.get("runs", {}).items():
            losses = r.get("losses") or []
            md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                dev, fmt(r["threads"], "%d"), fmt(r.get("exact_match")), fmt(r.get("f1")), fmt(r["calibrate_s"], "%.1f"),
                fmt(r.get("train_s"), "%.1f"), fmt(r.get("train_examples_per_s"), "%.1f"), fmt(r["eval_s"], "%.1f"),
                fmt(r["total_s"], "%.1f"), "%.4f / %.4f" % (losses[0], losses[-1]) if losses else "-", r["error"] or ""))
        if "agree" in pair:
            md += ["", "cuda vs cpu: %s; first-step loss %s relative, largest over the steps %s; |EM| %s, |F1| %s; train %sx, eval %sx" % (
                "agree" if pair["agree"] else "DISAGREE", fmt(pair.get("first_loss_rel_diff"), "%.2g"),
                fmt(pair.get("max_loss_rel_diff"), "%.2g"), fmt(pair.get("em_diff")), fmt(pair.get("f1_diff")),
                fmt(pair.get("train_speedup_cuda_vs_cpu"), "%.1f"), fmt(pair.get("eval_speedup_cuda_vs_cpu"), "%.1f"))]
        md.append("")
    tb_md = os.path.join(out, "train_bench.md")
    if os.path.exists(tb_md):
        md += [open(tb_md).read().rstrip(), ""]
    text = "\n".join(md) + "\n"
    open(os.path.join(out, "summary.md"), "w").write(text)
    print(text, end="")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
