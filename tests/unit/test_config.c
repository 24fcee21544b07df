/* SPDX-License-Identifier: Apache-2.0 */
/* The config parser and validator: defaults, error positions, --set, plugin sections, emit round trip. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"

static berth__config_t cfg;
static berth_error_t *err;

static void
teardown(void)
{
    berth__config_free(&cfg);
    berth__error_free(err);
    err = NULL;
}

TestSuite(config, .fini = teardown);

static void
load_ok(const char *text)
{
    int rc = berth__config_load_string(&cfg, "t.yaml", text, &err);
    cr_assert_eq(rc, 0, "%s", berth__error_msg(err));
}

static void
load_fails_with(const char *text, const char *message)
{
    cr_assert_lt(berth__config_load_string(&cfg, "t.yaml", text, &err), 0, "accepted:\n%s", text);
    cr_assert(err != NULL);
    cr_expect_str_eq(err->message, message);
    cr_expect_eq(err->code, BERTH_EINVAL);
}

Test(config, builtin_default_gives_the_defaults)
{
    cr_assert_eq(berth__config_load(&cfg, NULL, &err), 0, "%s", berth__error_msg(err));
    cr_expect_str_eq(cfg.root, "/var/lib/berth");
    cr_expect_str_eq(cfg.state, "/run/berth");
    cr_expect_eq(cfg.log_level, 2);
    cr_expect_eq(cfg.thread_pool_size, 0);
    cr_expect_null(cfg.disabled[0]);
    cr_expect_str_eq(cfg.file, "<built-in>");
}

Test(config, empty_document_is_all_defaults)
{
    load_ok("# nothing here\n");
    cr_expect_str_eq(cfg.root, "/var/lib/berth");
}

Test(config, full_file)
{
    load_ok("version: 1\nroot: /r\nstate: /s\nmodule_dirs: [/m1, /m2]\ndisabled:\n  - a.b.c.d\n"
            "required: []\nlog_level: debug\nlog_format: journald\nthread_pool_size: 8\n"
            "plugins:\n  x.y.z.w:\n    k: v\n");
    cr_expect_str_eq(cfg.root, "/r");
    cr_expect_str_eq(cfg.module_dirs[1], "/m2");
    cr_expect_str_eq(cfg.disabled[0], "a.b.c.d");
    cr_expect_eq(cfg.log_level, 3);
    cr_expect_eq(cfg.log_format, 1);
    cr_expect_eq(cfg.thread_pool_size, 8);
    cr_expect_eq(berth__config_plugin_position(&cfg, "x.y.z.w"), 0);
    cr_expect_eq(berth__config_plugin_position(&cfg, "nope.a.b.c"), INT32_MAX);
}

Test(config, unknown_key_names_line_column_and_key)
{
    load_fails_with("version: 1\nroot: /tmp/x\n  \nlog_levle: debug\n",
                    "t.yaml:4:1: log_levle: unknown key (known: version, root, state, module_dirs, "
                    "disabled, required, log_level, log_format, thread_pool_size, plugins)");
}

Test(config, wrong_types)
{
    load_fails_with("thread_pool_size: lots\n",
                    "t.yaml:1:19: thread_pool_size: expected an integer, got \"lots\"");
    berth__config_free(&cfg);
    load_fails_with("disabled: a.b.c.d\n", "t.yaml:1:11: disabled: expected a list");
    berth__config_free(&cfg);
    load_fails_with("root: relative\n",
                    "t.yaml:1:7: root: must be an absolute path, got \"relative\"");
    berth__config_free(&cfg);
    load_fails_with(
        "log_level: loud\n",
        "t.yaml:1:12: log_level: expected error, warn, info, debug or trace, got \"loud\"");
    berth__config_free(&cfg);
    load_fails_with("plugins:\n  a.b.c.d: 3\n", "t.yaml:2:12: plugins.a.b.c.d: expected a map");
}

Test(config, yaml_errors_have_positions)
{
    cr_assert_lt(berth__config_load_string(&cfg, "t.yaml", "root: [unclosed\n", &err), 0);
    cr_expect(strncmp(err->message, "t.yaml:2:1: ", 12) == 0, "%s", err->message);
    berth__error_free(err);
    err = NULL;
    load_fails_with("root: /a\nroot: /b\n", "t.yaml:2:1: root: duplicate key");
    berth__config_free(&cfg);
    load_fails_with("root: &x /a\n", "t.yaml:1:7: anchors and aliases are not supported");
    berth__config_free(&cfg);
    load_fails_with("root: /a\n---\nroot: /b\n", "t.yaml:2:1: only one YAML document is allowed");
    berth__config_free(&cfg);
    load_fails_with("- a\n", "t.yaml:1:1: (document): the config must be a map of keys");
}

Test(config, deep_nesting_is_refused)
{
    char text[400] = "plugins: ";
    for (int i = 0; i < 70; i++)
        strcat(text, "[");
    cr_assert_lt(berth__config_load_string(&cfg, "t.yaml", text, &err), 0);
    cr_expect(strstr(err->message, "nesting deeper than 64 levels") != NULL, "%s", err->message);
}

Test(config, missing_file)
{
    cr_assert_lt(berth__config_load(&cfg, "/nonexistent/berthd.yaml", &err), 0);
    cr_expect_str_eq(err->message,
                     "open config /nonexistent/berthd.yaml: No such file or directory");
    cr_expect_eq(err->code, BERTH_ENOTFOUND);
}

Test(config, set_top_level_values)
{
    load_ok("");
    cr_assert_eq(berth__config_set(&cfg, "log_level=debug", &err), 0);
    cr_assert_eq(berth__config_set(&cfg, "module_dirs=[/a, \"/b c\"]", &err), 0, "%s",
                 berth__error_msg(err));
    cr_expect_eq(cfg.log_level, 3);
    cr_expect_str_eq(cfg.module_dirs[1], "/b c");
    cr_expect_lt(berth__config_set(&cfg, "thread_pool_size", &err), 0);
    cr_expect_str_eq(err->message, "--set thread_pool_size: expected key.path=value");
    cr_expect_lt(berth__config_set(&cfg, "nope=1", &err), 0);
    cr_expect(strstr(err->message, "nope: unknown key") != NULL, "%s", err->message);
    cr_expect_lt(berth__config_set(&cfg, "root.x=1", &err), 0);
    cr_expect_str_eq(err->message, "--set root.x=1: root is not a map");
}

Test(config, set_plugin_values_by_longest_uri_or_quotes)
{
    load_ok("");
    const char *known[] = {"io.x.v1.a", "io.x.v1.a.b", NULL};
    cr_assert_eq(berth__config_set(&cfg, "plugins.io.x.v1.a.b.key=1", &err), 0);
    cr_assert_eq(berth__config_set(&cfg, "plugins.\"io.x.v1.a\".b=2", &err), 0);
    cr_assert_eq(berth__config_resolve_plugin_sets(&cfg, known, &err), 0, "%s",
                 berth__error_msg(err));
    const berth_config_node_t *plugins = berth__map_get(cfg.tree, "plugins");
    cr_expect_str_eq(berth__get_string(berth__map_get(plugins, "io.x.v1.a.b"), "key", ""), "1");
    cr_expect_str_eq(berth__get_string(berth__map_get(plugins, "io.x.v1.a"), "b", ""), "2");
    cr_assert_eq(berth__config_set(&cfg, "plugins.io.y.v1.z.k=1", &err), 0);
    cr_expect_lt(berth__config_resolve_plugin_sets(&cfg, known, &err), 0);
    cr_expect_str_eq(err->message,
                     "--set plugins.io.y.v1.z.k=1: no known plugin URI prefixes this path");
}

static const berth_config_field_t schema[] = {
    {"name", BERTH_CFG_STRING, "anon", "a name"},
    {"count", BERTH_CFG_INT, "3", "a count"},
    {"on", BERTH_CFG_BOOL, "false", "a switch"},
    {"tags", BERTH_CFG_LIST, "[]", "tags"},
    {NULL, 0, NULL, NULL},
};

Test(config, plugin_section_is_validated_and_defaulted)
{
    load_ok("plugins:\n  io.x.v1.p:\n    count: 0x10\n");
    const berth_config_node_t *s = NULL;
    cr_assert_eq(berth__config_plugin_section(&cfg, "io.x.v1.p", schema, &s, &err), 0, "%s",
                 berth__error_msg(err));
    int64_t count;
    int on;
    cr_expect_eq(berth__get_int(s, "count", 0, &count, &err), 0);
    cr_expect_eq(count, 16);
    cr_expect_eq(berth__get_bool(s, "on", 1, &on, &err), 0);
    cr_expect_eq(on, 0);
    cr_expect_str_eq(berth__get_string(s, "name", ""), "anon");
    cr_expect_eq(berth__config_plugin_section(&cfg, "io.x.v1.absent", schema, &s, &err), 0);
    cr_expect_eq(berth__map_size(s), 4);
}

Test(config, plugin_section_errors)
{
    load_ok("plugins:\n  io.x.v1.p:\n    cuont: 1\n  io.x.v1.q:\n    count: many\n");
    const berth_config_node_t *s;
    cr_assert_lt(berth__config_plugin_section(&cfg, "io.x.v1.p", schema, &s, &err), 0);
    cr_expect_str_eq(
        err->message,
        "t.yaml:3:5: plugins.io.x.v1.p.cuont: unknown key (known: name, count, on, tags)");
    cr_assert_lt(berth__config_plugin_section(&cfg, "io.x.v1.q", schema, &s, &err), 0);
    cr_expect_str_eq(err->message,
                     "t.yaml:5:12: plugins.io.x.v1.q.count: expected an integer, got \"many\"");
    cr_assert_lt(berth__config_plugin_section(&cfg, "io.x.v1.p", NULL, &s, &err), 0);
    cr_expect(strstr(err->message, "this plugin takes no keys") != NULL, "%s", err->message);
}

Test(config, plugin_uris_are_checked)
{
    const char *known[] = {"io.containerd.event.v1.exchange", NULL};
    load_ok("disabled: [short.uri]\n");
    cr_expect_lt(berth__config_check_plugin_uris(&cfg, known, &err), 0);
    cr_expect_str_eq(err->message,
                     "t.yaml:1:12: disabled: \"short.uri\" is not a plugin URI (type.id, e.g. "
                     "io.containerd.event.v1.exchange)");
    berth__config_free(&cfg);
    load_ok("plugins:\n  exchange: {}\n");
    cr_expect_lt(berth__config_check_plugin_uris(&cfg, known, &err), 0);
    cr_expect_str_eq(err->message,
                     "t.yaml:2:3: plugins.exchange: not a full plugin URI (type.id) (did you "
                     "mean io.containerd.event.v1.exchange?)");
    berth__config_free(&cfg);
    load_ok(
        "plugins:\n  io.containerd.event.v1.exchange: {}\n  a.b.c.d: {}\ndisabled: [a.b.c.d]\n");
    cr_expect_eq(berth__config_check_plugin_uris(&cfg, known, &err), 0, "%s",
                 berth__error_msg(err));
}

static char *
emit_to_string(const berth_config_node_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    berth__config_emit(f, n);
    fclose(f);
    return buf;
}

Test(config, emit_round_trips)
{
    load_ok("root: /r\nplugins:\n  io.x.v1.p:\n    s: \"a: b # c\"\n    e: \"\"\n    n: \"~\"\n    "
            "l: [1, \"-x\"]\n"
            "    m: {k: [a, {z: 1}]}\n    t: \"line\\nbreak\\t\"\n");
    char *first = emit_to_string(cfg.tree);
    berth__config_t again;
    cr_assert_eq(berth__config_load_string(&again, "again", first, &err), 0, "%s\n%s",
                 berth__error_msg(err), first);
    char *second = emit_to_string(again.tree);
    cr_expect_str_eq(first, second);
    const berth_config_node_t *p =
        berth__map_get(berth__map_get(again.tree, "plugins"), "io.x.v1.p");
    cr_expect_str_eq(berth__get_string(p, "s", ""), "a: b # c");
    cr_expect_str_eq(berth__get_string(p, "n", ""), "~");
    cr_expect_str_eq(berth__get_string(p, "t", ""), "line\nbreak\t");
    berth__config_free(&again);
    free(first);
    free(second);
}

Test(config, scalar_parsing)
{
    int64_t v;
    int b;
    cr_expect_eq(berth__parse_int("0660", &v), 0);
    cr_expect_eq(v, 0660);
    cr_expect_eq(berth__parse_int("-12", &v), 0);
    cr_expect_eq(v, -12);
    cr_expect_eq(berth__parse_int("0x1F", &v), 0);
    cr_expect_eq(v, 31);
    cr_expect_eq(berth__parse_int("9223372036854775807", &v), 0);
    cr_expect_eq(berth__parse_int("9223372036854775808", &v), -1);
    cr_expect_eq(berth__parse_int("-9223372036854775808", &v), 0);
    cr_expect_eq(v, INT64_MIN);
    cr_expect_eq(berth__parse_int("12abc", &v), -1);
    cr_expect_eq(berth__parse_int("", &v), -1);
    cr_expect_eq(berth__parse_int(" 1", &v), -1);
    cr_expect_eq(berth__parse_int("09", &v), -1);
    cr_expect_eq(berth__parse_bool("Yes", &b), 0);
    cr_expect_eq(b, 1);
    cr_expect_eq(berth__parse_bool("off", &b), 0);
    cr_expect_eq(b, 0);
    cr_expect_eq(berth__parse_bool("2", &b), -1);
}
