#!/usr/bin/env python3
"""make_seeds.py: seed corpora for the libFuzzer targets, built from the test fixtures (stdlib only).

  make_seeds.py SOURCE_ROOT OUT_DIR CHECKPOINT_SEEDS_DIR

OUT_DIR/<target>/ gets small valid inputs of each target's format (the first byte is the target's mode byte where it
has one); CHECKPOINT_SEEDS_DIR holds what fuzz_checkpoint wrote with QB_FUZZ_WRITE_SEEDS.
"""
import gzip
import json
import os
import shutil
import struct
import sys

root, out, ckpt = sys.argv[1], sys.argv[2], sys.argv[3]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def read(rel):
    with open(os.path.join(root, rel), "rb") as f:
        return f.read()


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, raw bytes)]"""
    header, blob = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


# ---- checkpoint loader: what the target wrote from its own model
for name in sorted(os.listdir(ckpt)):
    put("checkpoint", name, read(os.path.join(ckpt, name)))
model_st = read(os.path.join(ckpt, "checkpoint-0"))[1:]

# ---- safetensors header
put("safetensors", "model", model_st)
put("safetensors", "conv", safetensors([("h", "F16", [2, 2], struct.pack("<4H", 0x3C00, 0xC000, 1, 0x7BFF)),
                                        ("b", "BF16", [2], struct.pack("<2H", 0x3F80, 0xC0A0)),
                                        ("i", "I64", [2], struct.pack("<2q", -5, 7)),
                                        ("j", "I32", [1, 1], struct.pack("<i", 3)),
                                        ("z", "F32", [0, 4], b"")], {"format": "pt"}))
put("safetensors", "scalar", safetensors([("s", "F32", [], struct.pack("<f", 1.5)), ("u", "U8", [3], b"abc")]))

# ---- config.json
tiny = read("test/model/fixtures/tiny/config.json").decode()
put("config_json", "tiny", tiny)
cfg = json.loads(tiny)
cfg.update({"id2label": {"0": "a", "1": "b"}, "classifier_dropout": None, "hidden_act": "gelu_new",
            "problem_type": "single_label_classification", "is_decoder": False})
put("config_json", "labels", json.dumps(cfg))
minilm = os.path.join(root, ".cache/minilm/config.json")
if os.path.exists(minilm):
    put("config_json", "minilm", read(minilm))

# ---- tokenizer.json: the MiniLM fixture with its vocabulary cut to ids below 1200 (specials and single characters)
tok = json.loads(read("test/text/fixtures/minilm-uncased/tokenizer.json"))
tok["model"]["vocab"] = {k: v for k, v in tok["model"]["vocab"].items() if v < 1200}
tok["added_tokens"] = [a for a in tok.get("added_tokens", []) if a["id"] < 1200]
text = json.dumps(tok)
put("tokenizer_json", "minilm-small-0", "\0" + text)
put("tokenizer_json", "minilm-small-1", "\1" + text)

# ---- vocab.txt
put("vocab_txt", "tiny-lower", b"\1" + read("test/program/fixtures/vocab.txt"))
cased = read("test/text/fixtures/squad-cased/vocab.txt").split(b"\n")
put("vocab_txt", "cased-head", b"\0" + b"\n".join(cased[:400]) + b"\n")
put("vocab_txt", "crlf", b"\1[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nthe\r\n##s\r\n")

# ---- INI with overrides (after a NUL)
for name in sorted(os.listdir(os.path.join(root, "configs"))):
    if name.endswith(".ini"):
        put("ini", name, read(os.path.join("configs", name)) + b"\0run.task=eval\ntrain.max_steps=5\nquant.calibrator=max")
put("ini", "squad", "[run]\ntask = qat\noutput_dir = out\n[model]\npath = m\n[data]\ntrain_file = t.json\ndev_file = d.json\n"
                    "max_seq_length = 64\ndoc_stride = 16\n[quant]\ndisable_keyword = final_input\n[train]\nmax_steps = 3\n"
                    "\0data.max_query_length=8\neval.n_best_size=5")
# a found input: stacked repetitions once made regcomp allocate 2 GB
put("ini", "regex-repeats", "[run]\ntask = qat\noutput_dir = out\n[model]\npath = m\n[data]\ntrain_file = t.json\n"
                            "dev_file = d.json\n[quant]\ndisable_keyword = pr" + "+" * 60 + " ((a{9}){9}){9}\n")

# ---- SQuAD, plain and gzip
small = read("test/program/fixtures/squad_tiny.json")
put("squad", "tiny", b"\0" + small)
put("squad", "tiny-skip", b"\1" + small)
v2 = json.loads(gzip.decompress(read("test/train/fixtures/squad-v2-mini.json.gz")))
v2["data"] = v2["data"][:1]
v2["data"][0]["paragraphs"] = v2["data"][0]["paragraphs"][:2]
v2_text = json.dumps(v2).encode()
put("squad", "v2", b"\1" + v2_text)
put("squad_gz", "tiny", b"\0" + small)
put("squad_gz", "v2", b"\1" + v2_text)
put("squad_gz", "tiny-raw", b"\2" + gzip.compress(small))
