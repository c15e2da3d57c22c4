"""Writes the tiny-BERT fixtures of test/model from HF transformers (dev time only; CI reads the files).

  test/model/fixtures/tiny/config.json, model.safetensors   random 2-layer BERT (hidden 64): encoder, pooler, MLM, NSP,
                                                             QA and a 3-label classifier, plus QDQBert _amax ranges
  test/model/fixtures/tiny1/config.json, model.safetensors  same encoder with a 1-output classifier (multiple choice,
                                                             regression)
  test/model/fixtures/tiny/expected.safetensors             inputs, labels, every head's logits and loss, the QA
                                                             gradients, and the fake-quantized QA outputs

Run: /work/refenv/bin/python test/ref/gen_model_tiny.py
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (BertConfig, BertForMaskedLM, BertForMultipleChoice, BertForNextSentencePrediction,
                          BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification,
                          BertForTokenClassification, BertLMHeadModel, BertModel)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model", "fixtures")
B, S, CHOICES = 3, 12, 3

CONFIG = dict(vocab_size=99, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
              hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=32,
              type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0, initializer_range=0.02)


def config(**kw):
    c = BertConfig(**{**CONFIG, **kw})
    c._attn_implementation = "eager"
    return c


def write_config(d, **kw):
    os.makedirs(d, exist_ok=True)
    c = {**CONFIG, "model_type": "bert", "position_embedding_type": "absolute", "architectures": ["BertForPreTraining"],
         **kw}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")


def build(cls, sd, **kw):
    m = cls(config(**kw))
    prefix_free = cls is BertModel
    own = m.state_dict()
    load = {}
    for k, v in sd.items():
        name = k[len("bert."):] if prefix_free and k.startswith("bert.") else k
        if name in own and own[name].shape == v.shape:
            load[name] = v
    missing, _ = m.load_state_dict(load, strict=False)
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert not [k for k in missing if k not in tied], missing
    if hasattr(m, "cls") and hasattr(m.cls, "predictions"):
        p = m.cls.predictions
        assert p.decoder.weight.data_ptr() == m.bert.embeddings.word_embeddings.weight.data_ptr()
        p.decoder.bias = p.bias
    m.eval()
    return m


# ---- QDQBERT fake quantization at the 20 points per layer (pytorch-quantization v2.1 numerics)

def fake_quant(x, amax):
    """s = 127/amax (float32), q = clamp(round_half_even(x*s), -128, 127), y = q/s; amax <= 2^-24 gives 0."""
    amax = amax.to(torch.float32)
    scale = 127.0 / amax
    zero = amax <= 2.0 ** -24
    scale = torch.where(zero, torch.zeros_like(scale), scale)
    q = torch.clamp(torch.round(x * scale), -128.0, 127.0)
    return q / torch.where(zero, torch.ones_like(scale), scale)


class Quant:
    """Either records max|x| per quantizer (calibrate) or applies fake quant with the recorded amax."""

    def __init__(self):
        self.amax = {}
        self.calibrating = True

    def __call__(self, name, x, per_row=False):
        if self.calibrating:
            a = (x.detach().abs().amax(dim=1, keepdim=True) if per_row else x.detach().abs().max())
            self.amax[name] = a if name not in self.amax else torch.maximum(self.amax[name], a)
            return x
        return fake_quant(x, self.amax[name])


def patch_qdq(model, quant):
    """Routes each encoder layer of an HF BERT through the QDQBert quantizers (names as HF QDQBert)."""
    for i, layer in enumerate(model.bert.encoder.layer):
        p = f"bert.encoder.layer.{i}."
        for mod_name, lin in [("attention.self.query", layer.attention.self.query),
                              ("attention.self.key", layer.attention.self.key),
                              ("attention.self.value", layer.attention.self.value),
                              ("attention.output.dense", layer.attention.output.dense),
                              ("intermediate.dense", layer.intermediate.dense),
                              ("output.dense", layer.output.dense)]:
            def fwd(x, lin=lin, n=p + mod_name):
                return F.linear(quant(n + "._input_quantizer", x), quant(n + "._weight_quantizer", lin.weight, True), lin.bias)
            lin.forward = fwd
        sa = layer.attention.self

        def sa_forward(hidden_states, attention_mask=None, sa=sa, n=p + "attention.self.", **kw):
            b, s, _ = hidden_states.shape
            d = sa.attention_head_size
            q = sa.query(hidden_states).view(b, s, -1, d).transpose(1, 2)
            k = sa.key(hidden_states).view(b, s, -1, d).transpose(1, 2)
            v = sa.value(hidden_states).view(b, s, -1, d).transpose(1, 2)
            scores = torch.matmul(quant(n + "matmul_q_input_quantizer", q),
                                  quant(n + "matmul_k_input_quantizer", k.transpose(2, 3))) * sa.scaling
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = F.dropout(F.softmax(scores, dim=-1), p=sa.dropout.p, training=sa.training)
            ctx = torch.matmul(quant(n + "matmul_a_input_quantizer", probs), quant(n + "matmul_v_input_quantizer", v))
            return ctx.transpose(1, 2).reshape(b, s, -1).contiguous(), probs
        sa.forward = sa_forward
        for out, n in [(layer.attention.output, p + "attention.output."), (layer.output, p + "output.")]:
            def out_forward(hidden_states, input_tensor, out=out, n=n):
                h = out.dropout(out.dense(hidden_states))
                return out.LayerNorm(quant(n + "add_local_input_quantizer", h) + quant(n + "add_residual_input_quantizer", input_tensor))
            out.forward = out_forward


def main():
    torch.manual_seed(1234)
    base = BertForPreTraining(config())
    with torch.no_grad():  # make LayerNorm and biases non-trivial so that they are tested
        for name, p in base.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    sd = {k: v.clone() for k, v in base.state_dict().items()
          if k not in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")}
    sd["qa_outputs.weight"] = 0.05 * torch.randn(2, 64)
    sd["qa_outputs.bias"] = 0.05 * torch.randn(2)
    sd["classifier.weight"] = 0.05 * torch.randn(3, 64)
    sd["classifier.bias"] = 0.05 * torch.randn(3)
    sd1 = {k: v for k, v in sd.items() if k.startswith("bert.")}
    sd1["classifier.weight"] = 0.05 * torch.randn(1, 64)
    sd1["classifier.bias"] = 0.05 * torch.randn(1)

    g = torch.Generator().manual_seed(7)
    ids = torch.randint(1, 99, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    types = torch.zeros(B, S, dtype=torch.long)
    types[:, 6:] = 1
    mlm_labels = torch.full((B, S), -100)
    mlm_labels[0, 2], mlm_labels[1, 4], mlm_labels[2, 1], mlm_labels[0, 7] = 5, 17, 33, 98
    lm_labels = ids.clone()
    lm_labels[mask == 0] = -100
    cls_labels = torch.tensor([2, 0, 1])
    multi_labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    reg_labels = torch.tensor([[0.5], [-1.25], [2.0]])
    nsp_labels = torch.tensor([1, 0, 1])
    tok_labels = torch.randint(0, 3, (B, S), generator=g)
    tok_labels[mask == 0] = -100
    start = torch.tensor([3, 40, 2])   # 40 is clamped to S and ignored, as transformers does
    end = torch.tensor([5, 8, 4])
    mc_ids = torch.randint(1, 99, (2, CHOICES, S), generator=g)
    mc_mask = torch.ones(2, CHOICES, S, dtype=torch.long)
    mc_mask[1, 2, 7:] = 0
    mc_ids[mc_mask == 0] = 0
    mc_labels = torch.tensor([2, 1])

    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    out = {}
    with torch.no_grad():
        m = build(BertModel, sd)
        o = m(**inputs)
        out["model.hidden"], out["model.pooled"] = o.last_hidden_state, o.pooler_output
        o = build(BertForMaskedLM, sd)(**inputs, labels=mlm_labels)
        out["masked_lm.logits"], out["masked_lm.loss"] = o.logits, o.loss
        o = build(BertLMHeadModel, sd, is_decoder=True)(**inputs, labels=lm_labels)
        out["lm_head.logits"], out["lm_head.loss"] = o.logits, o.loss
        o = build(BertForSequenceClassification, sd, num_labels=3)(**inputs, labels=cls_labels)
        out["seq_cls.logits"], out["seq_cls.loss"] = o.logits, o.loss
        o = build(BertForSequenceClassification, sd, num_labels=3, problem_type="multi_label_classification")(**inputs, labels=multi_labels)
        out["seq_cls_multi.logits"], out["seq_cls_multi.loss"] = o.logits, o.loss
        o = build(BertForSequenceClassification, sd1, num_labels=1)(**inputs, labels=reg_labels)
        out["seq_cls_reg.logits"], out["seq_cls_reg.loss"] = o.logits, o.loss
        o = build(BertForNextSentencePrediction, sd)(**inputs, labels=nsp_labels)
        out["nsp.logits"], out["nsp.loss"] = o.logits, o.loss
        o = build(BertForMultipleChoice, sd1)(input_ids=mc_ids, attention_mask=mc_mask, labels=mc_labels)
        out["multiple_choice.logits"], out["multiple_choice.loss"] = o.logits, o.loss
        o = build(BertForTokenClassification, sd, num_labels=3)(**inputs, labels=tok_labels)
        out["token_cls.logits"], out["token_cls.loss"] = o.logits, o.loss

    qa = build(BertForQuestionAnswering, sd)
    o = qa(**inputs, start_positions=start, end_positions=end)
    o.loss.backward()
    out["qa.logits"], out["qa.end_logits"], out["qa.loss"] = o.start_logits, o.end_logits, o.loss
    for name, p in qa.named_parameters():
        out["grad." + name] = p.grad

    quant = Quant()
    qq = build(BertForQuestionAnswering, sd)
    patch_qdq(qq, quant)
    with torch.no_grad():
        qq(**inputs)  # max calibration
        for name in quant.amax:
            if "_weight_quantizer" not in name:
                quant.amax[name] = quant.amax[name] * 0.85  # clip the largest activations too
        quant.amax["bert.encoder.layer.1.intermediate.dense._weight_quantizer"][5] = 0.0  # a zero range row
        quant.calibrating = False
        o = qq(**inputs, start_positions=start, end_positions=end)
    out["quant.logits"], out["quant.end_logits"], out["quant.loss"] = o.start_logits, o.end_logits, o.loss
    assert len(quant.amax) == 40, len(quant.amax)
    for name, a in quant.amax.items():
        sd[name + "._amax"] = a.reshape(()) if a.numel() == 1 else a.reshape(-1, 1)

    out.update({"in.input_ids": ids, "in.attention_mask": mask, "in.token_type_ids": types, "in.mlm_labels": mlm_labels,
                "in.lm_labels": lm_labels, "in.cls_labels": cls_labels, "in.multi_labels": multi_labels,
                "in.reg_labels": reg_labels, "in.nsp_labels": nsp_labels, "in.tok_labels": tok_labels,
                "in.start_positions": start, "in.end_positions": end, "in.mc_input_ids": mc_ids,
                "in.mc_attention_mask": mc_mask, "in.mc_labels": mc_labels})
    out = {k: (v.detach().to(torch.int32) if v.dtype == torch.long else v.detach().float()).contiguous() for k, v in out.items()}

    write_config(os.path.join(ROOT, "tiny"), num_labels=3)
    write_config(os.path.join(ROOT, "tiny1"), num_labels=1)
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(ROOT, "tiny", "model.safetensors"), metadata={"format": "pt"})
    save_file({k: v.contiguous() for k, v in sd1.items()}, os.path.join(ROOT, "tiny1", "model.safetensors"), metadata={"format": "pt"})
    save_file(out, os.path.join(ROOT, "tiny", "expected.safetensors"))
    print("wrote", len(sd), "+", len(sd1), "tensors and", len(out), "expected values")


if __name__ == "__main__":
    main()
