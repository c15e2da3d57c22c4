/* test_json.c: JSON from checkpoints: integers of any size load (beyond 64 bits as reals), integers are read back
 * exactly or refused with the key, and reals are written as Python's json module writes them (fixture by
 * test/ref/gen_json_reals.py). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "check.h"
#include "fixture.h"

static json_t *parse(const char *text, qb_err *err) { return qb_json_loadb(text, strlen(text), "doc.json", err); }

static void reals_as_python(qb_check *c) {
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/base/fixtures/json_reals.json", &err);
    json_t *cases = json_object_get(root, "cases");
    if (!CHECK(c, json_array_size(cases) > 1000, "fixture: %s", err.msg)) return;
    size_t i, bad = 0;
    json_t *item;
    json_array_foreach(cases, i, item) {
        uint64_t bits = strtoull(json_string_value(json_array_get(item, 0)), NULL, 16);
        const char *want = json_string_value(json_array_get(item, 1));
        double x;
        memcpy(&x, &bits, sizeof x);
        char got[40];
        qb_json_real_str(x, got, sizeof got);
        if (strcmp(got, want) != 0 && bad++ < 5) CHECK(c, false, "%016" PRIx64 ": %s, Python writes %s", bits, got, want);
    }
    CHECK(c, bad == 0, "%zu reals written as Python writes them (%zu differ)", json_array_size(cases), bad);
    json_decref(root);
}

static void dumps(qb_check *c) {
    json_t *doc = json_pack("{s:f, s:f, s:f, s:f, s:i, s:s, s:[f, f, {s:f}]}", "a", 0.1, "b", 1e-12, "c", 0.012345678901234568,
                            "d", 512.0, "e", -7, "s\"1.5\"", "1.5 0.10000000000000001 \\\" 2e5", "list", 1e30, -0.25, "x", 1e-5);
    char *text = qb_json_dumps_shortest(doc, JSON_COMPACT | JSON_SORT_KEYS);
    const char *want = "{\"a\":0.1,\"b\":1e-12,\"c\":0.012345678901234568,\"d\":512.0,\"e\":-7,\"list\":[1e+30,-0.25,{\"x\":1e-05}],"
                       "\"s\\\"1.5\\\"\":\"1.5 0.10000000000000001 \\\\\\\" 2e5\"}";
    CHECK(c, text && strcmp(text, want) == 0, "dumps: %s\n     want %s", text ? text : "(null)", want);
    qb_err err = {0};
    json_t *back = text ? parse(text, &err) : NULL;
    CHECK(c, back && json_equal(doc, back), "dumps reads back equal: %s", err.msg);
    free(text);
    json_decref(back);
    json_decref(doc);
}

static void integers(qb_check *c) {
    qb_err err = {0};
    json_t *doc = parse("{\"big\": 1000000000000000019884624838656, \"n\": 12, \"r\": 12.0, \"f\": 1.5, \"s\": \"7\", "
                        "\"exact\": 9007199254740991, \"inexact\": 9007199254740993, \"neg\": -5}", &err);
    if (!CHECK(c, doc != NULL, "an integer beyond 64 bits loads: %s", err.msg)) return;
    CHECK(c, json_is_real(json_object_get(doc, "big")) && json_real_value(json_object_get(doc, "big")) == 1e30, "it is read as 1e30");
    int64_t v = 0;
    CHECK(c, qb_json_int(json_object_get(doc, "n"), 0, 100, &v, "doc.json", "n", &err) == 0 && v == 12, "12 (as a real) reads as 12");
    CHECK(c, qb_json_int(json_object_get(doc, "r"), 0, 100, &v, "doc.json", "r", &err) == 0 && v == 12, "12.0 reads as 12");
    CHECK(c, qb_json_int(json_object_get(doc, "exact"), 0, INT64_MAX, &v, "doc.json", "exact", &err) == 0 && v == 9007199254740991,
          "2^53 - 1 is exact");
    struct { const char *key, *want; int64_t lo, hi; } bad[] = {
        {"f", "doc.json: key f: 1.5 is not an integer", 0, 100},
        {"s", "doc.json: key s: expected an integer", 0, 100},
        {"big", "doc.json: key big: 1e+30 is outside [0, 9223372036854775807]", 0, INT64_MAX},
        {"inexact", "doc.json: key inexact: 9007199254740992.0 is not exact", 0, INT64_MAX},
        {"neg", "doc.json: key neg: -5.0 is outside [0, 100]", 0, 100},
        {"missing", "doc.json: key missing: expected an integer", 0, 100},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qb_err_clear(&err);
        CHECK(c, qb_json_int(json_object_get(doc, bad[i].key), bad[i].lo, bad[i].hi, &v, "doc.json", bad[i].key, &err) != 0 &&
                     strstr(err.msg, bad[i].want),
              "%s: got \"%s\", want \"%s\"", bad[i].key, err.msg, bad[i].want);
    }
    qb_json_integers_back(doc);
    CHECK(c, json_is_integer(json_object_get(doc, "n")) && json_is_integer(json_object_get(doc, "r")) &&
                 json_is_real(json_object_get(doc, "big")) && json_is_real(json_object_get(doc, "f")),
          "integral reals up to 2^53 become integers again");
    json_decref(doc);

    /* without an integer beyond 64 bits, integers stay exact to 64 bits */
    qb_err_clear(&err);
    doc = parse("{\"seed\": 9223372036854775807}", &err);
    CHECK(c, doc && qb_json_int(json_object_get(doc, "seed"), 0, INT64_MAX, &v, "doc.json", "seed", &err) == 0 && v == INT64_MAX,
          "2^63 - 1 is exact: %s", err.msg);
    json_decref(doc);
    qb_err_clear(&err);
    CHECK(c, parse("{\"x\": 1e999}", &err) == NULL && strstr(err.msg, "doc.json: line 1 column"), "a real overflow names the place: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, parse("{\"x\": 1", &err) == NULL && strstr(err.msg, "doc.json: line 1"), "malformed JSON names the place: %s", err.msg);
}

int main(void) {
    qb_check c = {0};
    reals_as_python(&c);
    dumps(&c);
    integers(&c);
    return qb_check_finish(&c, "base json");
}
