"""check_hf_saved.py TEST_EXE: transformers loads the checkpoint that test_hf_saved.c saves from the save_pretrained
fixture (test/model/fixtures/hf_saved) with the same tokenizer settings, tokens, config values and outputs as the
fixture itself, except model_max_length, which is max_position_embeddings instead of "no limit".

Needs transformers and torch (pip install transformers torch); without them it reports SKIPPED and exits 77.
QB_REF_PYTHON names another interpreter to run under when this one lacks them.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.tokenization_utils_base import VERY_LARGE_INTEGER
except ImportError as e:
    other = os.environ.get("QB_REF_PYTHON")
    if other and os.path.realpath(other) != os.path.realpath(sys.executable):
        os.execv(other, [other] + sys.argv)
    print("SKIPPED: transformers and torch are not installed (%s); pip install transformers torch" % e)
    sys.exit(77)

ROOT = os.environ.get("QB_SOURCE_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURE = os.path.join(ROOT, "test", "model", "fixtures", "hf_saved")

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = passed + bool(ok), failed + (not ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else ": " + detail))


def normalizer(tok):
    return json.loads(tok.backend_tokenizer.normalizer.__getstate__())


def main():
    torch.set_num_threads(1)
    with open(FIXTURE + "_texts.json") as f:
        texts = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved")
        run = subprocess.run([sys.argv[1], saved], capture_output=True, text=True)
        check("test_hf_saved saves the fixture", run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:])
        if run.returncode:
            return
        ref_tok, our_tok = AutoTokenizer.from_pretrained(FIXTURE), AutoTokenizer.from_pretrained(saved)
        check("tokenizer class", type(ref_tok) is type(our_tok), "%s vs %s" % (type(ref_tok), type(our_tok)))
        check("normalizer", normalizer(ref_tok) == normalizer(our_tok), "%s vs %s" % (normalizer(ref_tok), normalizer(our_tok)))
        check("special tokens", ref_tok.special_tokens_map == our_tok.special_tokens_map,
              "%s vs %s" % (ref_tok.special_tokens_map, our_tok.special_tokens_map))
        check("fixture's model_max_length is transformers' none", ref_tok.model_max_length == VERY_LARGE_INTEGER,
              str(ref_tok.model_max_length))
        cfg = AutoConfig.from_pretrained(saved)
        check("our model_max_length = max_position_embeddings",
              our_tok.model_max_length == cfg.max_position_embeddings == 64, str(our_tok.model_max_length))
        qs, cs = [p[0] for p in texts["pairs"]], [p[1] for p in texts["pairs"]]
        kw = dict(padding="max_length", max_length=texts["max_length"], truncation="only_second", return_tensors="pt")
        ref_enc, our_enc = ref_tok(qs, cs, **kw), our_tok(qs, cs, **kw)
        check("encodings", all(torch.equal(ref_enc[k], our_enc[k]) for k in ref_enc), "differ")
        ref_cfg = AutoConfig.from_pretrained(FIXTURE)
        for key in ("layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range",
                    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings", "type_vocab_size", "pad_token_id", "hidden_act"):
            a, b = getattr(ref_cfg, key), getattr(cfg, key)
            check("config %s = %r" % (key, a), a == b and type(a) is type(b), "ours %r" % (b,))
        ref_model = AutoModelForQuestionAnswering.from_pretrained(FIXTURE).eval()
        our_model = AutoModelForQuestionAnswering.from_pretrained(saved).eval()
        with torch.no_grad():
            a, b = ref_model(**ref_enc), our_model(**our_enc)
        check("QA logits identical", torch.equal(a.start_logits, b.start_logits) and torch.equal(a.end_logits, b.end_logits),
              "max diff %g" % float((a.start_logits - b.start_logits).abs().max()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
