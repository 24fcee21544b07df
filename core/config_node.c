/* SPDX-License-Identifier: Apache-2.0 */
/* Read access to config nodes (the api table's config functions) and scalar parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "error.h"

int
berth__node_kind(const berth_config_node_t *n)
{
    return n ? n->kind : BERTH_CONFIG_NONE;
}

const berth_config_node_t *
berth__map_get(const berth_config_node_t *map, const char *key)
{
    if (map == NULL || map->kind != BERTH_CONFIG_MAP || key == NULL)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

size_t
berth__map_size(const berth_config_node_t *map)
{
    return map && map->kind == BERTH_CONFIG_MAP ? map->n : 0;
}

const char *
berth__map_key_at(const berth_config_node_t *map, size_t i)
{
    return i < berth__map_size(map) ? map->keys[i] : NULL;
}

const berth_config_node_t *
berth__map_value_at(const berth_config_node_t *map, size_t i)
{
    return i < berth__map_size(map) ? map->items[i] : NULL;
}

size_t
berth__list_size(const berth_config_node_t *list)
{
    return list && list->kind == BERTH_CONFIG_LIST ? list->n : 0;
}

const berth_config_node_t *
berth__list_at(const berth_config_node_t *list, size_t i)
{
    return i < berth__list_size(list) ? list->items[i] : NULL;
}

const char *
berth__scalar(const berth_config_node_t *n)
{
    return n && n->kind == BERTH_CONFIG_SCALAR ? n->text : NULL;
}

const char *
berth__get_string(const berth_config_node_t *map, const char *key, const char *dflt)
{
    const char *s = berth__scalar(berth__map_get(map, key));
    return s ? s : dflt;
}

int
berth__parse_int(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && p[1] == 'o')
        base = 8, p += 2;
    else if (p[0] == '0' && p[1] != '\0')
        base = 8, p += 1;
    if (*p == '\0' || *p == '+' || *p == '-' || isspace((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, base);
    if (errno != 0 || *end != '\0' || v > (unsigned long long)INT64_MAX + (neg ? 1u : 0u))
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int
berth__parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; s && i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

static int
type_error(const berth_config_node_t *n, const char *key, const char *want, berth_error_t **err)
{
    return berth__error_make(err, BERTH_EINVAL, "%s:%d:%d: %s: expected %s, got \"%s\"", n->file,
                             n->line, n->col, key, want,
                             n->kind == BERTH_CONFIG_SCALAR ? n->text : "a list or map");
}

int
berth__get_int(const berth_config_node_t *map, const char *key, int64_t dflt, int64_t *out,
               berth_error_t **err)
{
    const berth_config_node_t *n = berth__map_get(map, key);
    if (n == NULL) {
        *out = dflt;
        return 0;
    }
    if (n->kind != BERTH_CONFIG_SCALAR || berth__parse_int(n->text, out) < 0)
        return type_error(n, key, "an integer", err);
    return 0;
}

int
berth__get_bool(const berth_config_node_t *map, const char *key, int dflt, int *out,
                berth_error_t **err)
{
    const berth_config_node_t *n = berth__map_get(map, key);
    if (n == NULL) {
        *out = dflt;
        return 0;
    }
    if (n->kind != BERTH_CONFIG_SCALAR || berth__parse_bool(n->text, out) < 0)
        return type_error(n, key, "true or false", err);
    return 0;
}
