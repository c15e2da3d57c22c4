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
    int64_t model_max_length; /* tokenizer_config.json's limit on encoded length; 0: none (absent or 1e30) */
} qb_tokenizer;

/* Loads a checkpoint's tokenizer from dir as transformers' BertTokenizer does: tokenizer.json when present, else
 * vocab.txt; tokenizer_config.json's do_lower_case, strip_accents and tokenize_chinese_chars (defaults true, null,
 * true) over tokenizer.json's normalizer, its special tokens and model_max_length. Numbers of any size are accepted
 * where not used; errors name the file and key. */
int qb_tokenizer_load(qb_tokenizer *t, const char *dir, qb_err *err);
/* Loads vocab.txt with explicit options (lowercase; accents stripped when lowercase; CJK split). */
int qb_tokenizer_from_vocab(qb_tokenizer *t, const char *vocab_path, bool lowercase, qb_err *err);
/* Writes tokenizer_config.json at path as transformers' save_pretrained does for BERT: the keys of src_config (when
 * not NULL and present) with tokenizer_class "BertTokenizer", t's do_lower_case, strip_accents (null when it follows
 * do_lower_case), tokenize_chinese_chars and special tokens, and model_max_length = t's limit capped at max_positions
 * (the model's max_position_embeddings), or max_positions when t has none. Atomic. */
int qb_tokenizer_save_config(const qb_tokenizer *t, const char *src_config, int64_t max_positions, const char *path, qb_err *err);
/* Tokenises len bytes of UTF-8 (no [CLS]/[SEP]) into out, replacing its contents; invalid UTF-8 fails with the byte offset. */
int qb_tokenize(const qb_tokenizer *t, const char *text, size_t len, qb_tokens *out, qb_err *err);
/* Frees the tokenizer. */
void qb_tokenizer_free(qb_tokenizer *t);
