"""check_tensorboard.py RUN_DIR: loads RUN_DIR/runs/<logdir> with TensorBoard's own EventAccumulator and checks that
its scalars are those of RUN_DIR/metrics.jsonl (train/loss, train/learning_rate, train/grad_norm,
train/samples_per_second, eval/exact_match, eval/f1) at the same steps, as float32 (within one ulp: the JSON has 9
significant digits). Exit 1 on a mismatch."""
import glob
import json
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
logdirs = sorted(glob.glob(os.path.join(run, "runs", "*")))
if len(logdirs) != 1:
    sys.exit("FAIL: expected one logging dir under %s/runs, found %s" % (run, logdirs))
acc = EventAccumulator(logdirs[0])
acc.Reload()
tags = set(acc.Tags()["scalars"])
records = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if line.strip()]
want = {"train/loss": "loss", "train/learning_rate": "learning_rate", "train/grad_norm": "grad_norm",
        "train/samples_per_second": "examples_per_second", "eval/exact_match": "eval_exact_match", "eval/f1": "eval_f1"}
f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
bad = 0
for tag, key in want.items():
    expect = [(r["step"], f32(r[key])) for r in records if key in r]
    got = [(e.step, e.value) for e in acc.Scalars(tag)] if tag in tags else []
    # metrics.jsonl keeps 9 significant digits of the double that was written as float32: within one float32 ulp
    ok = len(expect) > 0 and len(got) == len(expect) and all(
        gs == ws and abs(gv - wv) <= 2.0 ** -23 * abs(wv) for (gs, gv), (ws, wv) in zip(got, expect))
    print("%s %-26s %d values at steps %s" % ("ok  " if ok else "FAIL", tag, len(got), [s for s, _ in got]))
    if not ok:
        print("     want %s\n     got  %s" % (expect, got))
        bad += 1
sys.exit(1 if bad else 0)
