"""train_table.py OUT DRY: the training benchmark's table from OUT/train/*.log (the RESULT lines of bench_train_gpu and
bench_train_torch.py): OUT/train_bench.json and OUT/train_bench.md, printed too. Per sequence length: each run's
ms/step, sequences/s, MFU (model FLOPs 6 x GEMM parameters + 12 x layers x seq x hidden per token, against H200 dense
BF16 989.4 TFLOPS), peak device memory (cudaMemGetInfo in use; PyTorch's allocator peak beside it), and for ours the
ratio to PyTorch eager and torch.compile at the same precision and quantization, and the QAT step over our float step.
Exit 1 when one of our runs failed or did not run."""
import glob
import json
import os
import sys


def main():
    out, dry = sys.argv[1], sys.argv[2] == "1"
    runs, notrun = [], {}
    for f in sorted(glob.glob(os.path.join(out, "train", "*.log"))):
        for line in open(f, errors="replace"):
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                r["name"] = os.path.basename(f)[:-4]
                runs.append(r)
    for f in sorted(glob.glob(os.path.join(out, "train", "*.notrun"))):
        notrun[os.path.basename(f)[:-7]] = open(f).read().strip()

    def find(impl, prec, quant, seq, int8=0):
        for r in runs:
            if r["impl"] == impl and r["precision"] == prec and r["quant"] == quant and r["int8"] == int8 and r["seq"] == seq:
                return r
        return None

    for r in runs:
        if r["impl"] != "qdqbert":
            continue
        for peer in ("pytorch", "pytorch-compile"):
            p = find(peer, r["precision"], r["quant"], r["seq"]) or (find(peer, "fp32", r["quant"], r["seq"]) if dry else None)
            if p:
                r["vs_" + peer.replace("-", "_")] = r["seq_s"] / p["seq_s"]
                if p.get("device_peak_mib") and r.get("device_peak_mib"):
                    r["memory_vs_" + peer.replace("-", "_")] = r["device_peak_mib"] / p["device_peak_mib"]
        f = find("qdqbert", r["precision"], 0, r["seq"])
        if r["quant"] and f:
            r["qat_over_float_step"] = r["ms_step"] / f["ms_step"]
    doc = {"dry_run": dry, "runs": runs, "not_run": notrun, "peak_tflops": 989.4,
           "note": "dry run on this machine: tiny model, figures meaningless" if dry else ""}
    json.dump(doc, open(os.path.join(out, "train_bench.json"), "w"), indent=1)

    def f(v, spec="%.2f"):
        return "-" if v is None else spec % v

    def vs(r, peer):  # speed ratio, and the device memory ratio when both were measured
        mem = r.get("memory_vs_" + peer)
        return f(r.get("vs_" + peer), "%.2fx") + ("" if mem is None else " (memory %.2fx)" % mem)

    md = ["## Training benchmark: BERT QA steps (forward, backward, clip, AdamW)%s" % (" - DRY RUN (tiny model, not a measurement)" if dry else ""), ""]
    for seq in sorted({r["seq"] for r in runs}, reverse=True):
        rs = [r for r in runs if r["seq"] == seq]
        r0 = rs[0]
        md += ["### seq %d, batch %d, %d layers, hidden %d (%s)" % (seq, r0["batch"], r0["layers"], r0["hidden"], r0["device"]), "",
               "| run | precision | quant | ms/step | seq/s | MFU | speed (memory) vs PyTorch eager | vs torch.compile | QAT / float step | device peak MiB | "
               "ours: arena peak / planned MiB; PyTorch: allocated peak MiB |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rs, key=lambda r: (r["impl"], r["precision"], r["quant"], r["int8"])):
            q = ("on, int8 GEMM" if r["int8"] else "on") if r["quant"] else "off"
            mem = ("%.1f / %.1f" % (r["arena_peak_mib"], r["arena_planned_mib"])) if r["impl"] == "qdqbert" else f(r.get("allocated_peak_mib"), "%.0f")
            md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["impl"], r["precision"], q, f(r["ms_step"]), f(r["seq_s"], "%.1f"), f(100 * r["mfu"], "%.1f%%"),
                vs(r, "pytorch"), vs(r, "pytorch_compile"), f(r.get("qat_over_float_step"), "%.2f"),
                f(r.get("device_peak_mib"), "%.0f"), mem))
        md.append("")
    # issue 12's targets, from the BF16 runs at the longest length (TF32 where BF16 is missing)
    seq = max((r["seq"] for r in runs), default=None)
    for prec in ("bf16", "tf32", "fp32"):
        q, fl, pq = find("qdqbert", prec, 1, seq), find("qdqbert", prec, 0, seq), find("pytorch", prec, 1, seq)
        if q or fl:
            break
    if seq is not None and (q or fl):
        def target(name, value, ok):
            return "- %s: %s" % (name, "not measured" if value is None else "%s (%s)" % (value, "met" if ok else "NOT met"))
        ratio = q["seq_s"] / pq["seq_s"] if q and pq else None
        over = q["ms_step"] / fl["ms_step"] if q and fl else None
        mfu = q["mfu"] if q else None
        mem = q["device_peak_mib"] / pq["device_peak_mib"] if q and pq and pq.get("device_peak_mib") else None
        md += ["### targets (%s, seq %d%s)" % (prec, seq, ", dry run: meaningless" if dry else ""), "",
               target("QAT step >= 1.5x PyTorch eager QAT", None if ratio is None else "%.2fx" % ratio, ratio is not None and ratio >= 1.5),
               target("our QAT step within 15% of our float step", None if over is None else "%.2f" % over, over is not None and over <= 1.15),
               target("BF16 MFU >= 40%", None if mfu is None else "%.1f%%" % (100 * mfu), mfu is not None and mfu >= 0.40 and prec == "bf16"),
               target("peak memory below PyTorch's", None if mem is None else "%.2fx" % mem, mem is not None and mem < 1.0), ""]
    probes = sorted(glob.glob(os.path.join(out, "train", "int8gemm-*.log")))
    probe_lines = [l.rstrip() for f in probes for l in open(f, errors="replace") if l.startswith(("device ", "linear "))]
    if probe_lines:
        md += ["### INT8 GEMM probe (bench_int8_gemm: a fake-quantized linear forward, fp32 path vs int8 codes)", "", "```"] + probe_lines + ["```", ""]
    doc["int8_gemm_probe"] = probe_lines
    json.dump(doc, open(os.path.join(out, "train_bench.json"), "w"), indent=1)
    if notrun:
        md += ["not run: " + "; ".join("%s (%s)" % kv for kv in notrun.items()), ""]
    text = "\n".join(md) + "\n"
    open(os.path.join(out, "train_bench.md"), "w").write(text)
    print(text, end="")
    ours = [k for k in notrun if k.startswith("qdqbert")]
    return 1 if ours or not any(r["impl"] == "qdqbert" for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
