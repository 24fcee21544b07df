/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Containers and tasks through libberth-client on a real berthd with real runc: generated specs, snapshot
 * modes (new, view, remapped), IO to callbacks, files, fds and terminals, exec, pause/resume, kill --all,
 * log_uri and keep_stdin, delete with snapshot cleanup. The busybox fixture is imported with ctr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define IMG "docker.io/library/berth-busybox:latest"

static bct_daemon_t d;
static berth_client_t *c;
static char fifo_dir[512];

static void
import_busybox(void)
{
    char out[512], tar[600];
    snprintf(out, sizeof out, "%s/fx", d.dirs.base);
    const char *build[] = {"/bin/sh", SOURCE_DIR "/tests/fixtures/images/build-image.sh", "busybox",
                           out, NULL};
    run_result_t r = run_prog(build, 120);
    cr_assert_eq(r.status, 0, "build-image.sh: %s", r.err);
    run_free(&r);
    snprintf(tar, sizeof tar, "%s/busybox-oci.tar", out);
    const char *imp[] = {"/usr/bin/ctr", "--address", d.sock, "images", "import", tar, NULL};
    r = run_prog(imp, 120);
    cr_assert_eq(r.status, 0, "ctr images import: %s %s", r.out, r.err);
    run_free(&r);
}

static void
setup(void)
{
    bct_start(&d, NULL);
    snprintf(fifo_dir, sizeof fifo_dir, "%s/fifo", d.dirs.base);
    setenv("BERTH_FIFO_DIR", fifo_dir, 1);
    c = bct_client(&d, NULL);
    import_busybox();
}

/* shims outlive a SIGKILLed berthd: those whose command line names this test's dir go too */
static void
kill_our_shims(void)
{
    DIR *p = opendir("/proc");
    struct dirent *e;
    while (p && (e = readdir(p))) {
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = '\0';
        if (!strncmp(buf, "berth-shim ", 11) && strstr(buf, d.dirs.base))
            kill(atoi(e->d_name), SIGKILL);
    }
    if (p)
        closedir(p);
}

static void
teardown(void)
{
    berth_client_free(c);
    c = NULL;
    /* tasks the test left: their shims */
    const char *argv[] = {"/bin/sh", "-c",
                          "for p in $(cat \"$0\"/state/io.containerd.runtime.v2.task/*/*/*.pid "
                          "2>/dev/null); do kill -9 $p; done; "
                          "grep \" $0/\" /proc/self/mounts | cut -d' ' -f2 | sort -r | "
                          "xargs -r -n1 umount -l",
                          d.dirs.base, NULL};
    run_result_t r = run_prog(argv, 30);
    run_free(&r);
    kill_our_shims();
    bct_stop(&d);
}

TestSuite(run, .init = setup, .fini = teardown, .timeout = 240);

static berth_error_t *err;
#define E (&err)
#define CHECK(expr)                                                           \
    do {                                                                      \
        err = NULL;                                                           \
        int r_ = (expr);                                                      \
        cr_assert_eq(r_, 0, "%s: %d %s", #expr, r_, err ? err->message : ""); \
    } while (0)

typedef struct {
    pthread_mutex_t mu;
    char buf[65536];
    size_t len;
    int eof;
} sink_t;

static void
sink_fn(void *user, int stream, const char *data, size_t len)
{
    (void)stream;
    sink_t *s = user;
    pthread_mutex_lock(&s->mu);
    if (!len)
        s->eof = 1;
    else if (s->len + len < sizeof s->buf) {
        memcpy(s->buf + s->len, data, len);
        s->len += len;
        s->buf[s->len] = '\0';
    }
    pthread_mutex_unlock(&s->mu);
}

static void
create_ct(const char *id, int mode, const char *const *args, size_t n_args, berth_spec_opts_t *so)
{
    berth_spec_opts_t local = {0};
    if (!so)
        so = &local;
    so->args = args, so->n_args = n_args;
    berth_container_opts_t o = {.image = IMG, .snapshot = mode, .spec_opts = so};
    CHECK(berth_container_create(c, NULL, id, &o, NULL, E));
}

/* creates the task with io, starts it, waits; returns the exit status */
static uint32_t
run_task(const char *id, const berth_io_opts_t *io)
{
    berth_io_t *bio = NULL;
    uint32_t pid = 0;
    CHECK(berth_task_create(c, NULL, id, io, &bio, &pid, E));
    cr_assert_gt(pid, 0);
    CHECK(berth_task_start(c, NULL, id, NULL, NULL, E));
    berth_exit_t ex = {0};
    berth_call_t call = {.timeout_ms =
                             30000}; /* a broken IO fails here, not at the suite's timeout */
    CHECK(berth_task_wait(c, &call, id, NULL, &ex, E));
    cr_assert_gt(ex.exited_at_ns, 0);
    berth_io_wait(bio);
    berth_io_free(bio);
    CHECK(berth_task_delete(c, NULL, id, NULL, NULL, E));
    return ex.status;
}

static const char *
kv_get(const berth_kv_t *kv, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, k))
            return kv[i].value;
    return NULL;
}

static int
snapshot_exists(const char *key)
{
    const char *argv[] = {"/usr/bin/ctr", "--address", d.sock, "snapshots", "info", key, NULL};
    run_result_t r = run_prog(argv, 30);
    int ok = r.status == 0;
    run_free(&r);
    return ok;
}

static char *
slurp(const char *path)
{
    char *s = read_file(path);
    cr_assert_not_null(s, "read %s", path);
    return s;
}

Test(run, echo_to_callback_and_file_and_exit_status)
{
    const char *args[] = {"sh", "-c", "echo hello; echo to-err >&2; exit 3"};
    create_ct("r1", BERTH_SNAPSHOT_NEW, args, 3, NULL);
    sink_t out = {.mu = PTHREAD_MUTEX_INITIALIZER};
    char errfile[600];
    snprintf(errfile, sizeof errfile, "%s/r1.err", d.dirs.base);
    berth_io_opts_t io = {.out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out},
                          .err = {.kind = BERTH_STREAM_FILE, .path = errfile}};
    cr_assert_eq(run_task("r1", &io), 3);
    cr_assert_str_eq(out.buf, "hello\n");
    cr_assert(out.eof, "the callback got no EOF");
    char *e = slurp(errfile);
    cr_assert_str_eq(e, "to-err\n");
    free(e);

    /* the image's default command through the generated spec; a file is appended to */
    CHECK(berth_container_delete(c, NULL, "r1", 1, E));
    create_ct("r1", BERTH_SNAPSHOT_NEW, NULL, 0, NULL);
    berth_io_opts_t io2 = {.out = {.kind = BERTH_STREAM_FILE, .path = errfile}};
    cr_assert_eq(run_task("r1", &io2), 0);
    e = slurp(errfile);
    cr_assert_str_eq(e, "to-err\nhello from berth\n");
    free(e);
    CHECK(berth_container_delete(c, NULL, "r1", 1, E));
    /* no FIFO dirs left behind */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", fifo_dir);
    cr_assert_eq(system(cmd), 0, "FIFOs left in %s", fifo_dir);
}

Test(run, stdin_from_fd_and_close_stdin)
{
    const char *args[] = {"cat"};
    create_ct("s1", BERTH_SNAPSHOT_NEW, args, 1, NULL);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "through-stdin\n", 14), 14);
    close(p[1]);
    sink_t out = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_io_opts_t io = {.in = {.kind = BERTH_STREAM_FD, .fd = p[0]},
                          .out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out}};
    cr_assert_eq(run_task("s1", &io), 0);
    close(p[0]);
    cr_assert_str_eq(out.buf, "through-stdin\n");

    /* a source that never ends: cat ends only because stdin is closed */
    cr_assert_eq(pipe(p), 0);
    sink_t out2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_io_opts_t io2 = {.in = {.kind = BERTH_STREAM_FD, .fd = p[0]},
                           .out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out2}};
    berth_io_t *bio = NULL;
    CHECK(berth_task_create(c, NULL, "s1", &io2, &bio, NULL, E));
    CHECK(berth_task_start(c, NULL, "s1", NULL, NULL, E));
    cr_assert_eq(write(p[1], "more\n", 5), 5);
    for (int i = 0; i < 100 && !strstr(out2.buf, "more"); i++)
        usleep(50000);
    cr_assert_str_eq(out2.buf, "more\n");
    berth_io_close_stdin(bio);
    CHECK(berth_task_close_stdin(c, NULL, "s1", NULL, E));
    berth_call_t call = {.timeout_ms = 10000};
    berth_exit_t ex;
    CHECK(berth_task_wait(c, &call, "s1", NULL, &ex, E));
    cr_assert_eq(ex.status, 0);
    berth_io_wait(bio);
    berth_io_free(bio);
    close(p[0]);
    close(p[1]);
    CHECK(berth_task_delete(c, NULL, "s1", NULL, NULL, E));
    CHECK(berth_container_delete(c, NULL, "s1", 1, E));
}

Test(run, terminal_with_resize)
{
    const char *args[] = {"sh", "-c", "sleep 1; tty; stty size"};
    berth_spec_opts_t so = {.tty = 1};
    create_ct("t1", BERTH_SNAPSHOT_NEW, args, 3, &so);
    sink_t out = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_io_opts_t io = {.terminal = 1,
                          .out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out}};
    berth_io_t *bio = NULL;
    CHECK(berth_task_create(c, NULL, "t1", &io, &bio, NULL, E));
    CHECK(berth_task_start(c, NULL, "t1", NULL, NULL, E));
    CHECK(berth_task_resize(c, NULL, "t1", NULL, 111, 33, E));
    berth_exit_t ex;
    CHECK(berth_task_wait(c, NULL, "t1", NULL, &ex, E));
    berth_io_wait(bio);
    berth_io_free(bio);
    cr_assert_eq(ex.status, 0);
    cr_assert(strstr(out.buf, "/dev/pts/"), "no terminal: %s", out.buf);
    cr_assert(strstr(out.buf, "33 111"), "not resized: %s", out.buf);
    CHECK(berth_task_delete(c, NULL, "t1", NULL, NULL, E));
    CHECK(berth_container_delete(c, NULL, "t1", 1, E));
}

static void
start_sleeper(const char *id, const char *script)
{
    const char *args[] = {"sh", "-c", script};
    create_ct(id, BERTH_SNAPSHOT_NEW, args, 3, NULL);
    CHECK(berth_task_create(c, NULL, id, NULL, NULL, NULL, E));
    CHECK(berth_task_start(c, NULL, id, NULL, NULL, E));
}

static const char *
status_of(const char *id, char *buf, size_t sz)
{
    berth_task_info_t t;
    CHECK(berth_task_get(c, NULL, id, NULL, &t, E));
    snprintf(buf, sz, "%s", t.status);
    berth_task_info_free(&t);
    return buf;
}

static void
kill_and_remove(const char *id)
{
    CHECK(berth_task_kill(c, NULL, id, NULL, SIGKILL, 1, E));
    berth_exit_t ex;
    CHECK(berth_task_wait(c, NULL, id, NULL, &ex, E));
    cr_assert_eq(ex.status, 137);
    CHECK(berth_task_delete(c, NULL, id, NULL, NULL, E));
    CHECK(berth_container_delete(c, NULL, id, 1, E));
}

Test(run, exec_in_running_container)
{
    start_sleeper("x1", "sleep 100");
    const char *args[] = {"sh", "-c", "echo exec-out $X; exit 4"}, *env[] = {"X=42"};
    berth_spec_opts_t so = {.args = args, .n_args = 3, .env = env, .n_env = 1};
    char *proc = NULL;
    CHECK(berth_spec_process(c, NULL, "x1", &so, &proc, E));
    sink_t out = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_io_opts_t io = {.out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out}};
    berth_io_t *bio = NULL;
    CHECK(berth_task_exec(c, NULL, "x1", "e1", proc, &io, &bio, E));
    free(proc);
    uint32_t pid = 0;
    CHECK(berth_task_start(c, NULL, "x1", "e1", &pid, E));
    cr_assert_gt(pid, 0);
    berth_exit_t ex;
    CHECK(berth_task_wait(c, NULL, "x1", "e1", &ex, E));
    berth_io_wait(bio);
    berth_io_free(bio);
    cr_assert_eq(ex.status, 4);
    cr_assert_str_eq(out.buf, "exec-out 42\n");
    CHECK(berth_task_delete(c, NULL, "x1", "e1", NULL, E));
    kill_and_remove("x1");
}

Test(run, pause_resume_pids_list)
{
    start_sleeper("p1", "sleep 100");
    berth_task_info_t t;
    CHECK(berth_task_get(c, NULL, "p1", NULL, &t, E));
    uint32_t init = t.pid;
    berth_task_info_free(&t);
    uint32_t *pids = NULL;
    size_t n = 0;
    CHECK(berth_task_pids(c, NULL, "p1", &pids, &n, E));
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= pids[i] == init;
    berth_free(pids);
    cr_assert(found, "init pid %u not among %zu pids", init, n);
    char st[32];
    CHECK(berth_task_pause(c, NULL, "p1", E));
    cr_assert_str_eq(status_of("p1", st, sizeof st), "paused");
    CHECK(berth_task_resume(c, NULL, "p1", E));
    cr_assert_str_eq(status_of("p1", st, sizeof st), "running");
    berth_task_info_t *all = NULL;
    CHECK(berth_task_list(c, NULL, &all, &n, E));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(all[0].id, "p1");
    berth_task_info_free(&all[0]);
    berth_free(all);
    kill_and_remove("p1");
}

Test(run, kill_all)
{
    /* sh is the pid namespace's init: it ignores SIGTERM; only --all reaches the sleep it waits for */
    start_sleeper("k1", "sleep 100 & wait $!");
    usleep(300000);
    CHECK(berth_task_kill(c, NULL, "k1", NULL, SIGTERM, 0, E));
    usleep(500000);
    char st[32];
    cr_assert_str_eq(status_of("k1", st, sizeof st), "running");
    CHECK(berth_task_kill(c, NULL, "k1", NULL, SIGTERM, 1, E));
    berth_call_t call = {.timeout_ms = 10000};
    berth_exit_t ex;
    CHECK(berth_task_wait(c, &call, "k1", NULL, &ex, E));
    cr_assert_eq(ex.status, 143, "status %u", ex.status);
    CHECK(berth_task_delete(c, NULL, "k1", NULL, NULL, E));
    CHECK(berth_container_delete(c, NULL, "k1", 1, E));
}

Test(run, delete_cleans_snapshot_labels_list)
{
    const char *args[] = {"true"};
    berth_kv_t labels[] = {{"a", "b"}, {"keep", "1"}};
    berth_spec_opts_t so = {.args = args, .n_args = 1};
    berth_container_opts_t o = {.image = IMG,
                                .snapshot = BERTH_SNAPSHOT_NEW,
                                .spec_opts = &so,
                                .labels = labels,
                                .n_labels = 2,
                                .network = "none",
                                .ports = "8080:80",
                                .volumes = "v1:/data"};
    berth_container_t *ct = NULL;
    CHECK(berth_container_create(c, NULL, "d1", &o, &ct, E));
    cr_assert_str_eq(ct->snapshot_key, "d1");
    cr_assert_str_eq(ct->snapshotter, "overlayfs");
    cr_assert_str_eq(ct->image, IMG);
    cr_assert(strstr(ct->spec_json, "\"cgroupsPath\":\"/default/d1\""), "%s", ct->spec_json);
    berth_container_free(ct);
    cr_assert(snapshot_exists("d1"));
    CHECK(berth_container_load(c, NULL, "d1", &ct, E));
    cr_assert_str_eq(ct->runtime, BERTH_CLIENT_DEFAULT_RUNTIME);
    int seen = 0;
    for (size_t i = 0; i < ct->n_labels; i++) {
        seen +=
            !strcmp(ct->labels[i].key, "io.berth.network") && !strcmp(ct->labels[i].value, "none");
        seen +=
            !strcmp(ct->labels[i].key, "io.berth.ports") && !strcmp(ct->labels[i].value, "8080:80");
        seen += !strcmp(ct->labels[i].key, "io.berth.volumes") &&
                !strcmp(ct->labels[i].value, "v1:/data");
    }
    cr_assert_eq(seen, 3);
    berth_container_free(ct);

    berth_kv_t upd[] = {{"a", NULL}, {"c", "d"}};
    CHECK(berth_container_set_labels(c, NULL, "d1", upd, 2, E));
    berth_container_t *list = NULL;
    size_t n = 0;
    const char *f[] = {"labels.c==d"};
    CHECK(berth_container_list(c, NULL, f, 1, &list, &n, E));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(list[0].id, "d1");
    cr_assert_null(kv_get(list[0].labels, list[0].n_labels, "a"));
    cr_assert_str_eq(kv_get(list[0].labels, list[0].n_labels, "keep"), "1");
    berth_containers_free(list, n);
    const char *f2[] = {"labels.a==b"};
    CHECK(berth_container_list(c, NULL, f2, 1, &list, &n, E));
    cr_assert_eq(n, 0);
    berth_containers_free(list, n);

    /* an existing id: the new snapshot is removed again */
    create_ct("d2", BERTH_SNAPSHOT_NEW, args, 1, NULL);
    berth_container_opts_t dup = {
        .image = IMG, .snapshot = BERTH_SNAPSHOT_NEW, .snapshot_key = "d1-other", .spec_opts = &so};
    err = NULL;
    cr_assert_eq(berth_container_create(c, NULL, "d2", &dup, NULL, E), BERTH_EEXIST);
    berth_error_free(err);
    cr_assert(!snapshot_exists("d1-other"), "a failed create left its snapshot");

    /* a lease keeps both snapshots from the garbage collector: only the delete's cleanup removes one */
    berth_lease_t *lease = NULL;
    CHECK(berth_lease_create(c, NULL, "keep", 0, &lease, E));
    berth_leases_free(lease, 1);
    CHECK(berth_lease_add_resource(c, NULL, "keep", "d1", "snapshots/overlayfs", E));
    CHECK(berth_lease_add_resource(c, NULL, "keep", "d2", "snapshots/overlayfs", E));
    CHECK(berth_container_delete(c, NULL, "d1", 1, E));
    cr_assert(!snapshot_exists("d1"), "delete with cleanup left the snapshot");
    /* an existing snapshot: d2's is reused by d3; a missing one is an error */
    berth_container_opts_t ex = {
        .image = IMG, .snapshot = BERTH_SNAPSHOT_EXISTING, .snapshot_key = "d2", .spec_opts = &so};
    CHECK(berth_container_create(c, NULL, "d3", &ex, &ct, E));
    cr_assert_str_eq(ct->snapshot_key, "d2");
    berth_container_free(ct);
    CHECK(berth_container_delete(c, NULL, "d3", 0, E));
    ex.snapshot_key = "nope";
    err = NULL;
    cr_assert_eq(berth_container_create(c, NULL, "d4", &ex, NULL, E), BERTH_ENOTFOUND);
    berth_error_free(err);
    CHECK(berth_container_delete(c, NULL, "d2", 0, E));
    cr_assert(snapshot_exists("d2"), "delete without cleanup removed the snapshot");
    err = NULL;
    cr_assert_eq(berth_container_load(c, NULL, "d1", &ct, E), BERTH_ENOTFOUND);
    cr_assert(strstr(err->message, "d1"), "%s", err->message);
    berth_error_free(err);
}

/* The spec without its /run tmpfs: runc cannot make the mount point in a read-only rootfs that lacks it */
static char *
spec_without_run(const char *id, const char *const *args, size_t n)
{
    berth_spec_opts_t so = {.args = args, .n_args = n};
    char *spec = NULL;
    CHECK(berth_spec_generate(c, NULL, id, IMG, &so, NULL, &spec, E));
    json_object *j = json_tokener_parse(spec), *mounts = NULL;
    cr_assert(json_object_object_get_ex(j, "mounts", &mounts));
    for (size_t i = 0; i < json_object_array_length(mounts); i++) {
        json_object *m = json_object_array_get_idx(mounts, i), *dst = NULL;
        json_object_object_get_ex(m, "destination", &dst);
        if (!strcmp(json_object_get_string(dst), "/run"))
            json_object_array_del_idx(mounts, i--, 1);
    }
    free(spec);
    spec = strdup(json_object_to_json_string(j));
    json_object_put(j);
    return spec;
}

Test(run, view_is_read_only_new_is_not)
{
    const char *args[] = {"sh", "-c", "touch /x && echo wrote"};
    for (int view = 1; view >= 0; view--) {
        const char *id = view ? "v1" : "v2";
        char *spec = spec_without_run(id, args, 3);
        berth_container_opts_t o = {.image = IMG,
                                    .spec_json = spec,
                                    .snapshot = view ? BERTH_SNAPSHOT_VIEW : BERTH_SNAPSHOT_NEW};
        CHECK(berth_container_create(c, NULL, id, &o, NULL, E));
        free(spec);
        sink_t out = {.mu = PTHREAD_MUTEX_INITIALIZER};
        berth_io_opts_t io = {.out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out},
                              .err = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out}};
        uint32_t st = run_task(id, &io);
        if (view)
            cr_assert(st != 0 && strstr(out.buf, "Read-only file system"),
                      "a view snapshot was writable: %u %s", st, out.buf);
        else
            cr_assert(st == 0 && !strcmp(out.buf, "wrote\n"), "a new snapshot: %u %s", st, out.buf);
        CHECK(berth_container_delete(c, NULL, id, 1, E));
    }
}

Test(run, remapped_snapshot_and_user_name)
{
    const char *args[] = {"sh", "-c", "ls -ln /etc/passwd; id"};
    berth_spec_opts_t so = {.args = args, .n_args = 3, .user = "nobody"};
    berth_container_opts_t o = {.image = IMG,
                                .snapshot = BERTH_SNAPSHOT_NEW,
                                .remap = 1,
                                .remap_uid = 1000,
                                .remap_gid = 2000,
                                .spec_opts = &so};
    CHECK(berth_container_create(c, NULL, "m1", &o, NULL, E));
    sink_t out = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_io_opts_t io = {.out = {.kind = BERTH_STREAM_CALLBACK, .fn = sink_fn, .user = &out}};
    cr_assert_eq(run_task("m1", &io), 0, "%s", out.buf);
    cr_assert(strstr(out.buf, " 1000 ") && strstr(out.buf, " 2000 "), "not shifted: %s", out.buf);
    cr_assert(strstr(out.buf, "uid=65534"), "user name not resolved: %s", out.buf);
    /* a second container shares the committed remapped parent */
    berth_spec_opts_t so2 = {.args = args, .n_args = 3};
    o.spec_opts = &so2;
    CHECK(berth_container_create(c, NULL, "m2", &o, NULL, E));
    CHECK(berth_container_delete(c, NULL, "m1", 1, E));
    CHECK(berth_container_delete(c, NULL, "m2", 1, E));
    cr_assert(!snapshot_exists("m1"));
}

Test(run, log_uri_and_keep_stdin)
{
    const char *args[] = {"sleep", "100"};
    create_ct("l1", BERTH_SNAPSHOT_NEW, args, 2, NULL);
    char uri[700];
    snprintf(uri, sizeof uri, "file://%s/l1.log", d.dirs.base);
    berth_io_opts_t io = {.log_uri = uri, .keep_stdin = 1};
    berth_io_t *bio = NULL;
    CHECK(berth_task_create(c, NULL, "l1", &io, &bio, NULL, E));
    CHECK(berth_task_start(c, NULL, "l1", NULL, NULL, E));
    char in[700];
    snprintf(in, sizeof in, "%s", berth_io_stdin_path(bio));
    cr_assert(strncmp(in, fifo_dir, strlen(fifo_dir)) == 0, "stdin FIFO %s", in);
    berth_io_free(bio);
    struct stat st;
    cr_assert_eq(stat(in, &st), 0, "keep_stdin's FIFO is gone");
    cr_assert(S_ISFIFO(st.st_mode));
    berth_task_info_t t;
    CHECK(berth_task_get(c, NULL, "l1", NULL, &t, E));
    cr_assert_str_eq(t.stdout_path, uri);
    cr_assert_str_eq(t.stderr_path, uri);
    cr_assert_str_eq(t.stdin_path, in);
    berth_task_info_free(&t);
    kill_and_remove("l1");
    unlink(in);
}

Test(run, image_config_and_size)
{
    char *cfg = NULL;
    CHECK(berth_image_config(c, NULL, IMG, &cfg, E));
    cr_assert(strstr(cfg, "cat /etc/berth-greeting") && strstr(cfg, "\"diff_ids\""), "%s", cfg);
    berth_free(cfg);
    /* manifest + config + layer: the fixture layout's three blobs */
    int64_t size = 0, want = 0;
    CHECK(berth_image_size(c, NULL, IMG, &size, E));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/fx/busybox-oci/blobs/sha256", d.dirs.base);
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dp))) {
        char p[900];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0) {
            want += st.st_size;
            n++;
        }
    }
    closedir(dp);
    cr_assert_eq(n, 3);
    cr_assert_eq(size, want, "size %lld, the blobs %lld", (long long)size, (long long)want);
    err = NULL;
    cr_assert_eq(berth_image_size(c, NULL, "docker.io/library/nope:latest", &size, E),
                 BERTH_ENOTFOUND);
    cr_assert(strstr(err->message, "nope"), "%s", err->message);
    berth_error_free(err);
}
