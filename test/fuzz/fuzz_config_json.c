/* fuzz_config_json.c: HF config.json parsing and validation on arbitrary text; a config that parses is written back
 * and must parse again to the same values (up to 1024 labels: the id2label maps of more only cost time). */
#include <stdio.h>
#include <string.h>
#include "fuzz_common.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qb_bert_config c, again;
    qb_err err = {0};
    if (qb_bert_config_parse((const char *)data, size, "config.json", &c, &err) || c.num_labels > 1024) return 0;
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", fuzz_dir());
    if (qb_bert_config_save(&c, "BertForQuestionAnswering", path, &err) || qb_bert_config_load(path, &again, &err)) __builtin_trap();
    if (c.vocab_size != again.vocab_size || c.hidden_size != again.hidden_size || c.num_labels != again.num_labels ||
        c.hidden_act != again.hidden_act || c.max_position_embeddings != again.max_position_embeddings)
        __builtin_trap();
    return 0;
}
