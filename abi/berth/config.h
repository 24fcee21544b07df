/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read-only access to a plugin's configuration subtree.
 *
 * Each plugin declares a schema (berth_config_field_t[]); the core validates the plugin's YAML section against
 * it before init (unknown keys and wrong types are errors naming file, line, column and key), fills in the
 * defaults, and hands the plugin the resulting map node through its InitContext. Nodes are opaque and owned by
 * the core; they stay valid until the plugin's fini returns. No libyaml type crosses this boundary.
 *
 * Accessors live in the core table (module.h): node_kind, map_get, map_size, map_key_at, map_value_at,
 * list_size, list_at, scalar, and the typed getters get_string, get_int, get_bool, which take a default
 * used when the key is absent.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_config_node_s berth_config_node_t;

enum berth_config_kind {
    BERTH_CONFIG_NONE = 0,   /* absent (a NULL node) */
    BERTH_CONFIG_SCALAR = 1, /* text; typed getters parse it */
    BERTH_CONFIG_LIST = 2,
    BERTH_CONFIG_MAP = 3
};

/* What a schema field accepts. */
enum berth_config_type {
    BERTH_CFG_STRING = 1, /* any scalar */
    BERTH_CFG_INT = 2,    /* integer: decimal, 0x hex or 0-prefixed octal ("0660") */
    BERTH_CFG_BOOL = 3,   /* true/false (also yes/no, on/off) */
    BERTH_CFG_LIST = 4,   /* list of scalars */
    BERTH_CFG_MAP = 5,    /* free-form map; its keys are not checked */
    BERTH_CFG_ANY = 6     /* anything; the plugin validates it */
};

/* One schema entry. An array of them ends with an entry whose key is NULL. */
typedef struct berth_config_field_s {
    const char *key;          /* top-level key inside the plugin's section */
    int type;                 /* enum berth_config_type */
    const char *default_yaml; /* default as YAML text ("0660", "[]", "true"); NULL = no default */
    const char *doc;          /* one line for `berthd config default` and docs/configuration.md */
} berth_config_field_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_CONFIG_H */
