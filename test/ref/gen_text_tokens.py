"""Token ids and character offsets from HF's fast BERT tokenizer, for the C tokenizer parity test.

Texts: every dev-v1.1 context, every 5th dev question, the 300 train contexts with the most
non-ASCII characters, and a few hand-written edge cases (stored verbatim). SQuAD texts are
referenced by position so the fixture stays small; the test reads them from QB_SQUAD_DIR.
Encoded with add_special_tokens=False; offsets are in characters (code points), as HF returns them.

Run: /work/refenv/bin/python test/ref/gen_text_tokens.py ../shared/data/squad
"""
import gzip
import json
import os
import sys

from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "text", "fixtures")

EDGE_CASES = [
    "Héllo [MASK] wörld İstanbul 東京 a\u2028b\u0085c ΣΑΣ Ǆ x\u00adY",
    "[CLS][SEP] [UNK]x [PAD [MASK]] [mask]",
    "tab\there\nnew\r\nline\x0bvt\x0cff\x00nul\ufffdrep\u200bzw\ufeffbom",
    "Crème brûlée, naïve café, Øresund, Łódź, Straße, ﬁnance, ½ ², Ⅻ",
    "Ａｂｃ　全角 ｶﾀｶﾅ 한국어 조선말 ひらがな カタカナ 中文字符 𠀋𠀍 a\U0002B820b a\U0002B920b c\U0002A6DFd e\U00030000f",
    "ṩ ậ ǖ q\u0307\u0323 e\u0301\u0301 a\u0328\u0301 \u1e9b\u0323",
    "emoji 😀👍🏽 flags 🇫🇷 zwj 👩\u200d💻 math ∑∫√ arrows →⇒ currency $€£¥₹ «quote» „de“ ¿qué? ¡sí!",
    "x" * 101 + " " + "y" * 100 + " " + "é" * 101 + " " + "ab" * 60,
    "  leading and trailing spaces   ",
    "",
    "\u00a0\u1680\u2000\u2001\u200a\u202f\u205f\u3000nbsp",
    "Ελληνικά ΟΔΟΣ Русский ЁЖИК العربية עברית हिन्दी ไทย",
    "don't-stop_me.now!?(yes)[no]{maybe}<tag>@home#1%2^3&4*5~6`7|8\\9/0",
    "İI ıi K Å Ω ǅ ǈ ẞ ﬀ",
    "\u0000\u0001\u001f\u007f\u0080\u009f\u00ad\u0600\u061c\u06dd\u070f\u180e\u200e\u202a\u2066\ue000\U000f0000",
]


def main():
    squad_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/squad"
    with gzip.open(os.path.join(squad_dir, "dev-v1.1.json.gz"), "rt", encoding="utf-8") as f:
        dev = json.load(f)["data"]
    with gzip.open(os.path.join(squad_dir, "train-v1.1.json.gz"), "rt", encoding="utf-8") as f:
        train = json.load(f)["data"]
    dev_contexts = [p["context"] for a in dev for p in a["paragraphs"]]
    dev_questions = [(qa["id"], qa["question"]) for a in dev for p in a["paragraphs"] for qa in p["qas"]]
    train_contexts = [p["context"] for a in train for p in a["paragraphs"]]
    non_ascii = sorted(range(len(train_contexts)),
                       key=lambda i: (-sum(ord(ch) > 127 for ch in train_contexts[i]), i))[:300]
    non_ascii.sort()

    texts = [({"src": "dev-context", "index": i}, c) for i, c in enumerate(dev_contexts)]
    texts += [({"src": "dev-question", "id": qid}, q) for k, (qid, q) in enumerate(dev_questions) if k % 5 == 0]
    texts += [({"src": "train-context", "index": i}, train_contexts[i]) for i in non_ascii]
    texts += [({"src": "text", "text": t}, t) for t in EDGE_CASES]

    for name in ("minilm-uncased", "squad-cased"):
        tok = AutoTokenizer.from_pretrained(os.path.join(FIX, name))
        assert tok.is_fast
        items = []
        n_tokens = 0
        for ref, text in texts:
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            item = dict(ref)
            item["ids"] = enc["input_ids"]
            item["offsets"] = [x for pair in enc["offset_mapping"] for x in pair]
            n_tokens += len(item["ids"])
            items.append(item)
        out = os.path.join(FIX, f"tokens-{name}.json.gz")
        payload = json.dumps({"tokenizer": name, "items": items}, ensure_ascii=False, separators=(",", ":"))
        with gzip.GzipFile(out, "wb", mtime=0) as f:
            f.write(payload.encode("utf-8"))
        print(f"{out}: {len(items)} texts, {n_tokens} tokens")


if __name__ == "__main__":
    main()
