/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth run, create, start, stop, kill, rm, ps, exec, attach, inspect.
 *
 * run: the container (snapshot, spec, record) in one library call, then the task with its IO; a thread
 * sends the Wait before the Start goes out, so the exit is never missed and no poll is needed. Signals
 * (SIGINT, SIGTERM, SIGHUP, SIGUSR1/2, SIGQUIT) are blocked before any thread exists and taken by one
 * thread with sigwait, which forwards them to the task (and SIGWINCH to a resize).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

#define LABEL_LOG_URI "io.berth.log-uri"
#define LABEL_STDIN "io.berth.cli.stdin"
#define LABEL_EXIT_CODE "io.berth.cli.exit-code"
#define LABEL_EXITED_AT "io.berth.cli.exited-at"

static int task_state(struct ctx *x, const char *id, berth_task_info_t *ti);
static int task_remove(struct ctx *x, const char *id, const berth_task_info_t *ti,
                       berth_error_t **e);

/* ---- the terminal ------------------------------------------------------------------------------------- */

static struct termios saved_tio;
static int raw_on;

static void
tty_restore(void)
{
    if (raw_on) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
        raw_on = 0;
    }
}

static void
tty_raw(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return;
    struct termios t = saved_tio;
    cfmakeraw(&t); /* the container's own terminal does the line discipline */
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == 0) {
        raw_on = 1;
        atexit(tty_restore);
    }
}

/* ---- signals ------------------------------------------------------------------------------------------ */

static sigset_t fwd_set;

static void
block_signals(void)
{
    sigemptyset(&fwd_set);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaddset(&fwd_set, sigs[i]);
        /* a shell starts background jobs with SIGINT and SIGQUIT ignored; sigwait needs them delivered */
        signal(sigs[i], SIG_DFL);
    }
    pthread_sigmask(SIG_BLOCK, &fwd_set, NULL);
}

struct fwd {
    struct ctx *x;
    const char *id, *exec_id;
    int tty;
};

static void
resize(struct fwd *f)
{
    struct winsize ws;
    if (!f->tty || ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
        return;
    berth_error_t *e = NULL;
    if (berth_task_resize(cli_client(f->x), cli_call(f->x), f->id, f->exec_id, ws.ws_col, ws.ws_row,
                          &e) < 0)
        berth_error_free(e); /* the task may just have exited */
}

static void *
fwd_thread(void *arg)
{
    struct fwd *f = arg;
    berth_call_t call = {.namespace_ = g.namespace_};
    for (;;) {
        int sig;
        if (sigwait(&fwd_set, &sig) != 0)
            continue;
        if (sig == SIGWINCH) {
            resize(f);
            continue;
        }
        berth_error_t *e = NULL;
        if (berth_task_kill(cli_client(f->x), &call, f->id, f->exec_id, sig, 0, &e) < 0)
            berth_error_free(e);
    }
    return NULL;
}

static void
start_forwarding(struct ctx *x, const char *id, const char *exec_id, int tty)
{
    static struct fwd f;
    f = (struct fwd){x, id, exec_id, tty};
    pthread_t t;
    if (pthread_create(&t, NULL, fwd_thread, &f) != 0)
        die("cannot start the signal thread");
    pthread_detach(t);
}

/* ---- waiting ------------------------------------------------------------------------------------------ */

struct waiter {
    struct ctx *x;
    const char *id, *exec_id;
    berth_exit_t ex;
    int rc;
    berth_error_t *e;
    pthread_t t;
};

static void *
wait_thread(void *arg)
{
    struct waiter *w = arg;
    w->rc =
        berth_task_wait(cli_client(w->x), cli_call_forever(w->x), w->id, w->exec_id, &w->ex, &w->e);
    return NULL;
}

static void
wait_begin(struct waiter *w, struct ctx *x, const char *id, const char *exec_id)
{
    *w = (struct waiter){.x = x, .id = id, .exec_id = exec_id};
    if (pthread_create(&w->t, NULL, wait_thread, w) != 0)
        die("cannot start the wait thread");
}

static int
wait_end(struct waiter *w)
{
    pthread_join(w->t, NULL);
    if (w->rc < 0)
        die_err(w->x, w->e);
    return (int)w->ex.status;
}

/* ---- create ------------------------------------------------------------------------------------------- */

/* "[hostIP:]hostPort:containerPort[/proto]" */
static void
check_port(const char *spec)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *proto = strchr(buf, '/');
    if (proto) {
        *proto++ = 0;
        if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp"))
            die("invalid port spec \"%s\": unknown protocol \"%s\" (tcp, udp or sctp)", spec,
                proto);
    }
    char *parts[4];
    int n = 0;
    for (char *s = buf, *p; n < 4 && (p = strsep(&s, ":"));)
        parts[n++] = p;
    if (n < 2 || n > 3)
        die("invalid port spec \"%s\": expected [hostIP:]hostPort:containerPort[/proto]", spec);
    for (int i = n - 2; i < n; i++) {
        char *end;
        long v = strtol(parts[i], &end, 10);
        if (!*parts[i] || *end || v < 1 || v > 65535)
            die("invalid port spec \"%s\": \"%s\" is not a port (1-65535)", spec, parts[i]);
    }
    if (n == 3) {
        unsigned a, b, c, d;
        char extra;
        if (sscanf(parts[0], "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4 || a > 255 || b > 255 ||
            c > 255 || d > 255)
            die("invalid port spec \"%s\": \"%s\" is not an IPv4 address", spec, parts[0]);
    }
}

/* "name:/path[:ro|rw]" or "/host:/path[:ro|rw]"; returns the spec without ":rw" (malloc'd) */
static char *
check_volume(const char *spec)
{
    char *buf = strdup(spec), *parts[4];
    int n = 0;
    for (char *s = buf, *p; n < 4 && (p = strsep(&s, ":"));)
        parts[n++] = p;
    if (n < 2 || n > 3)
        die("invalid volume spec \"%s\": expected name:/path[:ro] or /host/dir:/path[:ro]", spec);
    if (!parts[0][0])
        die("invalid volume spec \"%s\": no source", spec);
    if (parts[0][0] != '/') {
        for (const char *p = parts[0]; *p; p++)
            if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
                !(*p >= '0' && *p <= '9') &&
                !(p > parts[0] && (*p == '_' || *p == '.' || *p == '-')))
                die("invalid volume spec \"%s\": \"%s\" is neither a volume name nor an absolute "
                    "path",
                    spec, parts[0]);
    }
    if (parts[1][0] != '/')
        die("invalid volume spec \"%s\": the mount point \"%s\" is not an absolute path", spec,
            parts[1]);
    if (n == 3 && strcmp(parts[2], "ro") && strcmp(parts[2], "rw"))
        die("invalid volume spec \"%s\": unknown mode \"%s\" (ro or rw)", spec, parts[2]);
    char *out;
    if (asprintf(&out, "%s:%s%s", parts[0], parts[1],
                 n == 3 && !strcmp(parts[2], "ro") ? ":ro" : "") < 0)
        die("out of memory");
    free(buf);
    return out;
}

static int64_t
parse_bytes(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    int64_t mul = 1;
    if (*end) {
        switch (*end | 0x20) {
        case 'b':
            mul = 1;
            break;
        case 'k':
            mul = 1024;
            break;
        case 'm':
            mul = 1024 * 1024;
            break;
        case 'g':
            mul = 1024LL * 1024 * 1024;
            break;
        default:
            mul = 0;
        }
        end++;
        if (*end == 'b' || *end == 'B')
            end++;
    }
    if (s == end || *end || mul == 0 || v <= 0)
        die("invalid memory size \"%s\": a number with an optional unit (b, k, m, g)", s);
    return (int64_t)(v * (double)mul);
}

static char *
join_list(const char **l, size_t n, char *(*check)(const char *))
{
    size_t len = 1;
    char **items = calloc(n + 1, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i] = check ? check(l[i]) : strdup(l[i]);
        len += strlen(items[i]) + 1;
    }
    char *out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, items[i]);
        free(items[i]);
    }
    free(items);
    return out;
}

static char *
port_dup(const char *s)
{
    check_port(s);
    return strdup(s);
}

static berth_kv_t *
parse_labels(const char **l, size_t n, size_t extra)
{
    berth_kv_t *kv = calloc(n + extra + 1, sizeof *kv);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(l[i], '=');
        kv[i].key = eq ? strndup(l[i], (size_t)(eq - l[i])) : strdup(l[i]);
        kv[i].value = strdup(eq ? eq + 1 : "");
        if (!kv[i].key[0])
            die("invalid label \"%s\": expected KEY=VALUE", l[i]);
    }
    return kv;
}

static void
mkdir_p(const char *path)
{
    char *p = strdup(path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        die("mkdir %s: %m", p);
    free(p);
}

static int
valid_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* Creates the container run and create describe; pulls a missing image first. Returns the id. */
static char *
create_container(struct ctx *x)
{
    /* everything the user typed is checked before the first RPC */
    size_t n_ports, n_vols, n_env, n_add, n_drop, n_labels;
    const char **ports = flist(x, "publish", &n_ports), **vols = flist(x, "volume", &n_vols);
    char *port_s = n_ports ? join_list(ports, n_ports, port_dup) : NULL;
    char *vol_s = n_vols ? join_list(vols, n_vols, check_volume) : NULL;
    const char *pull = fstr(x, "pull");
    if (strcmp(pull, "missing") && strcmp(pull, "always") && strcmp(pull, "never"))
        die("invalid --pull \"%s\": missing, always or never", pull);
    berth_spec_opts_t so = {0};
    so.env = flist(x, "env", &n_env);
    so.n_env = n_env;
    for (size_t i = 0; i < n_env; i++)
        if (!strchr(so.env[i], '='))
            die("invalid environment variable \"%s\": expected K=V", so.env[i]);
    so.args = (const char *const *)x->argv + 1;
    so.n_args = (size_t)x->argc - 1;
    const char *ep[1];
    if (fset(x, "entrypoint")) {
        so.replace_entrypoint = 1;
        ep[0] = fstr(x, "entrypoint");
        so.entrypoint = ep;
        so.n_entrypoint = ep[0][0] ? 1 : 0;
    }
    so.cwd = fstr(x, "workdir");
    so.user = fstr(x, "user");
    so.tty = fbool(x, "tty");
    so.hostname = fstr(x, "hostname");
    so.host_resolv_conf = 1;
    so.host_hosts = 1;
    so.readonly_rootfs = fbool(x, "read-only");
    so.privileged = fbool(x, "privileged");
    so.cap_add = flist(x, "cap-add", &n_add);
    so.n_cap_add = n_add;
    so.cap_drop = flist(x, "cap-drop", &n_drop);
    so.n_cap_drop = n_drop;
    if (fset(x, "memory"))
        so.memory_limit = parse_bytes(fstr(x, "memory"));
    if (fset(x, "cpus")) {
        char *end;
        so.cpus = strtod(fstr(x, "cpus"), &end);
        if (*end || so.cpus <= 0)
            die("invalid --cpus \"%s\": a positive number", fstr(x, "cpus"));
    }
    const char *name = fstr(x, "name");
    if (name && !valid_name(name))
        die("invalid container name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name);
    char *id = name ? strdup(name) : random_hex(12);
    char *image = normalize_image(x->argv[0]);

    const char **ul = flist(x, "label", &n_labels);
    berth_kv_t *labels = parse_labels(ul, n_labels, 2);
    size_t nl = n_labels;
    char *uri = log_uri(g.namespace_, id);
    labels[nl].key = strdup(LABEL_LOG_URI);
    labels[nl++].value = uri;
    if (fbool(x, "interactive")) {
        labels[nl].key = strdup(LABEL_STDIN);
        labels[nl++].value = strdup("1");
    }
    /* the snapshot's key is not the name: a create killed before its record was written leaves a snapshot
     * (garbage its lease holds until it expires) that must not keep the name from being used again */
    char *hex = random_hex(8), *key = NULL;
    if (asprintf(&key, "%s-%s", id, hex) < 0)
        die("out of memory");
    free(hex);
    berth_container_opts_t co = {.image = image,
                                 .snapshot = BERTH_SNAPSHOT_NEW,
                                 .snapshot_key = key,
                                 .snapshotter = fstr(x, "snapshotter"),
                                 .labels = labels,
                                 .n_labels = nl,
                                 .runtime = fstr(x, "runtime"),
                                 .network = fstr(x, "network"),
                                 .ports = port_s,
                                 .volumes = vol_s,
                                 .spec_opts = &so};
    int quiet = fbool(x, "quiet"), plain = fbool(x, "plain-http");
    if (!strcmp(pull, "always"))
        image_pull(x, image, quiet, plain, NULL, stderr);
    berth_error_t *e = NULL;
    berth_client_t *c = cli_client(x);
    if (berth_container_create(c, cli_call(x), id, &co, NULL, &e) < 0) {
        if (e->code != BERTH_ENOTFOUND)
            die_err(x, e);
        berth_error_t *e2 = NULL;
        berth_image_t *img = NULL;
        if (berth_image_get(c, cli_call(x), image, &img, &e2) == 0 || e2->code != BERTH_ENOTFOUND) {
            berth_error_free(e2);
            berth_image_free(img);
            die_err(x, e); /* something else was not found */
        }
        berth_error_free(e2);
        berth_error_free(e);
        e = NULL;
        if (!strcmp(pull, "never"))
            die("image \"%s\": not found (and --pull never)", image);
        if (!quiet)
            fprintf(stderr, "Unable to find image '%s' locally\n", familiar_name(image));
        image_pull(x, image, quiet, plain, NULL, stderr);
        if (berth_container_create(c, cli_call(x), id, &co, NULL, &e) < 0)
            die_err(x, e);
    }
    berth_kv_free(labels, nl);
    free(key);
    free(image);
    free(port_s);
    free(vol_s);
    return id;
}

int
cmd_create(struct ctx *x)
{
    char *id = create_container(x);
    printf("%s\n", id);
    free(id);
    return 0;
}

/* ---- run ---------------------------------------------------------------------------------------------- */

static void
remove_container(struct ctx *x, const char *id)
{
    berth_error_t *e = NULL;
    if (berth_container_delete(cli_client(x), cli_call(x), id, 1, &e) < 0)
        warn_err(x, e);
    log_dir_remove(g.namespace_, id);
}

/* a foreground container that stays: its exit recorded for ps, its task (and shim) gone */
static void
record_exit(struct ctx *x, const char *id, const berth_exit_t *ex)
{
    char code[16], at[32];
    snprintf(code, sizeof code, "%u", ex->status);
    snprintf(at, sizeof at, "%lld", (long long)ex->exited_at_ns);
    berth_kv_t kv[2] = {{(char *)LABEL_EXIT_CODE, code}, {(char *)LABEL_EXITED_AT, at}};
    berth_error_t *e = NULL;
    if (berth_container_set_labels(cli_client(x), cli_call(x), id, kv, 2, &e) < 0)
        warn_err(x, e);
}

/* run -d --rm: a detached `berth __reap ID` of our own waits for the exit and removes the container */
static void
spawn_reaper(const char *id)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %m");
    if (pid > 0) {
        waitpid(pid, NULL, 0); /* the child forks once more and leaves at once */
        return;
    }
    setsid();
    if (fork() != 0)
        _exit(0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl("/proc/self/exe", "berth", "--address", g.address, "--namespace", g.namespace_,
          "--data-root", g.data_root, "__reap", id, (char *)NULL);
    _exit(127);
}

int
cmd_reap(struct ctx *x)
{
    const char *id = x->argv[0];
    berth_exit_t ex;
    berth_error_t *e = NULL;
    berth_client_t *c = cli_client(x);
    if (berth_task_wait(c, cli_call_forever(x), id, NULL, &ex, &e) < 0) {
        berth_error_free(e);
        return 1;
    }
    berth_task_info_t ti;
    int st = task_state(x, id, &ti);
    if (st)
        task_remove(x, id, &ti, NULL);
    berth_task_info_free(&ti);
    remove_container(x, id);
    return 0;
}

int
cmd_run(struct ctx *x)
{
    int detach = fbool(x, "detach"), tty = fbool(x, "tty"), in = fbool(x, "interactive");
    int rm = fbool(x, "rm");
    if (tty && in && !detach && !isatty(STDIN_FILENO))
        die("the input device is not a TTY");
    block_signals(); /* before the library starts any thread */
    char *id = create_container(x);
    berth_io_opts_t io = {.terminal = tty};
    char *path = NULL;
    if (detach) {
        char *dir = log_dir(g.namespace_, id);
        mkdir_p(dir);
        free(dir);
        path = log_uri(g.namespace_, id);
        io.log_uri = path;
        io.keep_stdin = in;
    } else {
        if (in)
            io.in = (berth_stream_t){.kind = BERTH_STREAM_FD, .fd = STDIN_FILENO};
        io.out = (berth_stream_t){.kind = BERTH_STREAM_FD, .fd = STDOUT_FILENO};
        io.err = (berth_stream_t){.kind = BERTH_STREAM_FD, .fd = STDERR_FILENO};
    }
    berth_io_t *tio = NULL;
    berth_error_t *e = NULL;
    berth_client_t *c = cli_client(x);
    if (berth_task_create(c, cli_call(x), id, &io, detach ? NULL : &tio, NULL, &e) < 0) {
        print_err(x, e);
        berth_error_free(e);
        if (rm)
            remove_container(x, id);
        return CLI_EXIT;
    }
    struct waiter w;
    if (!detach) {
        wait_begin(&w, x, id, NULL);
        start_forwarding(x, id, NULL, tty);
        if (tty && in)
            tty_raw();
        if (tty) {
            struct fwd f = {x, id, NULL, 1};
            resize(&f);
        }
    }
    if (berth_task_start(c, cli_call(x), id, NULL, NULL, &e) < 0) {
        tty_restore();
        print_err(x, e);
        berth_error_free(e);
        berth_task_delete(c, cli_call(x), id, NULL, NULL, NULL);
        if (rm)
            remove_container(x, id);
        _exit(CLI_EXIT); /* the wait thread may still be in its call */
    }
    if (detach) {
        if (rm)
            spawn_reaper(id);
        printf("%s\n", id);
        free(path);
        free(id);
        return 0;
    }
    int status = wait_end(&w);
    berth_io_wait(tio);
    tty_restore();
    berth_task_delete(c, cli_call(x), id, NULL, NULL, NULL);
    berth_io_free(tio);
    if (rm)
        remove_container(x, id);
    else
        record_exit(x, id, &w.ex);
    free(id);
    return status;
}

/* ---- start, stop, kill, rm ------------------------------------------------------------------------------ */

static int
spec_terminal(const char *spec_json)
{
    json_object *o = json_tokener_parse(spec_json), *p, *t;
    int tty = o && json_object_object_get_ex(o, "process", &p) &&
              json_object_object_get_ex(p, "terminal", &t) && json_object_get_boolean(t);
    json_object_put(o);
    return tty;
}

/* the task's state: 0 none, 1 running (or paused), 2 stopped, 3 created */
static int
task_state(struct ctx *x, const char *id, berth_task_info_t *ti)
{
    berth_error_t *e = NULL;
    memset(ti, 0, sizeof *ti);
    if (berth_task_get(cli_client(x), cli_call(x), id, NULL, ti, &e) < 0) {
        if (e->code == BERTH_ENOTFOUND) {
            berth_error_free(e);
            return 0;
        }
        die_err(x, e);
    }
    if (!strcmp(ti->status, "stopped"))
        return 2;
    if (!strcmp(ti->status, "created"))
        return 3;
    return 1;
}

/* A kept stdin FIFO (run -di) outlives the library's IO: removed with the task, its dir with it. */
static void
drop_kept_stdin(const char *path)
{
    if (!path || !path[0])
        return;
    unlink(path);
    char *dir = strdup(path), *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        rmdir(dir);
    }
    free(dir);
}

/* deletes the container's (exited or created) task and what its IO left */
static int
task_remove(struct ctx *x, const char *id, const berth_task_info_t *ti, berth_error_t **e)
{
    if (berth_task_delete(cli_client(x), cli_call(x), id, NULL, NULL, e) < 0)
        return -1;
    drop_kept_stdin(ti ? ti->stdin_path : NULL);
    return 0;
}

int
cmd_start(struct ctx *x)
{
    int rc = 0, attach = fbool(x, "attach");
    if (attach && x->argc > 1)
        die("you cannot start and attach several containers at once");
    berth_client_t *c = cli_client(x);
    for (int i = 0; i < x->argc; i++) {
        const char *id = x->argv[i];
        berth_container_t *ct = NULL;
        berth_error_t *e = NULL;
        if (berth_container_load(c, cli_call(x), id, &ct, &e) < 0) {
            print_err(x, e);
            berth_error_free(e);
            rc = 1;
            continue;
        }
        berth_task_info_t ti;
        int st = task_state(x, id, &ti);
        if (st == 1) {
            berth_task_info_free(&ti);
            printf("%s\n", id);
            berth_container_free(ct);
            continue;
        }
        if (st)
            task_remove(x, id, &ti, NULL);
        berth_task_info_free(&ti);
        const char *uri = kv_get(ct->labels, ct->n_labels, LABEL_LOG_URI);
        char *own = uri ? NULL : log_uri(g.namespace_, id);
        char *dir = log_dir(g.namespace_, id);
        mkdir_p(dir);
        free(dir);
        berth_io_opts_t io = {.terminal = spec_terminal(ct->spec_json),
                              .log_uri = uri ? uri : own,
                              .keep_stdin = kv_get(ct->labels, ct->n_labels, LABEL_STDIN) != NULL};
        int64_t since = now_ns();
        if (berth_task_create(c, cli_call(x), id, &io, NULL, NULL, &e) < 0 ||
            berth_task_start(c, cli_call(x), id, NULL, NULL, &e) < 0) {
            print_err(x, e);
            berth_error_free(e);
            rc = 1;
        } else if (attach) {
            char *path = log_uri_path(io.log_uri);
            struct log_opts lo = {.tail = -1, .follow = 1, .since_ns = since};
            log_show(x, id, path, &lo);
            free(path);
            rc = lo.exit_status;
        } else {
            printf("%s\n", id);
        }
        free(own);
        berth_container_free(ct);
    }
    return rc;
}

/* kill_then_wait: signals the task and waits for its exit (within call's timeout). A task whose process
 * ended between the caller's look and the kill answers NotFound to the kill: not an error, its exit is there
 * to wait for. */
static int
kill_then_wait(struct ctx *x, const char *id, int sig, int all, const berth_call_t *call,
               berth_exit_t *ex, berth_error_t **e)
{
    berth_client_t *c = cli_client(x);
    if (berth_task_kill(c, cli_call(x), id, NULL, sig, all, e) < 0) {
        if ((*e)->code != BERTH_ENOTFOUND)
            return -1;
        berth_error_free(*e);
        *e = NULL;
    }
    return berth_task_wait(c, call, id, NULL, ex, e);
}

int
cmd_stop(struct ctx *x)
{
    int rc = 0, sig = parse_signal(fstr(x, "signal"));
    long secs = fint(x, "time");
    if (sig < 0)
        die("invalid signal \"%s\"", fstr(x, "signal"));
    berth_client_t *c = cli_client(x);
    for (int i = 0; i < x->argc; i++) {
        const char *id = x->argv[i];
        berth_task_info_t ti;
        int st = task_state(x, id, &ti);
        berth_task_info_free(&ti);
        berth_error_t *e = NULL;
        if (st == 0) { /* no task: stopped already, or no such container */
            berth_container_t *ct = NULL;
            if (berth_container_load(c, cli_call(x), id, &ct, &e) < 0) {
                warn_err(x, e);
                rc = 1;
                continue;
            }
            berth_container_free(ct);
        } else if (st == 1) {
            berth_exit_t ex;
            berth_call_t call = {.namespace_ = g.namespace_,
                                 .timeout_ms = secs > 0 ? (int)secs * 1000 : 1};
            if (kill_then_wait(x, id, sig, 0, &call, &ex, &e) < 0) {
                if (e->code != BERTH_ETIMEDOUT && e->code != BERTH_ECANCELED &&
                    e->code != BERTH_ENOTFOUND) {
                    warn_err(x, e);
                    rc = 1;
                    continue;
                }
                berth_error_free(e);
                e = NULL;
                if (kill_then_wait(x, id, SIGKILL, 1, cli_call_forever(x), &ex, &e) < 0) {
                    warn_err(x, e);
                    rc = 1;
                    continue;
                }
            }
        }
        printf("%s\n", id);
    }
    return rc;
}

int
cmd_kill(struct ctx *x)
{
    int rc = 0, sig = parse_signal(fstr(x, "signal"));
    if (sig < 0)
        die("invalid signal \"%s\"", fstr(x, "signal"));
    for (int i = 0; i < x->argc; i++) {
        berth_error_t *e = NULL;
        if (berth_task_kill(cli_client(x), cli_call(x), x->argv[i], NULL, sig, 0, &e) < 0) {
            warn_err(x, e);
            rc = 1;
        } else {
            printf("%s\n", x->argv[i]);
        }
    }
    return rc;
}

int
cmd_rm(struct ctx *x)
{
    int rc = 0;
    berth_client_t *c = cli_client(x);
    for (int i = 0; i < x->argc; i++) {
        const char *id = x->argv[i];
        berth_task_info_t ti;
        int st = task_state(x, id, &ti);
        berth_error_t *e = NULL;
        if (st == 1 && !fbool(x, "force")) {
            berth_task_info_free(&ti);
            warnx1("container \"%s\" is running: stop it first, or use rm -f", id);
            rc = 1;
            continue;
        }
        if (st == 1) {
            berth_exit_t ex;
            if (kill_then_wait(x, id, SIGKILL, 1, cli_call_forever(x), &ex, &e) < 0) {
                berth_task_info_free(&ti);
                warn_err(x, e);
                rc = 1;
                continue;
            }
        }
        if (st && task_remove(x, id, &ti, &e) < 0 && e->code != BERTH_ENOTFOUND) {
            berth_task_info_free(&ti);
            warn_err(x, e);
            rc = 1;
            continue;
        }
        berth_task_info_free(&ti);
        berth_error_free(e);
        e = NULL;
        if (berth_container_delete(c, cli_call(x), id, 1, &e) < 0) {
            warn_err(x, e);
            rc = 1;
            continue;
        }
        log_dir_remove(g.namespace_, id);
        printf("%s\n", id);
    }
    return rc;
}

/* ---- ps ----------------------------------------------------------------------------------------------- */

/* when the process started, from /proc (the CLI runs on berthd's host) */
static int64_t
proc_start_ns(uint32_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long start = 0;
    int field = 2;
    for (char *s = p + 1; *s && field < 22; s++)
        if (*s == ' ' && ++field == 22)
            start = strtoull(s + 1, NULL, 10);
    f = fopen("/proc/stat", "re");
    unsigned long long btime = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)btime * 1000000000 + (int64_t)(start * 1000000000ULL / (unsigned long long)hz);
}

static char *
spec_command(const char *spec_json)
{
    json_object *o = json_tokener_parse(spec_json), *p, *a;
    char buf[1024] = "";
    if (o && json_object_object_get_ex(o, "process", &p) &&
        json_object_object_get_ex(p, "args", &a))
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "%s%s", i ? " " : "",
                     json_object_get_string(json_object_array_get_idx(a, i)));
        }
    json_object_put(o);
    return strdup(buf);
}

/* "127.0.0.1:8080:80/tcp,8081:81" -> "127.0.0.1:8080->80/tcp, 0.0.0.0:8081->81/tcp" */
static void
ports_display(const char *ports, char *out, size_t len)
{
    out[0] = 0;
    if (!ports)
        return;
    char *dup = strdup(ports);
    for (char *s = dup, *p; (p = strsep(&s, ","));) {
        if (!*p)
            continue;
        char *proto = strchr(p, '/');
        if (proto)
            *proto++ = 0;
        char *c2 = strrchr(p, ':');
        if (!c2)
            continue;
        *c2 = 0;
        char *c1 = strrchr(p, ':');
        if (c1)
            *c1 = 0;
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%s:%s->%s/%s", l ? ", " : "", c1 ? p : "0.0.0.0",
                 c1 ? c1 + 1 : p, c2 + 1, proto ? proto : "tcp");
    }
    free(dup);
}

static void
container_status(const berth_container_t *ct, const berth_task_info_t *t, char *state, size_t sl,
                 char *status, size_t len)
{
    char d[64];
    if (t && (!strcmp(t->status, "running") || !strcmp(t->status, "paused") ||
              !strcmp(t->status, "pausing"))) {
        int64_t started = proc_start_ns(t->pid);
        human_duration(started ? now_ns() - started : 0, d, sizeof d);
        int paused = strcmp(t->status, "running") != 0;
        snprintf(status, len, "Up %s%s", d, paused ? " (Paused)" : "");
        snprintf(state, sl, "%s", paused ? "paused" : "running");
        return;
    }
    const char *code = kv_get(ct->labels, ct->n_labels, LABEL_EXIT_CODE);
    const char *at = kv_get(ct->labels, ct->n_labels, LABEL_EXITED_AT);
    if (t && !strcmp(t->status, "stopped")) {
        human_ago(t->exited_at_ns, d, sizeof d);
        snprintf(status, len, "Exited (%u) %s", t->exit_status, d);
        snprintf(state, sl, "exited");
    } else if (!t && code) {
        human_ago(at ? strtoll(at, NULL, 10) : 0, d, sizeof d);
        snprintf(status, len, "Exited (%s) %s", code, d);
        snprintf(state, sl, "exited");
    } else {
        snprintf(status, len, "Created");
        snprintf(state, sl, "created");
    }
}

int
cmd_ps(struct ctx *x)
{
    berth_client_t *c = cli_client(x);
    berth_container_t *cts = NULL;
    berth_task_info_t *tasks = NULL;
    size_t n = 0, nt = 0;
    berth_error_t *e = NULL;
    if (berth_container_list(c, cli_call(x), NULL, 0, &cts, &n, &e) < 0 ||
        berth_task_list(c, cli_call(x), &tasks, &nt, &e) < 0)
        die_err(x, e);
    const char *fmt = fstr(x, "format");
    int json = fmt && !strcmp(fmt, "json"), quiet = fbool(x, "quiet"),
        trunc = !fbool(x, "no-trunc");
    if (fmt && !json && strcmp(fmt, "table"))
        die("unknown --format \"%s\": table or json", fmt);
    struct table t;
    if (!json && !quiet)
        table_init(&t, 7, "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                   "NAMES");
    for (size_t i = 0; i < n; i++) {
        const berth_container_t *ct = &cts[i];
        const berth_task_info_t *ti = NULL;
        for (size_t k = 0; k < nt; k++)
            if (!strcmp(tasks[k].id, ct->id))
                ti = &tasks[k];
        char state[16], status[128], ports[512], created[64], shortid[16];
        container_status(ct, ti, state, sizeof state, status, sizeof status);
        if (!fbool(x, "all") && strcmp(state, "running") && strcmp(state, "paused"))
            continue;
        snprintf(shortid, sizeof shortid, "%.12s", ct->id);
        if (quiet) {
            printf("%s\n", ct->id);
            continue;
        }
        ports_display(kv_get(ct->labels, ct->n_labels, "io.berth.ports"), ports, sizeof ports);
        human_ago(ct->created_at_ns, created, sizeof created);
        char *cmd = spec_command(ct->spec_json);
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "ID", json_object_new_string(ct->id));
            json_object_object_add(o, "Image", json_object_new_string(ct->image));
            json_object_object_add(o, "Command", json_object_new_string(cmd));
            char ts[64];
            fmt_time(ct->created_at_ns, ts, sizeof ts);
            json_object_object_add(o, "CreatedAt", json_object_new_string(ts));
            json_object_object_add(o, "State", json_object_new_string(state));
            json_object_object_add(o, "Status", json_object_new_string(status));
            json_object_object_add(o, "Ports", json_object_new_string(ports));
            json_object_object_add(o, "Names", json_object_new_string(ct->id));
            json_object_object_add(o, "Runtime", json_object_new_string(ct->runtime));
            json_object_object_add(o, "Labels", json_kv(ct->labels, ct->n_labels));
            json_print(o, 0);
        } else {
            char qcmd[64];
            if (trunc && strlen(cmd) > 20)
                snprintf(qcmd, sizeof qcmd, "\"%.19s…\"", cmd);
            else
                snprintf(qcmd, sizeof qcmd, "\"%.60s\"", cmd);
            table_row(&t, trunc ? shortid : ct->id, familiar_name(ct->image), qcmd, created, status,
                      ports, ct->id);
        }
        free(cmd);
    }
    if (!json && !quiet)
        table_print(&t, stdout);
    berth_containers_free(cts, n);
    for (size_t k = 0; k < nt; k++)
        berth_task_info_free(&tasks[k]);
    berth_free(tasks);
    return 0;
}

/* ---- exec, attach --------------------------------------------------------------------------------------- */

int
cmd_exec(struct ctx *x)
{
    const char *id = x->argv[0];
    int tty = fbool(x, "tty"), in = fbool(x, "interactive"), detach = fbool(x, "detach");
    if (tty && in && !detach && !isatty(STDIN_FILENO))
        die("the input device is not a TTY");
    block_signals();
    size_t n_env;
    berth_spec_opts_t so = {.args = (const char *const *)x->argv + 1,
                            .n_args = (size_t)x->argc - 1,
                            .cwd = fstr(x, "workdir"),
                            .user = fstr(x, "user"),
                            .tty = tty};
    so.env = flist(x, "env", &n_env);
    so.n_env = n_env;
    berth_client_t *c = cli_client(x);
    berth_error_t *e = NULL;
    char *proc = NULL, *hex = random_hex(12), exec_id[32];
    snprintf(exec_id, sizeof exec_id, "exec-%s", hex);
    free(hex);
    if (berth_spec_process(c, cli_call(x), id, &so, &proc, &e) < 0)
        die_err(x, e);
    berth_io_opts_t io = {.terminal = tty};
    if (!detach) {
        if (in)
            io.in = (berth_stream_t){.kind = BERTH_STREAM_FD, .fd = STDIN_FILENO};
        io.out = (berth_stream_t){.kind = BERTH_STREAM_FD, .fd = STDOUT_FILENO};
        io.err = (berth_stream_t){.kind = BERTH_STREAM_FD, .fd = STDERR_FILENO};
    }
    berth_io_t *tio = NULL;
    if (berth_task_exec(c, cli_call(x), id, exec_id, proc, &io, detach ? NULL : &tio, &e) < 0)
        die_err(x, e);
    berth_free(proc);
    struct waiter w;
    if (!detach) {
        wait_begin(&w, x, id, exec_id);
        start_forwarding(x, id, exec_id, tty);
        if (tty && in)
            tty_raw();
        if (tty) {
            struct fwd f = {x, id, exec_id, 1};
            resize(&f);
        }
    }
    if (berth_task_start(c, cli_call(x), id, exec_id, NULL, &e) < 0) {
        tty_restore();
        print_err(x, e);
        berth_error_free(e);
        berth_task_delete(c, cli_call(x), id, exec_id, NULL, NULL);
        _exit(CLI_EXIT);
    }
    if (detach)
        return 0;
    int status = wait_end(&w);
    berth_io_wait(tio);
    tty_restore();
    berth_task_delete(c, cli_call(x), id, exec_id, NULL, NULL);
    berth_io_free(tio);
    return status;
}

struct feed {
    int fd;
};

static void *
stdin_thread(void *arg)
{
    struct feed *f = arg;
    char buf[16384];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(f->fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return NULL;
            off += w;
        }
    }
    close(f->fd); /* our end only: the kept FIFO stays open in the shim, as docker's detach */
    return NULL;
}

int
cmd_attach(struct ctx *x)
{
    const char *id = x->argv[0];
    block_signals();
    berth_client_t *c = cli_client(x);
    berth_task_info_t ti;
    int st = task_state(x, id, &ti);
    if (st != 1)
        die("container \"%s\" is not running: you cannot attach to it", id);
    berth_container_t *ct = NULL;
    berth_error_t *e = NULL;
    if (berth_container_load(c, cli_call(x), id, &ct, &e) < 0)
        die_err(x, e);
    const char *uri = kv_get(ct->labels, ct->n_labels, LABEL_LOG_URI);
    char *path = uri ? log_uri_path(uri) : log_path(g.namespace_, id);
    int64_t since = now_ns();
    static struct feed f;
    if (!fbool(x, "no-stdin") && ti.stdin_path[0]) {
        f.fd = open(ti.stdin_path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
        if (f.fd < 0)
            die("open the stdin of \"%s\" (%s): %m: was it run with -i?", id, ti.stdin_path);
        fcntl(f.fd, F_SETFL, fcntl(f.fd, F_GETFL) & ~O_NONBLOCK);
        pthread_t t;
        if (pthread_create(&t, NULL, stdin_thread, &f) != 0)
            die("cannot start the stdin thread");
        pthread_detach(t);
    }
    start_forwarding(x, id, NULL, ti.terminal);
    if (ti.terminal) {
        tty_raw();
        struct fwd fw = {x, id, NULL, 1};
        resize(&fw);
    }
    struct log_opts lo = {.tail = -1, .follow = 1, .since_ns = since};
    log_show(x, id, path, &lo);
    tty_restore();
    free(path);
    berth_task_info_free(&ti);
    berth_container_free(ct);
    return lo.exit_status;
}

/* ---- inspect ------------------------------------------------------------------------------------------ */

static json_object *
json_container(struct ctx *x, const berth_container_t *ct)
{
    json_object *o = json_object_new_object();
    char ts[64];
    json_object_object_add(o, "Id", json_object_new_string(ct->id));
    json_object_object_add(o, "Name", json_object_new_string(ct->id));
    json_object_object_add(o, "Image", json_object_new_string(ct->image));
    json_object_object_add(o, "Runtime", json_object_new_string(ct->runtime));
    json_object_object_add(o, "Snapshotter", json_object_new_string(ct->snapshotter));
    json_object_object_add(o, "SnapshotKey", json_object_new_string(ct->snapshot_key));
    fmt_time(ct->created_at_ns, ts, sizeof ts);
    json_object_object_add(o, "Created", json_object_new_string(ts));
    json_object_object_add(o, "Labels", json_kv(ct->labels, ct->n_labels));
    berth_task_info_t ti;
    int st = task_state(x, ct->id, &ti);
    char state[16], status[128];
    container_status(ct, st ? &ti : NULL, state, sizeof state, status, sizeof status);
    json_object *s = json_object_new_object();
    json_object_object_add(s, "Status", json_object_new_string(state));
    json_object_object_add(s, "Running", json_object_new_boolean(!strcmp(state, "running")));
    json_object_object_add(s, "Pid", json_object_new_int64(st ? ti.pid : 0));
    if (st == 2) {
        json_object_object_add(s, "ExitCode", json_object_new_int64(ti.exit_status));
        fmt_time(ti.exited_at_ns, ts, sizeof ts);
        json_object_object_add(s, "FinishedAt", json_object_new_string(ts));
    } else if (kv_get(ct->labels, ct->n_labels, LABEL_EXIT_CODE)) {
        json_object_object_add(
            s, "ExitCode",
            json_object_new_int64(atoll(kv_get(ct->labels, ct->n_labels, LABEL_EXIT_CODE))));
    }
    json_object_object_add(s, "StatusText", json_object_new_string(status));
    json_object_object_add(o, "State", s);
    if (st)
        berth_task_info_free(&ti);
    const char *uri = kv_get(ct->labels, ct->n_labels, LABEL_LOG_URI);
    char *lp = uri ? log_uri_path(uri) : NULL;
    json_object_object_add(o, "LogPath", json_object_new_string(lp ? lp : ""));
    free(lp);
    json_object_object_add(o, "Spec", ct->spec_json[0] ? json_tokener_parse(ct->spec_json) : NULL);
    return o;
}

int
cmd_inspect(struct ctx *x)
{
    const char *type = fstr(x, "type");
    if (type && strcmp(type, "container") && strcmp(type, "image") && strcmp(type, "volume") &&
        strcmp(type, "network"))
        die("invalid --type \"%s\": container, image, volume or network", type);
    berth_client_t *c = cli_client(x);
    json_object *arr = json_object_new_array();
    int rc = 0;
    for (int i = 0; i < x->argc; i++) {
        const char *name = x->argv[i];
        json_object *o = NULL;
        berth_error_t *e = NULL;
#define TRY(kind) (!type || !strcmp(type, kind))
#define MISS()                                                     \
    do {                                                           \
        if (e->code != BERTH_ENOTFOUND && e->code != BERTH_EINVAL) \
            die_err(x, e);                                         \
        berth_error_free(e);                                       \
        e = NULL;                                                  \
    } while (0)
        if (TRY("container")) {
            berth_container_t *ct = NULL;
            if (berth_container_load(c, cli_call(x), name, &ct, &e) == 0) {
                o = json_container(x, ct);
                berth_container_free(ct);
            } else {
                MISS();
            }
        }
        if (!o && TRY("image")) {
            char *ref = normalize_image(name);
            berth_image_t *img = NULL;
            if (berth_image_get(c, cli_call(x), ref, &img, &e) == 0) {
                o = json_image(x, img);
                berth_image_free(img);
            } else {
                MISS();
            }
            free(ref);
        }
        if (!o && TRY("volume")) {
            berth_volume_t *v = NULL;
            if (berth_volume_get(c, cli_call(x), name, &v, &e) == 0) {
                o = json_volume(v);
                berth_volume_free(v);
            } else {
                MISS();
            }
        }
        if (!o && TRY("network")) {
            berth_network_t *nw = NULL;
            if (berth_network_get(c, cli_call(x), name, &nw, &e) == 0) {
                o = json_network(nw);
                berth_network_free(nw);
            } else {
                MISS();
            }
        }
        if (o) {
            json_object_array_add(arr, o);
        } else {
            warnx1("no such object: %s", name);
            rc = 1;
        }
    }
    json_print(arr, 1);
    return rc;
}
