"""onnxruntime peer of bench_export.c: our INT8 QDQ graph and the float graph (every quantizer off) on the same
features, batch and threads (OMP_NUM_THREADS), CPU provider at ORT_ENABLE_ALL (QDQ fusion: MatMulIntegerToFloat /
QLinearMatMul), median of --reps passes after one warm-up, in sequences per second.
Run: OMP_NUM_THREADS=2 python bench/bench_export_ort.py INT8.onnx FLOAT.onnx FEATURES.safetensors [--batch B] [--reps R]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "export"))
from check_onnx_ort import st_read  # noqa: E402 (the safetensors reader of the export checks)


def features(path):
    return {k: v.astype(np.int64) for k, v in st_read(path).items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def bench(path, feats, batch, reps, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    n = feats["input_ids"].shape[0]
    times = []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            s.run(None, {k: v[i:i + batch] for k, v in feats.items()})
        if r:
            times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("int8")
    ap.add_argument("float")
    ap.add_argument("features")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
    feats = features(a.features)
    n, seq = feats["input_ids"].shape
    for name, path in (("INT8 QDQ graph", a.int8), ("float graph", a.float)):
        print("onnxruntime %s %-15s %d features x %d tokens, batch %d, threads %d: %8.1f seq/s"
              % (ort.__version__, name + ":", n, seq, a.batch, threads, bench(path, feats, a.batch, a.reps, threads)))


if __name__ == "__main__":
    main()
