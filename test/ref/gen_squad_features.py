"""SQuAD features exactly as HF transformers' examples/pytorch/question-answering/run_qa.py builds them.

prepare_train_features / prepare_validation_features are re-created from run_qa.py (pad_to_max_length=True,
padding side right): questions are left-stripped, then tokenizer(question, context, truncation="only_second",
max_length, stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True,
padding="max_length"); start/end positions follow run_qa's loops over offsets and sequence_ids; evaluation
offsets are None outside the context. run_qa does not apply max_query_length.

Examples: 300 from dev-v1.1 and 200 from train-v1.1 (evenly spaced), with the MiniLM uncased tokenizer, at
max_seq_length/doc_stride 384/128 and 128/32.

Run: /work/refenv/bin/python test/ref/gen_squad_features.py ../shared/data/squad
"""
import gzip
import json
import os
import sys

from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
TOK_DIR = os.path.join(HERE, "..", "text", "fixtures", "minilm-uncased")
OUT = os.path.join(HERE, "..", "train", "fixtures", "features-minilm-uncased.json.gz")
CONFIGS = [(384, 128), (128, 32)]


def load_examples(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append({"id": qa["id"], "question": qa["question"], "context": para["context"],
                            "answers": {"text": [a["text"] for a in qa["answers"]],
                                        "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return out


def tokenize_windows(tokenizer, examples, max_seq_length, doc_stride):
    """run_qa's tokenizer call, shared by its train and validation feature functions."""
    pad_on_right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in examples["question"]]
    tokenized = tokenizer(questions if pad_on_right else examples["context"],
                          examples["context"] if pad_on_right else questions,
                          truncation="only_second" if pad_on_right else "only_first",
                          max_length=max_seq_length, stride=doc_stride, return_overflowing_tokens=True,
                          return_offsets_mapping=True, padding="max_length")
    return tokenized, pad_on_right


def prepare_train_features(tokenizer, examples, max_seq_length, doc_stride):
    tokenized, pad_on_right = tokenize_windows(tokenizer, examples, max_seq_length, doc_stride)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized["input_ids"][i]
        if tokenizer.cls_token_id in input_ids:
            cls_index = input_ids.index(tokenizer.cls_token_id)
        elif tokenizer.bos_token_id in input_ids:
            cls_index = input_ids.index(tokenizer.bos_token_id)
        else:
            cls_index = 0
        sequence_ids = tokenized.sequence_ids(i)
        answers = examples["answers"][sample_mapping[i]]
        if len(answers["answer_start"]) == 0:
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        token_start_index = 0
        while sequence_ids[token_start_index] != (1 if pad_on_right else 0):
            token_start_index += 1
        token_end_index = len(input_ids) - 1
        while sequence_ids[token_end_index] != (1 if pad_on_right else 0):
            token_end_index -= 1
        if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
        else:
            while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                token_start_index += 1
            starts.append(token_start_index - 1)
            while offsets[token_end_index][1] >= end_char:
                token_end_index -= 1
            ends.append(token_end_index + 1)
    tokenized["start_positions"] = starts
    tokenized["end_positions"] = ends
    tokenized["offset_mapping"] = offset_mapping
    tokenized["sample_mapping"] = sample_mapping
    return tokenized


def prepare_validation_features(tokenizer, examples, max_seq_length, doc_stride):
    tokenized, pad_on_right = tokenize_windows(tokenizer, examples, max_seq_length, doc_stride)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    tokenized["example_id"] = []
    for i in range(len(tokenized["input_ids"])):
        sequence_ids = tokenized.sequence_ids(i)
        context_index = 1 if pad_on_right else 0
        tokenized["example_id"].append(examples["id"][sample_mapping[i]])
        tokenized["offset_mapping"][i] = [(o if sequence_ids[k] == context_index else None)
                                          for k, o in enumerate(tokenized["offset_mapping"][i])]
    return tokenized


def main():
    squad_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/squad"
    dev = load_examples(os.path.join(squad_dir, "dev-v1.1.json.gz"))
    train = load_examples(os.path.join(squad_dir, "train-v1.1.json.gz"))
    chosen = [("dev", e) for e in dev[:: len(dev) // 300][:300]] + [("train", e) for e in train[:: len(train) // 200][:200]]
    batch = {k: [e[k] for _, e in chosen] for k in ("id", "question", "context", "answers")}
    tokenizer = AutoTokenizer.from_pretrained(TOK_DIR)
    configs = []
    for max_len, stride in CONFIGS:
        tr = prepare_train_features(tokenizer, batch, max_len, stride)
        va = prepare_validation_features(tokenizer, batch, max_len, stride)
        assert tr["input_ids"] == va["input_ids"]
        feats = []
        for i in range(len(tr["input_ids"])):
            n = sum(tr["attention_mask"][i])
            assert all(m == 0 for m in tr["attention_mask"][i][n:])
            assert all(x == tokenizer.pad_token_id for x in tr["input_ids"][i][n:])
            assert all(x == 0 for x in tr["token_type_ids"][i][n:])
            feats.append({"example": int(tr["sample_mapping"][i]), "example_id": va["example_id"][i],
                          "input_ids": tr["input_ids"][i][:n], "token_type_ids": tr["token_type_ids"][i][:n],
                          "offsets": [x for o in tr["offset_mapping"][i][:n] for x in o],
                          "context": [0 if o is None else 1 for o in va["offset_mapping"][i][:n]],
                          "start_position": tr["start_positions"][i], "end_position": tr["end_positions"][i]})
        configs.append({"max_seq_length": max_len, "doc_stride": stride, "features": feats})
        print(f"{max_len}/{stride}: {len(feats)} features for {len(chosen)} examples")
    payload = {"tokenizer": "minilm-uncased",
               "examples": [{"src": src, "id": e["id"]} for src, e in chosen], "configs": configs}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        f.write(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
