"""PyTorch peer of bench_ops.c: the same ops and shapes, forward and backward medians (CPU, current thread count)."""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
torch.manual_seed(0)
print("torch %s, threads %d" % (torch.__version__, torch.get_num_threads()))


def bench(name, fn, shapes, flops_f=0, bytes_f=0, flops_b=0, bytes_b=0):
    tf, tb = [], []
    for r in range(repeats + 1):
        xs = [torch.randn(*s, requires_grad=True) for s in shapes]
        t0 = time.perf_counter()
        y = fn(*xs)
        t1 = time.perf_counter()
        y.backward(torch.ones_like(y))
        t2 = time.perf_counter()
        if r:
            tf.append(t1 - t0)
            tb.append(t2 - t1)
    f, b = statistics.median(tf), statistics.median(tb)
    if flops_f:
        print("%-26s fwd %8.3f ms %7.1f GFLOP/s   bwd %8.3f ms %7.1f GFLOP/s" % (name, 1e3 * f, flops_f / f * 1e-9, 1e3 * b, flops_b / b * 1e-9))
    else:
        print("%-26s fwd %8.3f ms %7.1f GB/s      bwd %8.3f ms %7.1f GB/s" % (name, 1e3 * f, bytes_f / f * 1e-9, 1e3 * b, bytes_b / b * 1e-9))


M, K, N = 1024, 768, 3072
f = 2.0 * M * N * K
bench("linear 1024x768->3072", F.linear, [(M, K), (N, K), (N,)], f, 0, 2 * f)
bench("linear 1024x3072->768", F.linear, [(M, N), (K, N), (K,)], f, 0, 2 * f)
fa = 2.0 * 96 * 128 * 128 * 64
bench("attn QK^T [8,12,128,64]", lambda q, k: q @ k.transpose(-1, -2), [(8, 12, 128, 64), (8, 12, 128, 64)], fa, 0, 2 * fa)
e = M * K * 4.0
bench("add [1024,768]", lambda a, b: a + b, [(M, K), (M, K)], 0, 3 * e, 0, 4 * e)
e4 = M * N * 4.0
bench("gelu [1024,3072]", F.gelu, [(M, N)], 0, 2 * e4, 0, 4 * e4)
bench("layernorm [1024,768]", lambda x, w, b: F.layer_norm(x, (K,), w, b, 1e-12), [(M, K), (K,), (K,)], 0, 2 * e, 0, 5 * e)
es = 96 * 128 * 128 * 4.0
bench("softmax [8,12,128,128]", lambda x: F.softmax(x * 0.125, -1), [(8, 12, 128, 128)], 0, 2 * es, 0, 4 * es)
bench("dropout [1024,3072]", lambda x: F.dropout(x, 0.1, True), [(M, N)], 0, 2 * e4, 0, 3 * e4)
