"""Builds the cased WordPiece vocabulary used by the cased tokenizer parity test.

Trains a BERT WordPiece vocabulary (lowercase=False, accents kept) with HF `tokenizers`
on the SQuAD v1.1 train contexts and questions, and writes vocab.txt plus a
tokenizer_config.json (do_lower_case false, no tokenizer.json: the C loader's
config path is exercised that way).

Run: /work/refenv/bin/python test/ref/gen_text_vocab_cased.py ../shared/data/squad
"""
import gzip
import json
import os
import sys

from tokenizers import BertWordPieceTokenizer

VOCAB_SIZE = 6000


def main():
    squad_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/squad"
    out_dir = os.path.join(os.path.dirname(__file__), "..", "text", "fixtures", "squad-cased")
    with gzip.open(os.path.join(squad_dir, "train-v1.1.json.gz"), "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    texts = []
    for article in data:
        for para in article["paragraphs"]:
            texts.append(para["context"])
            texts.extend(qa["question"] for qa in para["qas"])
    tok = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True, handle_chinese_chars=True)
    tok.train_from_iterator(texts, vocab_size=VOCAB_SIZE, min_frequency=2, limit_alphabet=400,
                            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        for token, _ in vocab:
            f.write(token + "\n")
    config = {"do_lower_case": False, "tokenize_chinese_chars": True, "strip_accents": None,
              "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
              "mask_token": "[MASK]", "tokenizer_class": "BertTokenizer", "model_max_length": 512}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"wrote {len(vocab)} tokens to {out_dir}")


if __name__ == "__main__":
    main()
