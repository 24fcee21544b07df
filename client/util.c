/* SPDX-License-Identifier: Apache-2.0 */
/* Small conversions the wrappers share: strings, timestamps, label maps. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *
bc_strdup(const char *s)
{
    return strdup(s ? s : "");
}

int64_t
bc_ts_ns(const Google__Protobuf__Timestamp *ts)
{
    return ts ? ts->seconds * 1000000000 + ts->nanos : 0;
}

/* Every protobuf-c map<string,string> entry has this layout: the message header, then key and value. */
typedef struct map_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} map_entry_t;

int
bc_kv_from_map(void **entries, size_t n, berth_kv_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    berth_kv_t *kv = calloc(n, sizeof(*kv));
    if (kv == NULL)
        return BERTH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const map_entry_t *e = entries[i];
        kv[i].key = bc_strdup(e->key);
        kv[i].value = bc_strdup(e->value);
        if (kv[i].key == NULL || kv[i].value == NULL) {
            berth_kv_free(kv, i + 1);
            return BERTH_ENOMEM;
        }
    }
    *out = kv;
    *n_out = n;
    return 0;
}

const char *
bc_kv_get(const berth_kv_t *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

void **
bc_map_from_kv(const ProtobufCMessageDescriptor *entry_desc, const berth_kv_t *kv, size_t n)
{
    if (n == 0 || entry_desc->sizeof_message != sizeof(map_entry_t))
        return NULL;
    /* the pointer array and the entries in one block: one free() */
    void **ptrs = malloc(n * (sizeof(void *) + sizeof(map_entry_t)));
    if (ptrs == NULL)
        return NULL;
    map_entry_t *e = (map_entry_t *)(ptrs + n);
    for (size_t i = 0; i < n; i++) {
        protobuf_c_message_init(entry_desc, &e[i]);
        e[i].key = kv[i].key ? kv[i].key : "";
        e[i].value = kv[i].value ? kv[i].value : "";
        ptrs[i] = &e[i];
    }
    return ptrs;
}
