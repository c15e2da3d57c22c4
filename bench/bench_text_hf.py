"""HF side of bench_text: run_qa's prepare_train_features (fast tokenizer + start/end labelling) on all of dev-v1.1.

Prints one line "hf examples/s X features N tokenizer_only_examples/s Y" for bench_text.c to read.
Usage: python bench/bench_text_hf.py SQUAD_DIR TOKENIZER_DIR MAX_SEQ_LENGTH DOC_STRIDE REPEATS
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "ref"))
from gen_squad_features import load_examples, prepare_train_features  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402


def main():
    squad_dir, tok_dir, max_len, stride, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    examples = load_examples(os.path.join(squad_dir, "dev-v1.1.json.gz"))
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    batches = [{k: [e[k] for e in examples[i:i + 1000]] for k in ("id", "question", "context", "answers")}
               for i in range(0, len(examples), 1000)]  # datasets.map(batched=True) default batch size
    best = best_tok = float("inf")
    n_features = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n_features = sum(len(prepare_train_features(tokenizer, b, max_len, stride)["input_ids"]) for b in batches)
        best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for b in batches:
            tokenizer([q.lstrip() for q in b["question"]], b["context"], truncation="only_second", max_length=max_len,
                      stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
        best_tok = min(best_tok, time.perf_counter() - t0)
    print(f"hf examples/s {len(examples) / best:.1f} features {n_features} tokenizer_only_examples/s {len(examples) / best_tok:.1f}")


if __name__ == "__main__":
    main()
