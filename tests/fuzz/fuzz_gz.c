/* tests/fuzz/fuzz_gz.c -- the JSONL reader: the input is a .jsonl or
 * .jsonl.gz file (zlib reads both) read line by line with rlaif_gz_getline,
 * each line parsed as JSON the way data.lua's records are. A corrupt or
 * truncated gzip stream must be an error, never a read past a line. */
#include <cJSON.h>

#include "fuzz.h"
#include "gz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("d.jsonl.gz", data, size);
    rlaif_gz *g = NULL;
    if (rlaif_gz_open(&g, path) != RLAIF_OK) return 0;
    for (int i = 0; i < 100000; i++) {
        const char *line;
        size_t len;
        int nl;
        if (rlaif_gz_getline(g, &line, &len, &nl) != RLAIF_OK || line == NULL) break;
        FUZZ_ASSERT(rlaif_gz_lineno(g) == i + 1);
        cJSON *j = cJSON_ParseWithLength(line, len);
        cJSON_Delete(j);
    }
    rlaif_gz_close(g);
    return 0;
}
