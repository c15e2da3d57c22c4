/* fuzz_ini.c: qat-train's run configuration: an arbitrary INI file (the input up to its first NUL) and section.key=value
 * overrides (the lines after it), then the checks of the task; a configuration that passes is printed. */
#include <stdio.h>
#include <string.h>
#include "fuzz_common.h"
#include "qat_config.h"

#define MAX_OVERRIDES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t file_len = nul ? (size_t)(nul - data) : size;
    const char *path = fuzz_write("run.ini", data, file_len);
    if (!path) return 0;
    char text[4096], *argv[MAX_OVERRIDES];
    int argc = 0;
    if (nul) {
        size_t n = size - file_len - 1 < sizeof text - 1 ? size - file_len - 1 : sizeof text - 1;
        memcpy(text, nul + 1, n);
        text[n] = '\0';
        for (char *line = strtok(text, "\n"); line && argc < MAX_OVERRIDES; line = strtok(NULL, "\n")) argv[argc++] = line;
    }
    qat_config c;
    qat_config_defaults(&c);
    qat_config_source src = {.path = path, .argc = argc, .argv = argv};
    qb_err err = {0};
    if (qat_config_load(&c, &src, &err) || qat_config_validate(&c, &src, &err)) return 0;
    static FILE *null;
    if (!null) null = fopen("/dev/null", "w");
    if (null) qat_config_print(&c, null);
    return 0;
}
