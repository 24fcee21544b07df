/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: each input line as a containerd filter, parsed and matched. Never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filters.h"

static const char *
field(void *object, const char *const *path, int npath)
{
    return npath == 1 && strcmp(path[0], "topic") == 0 ? "/tasks/exit" : npath == 2 ? "" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *lines[8] = {0};
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 7;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    filters_t *f = NULL;
    char msg[512];
    if (filters_parse(lines, &f, msg, sizeof(msg)) == 0) {
        filters_match(f, field, NULL);
        filters_free(f);
    }
    free(text);
    return 0;
}
