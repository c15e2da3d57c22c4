"""Writes a tiny BERT checkpoint exactly as transformers' save_pretrained writes it, for test/model/test_hf_saved.c
(dev time only; CI reads the files).

  test/model/fixtures/hf_saved/                 BertForQuestionAnswering (2 layers, hidden 32, vocab 64) and its
                                                BertTokenizer, both by save_pretrained: config.json,
                                                model.safetensors, tokenizer.json, tokenizer_config.json (with
                                                model_max_length = 1e30, transformers' "no limit")
  test/model/fixtures/hf_saved_texts.json       the question/context pairs and the cased text below
  test/model/fixtures/hf_saved_expected.safetensors
                                                the pairs as transformers encodes them (padded to max_length) and the
                                                model's start/end logits on them; the cased text's ids under a
                                                tokenizer.json whose normalizer says lowercase false but whose
                                                tokenizer_config.json has no do_lower_case (BertTokenizer lowercases)

Run: python test/ref/gen_hf_saved_tiny.py   (pip install transformers torch)
"""
import json
import os
import shutil
import tempfile

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering, BertTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model", "fixtures")
OUT = os.path.join(ROOT, "hf_saved")
MAX_LENGTH = 40

WORDS = ("the a of in is was what who where when which city capital river paris france seine flows through "
         "hello world cafe naive name my your . , ? ' - 1 2").split()
PIECES = ["##s", "##ed", "##ing", "##er", "##ly", "##e"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + PIECES
VOCAB += ["[unused%d]" % i for i in range(64 - len(VOCAB))]

PAIRS = [
    ["What is the capital of France?", "Paris is the capital of France. The Seine flows through Paris."],
    ["Which river flows through Paris?", "The river Seine flows through the city, past a café."],
    ["Who was naïve?", "My name was Hello World, and I was naive-ish in 1912."],
    ["WHERE IS THE CAFÉ?", "In Paris, the cafés were where cities' rivers flowed."],
]
CASED_TEXT = "Hello World, Paris Cafés"


def main():
    assert len(VOCAB) == 64, len(VOCAB)
    torch.manual_seed(4321)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
                     hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12,
                     initializer_range=0.02, pad_token_id=0)
    model = BertForQuestionAnswering(cfg)
    with torch.no_grad():  # LayerNorm and biases away from 1 and 0 so that loading them is tested
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    model.eval()

    shutil.rmtree(OUT, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "vocab.txt"), "w") as f:
            f.write("\n".join(VOCAB) + "\n")
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump({"model_type": "bert"}, f)
        tok = AutoTokenizer.from_pretrained(tmp)
    model.save_pretrained(OUT)
    tok.save_pretrained(OUT)
    with open(os.path.join(OUT, "tokenizer_config.json")) as f:
        saved = json.load(f)
    assert saved["model_max_length"] == int(1e30), saved  # the value issue 15 is about

    tok = AutoTokenizer.from_pretrained(OUT)
    model = BertForQuestionAnswering.from_pretrained(OUT).eval()
    enc = tok([p[0] for p in PAIRS], [p[1] for p in PAIRS], padding="max_length", max_length=MAX_LENGTH,
              truncation="only_second", return_tensors="pt")
    assert int(enc["attention_mask"].sum(1).max()) < MAX_LENGTH, "a pair was truncated"
    with torch.no_grad():
        out = model(**enc)

    with tempfile.TemporaryDirectory() as tmp:  # tokenizer_config.json rules over tokenizer.json's normalizer
        shutil.copy(os.path.join(OUT, "tokenizer.json"), tmp)
        shutil.copy(os.path.join(OUT, "config.json"), tmp)
        with open(os.path.join(tmp, "tokenizer.json")) as f:
            tj = json.load(f)
        tj["normalizer"]["lowercase"] = False
        with open(os.path.join(tmp, "tokenizer.json"), "w") as f:
            json.dump(tj, f)
        variant = AutoTokenizer.from_pretrained(tmp)(CASED_TEXT, add_special_tokens=False)["input_ids"]

    expected = {
        "in.input_ids": enc["input_ids"], "in.token_type_ids": enc["token_type_ids"],
        "in.attention_mask": enc["attention_mask"], "qa.start_logits": out.start_logits, "qa.end_logits": out.end_logits,
        "variant.input_ids": torch.tensor(variant),
    }
    expected = {k: (v.to(torch.int32) if v.dtype == torch.long else v.float()).contiguous() for k, v in expected.items()}
    save_file(expected, os.path.join(ROOT, "hf_saved_expected.safetensors"))
    with open(os.path.join(ROOT, "hf_saved_texts.json"), "w") as f:
        json.dump({"max_length": MAX_LENGTH, "pairs": PAIRS, "cased_text": CASED_TEXT}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", sorted(os.listdir(OUT)), "and", len(expected), "expected tensors; variant ids", variant)


if __name__ == "__main__":
    main()
