/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/startup: how long berthd takes from exec to READY=1, and its resident memory once idle, with the
 * default module set; then the same for containerd beside it. Prints the median of N runs (default 21).
 *   usage: bench-startup [N] [berthd path] [--containerd PATH | --no-containerd] [--unmapped LIB,LIB...]
 *                        [-- berthd flags...]
 * Flags after -- are berthd's (e.g. --set 'disabled=[io.berth.cri.v1.cri]' to see what a plugin costs).
 * containerd (default /usr/bin/containerd; skipped with a note when absent) runs with its built-in defaults
 * (every plugin, CRI included, as Debian's package and `containerd config default` enable it) except its
 * root, state and two sockets, which are in a temp dir; it is ready when its gRPC socket accepts a
 * connection (it has no readiness fd). Both idle 100 ms after ready before their VmRSS is read; their runs
 * alternate.
 * --unmapped: fails when a library whose path contains one of the names is mapped into berthd once idle
 * (libraries meant to be opened on first use only).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IDLE_US (100 * 1000)
#define READY_TIMEOUT_MS 10000

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* The first of the comma-separated names found in a path mapped into pid, or NULL. */
static const char *
mapped_any(pid_t pid, const char *names, char *found, size_t len)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    const char *hit = NULL;
    while (f && hit == NULL && fgets(line, sizeof(line), f)) {
        for (const char *n = names; *n && hit == NULL;) {
            size_t k = strcspn(n, ",");
            snprintf(found, len, "%.*s", (int)k, n);
            if (k > 0 && strstr(line, found))
                hit = found;
            n += k + (n[k] == ',');
        }
    }
    if (f)
        fclose(f);
    return hit;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static pid_t
spawn(char *const argv[], int close_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        if (close_fd >= 0)
            close(close_fd);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int
stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* One berthd run: start, wait for READY=1, let it idle, read RSS, stop. Returns 0 on success. */
static char **extra_args; /* berthd's flags after -- */
static int n_extra;

static int
berthd_run(const char *berthd, const char *tmp, const char *unmapped, double *ready_ms, long *rss)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    char root[512], state[512], fd[16];
    snprintf(root, sizeof(root), "%s/root", tmp);
    snprintf(state, sizeof(state), "%s/state", tmp);
    snprintf(fd, sizeof(fd), "%d", p[1]);
    char *argv[64] = {(char *)berthd, "--root", root, "--state", state, "--ready-fd", fd};
    for (int i = 0; i < n_extra && 7 + i < 63; i++)
        argv[7 + i] = extra_args[i];
    double t0 = now_ms();
    pid_t pid = spawn(argv, p[0]);
    close(p[1]);
    char buf[16];
    struct pollfd pfd = {p[0], POLLIN, 0};
    int ok = poll(&pfd, 1, READY_TIMEOUT_MS) > 0 && read(p[0], buf, sizeof(buf)) > 0;
    *ready_ms = now_ms() - t0;
    close(p[0]);
    usleep(IDLE_US);
    *rss = rss_kib(pid);
    char name[256];
    if (unmapped && mapped_any(pid, unmapped, name, sizeof(name))) {
        fprintf(stderr, "berthd maps %s once idle (meant to be opened on first use)\n", name);
        ok = 0;
    }
    return stop(pid) == 0 && ok ? 0 : -1;
}

/* Whether a unix socket accepts a connection. */
static int
accepts(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof(a.sun_path)) {
        if (s >= 0)
            close(s);
        return 0;
    }
    memcpy(a.sun_path, path, len + 1);
    int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

/* One containerd run, its own root, state and sockets under tmp (config written by the caller). */
static int
containerd_run(const char *containerd, const char *tmp, double *ready_ms, long *rss)
{
    char config[1024], sock[1024];
    snprintf(config, sizeof(config), "%s/config.toml", tmp);
    snprintf(sock, sizeof(sock), "%s/containerd.sock", tmp);
    unlink(sock);
    char *argv[] = {(char *)containerd, "--config", config, NULL};
    double t0 = now_ms();
    pid_t pid = spawn(argv, -1);
    int ok = 0;
    while (!(ok = accepts(sock)) && now_ms() - t0 < READY_TIMEOUT_MS &&
           waitpid(pid, NULL, WNOHANG) == 0)
        usleep(200);
    *ready_ms = now_ms() - t0;
    usleep(IDLE_US);
    *rss = rss_kib(pid);
    return stop(pid) == 0 && ok ? 0 : -1;
}

static int
write_containerd_config(const char *tmp)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/config.toml", tmp);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    /* containerd's defaults but for where it keeps things: its sockets and data must not be the host's */
    fprintf(f,
            "version = 2\nroot = \"%s/root\"\nstate = \"%s/state\"\n"
            "[grpc]\n  address = \"%s/containerd.sock\"\n"
            "[ttrpc]\n  address = \"%s/containerd.sock.ttrpc\"\n",
            tmp, tmp, tmp, tmp);
    return fclose(f);
}

typedef struct series {
    double *ready, *rss;
    int failures;
} series_t;

static void
summarize(series_t *s, int n)
{
    qsort(s->ready, (size_t)n, sizeof(double), cmp_double);
    qsort(s->rss, (size_t)n, sizeof(double), cmp_double);
}

static void
remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int
main(int argc, char **argv)
{
    int n = 21;
    const char *berthd = BERTHD;
    const char *containerd = "/usr/bin/containerd";
    const char *unmapped = NULL;
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            extra_args = argv + i + 1;
            n_extra = argc - i - 1;
            break;
        } else if (strcmp(argv[i], "--no-containerd") == 0)
            containerd = NULL;
        else if (strcmp(argv[i], "--containerd") == 0 && i + 1 < argc)
            containerd = argv[++i];
        else if (strcmp(argv[i], "--unmapped") == 0 && i + 1 < argc)
            unmapped = argv[++i];
        else if (argv[i][0] != '-' && positional == 0 && ++positional)
            n = atoi(argv[i]);
        else if (argv[i][0] != '-' && positional == 1 && ++positional)
            berthd = argv[i];
        else {
            fprintf(stderr,
                    "usage: bench-startup [N] [berthd] [--containerd PATH | --no-containerd] "
                    "[--unmapped LIB,...] [-- berthd flags]\n");
            return 2;
        }
    }
    if (n < 1)
        n = 1;
    const char *skip_why = NULL;
    if (containerd == NULL)
        skip_why = "--no-containerd";
    else if (access(containerd, X_OK) != 0)
        skip_why = "not installed";

    char tmp[] = "/tmp/berth-bench-XXXXXX";
    if (mkdtemp(tmp) == NULL)
        return 1;
    series_t b = {calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double)), 0};
    series_t c = {calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double)), 0};
    char ctmp[256];
    snprintf(ctmp, sizeof(ctmp), "%s/containerd", tmp);
    if (skip_why == NULL && (mkdir(ctmp, 0700) < 0 || write_containerd_config(ctmp) < 0))
        skip_why = strerror(errno);
    /* the two alternate, run by run, so the machine's load weighs on both alike */
    for (int i = 0; i < n; i++) {
        long kib = 0;
        if (berthd_run(berthd, tmp, unmapped, &b.ready[i], &kib) < 0)
            b.failures++;
        b.rss[i] = (double)kib;
        if (skip_why == NULL) {
            kib = 0;
            if (containerd_run(containerd, ctmp, &c.ready[i], &kib) < 0)
                c.failures++;
            c.rss[i] = (double)kib;
        }
    }
    summarize(&b, n);
    if (skip_why == NULL)
        summarize(&c, n);
    printf("berthd startup (%s, default config, %d runs)\n", berthd, n);
    printf("  start-to-ready  median %8.2f ms    min %8.2f ms   max %8.2f ms   (target <= 5 ms)\n",
           b.ready[n / 2], b.ready[0], b.ready[n - 1]);
    printf("  idle RSS        median %8.0f KiB   (%.2f MiB)                         (target <= 3 "
           "MiB)\n",
           b.rss[n / 2], b.rss[n / 2] / 1024.0);
    if (b.failures)
        printf("  %d run(s) failed to start or stop cleanly%s\n", b.failures,
               unmapped ? ", or mapped a library meant to be opened on first use" : "");

    if (skip_why == NULL) {
        printf(
            "containerd startup (%s, its defaults with CRI; own root, state, sockets; %d runs)\n",
            containerd, n);
        printf(
            "  start-to-ready  median %8.2f ms    min %8.2f ms   max %8.2f ms   (socket accepts)\n",
            c.ready[n / 2], c.ready[0], c.ready[n - 1]);
        printf("  idle RSS        median %8.0f KiB   (%.2f MiB)\n", c.rss[n / 2],
               c.rss[n / 2] / 1024.0);
        if (c.failures)
            printf("  %d run(s) failed to start or stop cleanly\n", c.failures);
        printf("berthd against containerd: ready %.1fx sooner (target >= 10x), RSS %.1fx smaller\n",
               c.ready[n / 2] / b.ready[n / 2], c.rss[n / 2] / b.rss[n / 2]);
    } else {
        printf("containerd: skipped (%s)\n", skip_why);
    }
    remove_tree(tmp);
    free(b.ready);
    free(b.rss);
    free(c.ready);
    free(c.rss);
    /* containerd's failures are reported, not fatal: the benchmark is berthd's */
    return b.failures ? 1 : 0;
}
