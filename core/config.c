/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config: YAML parsed with libyaml's event API into berth_config_node_t trees that remember where every
 * node came from, so every error can name file, line, column and key. See config.h for the contract.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "error.h"
#include "log.h"
#include "util.h"

#define MAX_DEPTH 64
#define MAX_DOCUMENT (4u << 20)

/* ---- nodes ---------------------------------------------------------------------------------------- */

static berth_config_node_t *
node_new(int kind, const char *file, int line, int col)
{
    berth_config_node_t *n = berth__xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    return n;
}

static berth_config_node_t *
scalar_new(const char *text, const char *file, int line, int col)
{
    berth_config_node_t *n = node_new(BERTH_CONFIG_SCALAR, file, line, col);
    n->text = berth__xstrdup(text);
    return n;
}

static void
node_free(berth_config_node_t *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++) {
        node_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_line);
    free(n->key_col);
    free(n->text);
    free(n);
}

static void
list_append(berth_config_node_t *list, berth_config_node_t *item)
{
    list->items = berth__xrealloc(list->items, (list->n + 1) * sizeof(*list->items));
    list->items[list->n++] = item;
}

static void
map_append(berth_config_node_t *map, const char *key, int line, int col, berth_config_node_t *value)
{
    size_t n = map->n + 1;
    map->keys = berth__xrealloc(map->keys, n * sizeof(*map->keys));
    map->key_line = berth__xrealloc(map->key_line, n * sizeof(int));
    map->key_col = berth__xrealloc(map->key_col, n * sizeof(int));
    map->keys[map->n] = berth__xstrdup(key);
    map->key_line[map->n] = line;
    map->key_col[map->n] = col;
    list_append(map, value);
}

static ssize_t
map_index(const berth_config_node_t *map, const char *key)
{
    for (size_t i = 0; map && map->kind == BERTH_CONFIG_MAP && i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

/* Replaces or appends map[key] = value (value owned by the map afterwards). */
static void
map_put(berth_config_node_t *map, const char *key, berth_config_node_t *value)
{
    ssize_t i = map_index(map, key);
    if (i >= 0) {
        node_free(map->items[i]);
        map->items[i] = value;
        return;
    }
    map_append(map, key, value->line, value->col, value);
}

static int
is_null(const berth_config_node_t *n)
{
    return n->kind == BERTH_CONFIG_SCALAR && !n->quoted &&
           (n->text[0] == '\0' || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0);
}

/* A null value where a map or list is expected becomes an empty one. */
static void
null_to(berth_config_node_t *n, int kind)
{
    if (!is_null(n))
        return;
    free(n->text);
    n->text = NULL;
    n->kind = kind;
}

/* ---- parsing -------------------------------------------------------------------------------------- */

typedef struct parser {
    yaml_parser_t yp;
    const char *file;
    berth_error_t **err;
} parser_t;

static int
mark_error(parser_t *p, yaml_mark_t m, const char *what)
{
    return berth__error_make(p->err, BERTH_EINVAL, "%s:%zu:%zu: %s", p->file, m.line + 1,
                             m.column + 1, what);
}

static int
next_event(parser_t *p, yaml_event_t *ev)
{
    if (yaml_parser_parse(&p->yp, ev))
        return 0;
    const char *ctx = p->yp.context ? p->yp.context : "";
    return berth__error_make(p->err, BERTH_EINVAL, "%s:%zu:%zu: %s%s%s", p->file,
                             p->yp.problem_mark.line + 1, p->yp.problem_mark.column + 1,
                             p->yp.problem ? p->yp.problem : "YAML syntax error", ctx[0] ? " " : "",
                             ctx);
}

static int parse_node(parser_t *p, yaml_event_t *ev, int depth, berth_config_node_t **out);

static int
parse_children(parser_t *p, berth_config_node_t *n, yaml_event_type_t end, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(p, &ev) < 0)
            return -1;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return 0;
        }
        berth_config_node_t *child = NULL;
        if (n->kind == BERTH_CONFIG_LIST) {
            if (parse_node(p, &ev, depth + 1, &child) < 0) {
                node_free(child); /* a partly built child is not in the tree yet */
                return -1;
            }
            list_append(n, child);
            continue;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            int rc = mark_error(p, ev.start_mark, "map keys must be plain strings");
            yaml_event_delete(&ev);
            return rc;
        }
        cleanup_free char *key = berth__xstrdup((const char *)ev.data.scalar.value);
        int kl = (int)ev.start_mark.line + 1, kc = (int)ev.start_mark.column + 1;
        if (map_index(n, key) >= 0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "%.200s: duplicate key", key);
            int rc = mark_error(p, ev.start_mark, msg);
            yaml_event_delete(&ev);
            return rc;
        }
        yaml_event_delete(&ev);
        if (next_event(p, &ev) < 0)
            return -1;
        if (parse_node(p, &ev, depth + 1, &child) < 0) {
            node_free(child);
            return -1;
        }
        map_append(n, key, kl, kc, child);
    }
}

/* Builds the node that starts with *ev (consumed). */
static int
parse_node(parser_t *p, yaml_event_t *ev, int depth, berth_config_node_t **out)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    yaml_mark_t mark = ev->start_mark;
    int rc = 0;
    const yaml_char_t *anchor =
        ev->type == YAML_SCALAR_EVENT           ? ev->data.scalar.anchor
        : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
        : ev->type == YAML_MAPPING_START_EVENT  ? ev->data.mapping_start.anchor
                                                : NULL;
    if (depth > MAX_DEPTH)
        rc = mark_error(p, mark, "nesting deeper than 64 levels");
    else if (ev->type == YAML_ALIAS_EVENT || anchor != NULL)
        rc = mark_error(p, mark, "anchors and aliases are not supported");
    if (rc < 0) {
        yaml_event_delete(ev);
        return rc;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        *out = scalar_new((const char *)ev->data.scalar.value, p->file, line, col);
        (*out)->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        yaml_event_delete(ev);
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int list = ev->type == YAML_SEQUENCE_START_EVENT;
        yaml_event_delete(ev);
        *out = node_new(list ? BERTH_CONFIG_LIST : BERTH_CONFIG_MAP, p->file, line, col);
        return parse_children(p, *out, list ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT,
                              depth);
    }
    default:
        yaml_event_delete(ev);
        return mark_error(p, mark, "unexpected YAML event");
    }
}

/* Parses one YAML document; an empty stream gives NULL. */
static int
parse_document(parser_t *p, berth_config_node_t **out)
{
    yaml_event_t ev;
    *out = NULL;
    if (next_event(p, &ev) < 0) /* STREAM_START */
        return -1;
    yaml_event_delete(&ev);
    if (next_event(p, &ev) < 0)
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(p, &ev) < 0 || parse_node(p, &ev, 0, out) < 0)
        return -1;
    if (next_event(p, &ev) < 0) /* DOCUMENT_END */
        return -1;
    yaml_event_delete(&ev);
    if (next_event(p, &ev) < 0)
        return -1;
    int rc = 0;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = mark_error(p, ev.start_mark, "only one YAML document is allowed");
    yaml_event_delete(&ev);
    return rc;
}

static int
parse_text(const char *file, const char *text, size_t len, berth_config_node_t **out,
           berth_error_t **err)
{
    if (len > MAX_DOCUMENT)
        return berth__error_make(err, BERTH_EINVAL, "%s: larger than %u bytes", file, MAX_DOCUMENT);
    parser_t p = {.file = file, .err = err};
    yaml_parser_initialize(&p.yp);
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)text, len);
    int rc = parse_document(&p, out);
    yaml_parser_delete(&p.yp);
    if (rc < 0) {
        node_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- the top level -------------------------------------------------------------------------------- */

static const struct top_key {
    const char *key;
    int type;
    const char *dflt;
} top_keys[] = {
    {"version", BERTH_CFG_INT, "1"},           {"root", BERTH_CFG_STRING, "/var/lib/berth"},
    {"state", BERTH_CFG_STRING, "/run/berth"}, {"module_dirs", BERTH_CFG_LIST, "[]"},
    {"disabled", BERTH_CFG_LIST, "[]"},        {"required", BERTH_CFG_LIST, "[]"},
    {"log_level", BERTH_CFG_STRING, "info"},   {"log_format", BERTH_CFG_STRING, "logfmt"},
    {"thread_pool_size", BERTH_CFG_INT, "0"},  {"plugins", BERTH_CFG_MAP, "{}"},
};

static const char *
intern(berth__config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg->sources && cfg->sources[i]; i++)
        if (strcmp(cfg->sources[i], name) == 0)
            return cfg->sources[i];
    berth__strv_push(&cfg->sources, name);
    return cfg->sources[berth__strv_len((const char *const *)cfg->sources) - 1];
}

static berth_config_node_t *
default_node(const char *yaml)
{
    berth_config_node_t *n = NULL;
    if (parse_text("<default>", yaml, strlen(yaml), &n, NULL) < 0 || n == NULL)
        n = scalar_new("", "<default>", 1, 1);
    return n;
}

/* "known: a, b, c" for unknown-key errors. */
static char *
known_keys(const char *const *keys, size_t stride, size_t n)
{
    char *out = berth__xstrdup("");
    for (size_t i = 0; i < n; i++) {
        const char *k = *(const char *const *)((const char *)keys + i * stride);
        char *t = berth__xasprintf("%s%s%s", out, i ? ", " : "", k);
        free(out);
        out = t;
    }
    return out;
}

static int node_error(const berth_config_node_t *n, const char *path, berth_error_t **err,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
node_error(const berth_config_node_t *n, const char *path, berth_error_t **err, const char *fmt,
           ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = berth__xvasprintf(fmt, ap);
    va_end(ap);
    int rc = berth__error_make(err, BERTH_EINVAL, "%s:%d:%d: %s: %s", n->file, n->line, n->col,
                               path, what);
    free(what);
    return rc;
}

static int
key_error(const berth_config_node_t *map, size_t i, const char *path, berth_error_t **err,
          const char *what)
{
    return berth__error_make(err, BERTH_EINVAL, "%s:%d:%d: %s: %s", map->file, map->key_line[i],
                             map->key_col[i], path, what);
}

/* Checks one value against a schema type; path names it in errors. */
static int
check_type(berth_config_node_t *n, int type, const char *path, berth_error_t **err)
{
    int64_t i;
    int b;
    switch (type) {
    case BERTH_CFG_STRING:
        if (n->kind != BERTH_CONFIG_SCALAR)
            return node_error(n, path, err, "expected a string, got a %s",
                              n->kind == BERTH_CONFIG_MAP ? "map" : "list");
        return 0;
    case BERTH_CFG_INT:
        if (n->kind != BERTH_CONFIG_SCALAR || berth__parse_int(n->text, &i) < 0)
            return node_error(n, path, err, "expected an integer, got \"%s\"",
                              n->kind == BERTH_CONFIG_SCALAR ? n->text : "a list or map");
        return 0;
    case BERTH_CFG_BOOL:
        if (n->kind != BERTH_CONFIG_SCALAR || berth__parse_bool(n->text, &b) < 0)
            return node_error(n, path, err, "expected true or false, got \"%s\"",
                              n->kind == BERTH_CONFIG_SCALAR ? n->text : "a list or map");
        return 0;
    case BERTH_CFG_LIST:
        null_to(n, BERTH_CONFIG_LIST);
        if (n->kind != BERTH_CONFIG_LIST)
            return node_error(n, path, err, "expected a list");
        for (size_t k = 0; k < n->n; k++)
            if (n->items[k]->kind != BERTH_CONFIG_SCALAR)
                return node_error(n->items[k], path, err, "list items must be strings");
        return 0;
    case BERTH_CFG_MAP:
        null_to(n, BERTH_CONFIG_MAP);
        if (n->kind != BERTH_CONFIG_MAP)
            return node_error(n, path, err, "expected a map");
        return 0;
    default:
        return 0;
    }
}

static char **
list_strings(const berth_config_node_t *list)
{
    char **v = berth__xcalloc(list->n + 1, sizeof(char *));
    for (size_t i = 0; i < list->n; i++)
        v[i] = berth__xstrdup(list->items[i]->text);
    return v;
}

static void
clear_typed(berth__config_t *cfg)
{
    free(cfg->root);
    free(cfg->state);
    berth__strv_free(cfg->module_dirs);
    berth__strv_free(cfg->disabled);
    berth__strv_free(cfg->required);
    cfg->root = cfg->state = NULL;
    cfg->module_dirs = cfg->disabled = cfg->required = NULL;
}

static int
extract_typed(berth__config_t *cfg, berth_error_t **err)
{
    const berth_config_node_t *t = cfg->tree;
    int64_t v;
    berth__parse_int(berth__get_string(t, "version", "1"), &v);
    if (v != 1)
        return node_error(berth__map_get(t, "version"), "version", err,
                          "only version 1 is known, got %s", berth__get_string(t, "version", ""));
    cfg->version = 1;
    const char *dirs[] = {"root", "state"};
    for (size_t i = 0; i < 2; i++)
        if (berth__get_string(t, dirs[i], "")[0] != '/')
            return node_error(berth__map_get(t, dirs[i]), dirs[i], err,
                              "must be an absolute path, got \"%s\"",
                              berth__get_string(t, dirs[i], ""));
    cfg->log_level = berth__log_level_parse(berth__get_string(t, "log_level", ""));
    if (cfg->log_level < 0)
        return node_error(berth__map_get(t, "log_level"), "log_level", err,
                          "expected error, warn, info, debug or trace, got \"%s\"",
                          berth__get_string(t, "log_level", ""));
    cfg->log_format = berth__log_format_parse(berth__get_string(t, "log_format", ""));
    if (cfg->log_format < 0)
        return node_error(berth__map_get(t, "log_format"), "log_format", err,
                          "expected logfmt or journald, got \"%s\"",
                          berth__get_string(t, "log_format", ""));
    berth__parse_int(berth__get_string(t, "thread_pool_size", "0"), &v);
    if (v < 0 || v > 1024)
        return node_error(berth__map_get(t, "thread_pool_size"), "thread_pool_size", err,
                          "must be between 0 (automatic) and 1024, got %lld", (long long)v);
    cfg->thread_pool_size = (int)v;
    clear_typed(cfg);
    cfg->root = berth__xstrdup(berth__get_string(t, "root", ""));
    cfg->state = berth__xstrdup(berth__get_string(t, "state", ""));
    cfg->module_dirs = list_strings(berth__map_get(t, "module_dirs"));
    cfg->disabled = list_strings(berth__map_get(t, "disabled"));
    cfg->required = list_strings(berth__map_get(t, "required"));
    return 0;
}

/* Validates the top level, fills in defaults and puts the keys in schema order. */
static int
validate_top(berth__config_t *cfg, berth_error_t **err)
{
    berth_config_node_t *t = cfg->tree;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = 0;
        while (k < BERTH_ARRAY_LEN(top_keys) && strcmp(top_keys[k].key, t->keys[i]) != 0)
            k++;
        if (k == BERTH_ARRAY_LEN(top_keys)) {
            cleanup_free char *known =
                known_keys(&top_keys[0].key, sizeof(top_keys[0]), BERTH_ARRAY_LEN(top_keys));
            cleanup_free char *what = berth__xasprintf("unknown key (known: %s)", known);
            return key_error(t, i, t->keys[i], err, what);
        }
        if (check_type(t->items[i], top_keys[k].type, t->keys[i], err) < 0)
            return -1;
    }
    berth_config_node_t *plugins = (berth_config_node_t *)berth__map_get(t, "plugins");
    for (size_t i = 0; plugins && i < plugins->n; i++) {
        cleanup_free char *path = berth__xasprintf("plugins.%s", plugins->keys[i]);
        if (check_type(plugins->items[i], BERTH_CFG_MAP, path, err) < 0)
            return -1;
    }
    berth_config_node_t *sorted = node_new(BERTH_CONFIG_MAP, t->file, t->line, t->col);
    for (size_t k = 0; k < BERTH_ARRAY_LEN(top_keys); k++) {
        ssize_t i = map_index(t, top_keys[k].key);
        if (i >= 0) {
            map_append(sorted, t->keys[i], t->key_line[i], t->key_col[i], t->items[i]);
            t->items[i] = NULL;
        } else {
            map_append(sorted, top_keys[k].key, 1, 1, default_node(top_keys[k].dflt));
        }
    }
    node_free(t);
    cfg->tree = sorted;
    return extract_typed(cfg, err);
}

int
berth__config_load_string(berth__config_t *cfg, const char *name, const char *text,
                          berth_error_t **err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->file = berth__xstrdup(name);
    const char *file = intern(cfg, name);
    berth_config_node_t *root = NULL;
    if (parse_text(file, text, strlen(text), &root, err) < 0)
        goto fail;
    if (root == NULL)
        root = node_new(BERTH_CONFIG_MAP, file, 1, 1);
    null_to(root, BERTH_CONFIG_MAP);
    cfg->tree = root;
    if (root->kind != BERTH_CONFIG_MAP) {
        node_error(root, "(document)", err, "the config must be a map of keys");
        goto fail;
    }
    if (validate_top(cfg, err) < 0)
        goto fail;
    return 0;
fail:
    berth__config_free(cfg);
    return -1;
}

int
berth__config_load(berth__config_t *cfg, const char *path, berth_error_t **err)
{
    memset(cfg, 0, sizeof(*cfg));
    if (path == NULL)
        return berth__config_load_string(cfg, "<built-in>", berth__default_config_yaml, err);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return berth__error_make(err, berth__error_from_errno(errno), "open config %s: %s", path,
                                 strerror(errno));
    if (!S_ISREG(st.st_mode))
        return berth__error_make(err, BERTH_EINVAL, "config %s: not a regular file", path);
    if ((size_t)st.st_size > MAX_DOCUMENT)
        return berth__error_make(err, BERTH_EINVAL, "config %s: larger than %u bytes", path,
                                 MAX_DOCUMENT);
    cleanup_free char *text = berth__xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    text[got] = '\0';
    return berth__config_load_string(cfg, path, text, err);
}

/* ---- --set ---------------------------------------------------------------------------------------- */

/* Sets value at a dot path below map (creating maps); path components must be non-empty. */
static int
set_path(berth_config_node_t *map, const char *path, const char *shown, berth_config_node_t *value,
         berth_error_t **err)
{
    cleanup_free char *copy = berth__xstrdup(path);
    char *save = NULL;
    char *part = strtok_r(copy, ".", &save);
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        if (next == NULL) {
            map_put(map, part, value);
            return 0;
        }
        ssize_t i = map_index(map, part);
        if (i < 0) {
            map_append(map, part, 1, 1, node_new(BERTH_CONFIG_MAP, "--set", 1, 1));
            i = (ssize_t)map->n - 1;
        }
        null_to(map->items[i], BERTH_CONFIG_MAP);
        if (map->items[i]->kind != BERTH_CONFIG_MAP) {
            node_free(value);
            return berth__error_make(err, BERTH_EINVAL, "--set %s: %s is not a map", shown, part);
        }
        map = map->items[i];
        part = next;
    }
    node_free(value);
    return berth__error_make(err, BERTH_EINVAL, "--set %s: empty key", shown);
}

static int
split_assignment(const char *assignment, char **key, berth_config_node_t **value,
                 berth_error_t **err)
{
    const char *eq = strchr(assignment, '=');
    if (eq == NULL || eq == assignment || eq[-1] == '.' || assignment[0] == '.' ||
        strstr(assignment, ".."))
        return berth__error_make(err, BERTH_EINVAL, "--set %s: expected key.path=value",
                                 assignment);
    *key = berth__xstrndup(assignment, (size_t)(eq - assignment));
    if (parse_text("--set", eq + 1, strlen(eq + 1), value, err) < 0) {
        free(*key);
        return berth__error_wrap(err, "--set %s", assignment);
    }
    if (*value == NULL)
        *value = scalar_new("", "--set", 1, 1);
    return 0;
}

int
berth__config_set(berth__config_t *cfg, const char *assignment, berth_error_t **err)
{
    char *key;
    berth_config_node_t *value;
    if (split_assignment(assignment, &key, &value, err) < 0)
        return -1;
    if (strncmp(key, "plugins.", 8) == 0) {
        node_free(value);
        free(key);
        berth__strv_push(&cfg->pending_plugin_sets, assignment);
        return 0;
    }
    int rc = set_path(cfg->tree, key, assignment, value, err);
    free(key);
    if (rc < 0 || validate_top(cfg, err) < 0)
        return -1;
    return 0;
}

/* "plugins.<uri>[.<path>]" -> uri and path, by quoting or the longest known URI. */
static int
split_plugin_path(const char *rest, const char *const *known, char **uri, const char **path)
{
    if (rest[0] == '"') {
        const char *close = strchr(rest + 1, '"');
        if (close == NULL || (close[1] != '\0' && close[1] != '.'))
            return -1;
        *uri = berth__xstrndup(rest + 1, (size_t)(close - rest - 1));
        *path = close[1] ? close + 2 : "";
        return 0;
    }
    size_t best = 0;
    for (size_t i = 0; known && known[i]; i++) {
        size_t n = strlen(known[i]);
        if (n > best && strncmp(rest, known[i], n) == 0 && (rest[n] == '\0' || rest[n] == '.'))
            best = n;
    }
    if (best == 0)
        return -1;
    *uri = berth__xstrndup(rest, best);
    *path = rest[best] ? rest + best + 1 : "";
    return 0;
}

int
berth__config_resolve_plugin_sets(berth__config_t *cfg, const char *const *known_uris,
                                  berth_error_t **err)
{
    int rc = 0;
    berth_config_node_t *plugins = (berth_config_node_t *)berth__map_get(cfg->tree, "plugins");
    for (size_t i = 0; rc == 0 && cfg->pending_plugin_sets && cfg->pending_plugin_sets[i]; i++) {
        const char *a = cfg->pending_plugin_sets[i];
        char *key, *uri;
        const char *path;
        berth_config_node_t *value;
        if (split_assignment(a, &key, &value, err) < 0)
            return -1;
        if (split_plugin_path(key + 8, known_uris, &uri, &path) < 0) {
            rc = berth__error_make(err, BERTH_EINVAL,
                                   "--set %s: no known plugin URI prefixes this path", a);
            node_free(value);
        } else if (path[0] == '\0') {
            map_put(plugins, uri, value);
            free(uri);
        } else {
            if (map_index(plugins, uri) < 0)
                map_append(plugins, uri, 1, 1, node_new(BERTH_CONFIG_MAP, "--set", 1, 1));
            berth_config_node_t *section = plugins->items[map_index(plugins, uri)];
            null_to(section, BERTH_CONFIG_MAP);
            if (section->kind != BERTH_CONFIG_MAP) {
                node_free(value);
                rc = berth__error_make(err, BERTH_EINVAL, "--set %s: plugins.%s is not a map", a,
                                       uri);
            } else {
                rc = set_path(section, path, a, value, err);
            }
            free(uri);
        }
        free(key);
    }
    berth__strv_free(cfg->pending_plugin_sets);
    cfg->pending_plugin_sets = NULL;
    return rc;
}

/* ---- plugin sections ------------------------------------------------------------------------------ */

static int
uri_parts_ok(const char *uri)
{
    int parts = 1;
    for (const char *s = uri; *s; s++) {
        if (*s == '.' && (s == uri || s[1] == '\0' || s[1] == '.'))
            return 0;
        parts += *s == '.';
    }
    return parts >= 4;
}

static int
check_uri_list(const berth_config_node_t *list, const char *key, berth_error_t **err)
{
    for (size_t i = 0; i < berth__list_size(list); i++)
        if (!uri_parts_ok(list->items[i]->text))
            return node_error(
                list->items[i], key, err,
                "\"%s\" is not a plugin URI (type.id, e.g. io.containerd.event.v1.exchange)",
                list->items[i]->text);
    return 0;
}

/* "(did you mean X?)" when exactly one known URI ends with ".<key>" or "<key's last part>". */
static char *
suggestion(const char *key, const char *const *known)
{
    const char *last = strrchr(key, '.');
    last = last ? last + 1 : key;
    const char *match = NULL;
    int n = 0;
    for (size_t i = 0; known && known[i]; i++) {
        const char *id = strrchr(known[i], '.');
        if (id && strcmp(id + 1, last) == 0) {
            match = known[i];
            n++;
        }
    }
    return n == 1 ? berth__xasprintf(" (did you mean %s?)", match) : berth__xstrdup("");
}

int
berth__config_check_plugin_uris(berth__config_t *cfg, const char *const *known_uris,
                                berth_error_t **err)
{
    if (check_uri_list(berth__map_get(cfg->tree, "disabled"), "disabled", err) < 0 ||
        check_uri_list(berth__map_get(cfg->tree, "required"), "required", err) < 0)
        return -1;
    const berth_config_node_t *plugins = berth__map_get(cfg->tree, "plugins");
    for (size_t i = 0; i < berth__map_size(plugins); i++) {
        const char *uri = plugins->keys[i];
        if (berth__strv_contains(known_uris, uri) ||
            berth__strv_contains((const char *const *)cfg->disabled, uri))
            continue;
        cleanup_free char *path = berth__xasprintf("plugins.%s", uri);
        cleanup_free char *hint = suggestion(uri, known_uris);
        cleanup_free char *what = uri_parts_ok(uri)
                                      ? berth__xasprintf("no plugin with this URI%s", hint)
                                      : berth__xasprintf("not a full plugin URI (type.id)%s", hint);
        return key_error(plugins, i, path, err, what);
    }
    return 0;
}

int
berth__config_plugin_section(berth__config_t *cfg, const char *uri,
                             const berth_config_field_t *schema, const berth_config_node_t **out,
                             berth_error_t **err)
{
    berth_config_node_t *plugins = (berth_config_node_t *)berth__map_get(cfg->tree, "plugins");
    if (map_index(plugins, uri) < 0)
        map_append(plugins, uri, 1, 1, node_new(BERTH_CONFIG_MAP, "<default>", 1, 1));
    berth_config_node_t *section = plugins->items[map_index(plugins, uri)];
    cleanup_free char *base = berth__xasprintf("plugins.%s", uri);
    if (check_type(section, BERTH_CFG_MAP, base, err) < 0)
        return -1;
    size_t nfields = 0;
    while (schema && schema[nfields].key)
        nfields++;
    for (size_t i = 0; i < section->n; i++) {
        cleanup_free char *path = berth__xasprintf("%s.%s", base, section->keys[i]);
        size_t k = 0;
        while (k < nfields && strcmp(schema[k].key, section->keys[i]) != 0)
            k++;
        if (k == nfields) {
            cleanup_free char *known = nfields
                                           ? known_keys(&schema[0].key, sizeof(schema[0]), nfields)
                                           : berth__xstrdup("this plugin takes no keys");
            cleanup_free char *what = berth__xasprintf("unknown key (known: %s)", known);
            return key_error(section, i, path, err, what);
        }
        if (check_type(section->items[i], schema[k].type, path, err) < 0)
            return -1;
    }
    for (size_t k = 0; k < nfields; k++)
        if (schema[k].default_yaml && map_index(section, schema[k].key) < 0)
            map_append(section, schema[k].key, 1, 1, default_node(schema[k].default_yaml));
    *out = section;
    return 0;
}

int
berth__config_plugin_position(const berth__config_t *cfg, const char *uri)
{
    ssize_t i = map_index(berth__map_get(cfg->tree, "plugins"), uri);
    return i < 0 ? INT32_MAX : (int)i;
}

/* ---- emit ----------------------------------------------------------------------------------------- */

static int
needs_quotes(const char *s, int quoted)
{
    /* quoting only matters where a plain scalar would read back differently; the schema types text */
    if (s[0] == '\0' || (quoted && (strcmp(s, "~") == 0 || strcmp(s, "null") == 0)) ||
        s[0] == ' ' || s[strlen(s) - 1] == ' ' || s[0] == '-' || s[0] == '?')
        return 1;
    return strpbrk(s, ":#{}[],&*!|>'\"%@`\n\t\\") != NULL;
}

static void
emit_scalar(FILE *out, const char *s, int quoted)
{
    if (!needs_quotes(s, quoted)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void emit_block(FILE *out, const berth_config_node_t *n, int indent);

static void
emit_value(FILE *out, const berth_config_node_t *v, int indent)
{
    if (v->kind == BERTH_CONFIG_SCALAR) {
        fputc(' ', out);
        emit_scalar(out, v->text, v->quoted);
        fputc('\n', out);
    } else if (v->n == 0) {
        fputs(v->kind == BERTH_CONFIG_MAP ? " {}\n" : " []\n", out);
    } else {
        fputc('\n', out);
        emit_block(out, v, indent + 2);
    }
}

static void
emit_block(FILE *out, const berth_config_node_t *n, int indent)
{
    for (size_t i = 0; i < n->n; i++) {
        fprintf(out, "%*s", indent, "");
        if (n->kind == BERTH_CONFIG_MAP) {
            emit_scalar(out, n->keys[i], 0);
            fputc(':', out);
        } else {
            fputc('-', out);
        }
        emit_value(out, n->items[i], indent);
    }
}

void
berth__config_emit(FILE *out, const berth_config_node_t *node)
{
    if (node == NULL)
        return;
    if (node->kind == BERTH_CONFIG_SCALAR) {
        emit_scalar(out, node->text, node->quoted);
        fputc('\n', out);
    } else if (node->n == 0) {
        fputs(node->kind == BERTH_CONFIG_MAP ? "{}\n" : "[]\n", out);
    } else {
        emit_block(out, node, 0);
    }
}

void
berth__config_free(berth__config_t *cfg)
{
    node_free(cfg->tree);
    free(cfg->file);
    clear_typed(cfg);
    berth__strv_free(cfg->pending_plugin_sets);
    berth__strv_free(cfg->sources);
    memset(cfg, 0, sizeof(*cfg));
}
