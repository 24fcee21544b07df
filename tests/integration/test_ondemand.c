/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugins on demand (abi/berth/module.h, "On demand") over the fixtures in ondemand/ (fx_reload.c built
 * with FX_ON_DEMAND): deferred at start with their files unopened, initialised in order on first use with a
 * follower told, started at once when `required` names them or start_if finds work, a bad section refused
 * at start from the manifest alone, and a reload that enables one.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

static test_dirs_t dirs;
static char trace[400], errlog[400], config[400], moddir[400];
static pid_t daemon_pid;

#define BASE "test.od.base.v1.base"
#define USER "test.od.user.v1.user"
#define FOLLOW "test.od.follow.v1.follow"
#define WAITING "test.od.waiting.v1.waiting"

static void
setup(void)
{
    dirs_make(&dirs);
    snprintf(trace, sizeof(trace), "%s/trace", dirs.base);
    snprintf(errlog, sizeof(errlog), "%s/stderr", dirs.base);
    snprintf(config, sizeof(config), "%s/berthd.yaml", dirs.base);
    snprintf(moddir, sizeof(moddir), "%s/modules", dirs.base);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s'/ondemand/*.so '%s'/", moddir, FX_DIR,
             moddir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    daemon_pid = 0;
}

static void
teardown(void)
{
    if (daemon_pid > 0)
        stop_berthd(daemon_pid, SIGTERM, 30);
    dirs_remove(&dirs);
}

TestSuite(ondemand, .init = setup, .fini = teardown, .timeout = 120);

/* `top` goes at the top level (e.g. "required: [...]\n"), `follow` under the follower's section. */
static void
write_config(const char *top, const char *disabled, const char *follow)
{
    FILE *f = fopen(config, "w");
    cr_assert(f != NULL);
    fprintf(f,
            "version: 1\nroot: \"%s\"\nstate: \"%s\"\nmodule_dirs: [\"%s\"]\ndisabled: [%s]\n%s"
            "plugins:\n",
            dirs.root, dirs.state, moddir, disabled ? disabled : "", top ? top : "");
    const char *uris[] = {BASE, USER, FOLLOW, WAITING};
    for (size_t i = 0; i < 4; i++) {
        fprintf(f, "  %s:\n    trace: \"%s\"\n", uris[i], trace);
        if (i == 2 && follow)
            fprintf(f, "%s", follow);
    }
    fclose(f);
}

static int
start(void)
{
    const char *argv[] = {"--config", config, NULL};
    int status = 0;
    daemon_pid = start_berthd(dirs.empty, argv, errlog, 30, &status);
    return status;
}

static int
mapped(const char *file)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)daemon_pid);
    char *maps = read_file(path);
    cr_assert(maps != NULL);
    int found = strstr(maps, file) != NULL;
    free(maps);
    return found;
}

/* Waits for the trace to hold `what`; returns the trace. */
static char *
wait_trace(const char *what)
{
    for (int i = 0; i < 250; i++) {
        char *t = read_file(trace);
        if (t && strstr(t, what))
            return t;
        free(t);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("`%s` never came:\n%s\nlog:\n%s", what, read_file(trace), read_file(errlog));
    return NULL;
}

/* Sends SIGHUP and waits until the log holds the outcome of the n-th reload. */
static void
reload(int n)
{
    cr_assert_eq(kill(daemon_pid, SIGHUP), 0);
    for (int i = 0; i < 250; i++) {
        char *log = read_file(errlog);
        int done = log && count_of(log, "msg=\"reloaded:") >= n;
        free(log);
        if (done)
            return;
        usleep(20 * 1000);
    }
    cr_assert_fail("reload %d never finished:\n%s", n, read_file(errlog));
}

static void
expect_in_order(const char *text, const char *const *expected, size_t n)
{
    const char *missing = missing_in_order(text, expected, n);
    cr_assert(missing == NULL, "`%s` missing or out of order in:\n%s", missing, text);
}

Test(ondemand, deferred_at_start_unopened_then_initialised_in_order_on_first_use)
{
    write_config(NULL, NULL, "    demand: test.od.user.v1\n");
    cr_assert_eq(start(), 0, "%s", read_file(errlog));
    /* the follower started at once, without pulling what it follows; it asks 50 ms later */
    char *t = wait_trace("demanded ");
    const char *order[] = {FOLLOW " init", BASE " init", USER " init", FOLLOW " change added " USER,
                           FOLLOW " demanded 2"};
    expect_in_order(t, order, 5);
    cr_expect_eq(count_of(t, " init "), 3, "the waiting one stays deferred:\n%s", t);
    free(t);
    cr_expect(mapped("fx_od_user.so") && mapped("fx_od_base.so"));
    cr_expect(!mapped("fx_od_waiting.so"), "a deferred module is never opened");
    char *log = read_file(errlog);
    cr_expect(strstr(log, "loading plugin " USER " on first use") != NULL, "%s", log);
    free(log);
    cr_expect_eq(stop_berthd(daemon_pid, SIGTERM, 30), 0);
    daemon_pid = 0;
    t = read_file(trace);
    const char *fini[] = {USER " fini", BASE " fini"};
    expect_in_order(t, fini, 2);
    free(t);
}

Test(ondemand, nothing_asked_nothing_opened)
{
    write_config(NULL, NULL, NULL);
    cr_assert_eq(start(), 0, "%s", read_file(errlog));
    usleep(200 * 1000);
    char *t = read_file(trace);
    cr_expect(strstr(t, FOLLOW " init") != NULL, "%s", t);
    cr_expect_eq(count_of(t, " init "), 1, "only the follower starts:\n%s", t);
    free(t);
    cr_expect(!mapped("fx_od_base.so") && !mapped("fx_od_user.so") && !mapped("fx_od_waiting.so"));
}

Test(ondemand, required_or_waiting_work_starts_it_at_once)
{
    write_config("required: [\"" USER "\"]\n", NULL, NULL);
    char work[600];
    snprintf(work, sizeof(work), "mkdir -p '%s/" WAITING "/work/job1'", dirs.state);
    cr_assert_eq(system(work), 0);
    cr_assert_eq(start(), 0, "%s", read_file(errlog));
    char *t = read_file(trace);
    const char *order[] = {BASE " init", USER " init"};
    expect_in_order(t, order, 2);
    cr_expect(strstr(t, WAITING " init") != NULL, "start_if matched:\n%s", t);
    free(t);
}

Test(ondemand, a_bad_section_is_refused_at_start_from_the_manifest)
{
    /* a key the schema does not have, in a deferred plugin's own section */
    write_config(NULL, NULL, NULL);
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "sed -i 's|^  " BASE ":|  " BASE ":\\n    gretting: hi|' '%s'",
             config);
    cr_assert_eq(system(cmd), 0);
    int status = start();
    cr_assert_neq(status, 0, "berthd started with a bad section");
    daemon_pid = 0;
    char *log = read_file(errlog);
    cr_expect(strstr(log, "gretting") != NULL, "the error names the key:\n%s", log);
    free(log);
}

Test(ondemand, a_reload_enables_a_deferred_plugin_and_one_that_needs_it_pulls_it)
{
    write_config(NULL, "\"" BASE "\", \"" USER "\"", NULL);
    cr_assert_eq(start(), 0, "%s", read_file(errlog));
    write_config(NULL, NULL, NULL);
    reload(1);
    char *log = read_file(errlog);
    cr_expect(strstr(log, "reloaded: 2 enabled, 0 disabled") != NULL, "%s", log);
    free(log);
    char *t = read_file(trace);
    cr_expect_eq(count_of(t, " init "), 1, "enabled, still deferred:\n%s", t);
    free(t);
    cr_expect(!mapped("fx_od_base.so"));
}

Test(ondemand, a_deferred_plugin_takes_its_new_section_through_reloads_and_starts_with_it)
{
    write_config(NULL, NULL, NULL);
    cr_assert_eq(start(), 0, "%s", read_file(errlog));
    for (int round = 1; round <= 3; round++) {
        /* the follower asks for the user plugin on the last round only */
        write_config(NULL, NULL, round == 3 ? "    demand: test.od.user.v1\n" : NULL);
        char cmd[1400];
        snprintf(cmd, sizeof(cmd),
                 "sed -i 's|^  " BASE ":|  " BASE ":\\n    greeting: round%d|' '%s'", round,
                 config);
        cr_assert_eq(system(cmd), 0);
        reload(round);
    }
    /* the follower was reinitialised by the last reload (its section changed) and asked then */
    char *t = wait_trace("demanded ");
    cr_expect(strstr(t, BASE " init greeting=round3") != NULL, "%s", t);
    cr_expect_eq(count_of(t, BASE " init"), 1, "%s", t);
    free(t);
    cr_expect(!mapped("fx_od_waiting.so"));
}
