/* SPDX-License-Identifier: Apache-2.0 */
/* berthd as a daemon: readiness, reverse-order fini, config delivery, locking, signals, hooks. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

static test_dirs_t dirs;
static char trace[400], errlog[400], set_dirs[600];

static void
setup(void)
{
    dirs_make(&dirs);
    snprintf(trace, sizeof(trace), "%s/trace", dirs.base);
    snprintf(errlog, sizeof(errlog), "%s/stderr", dirs.base);
}

static void
teardown(void)
{
    dirs_remove(&dirs);
}

TestSuite(daemon, .init = setup, .fini = teardown);

/* Each of expected[] occurs in text, in this order. */
static void
expect_in_order(const char *text, const char *const *expected, size_t n)
{
    const char *missing = missing_in_order(text, expected, n);
    cr_assert(missing == NULL, "`%s` missing or out of order in:\n%s", missing, text);
}

/* argv for a daemon over one fixture scenario whose plugins all write to `trace`. */
static const char **
daemon_args(const char *scenario, const char *const *extra)
{
    static const char *argv[48];
    static char sets[8][700];
    snprintf(set_dirs, sizeof(set_dirs), "module_dirs=[\"%s/%s\"]", FX_DIR, scenario);
    size_t n = 0;
    argv[n++] = "--root";
    argv[n++] = dirs.root;
    argv[n++] = "--state";
    argv[n++] = dirs.state;
    argv[n++] = "--set";
    argv[n++] = set_dirs;
    const char *uris[] = {"test.life.base.v1.base", "test.life.mid.v1.mid",
                          "test.life.top.v1.top",   "test.hook.lo.v1.lo",
                          "test.hook.hi.v1.hi",     "test.hook.veto.v1.veto"};
    for (size_t i = 0; i < 6 && strcmp(scenario, "life") == 0 && i < 3; i++) {
        snprintf(sets[i], sizeof(sets[i]), "plugins.%s.trace=\"%s\"", uris[i], trace);
        argv[n++] = "--set";
        argv[n++] = sets[i];
    }
    for (size_t i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return argv;
}

Test(daemon, default_config_with_real_modules_starts_and_stops)
{
    const char *argv[] = {"--root", dirs.root, "--state", dirs.state, NULL};
    int status = 0;
    pid_t pid = start_berthd(MODULE_DIR, argv, errlog, 30, &status);
    char *log = read_file(errlog);
    cr_assert_gt(pid, 0, "berthd never became ready (exit %d):\n%s", status, log);
    free(log);
    cr_expect_eq(stop_berthd(pid, SIGTERM, 30), 0);
    log = read_file(errlog);
    cr_expect(strstr(log, "berthd stopped") != NULL, "%s", log);
    free(log);

    const char *margv[] = {"modules", "--root", dirs.root, "--state", dirs.state, NULL};
    run_result_t r = run_berthd(MODULE_DIR, margv, 30);
    cr_expect_eq(r.status, 0);
    char *row = line_with(r.out, "io.containerd.event.v1.exchange");
    cr_assert(row != NULL, "%s", r.out);
    cr_expect(strstr(row, " ok ") != NULL, "%s", row);
    free(row);
    run_free(&r);
}

Test(daemon, fini_runs_in_reverse_init_order)
{
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("life", NULL), errlog, 30, &status);
    cr_assert_gt(pid, 0, "exit %d", status);
    cr_assert_eq(stop_berthd(pid, SIGTERM, 30), 0);
    char *t = read_file(trace);
    const char *expected[] = {"test.life.base.v1.base init", "test.life.mid.v1.mid init",
                              "test.life.top.v1.top init",   "test.life.top.v1.top fini",
                              "test.life.mid.v1.mid fini",   "test.life.base.v1.base fini"};
    expect_in_order(t, expected, 6);
    free(t);
}

Test(daemon, plugin_gets_its_config_and_dirs)
{
    const char *extra[] = {"--set", "plugins.test.life.base.v1.base.greeting=howdy", NULL};
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("life", extra), errlog, 30, &status);
    cr_assert_gt(pid, 0, "exit %d", status);
    cr_expect_eq(stop_berthd(pid, SIGTERM, 30), 0);
    char *t = read_file(trace);
    cr_expect(strstr(t, "test.life.base.v1.base init greeting=howdy dirs=ok") != NULL, "%s", t);
    cr_expect(strstr(t, "test.life.mid.v1.mid init greeting=hello dirs=ok") != NULL, "%s", t);
    free(t);
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/test.life.base.v1.base", dirs.root);
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    cr_expect_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/test.life.base.v1.base", dirs.state);
    cr_expect_eq(stat(path, &st), 0, "%s", path);
    cr_expect_eq(stat(dirs.state, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0711);
}

Test(daemon, second_daemon_on_the_same_root_is_refused)
{
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("life", NULL), errlog, 30, &status);
    cr_assert_gt(pid, 0);
    const char *argv[] = {"--root", dirs.root, "--state", dirs.state, NULL};
    run_result_t r = run_berthd(dirs.empty, argv, 30);
    cr_expect_eq(r.status, 1, "second berthd exit %d", r.status);
    char needle[64];
    snprintf(needle, sizeof(needle), "another berthd (pid %d) is already using root", pid);
    cr_expect(strstr(r.err, needle) != NULL, "%s", r.err);
    run_free(&r);
    cr_expect_eq(stop_berthd(pid, SIGTERM, 30), 0);
}

Test(daemon, sigint_stops_cleanly_too)
{
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("life", NULL), errlog, 30, &status);
    cr_assert_gt(pid, 0);
    cr_expect_eq(stop_berthd(pid, SIGINT, 30), 0);
    char *t = read_file(trace);
    cr_expect(strstr(t, "test.life.base.v1.base fini") != NULL, "%s", t);
    free(t);
}

static double
seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(daemon, second_signal_exits_at_once)
{
    const char *extra[] = {"--set", "plugins.test.life.base.v1.base.fini_sleep_ms=20000", NULL};
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("life", extra), errlog, 30, &status);
    cr_assert_gt(pid, 0);
    kill(pid, SIGTERM);
    /* wait until the first fini (top's) ran, so shutdown is in progress and base is sleeping */
    for (int i = 0; i < 500; i++) {
        char *t = read_file(trace);
        int done = strstr(t, "test.life.mid.v1.mid fini") != NULL;
        free(t);
        if (done)
            break;
        usleep(10000);
    }
    double t0 = seconds();
    int rc = stop_berthd(pid, SIGINT, 10);
    cr_expect_eq(rc, 128 + SIGINT, "exit %d", rc);
    cr_expect_lt(seconds() - t0, 5.0);
}

Test(daemon, failing_required_plugin_stops_before_ready)
{
    char set_req[] = "required=[test.graph.fail.v1.fail]";
    const char *extra[] = {"--set", set_req, NULL};
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("graph", extra), errlog, 30, &status);
    cr_assert_lt(pid, 0, "berthd became ready although a required plugin failed");
    cr_expect_eq(status, 1);
    char *log = read_file(errlog);
    cr_expect(strstr(log, "required plugin test.graph.fail.v1.fail is error") != NULL, "%s", log);
    free(log);
}

Test(daemon, hooks_run_by_priority_then_config_order)
{
    char s1[600], s2[600], s3[600], s4[600];
    snprintf(s1, sizeof(s1), "plugins.test.hook.tie2.v1.t.trace=\"%s\"", trace);
    snprintf(s2, sizeof(s2), "plugins.test.hook.tie1.v1.t.trace=\"%s\"", trace);
    snprintf(s3, sizeof(s3), "plugins.test.hook.lo.v1.lo.trace=\"%s\"", trace);
    snprintf(s4, sizeof(s4), "plugins.test.hook.hi.v1.hi.trace=\"%s\"", trace);
    /* tie2's section comes first in the config, so it runs before tie1 at equal priority */
    const char *extra[] = {"--set", s1, "--set", s2, "--set", s3, "--set", s4, NULL};
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("hooks", extra), errlog, 30, &status);
    cr_assert_gt(pid, 0, "exit %d", status);
    cr_expect_eq(stop_berthd(pid, SIGTERM, 30), 0);
    char *t = read_file(trace);
    const char *expected[] = {"test.hook.hi.v1.hi hook", "test.hook.tie2.v1.t hook",
                              "test.hook.tie1.v1.t hook", "test.hook.lo.v1.lo hook"};
    expect_in_order(t, expected, 4);
    free(t);
}

Test(daemon, veto_hook_stops_the_start)
{
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("veto", NULL), errlog, 30, &status);
    cr_assert_lt(pid, 0, "berthd became ready despite a veto");
    cr_expect_eq(status, 1);
    char *log = read_file(errlog);
    cr_expect(strstr(log, "daemon.pre-start hook of test.hook.veto.v1.veto: test.hook.veto.v1.veto "
                          "vetoes the start") != NULL,
              "%s", log);
    free(log);
}

Test(daemon, notify_socket_gets_ready)
{
    char sock[400];
    snprintf(sock, sizeof(sock), "%s/notify.sock", dirs.base);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(sock), sizeof(sa.sun_path));
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", sock, 1);
    int status = 0;
    pid_t pid = start_berthd(dirs.empty, daemon_args("life", NULL), errlog, 30, &status);
    unsetenv("NOTIFY_SOCKET");
    cr_assert_gt(pid, 0);
    char buf[64] = "";
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    cr_expect_gt(n, 0);
    cr_expect_str_eq(buf, "READY=1");
    cr_expect_eq(stop_berthd(pid, SIGTERM, 30), 0);
    close(fd);
}

Test(daemon, config_error_names_file_line_column_and_key)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/bad.yaml", dirs.base);
    FILE *f = fopen(path, "w");
    fputs("version: 1\nroot: /tmp/x\nlog_levle: debug\n", f);
    fclose(f);
    const char *argv[] = {"config", "check", "--config", path, NULL};
    run_result_t r = run_berthd(dirs.empty, argv, 30);
    cr_expect_eq(r.status, 1);
    char needle[500];
    snprintf(needle, sizeof(needle), "%s:3:1: log_levle: unknown key", path);
    cr_expect(strstr(r.err, needle) != NULL, "%s", r.err);
    run_free(&r);

    const char *run_argv[] = {"--config", path, NULL};
    r = run_berthd(dirs.empty, run_argv, 30);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, needle) != NULL, "%s", r.err);
    run_free(&r);
}

Test(daemon, config_default_is_a_valid_config)
{
    const char *argv[] = {"config", "default", NULL};
    run_result_t r = run_berthd(MODULE_DIR, argv, 30);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "io.containerd.event.v1.exchange") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "root: /var/lib/berth") != NULL, "%s", r.out);
    char path[400];
    snprintf(path, sizeof(path), "%s/default.yaml", dirs.base);
    FILE *f = fopen(path, "w");
    fputs(r.out, f);
    fclose(f);
    run_free(&r);
    const char *check[] = {"config", "check", "--config", path, NULL};
    r = run_berthd(MODULE_DIR, check, 30);
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_free(&r);
}

Test(daemon, config_dump_shows_set_values)
{
    const char *argv[] = {"config", "dump",       "--set", "log_level=debug",
                          "--root", "/srv/berth", NULL};
    run_result_t r = run_berthd(dirs.empty, argv, 30);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "log_level: debug") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "root: /srv/berth") != NULL, "%s", r.out);
    run_free(&r);
}

Test(daemon, bad_set_is_rejected)
{
    const char *argv[] = {"config", "check", "--set", "thread_pool_size", NULL};
    run_result_t r = run_berthd(dirs.empty, argv, 30);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "thread_pool_size") != NULL, "%s", r.err);
    run_free(&r);
}
