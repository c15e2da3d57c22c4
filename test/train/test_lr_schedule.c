/* test_lr_schedule.c: HF Trainer learning-rate schedules against transformers' get_scheduler at every step (warmup as
 * steps and as a ratio), and the name parser. */
#include <math.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "train/lr_schedule.h"

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/train/fixtures/lr_schedule_clip.json", &err);
    if (!root) qb_die("test_lr_schedule", &err);
    json_t *cases = json_object_get(root, "schedules");
    CHECK(&c, json_array_size(cases) == 20, "fixture has 20 schedules");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *cs = json_array_get(cases, i);
        const char *kind = json_string_value(json_object_get(cs, "kind"));
        qb_lr_schedule s = {0};
        if (!CHECK(&c, kind && qb_lr_kind_parse(kind, &s.kind, &err) == 0, "parse %s: %s", kind, err.msg)) continue;
        CHECK(&c, strcmp(qb_lr_kind_name(s.kind), kind) == 0, "name round trip %s", kind);
        s.base_lr = json_number_value(json_object_get(cs, "base_lr"));
        s.total_steps = json_integer_value(json_object_get(cs, "total"));
        s.warmup_steps = qb_lr_warmup_steps(json_integer_value(json_object_get(cs, "warmup_steps")),
                                            json_number_value(json_object_get(cs, "warmup_ratio")), s.total_steps);
        CHECK(&c, s.warmup_steps == json_integer_value(json_object_get(cs, "warmup")), "%s total %lld: warmup %lld", kind,
              (long long)s.total_steps, (long long)s.warmup_steps);
        json_t *lrs = json_object_get(cs, "lrs");
        double worst = 0.0;
        size_t at = 0;
        for (size_t k = 0; k < json_array_size(lrs); k++) {
            double want = json_number_value(json_array_get(lrs, k)), got = qb_lr_at(&s, (int64_t)k);
            double d = fabs(got - want);
            if (d > worst) worst = d, at = k;
        }
        CHECK(&c, worst <= 1e-12 * s.base_lr, "%s total %lld warmup %lld: max |lr - torch| %.3g at step %zu", kind,
              (long long)s.total_steps, (long long)s.warmup_steps, worst, at);
    }
    qb_lr_kind k;
    CHECK(&c, qb_lr_kind_parse("cosine_with_restarts", &k, &err) != 0 && strstr(err.msg, "'cosine_with_restarts'"),
          "unknown scheduler named: %s", err.msg);
    json_decref(root);
    return qb_check_finish(&c, "lr schedule vs transformers");
}
