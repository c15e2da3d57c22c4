"""Writes test/model/fixtures/minilm/expected.safetensors: 32 SQuAD dev sentences (16 questions, 16 first context
sentences) tokenized by the HF tokenizer of all-MiniLM-L6-v2, and transformers' last hidden state for them.

  input_ids, attention_mask  I32 [32, S] (padded to the longest)
  hidden                     F32 [T, 384], the hidden states of the T real (unpadded) tokens, row-major by (row, pos)

Needs the checkpoint in .cache/minilm (scripts/fetch_minilm.sh). Run: /work/refenv/bin/python test/ref/gen_model_minilm.py
"""
import gzip
import json
import os

import torch
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..")
CACHE = os.path.join(REPO, ".cache", "minilm")
SQUAD = os.path.join(REPO, "..", "shared", "data", "squad", "dev-v1.1.json.gz")
OUT = os.path.join(REPO, "test", "model", "fixtures", "minilm")


def sentences():
    data = json.load(gzip.open(SQUAD, "rt"))["data"]
    questions, contexts = [], []
    for article in data:
        for para in article["paragraphs"][:1]:
            contexts.append(para["context"].split(". ")[0] + ".")
            questions.append(para["qas"][0]["question"])
    return questions[:16] + contexts[:16]


def main():
    tok = BertTokenizer(os.path.join(CACHE, "vocab.txt"), do_lower_case=True)
    model = BertModel.from_pretrained(CACHE, attn_implementation="eager").eval()
    enc = tok(sentences(), padding=True, truncation=True, max_length=48, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    keep = enc["attention_mask"].bool()
    os.makedirs(OUT, exist_ok=True)
    save_file({"input_ids": enc["input_ids"].to(torch.int32).contiguous(),
               "attention_mask": enc["attention_mask"].to(torch.int32).contiguous(),
               "hidden": hidden[keep].contiguous()}, os.path.join(OUT, "expected.safetensors"))
    print("rows", keep.shape[0], "len", keep.shape[1], "tokens", int(keep.sum()))


if __name__ == "__main__":
    main()
