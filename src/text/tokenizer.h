/* tokenizer.h: BERT's fast tokenizer (HF tokenizers: added tokens, BertNormalizer, BertPreTokenizer, WordPiece)
 * with character offsets into the original text. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "text/bert_normalizer.h"
#include "text/vocab.h"
#include "text/wordpiece.h"

typedef struct qb_added_token {
    int32_t *cps; /* the token's code points, matched on the raw text before normalisation */
    int64_t n;
    int32_t id;
} qb_added_token;

typedef struct qb_tokenizer {
    qb_vocab vocab;
    qb_bert_norm_opts norm;
    qb_wordpiece wp;
    char prefix[16];
    int32_t unk_id, cls_id, sep_id, pad_id, mask_id;
    qb_added_token *added;
    int n_added;
} qb_tokenizer;

/* Loads a checkpoint's tokenizer from dir: tokenizer.json when present, else vocab.txt plus tokenizer_config.json
 * (do_lower_case, strip_accents, tokenize_chinese_chars, special tokens); errors name the file and key. */
int qb_tokenizer_load(qb_tokenizer *t, const char *dir, qb_err *err);
/* Loads vocab.txt with explicit options (lowercase; accents stripped when lowercase; CJK split). */
int qb_tokenizer_from_vocab(qb_tokenizer *t, const char *vocab_path, bool lowercase, qb_err *err);
/* Tokenises len bytes of UTF-8 (no [CLS]/[SEP]) into out, replacing its contents; invalid UTF-8 fails with the byte offset. */
int qb_tokenize(const qb_tokenizer *t, const char *text, size_t len, qb_tokens *out, qb_err *err);
/* Frees the tokenizer. */
void qb_tokenizer_free(qb_tokenizer *t);
