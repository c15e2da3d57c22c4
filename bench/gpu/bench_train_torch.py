"""PyTorch peer of bench_train.c (bench_train_gpu): HF BertForQuestionAnswering training steps (forward, backward,
clip_grad_norm_ 1.0, AdamW) on random weights, eager or with the model under torch.compile, on CUDA (or the CPU in a dry run), quantizers off
or on (QDQBERT's points, torch.fake_quantize_per_tensor_affine / per_channel_affine: bench/bench_model_torch.py's
patching). --precision bf16: torch.autocast(dtype=torch.bfloat16); tf32: fp32 with TF32 matmuls
(torch.backends.cuda.matmul.allow_tf32); fp32: neither. Median of N steps after warm-ups, each ending with loss.item().
Prints a human line and "RESULT {json}" with the same fields as bench_train_gpu: sequences/s, model FLOPs and MFU,
peak memory (torch.cuda.max_memory_allocated / reserved, and the device's in-use high-water mark by
torch.cuda.mem_get_info sampled at step ends, as ours by cudaMemGetInfo).
Several configurations in one process (one import, a fresh model each): --case PRECISION:QUANT:SEQ, repeated.
Run: python3 bench/gpu/bench_train_torch.py [--device cuda|cpu] [--precision fp32|tf32|bf16] [--quant 0|1] [--compile 0|1]
     [--layers 12] [--hidden 768] [--heads 12] [--inter 3072] [--batch 32] [--seq 128] [--steps 10] [--warmup 3] [--vocab 30522]
     [--case bf16:1:384 ...]
"""
import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time

import torch
from transformers import BertConfig, BertForQuestionAnswering

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_model_torch import patch_qdq  # noqa: E402


def run_case(a, dev, precision, quant, seq):
    """One configuration on a fresh model: its RESULT dict."""
    cuda = dev.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.manual_seed(0)
    cfg = BertConfig(num_hidden_layers=a.layers, hidden_size=a.hidden, num_attention_heads=a.heads, intermediate_size=a.inter,
                     vocab_size=a.vocab, max_position_embeddings=max(512, seq))
    model = BertForQuestionAnswering(cfg).to(dev)
    if quant:
        patch_qdq(model, device=dev)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    fwd = torch.compile(model) if a.compile else model  # compile: the model (forward and its backward), the optimizer eager
    tokens = a.batch * seq
    ids = ((1000 + (torch.arange(tokens) * 7919) % 20000) % a.vocab).view(a.batch, seq).to(dev)
    start = torch.tensor([(b * 13) % seq for b in range(a.batch)], device=dev)
    end = torch.tensor([(b * 17 + 5) % seq for b in range(a.batch)], device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = fwd(input_ids=ids, start_positions=start, end_positions=end).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    run = step
    times, used_peak, losses = [], 0, []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        losses.append(run().item())
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
        if cuda:
            free, total = torch.cuda.mem_get_info()
            used_peak = max(used_peak, total - free)
    med = statistics.median(times)
    gemm_params = a.layers * (4.0 * a.hidden * a.hidden + 2.0 * a.hidden * a.inter) + 2.0 * a.hidden
    flops = tokens * (6.0 * gemm_params + 12.0 * a.layers * seq * a.hidden)
    mib = 1.0 / (1 << 20)
    r = {"impl": "pytorch-compile" if a.compile else "pytorch", "device": a.device, "precision": precision, "quant": quant, "int8": 0,
         "layers": a.layers, "hidden": a.hidden, "batch": a.batch, "seq": seq, "steps": a.steps, "ms_step": 1e3 * med,
         "seq_s": a.batch / med, "flops_step": flops, "mfu": flops / med / (a.peak_tflops * 1e12),
         "device_peak_mib": used_peak * mib, "allocated_peak_mib": torch.cuda.max_memory_allocated() * mib if cuda else 0.0,
         "reserved_peak_mib": torch.cuda.max_memory_reserved() * mib if cuda else 0.0,
         "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "first_loss": losses[0], "last_loss": losses[-1],
         "torch": torch.__version__, "attn": model.config._attn_implementation}
    del run, step, opt, fwd, model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="bf16")
    ap.add_argument("--quant", type=int, default=0)
    ap.add_argument("--compile", type=int, default=0)
    for k, v in [("layers", 12), ("hidden", 768), ("heads", 12), ("inter", 3072), ("batch", 32), ("seq", 128), ("steps", 10),
                 ("warmup", 3), ("vocab", 30522)]:
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--peak-tflops", type=float, default=989.4)
    ap.add_argument("--case", action="append", default=[],
                    help="PRECISION:QUANT:SEQ, repeatable: several configurations in one process (instead of the three options)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cases = [(p, int(q), int(s)) for p, q, s in (c.split(":") for c in a.case)] or [(a.precision, a.quant, a.seq)]
    for precision, quant, seq in cases:
        r = run_case(a, dev, precision, quant, seq)
        print("%s %s %s quant %d layers %d hidden %d batch %d seq %d: %.2f ms/step, %.1f seq/s, MFU %.1f%%; device peak %.0f MiB, "
              "allocated peak %.0f MiB; loss %.4f -> %.4f (torch %s, attention %s)"
              % (r["impl"], a.device, precision, quant, a.layers, a.hidden, a.batch, seq, r["ms_step"], r["seq_s"], 100 * r["mfu"],
                 r["device_peak_mib"], r["allocated_peak_mib"], r["first_loss"], r["last_loss"], torch.__version__, r["attn"]))
        print("RESULT " + json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
