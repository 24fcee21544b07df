/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reload on SIGHUP over the reloadable fixtures (tests/fixtures/fx_reload.c): enabling and disabling,
 * dependents finished first and initialised again, a follower told instead, a NO_RELOAD plugin reported,
 * a refused config that changes nothing, a failing re-init, and a module file replaced on disk.
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
static int reloads; /* how many reloads this test asked for */

#define BASE "test.reload.base.v1.base"
#define USER "test.reload.user.v1.user"
#define FOLLOW "test.reload.follow.v1.follow"
#define PINNED "test.reload.pinned.v1.pinned"
#define SPARE "test.reload.spare.v1.spare"

static void
copy_module(const char *from_dir, const char *file, const char *to_name)
{
    char cmd[1400];
    /* install(1) writes a new inode and renames it over the old: what a package manager does */
    snprintf(cmd, sizeof(cmd), "install -m 0755 '%s/%s' '%s/%s'", from_dir, file, moddir, to_name);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void
setup(void)
{
    dirs_make(&dirs);
    snprintf(trace, sizeof(trace), "%s/trace", dirs.base);
    snprintf(errlog, sizeof(errlog), "%s/stderr", dirs.base);
    snprintf(config, sizeof(config), "%s/berthd.yaml", dirs.base);
    snprintf(moddir, sizeof(moddir), "%s/modules", dirs.base);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s'/reload/*.so '%s'/", moddir, FX_DIR,
             moddir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    daemon_pid = 0;
    reloads = 0;
}

static void
teardown(void)
{
    if (daemon_pid > 0)
        stop_berthd(daemon_pid, SIGTERM, 30);
    dirs_remove(&dirs);
}

TestSuite(reload, .init = setup, .fini = teardown, .timeout = 120);

/* Writes the config: `disabled` is a YAML list body, `sections` extra lines under plugins. */
static void
write_config(const char *disabled, const char *base_extra)
{
    FILE *f = fopen(config, "w");
    cr_assert(f != NULL);
    fprintf(f,
            "version: 1\nroot: \"%s\"\nstate: \"%s\"\nmodule_dirs: [\"%s\"]\ndisabled: [%s]\n"
            "plugins:\n",
            dirs.root, dirs.state, moddir, disabled);
    const char *uris[] = {BASE, USER, FOLLOW, PINNED, SPARE};
    for (size_t i = 0; i < 5; i++) {
        fprintf(f, "  %s:\n    trace: \"%s\"\n", uris[i], trace);
        if (i == 0 && base_extra)
            fprintf(f, "%s", base_extra);
    }
    fclose(f);
}

static void
start(void)
{
    const char *argv[] = {"--config", config, NULL};
    int status = 0;
    daemon_pid = start_berthd(dirs.empty, argv, errlog, 30, &status);
    cr_assert(daemon_pid > 0, "berthd did not start (status %d):\n%s", status, read_file(errlog));
}

/* Sends SIGHUP and waits for the daemon to log the outcome of that reload. */
static char *
reload(void)
{
    reloads++;
    cr_assert_eq(kill(daemon_pid, SIGHUP), 0);
    for (int i = 0; i < 500; i++) {
        char *log = read_file(errlog);
        if (log && count_of(log, "msg=\"reloaded:") + count_of(log, "reload refused") >= reloads)
            return log;
        free(log);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("reload %d never finished:\n%s", reloads, read_file(errlog));
    return NULL;
}

/* The part of the trace written after `mark` bytes. */
static char *
trace_since(size_t mark)
{
    char *t = read_file(trace);
    cr_assert(t != NULL);
    char *tail = strdup(strlen(t) >= mark ? t + mark : "");
    free(t);
    return tail;
}

static size_t
trace_mark(void)
{
    char *t = read_file(trace);
    size_t n = t ? strlen(t) : 0;
    free(t);
    return n;
}

static void
expect_in_order(const char *text, const char *const *expected, size_t n)
{
    const char *missing = missing_in_order(text, expected, n);
    cr_assert(missing == NULL, "`%s` missing or out of order in:\n%s", missing, text);
}

/* `berthd modules` reads the same config: the statuses a fresh start would give. The running daemon's own
 * table is checked through its log and the trace here (the grpc-level listing has its own tests). */

Test(reload, sighup_enables_and_disables)
{
    write_config("\"" SPARE "\"", NULL);
    start();
    char *t = read_file(trace);
    cr_assert(strstr(t, SPARE " init") == NULL, "%s", t);
    free(t);
    size_t mark = trace_mark();
    write_config("", NULL);
    char *log = reload();
    cr_expect(strstr(log, "reloaded: 1 enabled, 0 disabled, 0 reinitialised, 0 failed") != NULL,
              "%s", log);
    free(log);
    t = trace_since(mark);
    cr_expect(strstr(t, SPARE " init greeting=hello") != NULL, "%s", t);
    cr_expect(strstr(t, BASE " fini") == NULL, "nothing else is touched:\n%s", t);
    free(t);

    mark = trace_mark();
    write_config("\"" SPARE "\"", NULL);
    log = reload();
    cr_expect(strstr(log, "reloaded: 0 enabled, 1 disabled") != NULL, "%s", log);
    cr_expect(strstr(log, "disabled: " SPARE) != NULL, "%s", log);
    free(log);
    t = trace_since(mark);
    cr_expect(strstr(t, SPARE " fini") != NULL, "%s", t);
    cr_expect_eq(count_of(t, " fini"), 1, "only the spare is finished:\n%s", t);
    free(t);
    cr_expect_eq(stop_berthd(daemon_pid, SIGTERM, 30), 0);
    daemon_pid = 0;
}

Test(reload, disabling_a_provider_finishes_dependents_first_and_tells_followers)
{
    write_config("", NULL);
    start();
    size_t mark = trace_mark();
    write_config("\"" BASE "\"", NULL);
    char *log = reload();
    free(log);
    char *t = trace_since(mark);
    const char *down[] = {USER " fini", FOLLOW " change removing " BASE, BASE " fini"};
    expect_in_order(t, down, 3);
    cr_expect(strstr(t, FOLLOW " fini") == NULL, "the follower keeps running:\n%s", t);
    cr_expect(strstr(t, USER " init") == NULL, "the user cannot start without its base:\n%s", t);
    /* the user cannot run without its base: disabled with it */
    cr_expect(strstr(t, FOLLOW " change reloaded reloaded: 0 enabled, 2 disabled") != NULL, "%s",
              t);
    free(t);

    mark = trace_mark();
    write_config("", NULL);
    log = reload();
    cr_expect(strstr(log, "enabled: " BASE) != NULL, "%s", log);
    cr_expect(strstr(log, "enabled: " USER) != NULL, "%s", log);
    free(log);
    t = trace_since(mark);
    const char *up[] = {BASE " init", FOLLOW " change added " BASE, USER " init"};
    expect_in_order(t, up, 2);
    cr_expect(strstr(t, USER " init") != NULL, "%s", t);
    free(t);
    /* the order of a later stop follows the new state: dependents first */
    mark = trace_mark();
    cr_expect_eq(stop_berthd(daemon_pid, SIGTERM, 30), 0);
    daemon_pid = 0;
    t = trace_since(mark);
    const char *stop[] = {USER " fini", BASE " fini"};
    expect_in_order(t, stop, 2);
    free(t);
}

Test(reload, changed_section_reinitialises_the_plugin_and_its_dependents)
{
    write_config("", NULL);
    start();
    size_t mark = trace_mark();
    write_config("", "    greeting: bonjour\n");
    char *log = reload();
    cr_expect(strstr(log, "reinitialised: " BASE) != NULL, "%s", log);
    cr_expect(strstr(log, "reinitialised: " USER) != NULL, "%s", log);
    free(log);
    char *t = trace_since(mark);
    const char *seq[] = {USER " fini", BASE " fini", BASE " init greeting=bonjour", USER " init"};
    expect_in_order(t, seq, 4);
    cr_expect(strstr(t, PINNED) == NULL, "unrelated plugins stay:\n%s", t);
    cr_expect(strstr(t, SPARE) == NULL, "unrelated plugins stay:\n%s", t);
    free(t);
}

Test(reload, no_reload_plugin_is_reported_as_needing_a_restart)
{
    write_config("", NULL);
    start();
    size_t mark = trace_mark();
    write_config("\"" PINNED "\"", NULL);
    char *log = reload();
    cr_expect(strstr(log, "needs a restart: " PINNED ": changed; it cannot be reloaded") != NULL,
              "%s", log);
    free(log);
    char *t = trace_since(mark);
    cr_expect(strstr(t, PINNED " fini") == NULL, "%s", t);
    free(t);
}

Test(reload, bad_config_is_refused_with_the_config_check_error_and_changes_nothing)
{
    write_config("", NULL);
    start();
    size_t mark = trace_mark();
    write_config("\"" SPARE "\"", "    greting: typo\n");
    const char *argv[] = {"--config", config, "config", "check", NULL};
    run_result_t check = run_berthd(dirs.empty, argv, 30);
    cr_assert_neq(check.status, 0);
    char *log = reload();
    char *line = line_with(log, "reload refused");
    cr_assert(line != NULL, "%s", log);
    /* the same message, word for word: "berthd: config: <msg>" there, "config: <msg>" here */
    const char *msg = strstr(check.err, "config: ");
    cr_assert(msg != NULL, "%s", check.err);
    char want[1024];
    snprintf(want, sizeof(want), "%.*s", (int)strcspn(msg, "\n"), msg);
    cr_expect(strstr(line, want) != NULL, "want `%s` in `%s`", want, line);
    cr_expect(strstr(want, "greting") != NULL, "%s", want);
    free(line);
    free(log);
    run_free(&check);
    char *t = trace_since(mark);
    cr_expect(strstr(t, " init") == NULL && strstr(t, " fini") == NULL,
              "nothing changes on a refused config:\n%s", t);
    cr_expect(strstr(t, FOLLOW " change reloaded ") != NULL, "followers hear of a refusal too:\n%s",
              t);
    free(t);
    /* and the next good config applies */
    write_config("\"" SPARE "\"", NULL);
    log = reload();
    cr_expect(strstr(log, "disabled: " SPARE) != NULL, "%s", log);
    free(log);
}

Test(reload, failing_reinit_is_reported_and_recovers)
{
    write_config("", NULL);
    start();
    size_t mark = trace_mark();
    write_config("", "    fail: true\n");
    char *log = reload();
    cr_expect(strstr(log, "failed: " BASE ": error: " BASE " failed on purpose") != NULL, "%s",
              log);
    cr_expect(strstr(log, "failed: " USER ": dep-unavailable") != NULL, "%s", log);
    free(log);
    char *t = trace_since(mark);
    const char *seq[] = {USER " fini", BASE " fini", BASE " init failed"};
    expect_in_order(t, seq, 3);
    free(t);
    cr_expect_eq(kill(daemon_pid, 0), 0, "the daemon survives a failed re-init");

    mark = trace_mark();
    write_config("", NULL);
    log = reload();
    cr_expect(strstr(log, "enabled: " BASE) != NULL, "%s", log);
    cr_expect(strstr(log, "enabled: " USER) != NULL, "%s", log);
    free(log);
    t = trace_since(mark);
    const char *back[] = {BASE " init greeting=hello", USER " init"};
    expect_in_order(t, back, 2);
    free(t);
}

Test(reload, replaced_module_file_is_loaded_for_the_reinitialised_plugin)
{
    write_config("", NULL);
    start();
    char *t = read_file(trace);
    cr_expect(strstr(t, BASE " init greeting=hello version=1") != NULL, "%s", t);
    free(t);
    size_t mark = trace_mark();
    char v2[600];
    snprintf(v2, sizeof(v2), "%s/reload-v2", FX_DIR);
    copy_module(v2, "fx_rl_base_v2.so", "fx_rl_base.so");
    char *log = reload();
    cr_expect(strstr(log, "reinitialised: " BASE) != NULL, "%s", log);
    free(log);
    t = trace_since(mark);
    const char *seq[] = {USER " fini", BASE " fini", BASE " init greeting=hello version=2",
                         USER " init"};
    expect_in_order(t, seq, 4);
    free(t);
    /* nothing changed since: the next reload leaves everything alone */
    mark = trace_mark();
    log = reload();
    cr_expect(strstr(log, "reloaded: 0 enabled, 0 disabled, 0 reinitialised, 0 failed") != NULL,
              "%s", log);
    free(log);
    t = trace_since(mark);
    cr_expect(strstr(t, " fini") == NULL, "%s", t);
    free(t);
}

Test(reload, probe_findings_are_kept_by_file_identity)
{
    /* with `disabled` set, the loader probes each file in a child; the daemon keeps what it found */
    write_config("\"" SPARE "\"", NULL);
    start();
    cr_expect_eq(stop_berthd(daemon_pid, SIGTERM, 30), 0);
    daemon_pid = 0;
    char cache[600];
    snprintf(cache, sizeof(cache), "%s/berthd-modules.list", dirs.state);
    char *c = read_file(cache);
    cr_assert(c != NULL, "no %s", cache);
    cr_expect(strstr(c, "/fx_rl_base.so\t" BASE) != NULL, "%s", c);
    cr_expect(strstr(c, "/fx_rl_spare.so\t" SPARE) != NULL, "%s", c);
    free(c);
    /* a replaced file is a new identity: probed again, and its new build is the one that runs */
    char v2[600];
    snprintf(v2, sizeof(v2), "%s/reload-v2", FX_DIR);
    copy_module(v2, "fx_rl_base_v2.so", "fx_rl_base.so");
    size_t mark = trace_mark();
    start();
    char *t = trace_since(mark);
    cr_expect(strstr(t, BASE " init greeting=hello version=2") != NULL, "%s", t);
    cr_expect(strstr(t, SPARE " init") == NULL, "the spare stays disabled:\n%s", t);
    free(t);
    c = read_file(cache);
    cr_expect_eq(count_of(c, "/fx_rl_base.so\t"), 1,
                 "one line per file, the stale one dropped:\n%s", c);
    free(c);
}

Test(reload, module_files_added_and_removed_are_picked_up)
{
    char spare[700];
    snprintf(spare, sizeof(spare), "%s/fx_rl_spare.so", moddir);
    cr_assert_eq(unlink(spare), 0);
    FILE *f = fopen(config, "w"); /* no section for the spare: its module is not there yet */
    cr_assert(f != NULL);
    fprintf(f, "version: 1\nroot: \"%s\"\nstate: \"%s\"\nmodule_dirs: [\"%s\"]\n", dirs.root,
            dirs.state, moddir);
    fprintf(f, "plugins:\n  %s:\n    trace: \"%s\"\n", FOLLOW, trace);
    fclose(f);
    start();
    write_config("", NULL); /* sections for all five, the spare's included */
    char fx[600];
    snprintf(fx, sizeof(fx), "%s/reload", FX_DIR);
    copy_module(fx, "fx_rl_spare.so", "fx_rl_spare.so");
    size_t mark = trace_mark();
    char *log = reload();
    cr_expect(strstr(log, "enabled: " SPARE) != NULL, "a new file's plugin starts:\n%s", log);
    free(log);
    char *t = trace_since(mark);
    cr_expect(strstr(t, SPARE " init") != NULL, "%s", t);
    free(t);

    cr_assert_eq(unlink(spare), 0);
    write_config("", NULL);
    /* its section would now name no known plugin: drop it from the config as an operator would */
    f = fopen(config, "w");
    cr_assert(f != NULL);
    fprintf(f, "version: 1\nroot: \"%s\"\nstate: \"%s\"\nmodule_dirs: [\"%s\"]\n", dirs.root,
            dirs.state, moddir);
    fprintf(f, "plugins:\n  %s:\n    trace: \"%s\"\n", FOLLOW, trace);
    fclose(f);
    mark = trace_mark();
    log = reload();
    cr_expect(strstr(log, "disabled: " SPARE) != NULL, "a removed file's plugin stops:\n%s", log);
    free(log);
    t = trace_since(mark);
    cr_expect(strstr(t, SPARE " fini") != NULL, "%s", t);
    free(t);
}
