/* SPDX-License-Identifier: Apache-2.0 */
/* berth_kv_t: a small ordered string map (labels, hook options, exports). */
#ifndef BERTH_CORE_KV_H
#define BERTH_CORE_KV_H

#include <stddef.h>

#include <berth/hooks.h>

struct berth_kv_s {
    size_t n, cap;
    char **keys;
    char **values;
};

berth_kv_t *berth__kv_new(void);
void berth__kv_free(berth_kv_t *kv);
int berth__kv_set(berth_kv_t *kv, const char *key, const char *value);
int berth__kv_unset(berth_kv_t *kv, const char *key);
const char *berth__kv_get(const berth_kv_t *kv, const char *key);
size_t berth__kv_size(const berth_kv_t *kv);
const char *berth__kv_key_at(const berth_kv_t *kv, size_t i);
const char *berth__kv_value_at(const berth_kv_t *kv, size_t i);

#endif
