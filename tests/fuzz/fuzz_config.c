/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: any bytes as a berthd config, then --set, plugin sections and emit. Never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "log.h"

static const berth_config_field_t schema[] = {
    {"name", BERTH_CFG_STRING, "x", ""}, {"count", BERTH_CFG_INT, "1", ""},
    {"on", BERTH_CFG_BOOL, "true", ""},  {"list", BERTH_CFG_LIST, "[]", ""},
    {"map", BERTH_CFG_MAP, "{}", ""},    {NULL, 0, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    berth__log_setup(BERTH_LOG_ERROR, 0);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    berth__config_t cfg;
    berth_error_t *err = NULL;
    if (berth__config_load_string(&cfg, "fuzz", text, &err) == 0) {
        const char *known[] = {"a.b.c.d", "io.x.v1.p", NULL};
        berth__config_set(&cfg, "plugins.io.x.v1.p.name=y", &err);
        berth__error_free(err);
        err = NULL;
        berth__config_resolve_plugin_sets(&cfg, known, &err);
        berth__error_free(err);
        err = NULL;
        berth__config_check_plugin_uris(&cfg, known, &err);
        berth__error_free(err);
        err = NULL;
        const berth_config_node_t *section;
        berth__config_plugin_section(&cfg, "io.x.v1.p", schema, &section, &err);
        FILE *null = fopen("/dev/null", "w");
        berth__config_emit(null, cfg.tree);
        fclose(null);
        berth__config_free(&cfg);
    }
    berth__error_free(err);
    free(text);
    return 0;
}
