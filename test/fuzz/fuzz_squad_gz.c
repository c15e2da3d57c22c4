/* fuzz_squad_gz.c: the SQuAD reader on .json.gz files: first byte bit 0 skips bad examples; bit 1 writes the rest as
 * it is (arbitrary gzip streams), otherwise gzip-compresses it first (the JSON reader behind the gzip layer). */
#define FUZZ_SQUAD_GZ
#include <zlib.h>
#include "fuzz_squad.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 2) return fuzz_squad_check(fuzz_write("train.json.gz", data + 1, size - 1), data[0] & 1);
    char path[600];
    snprintf(path, sizeof path, "%s/train.json.gz", fuzz_dir());
    gzFile gz = gzopen(path, "wb1");
    if (!gz) return 0;
    int ok = size == 1 || gzwrite(gz, data + 1, (unsigned)(size - 1)) == (int)(size - 1);
    if (gzclose(gz) != Z_OK || !ok) return 0;
    return fuzz_squad_check(path, data[0] & 1);
}
