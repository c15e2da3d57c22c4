"""PyTorch peer of bench_gemm.h: GEMM GFLOP/s (torch.matmul, MKL on x86 CPUs) over the linear-layer shapes of one
BERT training step, fp32 and bf16 (fp32 accumulation; oneDNN/AMX where the CPU has it), same layouts and medians.
Run: OMP_NUM_THREADS=2 python bench/bench_gemm_torch.py TOKENS HIDDEN INTERMEDIATE [REPS]
"""
import os
import statistics
import sys
import time

import torch


def rate(tokens, h, inter, reps, dtype):
    flops = secs = 0.0
    for m, n, k in [(tokens, h, h), (tokens, inter, h), (tokens, h, inter)]:
        x = torch.full((m, k), 0.0078, dtype=dtype)
        w = torch.full((n, k), 0.0078, dtype=dtype)
        dy = torch.full((m, n), 0.0078, dtype=dtype)
        for f in (lambda: x @ w.t(), lambda: dy @ w, lambda: dy.t() @ x):  # y = x W^T, dx = dy W, dW = dy^T x
            ts = []
            for r in range(reps + 1):
                t0 = time.perf_counter()
                f()
                if r:
                    ts.append(time.perf_counter() - t0)
            secs += statistics.median(ts)
            flops += 2.0 * m * n * k
    return flops / secs * 1e-9


def main():
    tokens, h, inter = (int(v) for v in sys.argv[1:4])
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    print("torch %s, threads %d, BLAS %s" % (torch.__version__, torch.get_num_threads(),
                                             "MKL" if torch.backends.mkl.is_available() else "not MKL"))
    print("torch_gemm fp32 %.2f bf16 %.2f" % (rate(tokens, h, inter, reps, torch.float32),
                                              rate(tokens, h, inter, reps, torch.bfloat16)))


if __name__ == "__main__":
    with torch.no_grad():
        main()
