/* SPDX-License-Identifier: Apache-2.0 */
#include "kv.h"

#include <string.h>

#include <berth/error.h>

#include "util.h"

berth_kv_t *
berth__kv_new(void)
{
    return berth__xcalloc(1, sizeof(berth_kv_t));
}

void
berth__kv_free(berth_kv_t *kv)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->keys[i]);
        free(kv->values[i]);
    }
    free(kv->keys);
    free(kv->values);
    free(kv);
}

static ssize_t
kv_find(const berth_kv_t *kv, const char *key)
{
    for (size_t i = 0; kv && i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

int
berth__kv_set(berth_kv_t *kv, const char *key, const char *value)
{
    if (kv == NULL || key == NULL || value == NULL)
        return BERTH_EINVAL;
    ssize_t i = kv_find(kv, key);
    if (i >= 0) {
        free(kv->values[i]);
        kv->values[i] = berth__xstrdup(value);
        return 0;
    }
    if (kv->n == kv->cap) {
        kv->cap = kv->cap ? kv->cap * 2 : 8;
        kv->keys = berth__xrealloc(kv->keys, kv->cap * sizeof(char *));
        kv->values = berth__xrealloc(kv->values, kv->cap * sizeof(char *));
    }
    kv->keys[kv->n] = berth__xstrdup(key);
    kv->values[kv->n] = berth__xstrdup(value);
    kv->n++;
    return 0;
}

int
berth__kv_unset(berth_kv_t *kv, const char *key)
{
    ssize_t i = kv_find(kv, key);
    if (i < 0)
        return BERTH_ENOTFOUND;
    free(kv->keys[i]);
    free(kv->values[i]);
    memmove(&kv->keys[i], &kv->keys[i + 1], (kv->n - (size_t)i - 1) * sizeof(char *));
    memmove(&kv->values[i], &kv->values[i + 1], (kv->n - (size_t)i - 1) * sizeof(char *));
    kv->n--;
    return 0;
}

const char *
berth__kv_get(const berth_kv_t *kv, const char *key)
{
    ssize_t i = kv_find(kv, key);
    return i < 0 ? NULL : kv->values[i];
}

size_t
berth__kv_size(const berth_kv_t *kv)
{
    return kv ? kv->n : 0;
}

const char *
berth__kv_key_at(const berth_kv_t *kv, size_t i)
{
    return kv && i < kv->n ? kv->keys[i] : NULL;
}

const char *
berth__kv_value_at(const berth_kv_t *kv, size_t i)
{
    return kv && i < kv->n ? kv->values[i] : NULL;
}
