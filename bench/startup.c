/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/startup: how long berthd takes from exec to READY=1, and its resident memory once idle, with the
 * default module set. Prints the median of N runs (default 21).
 *   usage: bench-startup [N] [berthd path]
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One run: start, wait for READY=1, let it idle, read RSS, stop. Returns 0 on success. */
static int
one_run(const char *berthd, const char *tmp, double *ready_ms, long *rss)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    char root[512], state[512], fd[16];
    snprintf(root, sizeof(root), "%s/root", tmp);
    snprintf(state, sizeof(state), "%s/state", tmp);
    snprintf(fd, sizeof(fd), "%d", p[1]);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        execl(berthd, berthd, "--root", root, "--state", state, "--ready-fd", fd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[16];
    struct pollfd pfd = {p[0], POLLIN, 0};
    int ok = poll(&pfd, 1, 10000) > 0 && read(p[0], buf, sizeof(buf)) > 0;
    *ready_ms = now_ms() - t0;
    close(p[0]);
    usleep(100 * 1000); /* idle */
    *rss = rss_kib(pid);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 21;
    const char *berthd = argc > 2 ? argv[2] : BERTHD;
    if (n < 1)
        n = 1;
    char tmp[] = "/tmp/berth-bench-XXXXXX";
    if (mkdtemp(tmp) == NULL)
        return 1;
    double *ready = calloc((size_t)n, sizeof(double));
    double *rss = calloc((size_t)n, sizeof(double));
    int failures = 0;
    for (int i = 0; i < n; i++) {
        long kib = 0;
        if (one_run(berthd, tmp, &ready[i], &kib) < 0)
            failures++;
        rss[i] = (double)kib;
    }
    qsort(ready, (size_t)n, sizeof(double), cmp_double);
    qsort(rss, (size_t)n, sizeof(double), cmp_double);
    printf("berthd startup (%s, default config, %d runs)\n", berthd, n);
    printf("  start-to-ready  median %.2f ms   min %.2f ms   max %.2f ms   (target <= 5 ms)\n",
           ready[n / 2], ready[0], ready[n - 1]);
    printf("  idle RSS        median %.0f KiB (%.2f MiB)                 (target <= 3 MiB)\n",
           rss[n / 2], rss[n / 2] / 1024.0);
    if (failures)
        printf("  %d run(s) failed to start or stop cleanly\n", failures);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    free(ready);
    free(rss);
    return failures ? 1 : 0;
}
