"""PyTorch peer of bench_model.c: one HF BertForQuestionAnswering training step (forward + backward, dropout on) on
the CPU, quantizers off (stock model) or on (QDQBERT's 20 points per layer, fake quantization by
torch.fake_quantize_per_tensor_affine / per_channel_affine, weights per row). Same thread count as OMP_NUM_THREADS.
--precision bf16: the step under torch.autocast("cpu", dtype=torch.bfloat16) (fake quantization on fp32 values).
Run: OMP_NUM_THREADS=2 python bench/bench_model_torch.py [--config base|minilm] [--quant 0|1] [--steps N] [--layers L]
     [--batch B] [--seq S] [--precision fp32|bf16]
"""
import argparse
import os
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForQuestionAnswering


def fq_tensor(x, amax):
    return torch.fake_quantize_per_tensor_affine(x.float(), amax / 127.0, 0, -128, 127)


def fq_rows(w, amax):
    return torch.fake_quantize_per_channel_affine(w.float(), amax / 127.0, torch.zeros_like(amax, dtype=torch.int32), 0, -128, 127)


def patch_qdq(model, act_amax=8.0, w_amax=0.08, device=None):
    """Fake quantization at QDQBERT's points of every encoder layer (linear inputs/weights, matmul inputs, residual adds);
    device: where the weight scales live (the model's device; None: the CPU)."""
    for layer in model.bert.encoder.layer:
        for lin in [layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                    layer.attention.output.dense, layer.intermediate.dense, layer.output.dense]:
            wa = torch.full((lin.out_features,), w_amax, device=device)

            def fwd(x, lin=lin, wa=wa):
                return F.linear(fq_tensor(x, act_amax), fq_rows(lin.weight, wa), lin.bias)
            lin.forward = fwd
        sa = layer.attention.self

        def sa_forward(hidden_states, attention_mask=None, sa=sa, **kw):
            b, s, _ = hidden_states.shape
            d = sa.attention_head_size
            q = sa.query(hidden_states).view(b, s, -1, d).transpose(1, 2)
            k = sa.key(hidden_states).view(b, s, -1, d).transpose(1, 2)
            v = sa.value(hidden_states).view(b, s, -1, d).transpose(1, 2)
            scores = torch.matmul(fq_tensor(q, act_amax), fq_tensor(k.transpose(2, 3), act_amax)) * sa.scaling
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = F.dropout(F.softmax(scores, dim=-1), p=sa.dropout.p, training=sa.training)
            ctx = torch.matmul(fq_tensor(probs, act_amax), fq_tensor(v, act_amax))
            return ctx.transpose(1, 2).reshape(b, s, -1), probs
        sa.forward = sa_forward
        for out in [layer.attention.output, layer.output]:
            def out_forward(hidden_states, input_tensor, out=out):
                h = out.dropout(out.dense(hidden_states))
                return out.LayerNorm(fq_tensor(h, act_amax) + fq_tensor(input_tensor, act_amax))
            out.forward = out_forward


# BERT-base; MiniLM-L6-H384 at the main job's batch (configs/squad_minilm_qat.ini)
CONFIGS = {
    "base": dict(num_hidden_layers=12, hidden_size=768, intermediate_size=3072, num_attention_heads=12, batch=8),
    "minilm": dict(num_hidden_layers=6, hidden_size=384, intermediate_size=1536, num_attention_heads=12, batch=12),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), default="base")
    ap.add_argument("--quant", type=int, default=0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--layers", type=int, default=0, help="0: the config's")
    ap.add_argument("--batch", type=int, default=0, help="0: the config's")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    shape = dict(CONFIGS[a.config])
    a.batch = a.batch or shape.pop("batch")
    shape.pop("batch", None)
    if a.layers:
        shape["num_hidden_layers"] = a.layers
    a.layers = shape["num_hidden_layers"]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    torch.manual_seed(0)
    model = BertForQuestionAnswering(BertConfig(**shape))
    if a.quant:
        patch_qdq(model)
    model.train()
    tokens = a.batch * a.seq
    ids = (1000 + (torch.arange(tokens) * 7919) % 20000).view(a.batch, a.seq)
    start = torch.tensor([(b * 13) % a.seq for b in range(a.batch)])
    end = torch.tensor([(b * 17 + 5) % a.seq for b in range(a.batch)])
    times, cpu = [], []
    for s in range(a.steps + 2):  # two warm-up steps, as bench_model.c
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model(input_ids=ids, start_positions=start, end_positions=end).loss
        loss.backward()
        if s >= 2:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    h, inter, L = shape["hidden_size"], shape["intermediate_size"], a.layers
    flops = 3.0 * (L * (2.0 * tokens * (4 * h * h + 2 * h * inter) + 4.0 * a.batch * a.seq * a.seq * h) + 2.0 * tokens * h * 2)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("pytorch  %-6s %-4s layers %d batch %d seq %d threads %d: %8.1f ms/step  %6.1f GFLOP/s  (attn %s)  cpu %8.1f ms/step  peak RSS %6.0f MiB"
          % ("quant" if a.quant else "fp32", a.precision, L, a.batch, a.seq, torch.get_num_threads(), 1e3 * med, flops / med * 1e-9,
             model.config._attn_implementation, 1e3 * statistics.median(cpu), rss))


if __name__ == "__main__":
    main()
