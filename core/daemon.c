/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berthd` (run): config, lock, modules, graph, init, hooks, readiness, then the loop until SIGTERM/SIGINT,
 * then fini in reverse order. A second signal during shutdown exits at once.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "notify.h"
#include "paths.h"
#include "util.h"

typedef struct daemon {
    berth__config_t cfg;
    berth__registry_t reg;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    int ready_fd;
    int stopping;
} daemon_t;

static void
set_pool_size(int configured)
{
    int n = configured;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = (int)(cores > 0 ? cores * 4 : 4);
        if (n < 4)
            n = 4;
    }
    if (n > 1024) /* libuv's own ceiling */
        n = 1024;
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", n);
    setenv("UV_THREADPOOL_SIZE", buf, 1);
}

int
berth__lock_root(const char *root, berth_error_t **err)
{
    cleanup_free char *path = berth__xasprintf("%s/berthd.lock", root);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return berth__error_make(err, berth__error_from_errno(errno), "open lock `%s`: %s", path,
                                 strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        return berth__error_make(
            err, BERTH_EUNAVAILABLE,
            "another berthd (pid %s) is already using root %s; give this one its "
            "own --root and --state",
            pid[0] ? pid : "unknown", root);
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    /* written over, then cut to its length: ext4 flushes a file truncated to zero and written again
     * (auto_da_alloc), which cost a disk write at every start */
    if (pwrite(fd, pid, (size_t)len, 0) != len || ftruncate(fd, len) < 0)
        LOG_WARN("write pid to %s: %s", path, strerror(errno));
    return fd;
}

static void
send_ready(berth__registry_t *reg)
{
    daemon_t *d = (daemon_t *)((char *)reg - offsetof(daemon_t, reg));
    berth__notify_ready(d->ready_fd);
    d->ready_fd = -1;
    LOG_INFO("berthd is ready");
}

static void
exit_now(int sig)
{
    static const char msg[] = "berthd: second signal, exiting at once\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(128 + sig);
}

static void
close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        LOG_WARN("closing a libuv handle (type %s) a plugin left open",
                 uv_handle_type_name(h->type));
        uv_close(h, NULL);
    }
}

static void
shutdown_daemon(daemon_t *d, int sig)
{
    d->stopping = 1;
    LOG_INFO("received %s, shutting down", strsignal(sig));
    uv_signal_stop(&d->sig_term);
    uv_signal_stop(&d->sig_int);
    struct sigaction sa = {.sa_handler = exit_now};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    berth__notify_stopping();
    berth__reload_shutdown();
    berth__demand_setup(NULL);
    berth_error_t *err = NULL;
    if (berth__hook_invoke(BERTH_HOOK_DAEMON_PRE_STOP, NULL, &err) < 0) {
        LOG_WARN("%s", berth__error_msg(err));
        berth__error_free(err);
    }
    berth__registry_fini_all(&d->reg);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    berth__call_on_loop_close();
}

static void
on_signal(uv_signal_t *h, int sig)
{
    daemon_t *d = h->data;
    if (sig == SIGHUP) {
        /* containerd exits on SIGHUP (#13285); berthd reloads its config */
        berth_error_t *err = NULL;
        if (!d->stopping && berth__reload_request(NULL, NULL, &err) < 0) {
            LOG_WARN("SIGHUP: %s", berth__error_msg(err));
            berth__error_free(err);
        }
        return;
    }
    if (!d->stopping)
        shutdown_daemon(d, sig);
}

static int
watch_signals(daemon_t *d)
{
    uv_signal_t *hs[] = {&d->sig_term, &d->sig_int, &d->sig_hup};
    int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(&d->loop, hs[i]);
        hs[i]->data = d;
        if (uv_signal_start(hs[i], on_signal, sigs[i]) < 0)
            return -1;
    }
    uv_unref((uv_handle_t *)&d->sig_hup);
    return 0;
}

static int
fail(daemon_t *d, berth_error_t *err, const char *what)
{
    LOG_ERROR("%s: %s", what, berth__error_msg(err));
    fprintf(stderr, "berthd: %s: %s\n", what, berth__error_msg(err));
    berth__error_free(err);
    (void)d;
    return 1;
}

static int
start_plugins(daemon_t *d)
{
    berth_error_t *err = NULL;
    if (berth__registry_check_required(&d->reg, &err) < 0)
        return fail(d, err, "not starting");
    if (berth__registry_init_all(&d->reg) < 0) {
        berth__error_make(&err, BERTH_EPRECONDITION,
                          "a plugin that registered readiness failed to init");
        return fail(d, err, "not starting");
    }
    if (berth__registry_check_required(&d->reg, &err) < 0)
        return fail(d, err, "not starting");
    if (berth__hook_invoke(BERTH_HOOK_DAEMON_PRE_START, NULL, &err) < 0)
        return fail(d, err, "not starting");
    return 0;
}

/* Runs the loop until nothing is left, closing what plugins forgot, then closes the loop. */
static void
finish_loop(uv_loop_t *loop)
{
    berth__call_on_loop_close();
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) == UV_EBUSY) {
        uv_walk(loop, close_handle, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
}

static int
run_daemon(daemon_t *d, const berth__opts_t *o)
{
    berth_error_t *err = NULL;
    if (berth__prepare_registry(&d->reg, o, &err) < 0)
        return fail(d, err, "config");
    if (watch_signals(d) < 0) {
        berth__error_make(&err, BERTH_EINTERNAL, "cannot watch signals");
        return fail(d, err, "not starting");
    }
    d->reg.on_ready = send_ready;
    berth__reload_setup(&d->reg, o);
    berth__defer_at_start(&d->reg, NULL);
    berth__demand_setup(&d->reg);
    if (start_plugins(d) != 0) {
        berth__demand_setup(NULL);
        berth__reload_shutdown();
        d->stopping = 1;
        berth__registry_fini_all(&d->reg);
        uv_close((uv_handle_t *)&d->sig_term, NULL);
        uv_close((uv_handle_t *)&d->sig_int, NULL);
        uv_close((uv_handle_t *)&d->sig_hup, NULL);
        return 1;
    }
    if (d->reg.pending_ready == 0 && !d->reg.ready_sent) {
        d->reg.ready_sent = 1;
        send_ready(&d->reg);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    LOG_INFO("berthd stopped");
    return 0;
}

int
berth__daemon_run(const berth__opts_t *o)
{
    signal(SIGPIPE, SIG_IGN);
    daemon_t *d = berth__xcalloc(1, sizeof(*d));
    d->ready_fd = o->ready_fd;
    berth_error_t *err = NULL;
    int rc = 1, lock_fd = -1;
    if (berth__config_from_opts(&d->cfg, o, &err) < 0) {
        fprintf(stderr, "berthd: config: %s\n", berth__error_msg(err));
        berth__error_free(err);
        goto out;
    }
    berth__log_setup(d->cfg.log_level, d->cfg.log_format);
    set_pool_size(d->cfg.thread_pool_size);
    if (berth__mkdir_all(d->cfg.root, 0711, &err) < 0 ||
        berth__mkdir_all(d->cfg.state, 0711, &err) < 0 ||
        (lock_fd = berth__lock_root(d->cfg.root, &err)) < 0) {
        fprintf(stderr, "berthd: %s\n", berth__error_msg(err));
        berth__error_free(err);
        goto out;
    }
    uv_loop_init(&d->loop);
    berth__call_on_loop_setup(&d->loop);
    berth__registry_init(&d->reg, &d->cfg, &d->loop);
    berth__api_set_registry(&d->reg);
    rc = run_daemon(d, o);
    finish_loop(&d->loop);
    berth__api_set_registry(NULL);
    berth__reload_teardown();
    berth__hooks_reset();
    berth__registry_free(&d->reg);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    if (d->ready_fd >= 0)
        close(d->ready_fd);
    berth__config_free(&d->cfg);
    free(d);
    return rc;
}
