/* pair_encoding.c: see pair_encoding.h. */
#include "text/pair_encoding.h"

int qb_pair_plan(int64_t n_a, int64_t n_b, int max_len, int stride, qb_pair_windows *w, qb_err *err) {
    int64_t room = (int64_t)max_len - n_a - 3;
    if (n_b <= room) {
        *w = (qb_pair_windows){.count = 1, .step = room > 0 ? room : 1, .room = room > 0 ? room : 0};
        return 0;
    }
    if (room <= 0)
        return qb_errorf(err, "first sequence of %ld tokens leaves no room for the second in max_length %d",
                         (long)n_a, max_len);
    if (stride >= room)
        return qb_errorf(err, "stride %d must be below the %ld tokens left for the second sequence (max_length %d)",
                         stride, (long)room, max_len);
    int64_t step = room - stride, count = 1;
    while ((count - 1) * step + room < n_b) count++;
    *w = (qb_pair_windows){.count = count, .step = step, .room = room};
    return 0;
}

static void put(int32_t *ids, int32_t *types, int32_t *mask, int32_t *offsets, int8_t *seq, int i, int32_t id,
                int32_t type, int32_t s, int32_t e, int8_t sq) {
    ids[i] = id;
    types[i] = type;
    mask[i] = 1;
    offsets[2 * i] = s;
    offsets[2 * i + 1] = e;
    seq[i] = sq;
}

int qb_pair_fill(const qb_tokenizer *t, const qb_tokens *a, int64_t n_a, const qb_tokens *b, const qb_pair_windows *w,
                 int64_t k, int max_len, int32_t *ids, int32_t *types, int32_t *mask, int32_t *offsets, int8_t *seq) {
    int i = 0;
    put(ids, types, mask, offsets, seq, i++, t->cls_id, 0, 0, 0, -1);
    for (int64_t j = 0; j < n_a; j++) put(ids, types, mask, offsets, seq, i++, a->ids[j], 0, a->start[j], a->end[j], 0);
    put(ids, types, mask, offsets, seq, i++, t->sep_id, 0, 0, 0, -1);
    int64_t begin = k * w->step, end = begin + w->room;
    if (end > b->n) end = b->n;
    for (int64_t j = begin; j < end; j++) put(ids, types, mask, offsets, seq, i++, b->ids[j], 1, b->start[j], b->end[j], 1);
    put(ids, types, mask, offsets, seq, i++, t->sep_id, 1, 0, 0, -1);
    int used = i;
    for (; i < max_len; i++) {
        put(ids, types, mask, offsets, seq, i, t->pad_id, 0, 0, 0, -1);
        mask[i] = 0;
    }
    return used;
}
