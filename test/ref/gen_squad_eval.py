"""Official SQuAD EM/F1 on deterministic predictions, for the C evaluation parity test.

squad_v1_evaluate / squad_v2_evaluate are the official SQuAD evaluation scripts (evaluate-v1.1.py and
evaluate-v2.0.py from the SQuAD explorer site, Rajpurkar et al.), re-typed here function by function
(normalize_answer, f1_score / compute_f1, exact_match_score / compute_exact, max over gold answers, the
v2.0 HasAns/NoAns split and no-answer threshold with na_probs 0.0).

Writes, under test/train/fixtures/:
- predictions-dev-v1.1.json.gz: a prediction for every dev-v1.1 question but a few left out: exact gold
  answers (some re-cased or with extra punctuation/articles), partial and widened spans, wrong spans,
  empty strings and non-ASCII text; plus eval-dev-v1.1.json with the official scores and per-question EM/F1.
- squad-v2-mini.json.gz: the first 6 dev articles turned into SQuAD v2.0 (every third question made
  impossible: answers -> plausible_answers), its predictions and official v2.0 scores in eval-v2-mini.json.

Run: /work/refenv/bin/python test/ref/gen_squad_eval.py ../shared/data/squad
"""
import collections
import gzip
import json
import os
import random
import re
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "train", "fixtures")


# ---- evaluate-v1.1.py
def v1_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def v1_f1_score(prediction, ground_truth):
    prediction_tokens = v1_normalize_answer(prediction).split()
    ground_truth_tokens = v1_normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def v1_exact_match_score(prediction, ground_truth):
    return v1_normalize_answer(prediction) == v1_normalize_answer(ground_truth)


def v1_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    return max(metric_fn(prediction, gt) for gt in ground_truths)


def squad_v1_evaluate(dataset, predictions, per_question):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    per_question.append((None, None))
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))
                prediction = predictions[qa['id']]
                em = v1_metric_max_over_ground_truths(v1_exact_match_score, prediction, ground_truths)
                f = v1_metric_max_over_ground_truths(v1_f1_score, prediction, ground_truths)
                per_question.append((int(em), float(f)))
                exact_match += em
                f1 += f
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {'exact_match': exact_match, 'f1': f1}


# ---- evaluate-v2.0.py
ARTICLES_REGEX = re.compile(r'\b(a|an|the)\b', re.UNICODE)


def v2_normalize_answer(s):
    def remove_articles(text):
        return re.sub(ARTICLES_REGEX, ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def v2_get_tokens(s):
    if not s:
        return []
    return v2_normalize_answer(s).split()


def v2_compute_exact(a_gold, a_pred):
    return int(v2_normalize_answer(a_gold) == v2_normalize_answer(a_pred))


def v2_compute_f1(a_gold, a_pred):
    gold_toks = v2_get_tokens(a_gold)
    pred_toks = v2_get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def squad_v2_evaluate(dataset, preds, na_probs=None, na_prob_thresh=1.0):
    qid_to_has_ans = {}
    for article in dataset:
        for p in article['paragraphs']:
            for qa in p['qas']:
                qid_to_has_ans[qa['id']] = bool(qa['answers'])
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    if na_probs is None:
        na_probs = {k: 0.0 for k in preds}
    exact_scores, f1_scores = {}, {}
    for article in dataset:
        for p in article['paragraphs']:
            for qa in p['qas']:
                qid = qa['id']
                gold_answers = [a['text'] for a in qa['answers'] if v2_normalize_answer(a['text'])]
                if not gold_answers:
                    gold_answers = ['']
                if qid not in preds:
                    continue
                a_pred = preds[qid]
                exact_scores[qid] = max(v2_compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qid] = max(v2_compute_f1(a, a_pred) for a in gold_answers)

    def apply_no_ans_threshold(scores):
        new_scores = {}
        for qid, s in scores.items():
            if na_probs[qid] > na_prob_thresh:
                new_scores[qid] = float(not qid_to_has_ans[qid])
            else:
                new_scores[qid] = s
        return new_scores

    exact_thresh = apply_no_ans_threshold(exact_scores)
    f1_thresh = apply_no_ans_threshold(f1_scores)

    def make_eval_dict(qid_list=None):
        if not qid_list:
            total = len(exact_thresh)
            return collections.OrderedDict([('exact', 100.0 * sum(exact_thresh.values()) / total),
                                            ('f1', 100.0 * sum(f1_thresh.values()) / total), ('total', total)])
        total = len(qid_list)
        return collections.OrderedDict([('exact', 100.0 * sum(exact_thresh[k] for k in qid_list) / total),
                                        ('f1', 100.0 * sum(f1_thresh[k] for k in qid_list) / total), ('total', total)])

    out = make_eval_dict()
    if has_ans_qids:
        for k, v in make_eval_dict(has_ans_qids).items():
            out['HasAns_' + k] = v
    if no_ans_qids:
        for k, v in make_eval_dict(no_ans_qids).items():
            out['NoAns_' + k] = v
    return out


def find_best_thresh(preds, scores, na_probs, qid_to_has_ans):
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    for qid in qid_list:
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if preds[qid] else 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def squad_v2_best_thresh(dataset, preds, na_probs):
    """evaluate-v2.0's find_all_best_thresh (run with --na-prob-file): raw scores, before the threshold."""
    qid_to_has_ans, exact_raw, f1_raw = {}, {}, {}
    for article in dataset:
        for p in article['paragraphs']:
            for qa in p['qas']:
                qid = qa['id']
                qid_to_has_ans[qid] = bool(qa['answers'])
                gold_answers = [a['text'] for a in qa['answers'] if v2_normalize_answer(a['text'])] or ['']
                if qid in preds:
                    exact_raw[qid] = max(v2_compute_exact(a, preds[qid]) for a in gold_answers)
                    f1_raw[qid] = max(v2_compute_f1(a, preds[qid]) for a in gold_answers)
    best_exact, exact_thresh = find_best_thresh(preds, exact_raw, na_probs, qid_to_has_ans)
    best_f1, f1_thresh = find_best_thresh(preds, f1_raw, na_probs, qid_to_has_ans)
    return {'best_exact': best_exact, 'best_exact_thresh': exact_thresh, 'best_f1': best_f1, 'best_f1_thresh': f1_thresh}


# ---- deterministic predictions
ODD = ["ΣΑΣ", "the Σίσυφος", "Ærøskøbing—the town", "l'état", "an “apple”", "Æ", "a-the-an", "İstanbul",
       "東京 タワー", "the   Big\u00a0Apple", "São Paulo, Brazil", "—", "...", "A", "the the the", "Straße", "½"]


def make_prediction(rng, context, answers):
    gold = rng.choice(answers)
    text, start = gold['text'], gold['answer_start']
    r = rng.random()
    if r < 0.30:
        return text
    if r < 0.38:
        return rng.choice([text.upper(), text.lower(), "The " + text, text + ".", " " + text + " ", "(" + text + ")"])
    if r < 0.58:
        a = max(0, start + rng.randint(-25, 15))
        b = min(len(context), start + len(text) + rng.randint(-15, 25))
        return context[a:b] if b > a else text[: max(1, len(text) // 2)]
    if r < 0.72:
        a = rng.randrange(0, max(1, len(context) - 5))
        return context[a:a + rng.randint(1, 40)]
    if r < 0.80:
        return ""
    if r < 0.90:
        return rng.choice(ODD) + (" " + text if rng.random() < 0.5 else "")
    if r < 0.97:
        words = context.split()
        i = rng.randrange(len(words))
        return " ".join(words[i:i + rng.randint(1, 6)])
    return None  # left out


def main():
    squad_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/squad"
    with gzip.open(os.path.join(squad_dir, "dev-v1.1.json.gz"), "rt", encoding="utf-8") as f:
        dev = json.load(f)
    rng = random.Random(20240611)
    preds = {}
    for article in dev['data']:
        for p in article['paragraphs']:
            for qa in p['qas']:
                pred = make_prediction(rng, p['context'], qa['answers'])
                if pred is not None:
                    preds[qa['id']] = pred
    per_question = []
    scores = squad_v1_evaluate(dev['data'], preds, per_question)
    os.makedirs(FIX, exist_ok=True)
    with gzip.GzipFile(os.path.join(FIX, "predictions-dev-v1.1.json.gz"), "wb", mtime=0) as f:
        f.write(json.dumps(preds).encode("utf-8"))
    with open(os.path.join(FIX, "eval-dev-v1.1.json"), "w") as f:
        json.dump({"exact_match": scores["exact_match"], "f1": scores["f1"], "total": len(per_question),
                   "predictions": len(preds),
                   "per_question_em": [-1 if em is None else em for em, _ in per_question],
                   "per_question_f1": [-1.0 if f1 is None else f1 for _, f1 in per_question]},
                  f, separators=(",", ":"))
        f.write("\n")
    print("v1.1:", scores, len(preds), "of", len(per_question))

    # SQuAD v2.0 from the first 6 dev articles
    v2 = {"version": "v2.0", "data": []}
    k = 0
    for article in dev['data'][:6]:
        a2 = {"title": article["title"], "paragraphs": []}
        for p in article['paragraphs']:
            qas = []
            for qa in p['qas']:
                q = {"question": qa["question"], "id": qa["id"], "answers": qa["answers"], "is_impossible": False}
                if k % 3 == 2:
                    q = {"plausible_answers": qa["answers"], "question": qa["question"], "id": qa["id"],
                         "answers": [], "is_impossible": True}
                qas.append(q)
                k += 1
            a2["paragraphs"].append({"qas": qas, "context": p["context"]})
        v2["data"].append(a2)
    rng = random.Random(7)
    preds2 = {}
    for article in v2['data']:
        for p in article['paragraphs']:
            for qa in p['qas']:
                answers = qa['answers'] or qa['plausible_answers']
                pred = make_prediction(rng, p['context'], answers)
                if qa['is_impossible'] and rng.random() < 0.5:
                    pred = ""
                preds2[qa['id']] = "" if pred is None else pred
    scores2 = squad_v2_evaluate(v2['data'], preds2)
    with gzip.GzipFile(os.path.join(FIX, "squad-v2-mini.json.gz"), "wb", mtime=0) as f:
        f.write(json.dumps(v2).encode("utf-8"))
    with gzip.GzipFile(os.path.join(FIX, "predictions-v2-mini.json.gz"), "wb", mtime=0) as f:
        f.write(json.dumps(preds2).encode("utf-8"))
    with open(os.path.join(FIX, "eval-v2-mini.json"), "w") as f:
        json.dump(scores2, f, indent=1)
        f.write("\n")
    print("v2.0:", dict(scores2))
    # no-answer probabilities (two decimals, so ties occur; in dataset order) and the script's best thresholds
    rng = random.Random(11)
    na_probs = {}
    for article in v2['data']:
        for p in article['paragraphs']:
            for qa in p['qas']:
                base = 0.6 if qa['is_impossible'] else 0.3
                na_probs[qa['id']] = round(min(1.0, max(0.0, rng.gauss(base, 0.25))), 2)
    scores3 = squad_v2_evaluate(v2['data'], preds2, na_probs, 0.5)
    scores3.update(squad_v2_best_thresh(v2['data'], preds2, na_probs))
    with gzip.GzipFile(os.path.join(FIX, "na-probs-v2-mini.json.gz"), "wb", mtime=0) as f:
        f.write(json.dumps(na_probs).encode("utf-8"))
    with open(os.path.join(FIX, "eval-v2-mini-na.json"), "w") as f:
        json.dump(scores3, f, indent=1)
        f.write("\n")
    print("v2.0 with na_probs, thresh 0.5:", dict(scores3))


if __name__ == "__main__":
    main()
