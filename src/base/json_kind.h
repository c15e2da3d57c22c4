/* json_kind.h: the name of a JSON value's type for messages ("expected a string, got an integer"). Header-only, so
 * the base layer does not link jansson. */
#pragma once
#include <jansson.h>

/* "an object", "an array", "a string", "an integer", "a number", "true", "false", "null" (or "nothing" for NULL). */
static inline const char *qb_json_kind(const json_t *v) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}
