/* SPDX-License-Identifier: Apache-2.0 */
/* `berthd modules` over fixture modules: every ABI and graph failure is one row with a reason, no crash. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "run.h"

static test_dirs_t dirs;

static void
setup(void)
{
    dirs_make(&dirs);
}

static void
teardown(void)
{
    dirs_remove(&dirs);
}

/* berthd modules over one fixture scenario dir, plus extra args. */
static run_result_t
modules(const char *scenario, const char *const *extra)
{
    char set_dirs[600], root[400], state[400];
    snprintf(set_dirs, sizeof(set_dirs), "module_dirs=[\"%s/%s\"]", FX_DIR, scenario);
    snprintf(root, sizeof(root), "%s", dirs.root);
    snprintf(state, sizeof(state), "%s", dirs.state);
    const char *argv[32] = {"modules", "--root", root, "--state", state, "--set", set_dirs};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    return run_berthd(dirs.empty, argv, 60);
}

static void
expect_row(const char *out, const char *uri, const char *status, const char *reason)
{
    char *line = line_with(out, uri);
    cr_assert(line != NULL, "no row for %s in:\n%s", uri, out);
    cr_expect(strstr(line, status) != NULL, "row for %s lacks status %s: %s", uri, status, line);
    if (reason)
        cr_expect(strstr(line, reason) != NULL, "row for %s lacks `%s`: %s", uri, reason, line);
    free(line);
}

TestSuite(loader, .init = setup, .fini = teardown);

Test(loader, every_abi_failure_is_one_row)
{
    run_result_t r = modules("abi", NULL);
    cr_assert_eq(r.status, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
    expect_row(r.out, "test.fixture.ok.v1.a", " ok ", NULL);
    expect_row(r.out, "test.fixture.dash.v1.d", " ok ", NULL);
    expect_row(r.out, "berth.module.fx_nosym", "abi-error",
               "not a berth module (no berth_module_v1_fx_nosym)");
    expect_row(r.out, "berth.module.fx_major", "abi-error",
               "built for berth ABI 2; this berthd speaks ABI 1");
    expect_row(r.out, "berth.module.fx_magic", "abi-error", "garbled descriptor: magic 0xdeadbeef");
    expect_row(r.out, "berth.module.fx_minor", "abi-error", "needs berthd ABI 1.99");
    expect_row(r.out, "berth.module.fx_size", "abi-error", "struct_size 8 is smaller");
    expect_row(r.out, "berth.module.fx_sig", "abi-error",
               "module built with asan7, berthd has asan");
    expect_row(r.out, "berth.module.fx_needlib", "abi-error", "dlopen: libfx_gone.so");
    const char *files[] = {"fx_nosym.so",   "fx_major.so", "fx_magic.so",
                           "fx_minor.so",   "fx_size.so",  "fx_sig.so",
                           "fx_needlib.so", "fx_ok.so",    "fx-dash.so"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        cr_expect_eq(count_of(r.out, files[i]), 1, "%s should have exactly one row:\n%s", files[i],
                     r.out);
    run_free(&r);
}

Test(loader, probe_reports_a_crashing_constructor)
{
    const char *extra[] = {"--probe", NULL};
    run_result_t r = modules("crash", extra);
    cr_assert_eq(r.status, 0, "exit %d\n%s\n%s", r.status, r.out, r.err);
    expect_row(r.out, "berth.module.fx_crash", "abi-error", "crashed");
    run_free(&r);
}

Test(loader, probe_agrees_with_a_plain_load)
{
    const char *extra[] = {"--probe", NULL};
    run_result_t r = modules("abi", extra);
    cr_assert_eq(r.status, 0);
    expect_row(r.out, "test.fixture.ok.v1.a", " ok ", NULL);
    expect_row(r.out, "berth.module.fx_magic", "abi-error", "garbled descriptor");
    expect_row(r.out, "berth.module.fx_needlib", "abi-error", "dlopen:");
    run_free(&r);
}

static int
row_index(const char *out, const char *uri)
{
    const char *p = strstr(out, uri);
    return p ? (int)(p - out) : -1;
}

Test(loader, graph_statuses_without_init)
{
    run_result_t r = modules("graph", NULL);
    cr_assert_eq(r.status, 0, "exit %d\n%s\n%s", r.status, r.out, r.err);
    expect_row(r.out, "test.graph.base.v1.base", " ok ", NULL);
    expect_row(r.out, "test.graph.user.v1.user", " ok ", NULL);
    cr_expect_lt(row_index(r.out, "test.graph.base.v1.base"),
                 row_index(r.out, "test.graph.user.v1.user"));
    expect_row(r.out, "test.graph.orphan.v1.orphan", "dep-unavailable",
               "requires test.graph.missing.v1: no plugin provides it");
    expect_row(
        r.out, "test.graph.cyca.v1.a", "error",
        "dependency cycle: test.graph.cyca.v1.a -> test.graph.cycb.v1.b -> test.graph.cyca.v1.a");
    expect_row(r.out, "test.graph.cycb.v1.b", "error", "dependency cycle");
    expect_row(r.out, "test.graph.dup.v1.dup  ", "ok", "fx_dup1.so");
    char *dup = line_with(r.out, "duplicate plugin test.graph.dup.v1.dup");
    cr_assert(dup != NULL, "%s", r.out);
    cr_expect(strstr(dup, "abi-error") && strstr(dup, "fx_dup1.so") && strstr(dup, "fx_dup2.so"),
              "%s", dup);
    free(dup);
    expect_row(r.out, "test.graph.two.v1.one", " ok ", "fx_two.so");
    expect_row(r.out, "test.graph.two.v1.two", " ok ", "fx_two.so");
    /* "*" goes after everything else */
    int all = row_index(r.out, "test.graph.all.v1.all");
    cr_expect_gt(all, row_index(r.out, "test.graph.user.v1.user"));
    cr_expect_gt(all, row_index(r.out, "test.graph.failuser2.v1.fu2"));
    run_free(&r);
}

Test(loader, graph_statuses_with_init)
{
    const char *extra[] = {"--init", NULL};
    run_result_t r = modules("graph", extra);
    cr_assert_eq(r.status, 0, "exit %d\n%s\n%s", r.status, r.out, r.err);
    expect_row(r.out, "test.graph.skip.v1.skip", "skip", "skip plugin");
    expect_row(r.out, "test.graph.fail.v1.fail", "error", "failed on purpose");
    expect_row(r.out, "test.graph.failuser.v1.fu", "dep-unavailable",
               "requires test.graph.fail.v1: test.graph.fail.v1.fail: error: "
               "test.graph.fail.v1.fail failed");
    /* the root cause, not the chain */
    expect_row(r.out, "test.graph.failuser2.v1.fu2", "dep-unavailable",
               "requires test.graph.failuser.v1: test.graph.fail.v1.fail: error:");
    expect_row(r.out, "test.graph.user.v1.user", " ok ", NULL);
    expect_row(r.out, "test.graph.base.v1.base", " ok ", NULL);
    cr_expect(strstr(r.out, "export greeting=hello") != NULL, "%s", r.out);
    run_free(&r);
}

Test(loader, disabled_module_is_never_opened)
{
    const char *extra[] = {"--set", "disabled=[test.graph.skip.v1.skip, test.graph.base.v1.base]",
                           NULL};
    run_result_t r = modules("graph", extra);
    cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
    expect_row(r.out, "test.graph.skip.v1.skip", "disabled", "not loaded");
    expect_row(r.out, "test.graph.base.v1.base", "disabled", NULL);
    expect_row(r.out, "test.graph.user.v1.user", "dep-unavailable",
               "test.graph.base.v1.base: disabled");
    run_free(&r);
}

Test(loader, failing_required_plugin_exits_1)
{
    const char *extra[] = {"--init", "--set", "required=[test.graph.fail.v1.fail]", NULL};
    run_result_t r = modules("graph", extra);
    cr_expect_eq(r.status, 1, "%s\n%s", r.out, r.err);
    cr_expect(strstr(r.err, "required plugin test.graph.fail.v1.fail is error") != NULL, "%s",
              r.err);
    run_free(&r);
}

Test(loader, required_plugin_not_included)
{
    const char *extra[] = {"--set", "required=[test.nothing.v1.none]", NULL};
    run_result_t r = modules("graph", extra);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "required plugin test.nothing.v1.none not included") != NULL, "%s",
              r.err);
    run_free(&r);
}

Test(loader, unknown_plugin_section_is_an_error)
{
    const char *extra[] = {"--set", "plugins.\"test.graph.nosuch.v1.x\".a=1", NULL};
    run_result_t r = modules("graph", extra);
    cr_expect_eq(r.status, 1, "%s", r.out);
    cr_expect(strstr(r.err, "test.graph.nosuch.v1.x") != NULL, "%s", r.err);
    run_free(&r);
}

Test(loader, wrong_type_in_plugin_section_names_the_key)
{
    const char *extra[] = {"--set", "plugins.test.graph.base.v1.base.count=many", NULL};
    run_result_t r = modules("graph", extra);
    cr_expect_eq(r.status, 1, "%s", r.out);
    cr_expect(strstr(r.err, "plugins.test.graph.base.v1.base.count") != NULL, "%s", r.err);
    run_free(&r);
}
