/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd's configuration: a YAML document parsed with libyaml into a tree of berth_config_node_t, validated
 * against the top-level schema and, per plugin, against the schema the plugin registered. Every error
 * names file, line, column and the key path: "/etc/berth/berthd.yaml:3:1: log_levle: unknown key".
 *
 * Top-level keys (defaults in config/berthd.yaml, which is compiled in):
 *   version (1), root, state, module_dirs, disabled, required, log_level, log_format, thread_pool_size,
 *   plugins (a map keyed by full plugin URI, each value a map handed to that plugin).
 */
#ifndef BERTH_CORE_CONFIG_H
#define BERTH_CORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include <berth/config.h>
#include <berth/error.h>

struct berth_config_node_s {
    int kind;   /* enum berth_config_kind */
    char *text; /* scalars: the text */
    int quoted; /* scalars: was quoted in the source (kept quoted by emit) */
    size_t n;   /* lists and maps: number of items */
    struct berth_config_node_s **items; /* list items, or map values */
    char **keys;                        /* maps: keys, parallel to items; source order kept */
    int *key_line, *key_col;            /* maps: where each key was written */
    const char *file;                   /* source name (interned, lives as long as the config) */
    int line, col;                      /* 1-based position in that source */
};

typedef struct berth__config {
    berth_config_node_t *tree; /* the whole document, a map; owned */
    char *file;                /* path it was read from, or "<built-in>" */
    char **sources;            /* interned source names nodes point at; owned */
    /* typed top-level values, kept in step with the tree */
    int version;
    char *root;
    char *state;
    char **module_dirs;         /* NULL-terminated */
    char **disabled;            /* NULL-terminated plugin URIs */
    char **required;            /* NULL-terminated plugin URIs */
    int log_level;              /* enum berth_log_level */
    int log_format;             /* enum berth__log_format */
    int thread_pool_size;       /* 0 = automatic (4 x cores, at least 4) */
    char **pending_plugin_sets; /* `--set plugins.…` waiting for the plugin URIs to be known */
} berth__config_t;

/* The compiled-in config/berthd.yaml. */
extern const char berth__default_config_yaml[];

/* Parses `path` (NULL: the built-in default) into *cfg and validates the top level. On error *cfg is left
 * empty (safe to free) and *err names file:line:col and key. */
int berth__config_load(berth__config_t *cfg, const char *path, berth_error_t **err);
/* Same, from text in memory; `name` is what error messages call it. */
int berth__config_load_string(berth__config_t *cfg, const char *name, const char *text,
                              berth_error_t **err);

/* Applies one "--set key.path=value" (value is YAML: a scalar, [a, b] or {k: v}). Keys under `plugins.`
 * are kept until berth__config_resolve_plugin_sets knows the plugin URIs; the rest apply now and the top
 * level is re-validated. */
int berth__config_set(berth__config_t *cfg, const char *assignment, berth_error_t **err);
/* Applies the pending plugin assignments. The URI inside the path is either quoted
 * (plugins."io.containerd.event.v1.exchange".key=v) or the longest known URI that matches. */
int berth__config_resolve_plugin_sets(berth__config_t *cfg, const char *const *known_uris,
                                      berth_error_t **err);

/* Rejects disabled/required entries and plugin sections that are not full URIs (type.id with at least four
 * dot-separated parts), and plugin sections naming no known plugin. */
int berth__config_check_plugin_uris(berth__config_t *cfg, const char *const *known_uris,
                                    berth_error_t **err);

/* Validates the plugin's section against its schema (unknown keys and wrong types are errors), creates the
 * section when absent, fills in the schema's defaults and returns it (owned by cfg) through *out. */
int berth__config_plugin_section(berth__config_t *cfg, const char *uri,
                                 const berth_config_field_t *schema,
                                 const berth_config_node_t **out, berth_error_t **err);

/* Position of the plugin's section under `plugins:` (0-based), or INT32_MAX when it has none. */
int berth__config_plugin_position(const berth__config_t *cfg, const char *uri);

/* Writes `node` as block-style YAML (what `berthd config dump|default` print). */
void berth__config_emit(FILE *out, const berth_config_node_t *node);

void berth__config_free(berth__config_t *cfg);

/* Node accessors; the api table hands these to modules. A NULL node reads as absent. */
int berth__node_kind(const berth_config_node_t *n);
const berth_config_node_t *berth__map_get(const berth_config_node_t *map, const char *key);
size_t berth__map_size(const berth_config_node_t *map);
const char *berth__map_key_at(const berth_config_node_t *map, size_t i);
const berth_config_node_t *berth__map_value_at(const berth_config_node_t *map, size_t i);
size_t berth__list_size(const berth_config_node_t *list);
const berth_config_node_t *berth__list_at(const berth_config_node_t *list, size_t i);
const char *berth__scalar(const berth_config_node_t *n);
const char *berth__get_string(const berth_config_node_t *map, const char *key, const char *dflt);
int berth__get_int(const berth_config_node_t *map, const char *key, int64_t dflt, int64_t *out,
                   berth_error_t **err);
int berth__get_bool(const berth_config_node_t *map, const char *key, int dflt, int *out,
                    berth_error_t **err);

/* Scalar parsing shared by validation and getters: 0 on success, -1 if the text is not of that type. */
int berth__parse_int(const char *s, int64_t *out);
int berth__parse_bool(const char *s, int *out);

#endif
